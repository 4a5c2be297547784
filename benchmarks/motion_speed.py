"""Speed of the motion metrics: ewmbench against a straightforward official-style implementation.

    PYTHONPATH=. python benchmarks/motion_speed.py [--episodes 1000] [--reference-trials 300] [--seed 0]

Generates realistic synthetic trials (smooth 2-D gripper tracks from random waypoints; each
episode has 3 generated trials that follow the GT with a random time warp, drift, detection
noise and dropped detections, and some failed generations that wander off), scores them with
``tests/helpers/official_motion.py`` (per-trial loops, one scipy call per quantity, fastdtw
per trial) and with ``ewmbench.metrics.trajectory_scores_batch`` under ``ewmbench-v1``, asserts
that the rounded v1 rows are identical (and the raw values equal to 1e-9), and prints per-trial
times and the speed-up. Then times ``ewmbench.data.select_diverse`` on 1,000 3-D trajectories.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ewmbench.data import select_diverse
from ewmbench.metrics import trajectory_scores_batch
from tests.helpers import official_motion
from tests.helpers.motion_trials import make_trials, smooth_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000, help="GT episodes (3 trials each)")
    parser.add_argument(
        "--reference-trials", type=int, default=300, help="trials timed with the official-style code"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pairs = make_trials(args.episodes, args.seed)
    reference_pairs = pairs[: args.reference_trials]
    print(f"{len(pairs)} trials, {args.episodes} episodes, 60-149 frames")

    start = time.perf_counter()
    reference = [official_motion.score_trial(pred, gt) for pred, gt in reference_pairs]
    reference_time = (time.perf_counter() - start) / len(reference_pairs)

    start = time.perf_counter()
    ours = trajectory_scores_batch(pairs, "ewmbench-v1")
    ours_time = (time.perf_counter() - start) / len(pairs)

    worst = max(abs(r[key] - o[key]) for r, o in zip(reference, ours) for key in r)
    for r, o in zip(reference, ours):
        assert all(round(r[key], 3) == round(o[key], 3) for key in r), (r, o)
    assert worst < 1e-9, worst
    print(
        f"v1 numbers: identical after rounding on {len(reference)} trials (largest raw difference {worst:.1e})"
    )
    print(f"official-style: {reference_time * 1e3:.2f} ms per trial (over {len(reference_pairs)} trials)")
    print(f"ewmbench v1:    {ours_time * 1e3:.3f} ms per trial (over {len(pairs)} trials, batched)")
    print(f"speed-up:       {reference_time / ours_time:.1f}x")

    start = time.perf_counter()
    for pred, gt in reference_pairs:
        trajectory_scores_batch([(pred, gt)], "ewmbench-v1")
    print(
        f"ewmbench v1, one pair per call: {(time.perf_counter() - start) / len(reference_pairs) * 1e3:.2f} ms per trial"
    )

    start = time.perf_counter()
    trajectory_scores_batch(pairs, "ewmbench-v2")
    print(f"ewmbench v2 (exact DTW): {(time.perf_counter() - start) / len(pairs) * 1e3:.3f} ms per trial")

    rng = np.random.default_rng(args.seed)
    trajectories = []
    for _ in range(1000):
        frames = int(rng.integers(100, 300))
        arms = [
            smooth_path(rng, frames, 5, -0.25, 0.25, dims=3) + [0.45, 0.25 * side, 0.2] for side in (1, -1)
        ]
        trajectories.append(np.stack(arms, axis=1))
    start = time.perf_counter()
    picked = select_diverse(trajectories, 100)
    print(f"select_diverse: 1000 trajectories -> {len(picked)} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
