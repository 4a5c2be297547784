"""Speed of the motion metrics: ewmbench against a straightforward official-style implementation.

    PYTHONPATH=. python benchmarks/motion_speed.py [--episodes 1000] [--reference-trials 300] [--seed 0]

Generates realistic synthetic trials (smooth 2-D gripper tracks from random waypoints; each
episode has 3 generated trials that follow the GT with a random time warp, drift, detection
noise and dropped detections, and some failed generations that wander off), scores them with
``benchmarks/official_style_motion.py`` (per-trial loops, one scipy call per quantity, fastdtw
per trial) and with ``ewmbench.metrics.trajectory_scores_batch`` under ``ewmbench-v1``, asserts
that the rounded v1 rows are identical (and the raw values equal to 1e-9), and prints per-trial
times and the speed-up. Then times ``ewmbench.data.select_diverse`` on 1,000 3-D trajectories.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import official_style_motion  # noqa: E402

from ewmbench.data import select_diverse  # noqa: E402
from ewmbench.metrics import trajectory_scores_batch  # noqa: E402


def smooth_path(rng: np.random.Generator, frames: int, waypoints: int, low: float, high: float, dims: int = 2) -> np.ndarray:
    """A smooth path through random waypoints (cubic-ish by repeated linear smoothing)."""
    knots = rng.uniform(low, high, (waypoints, dims))
    t = np.linspace(0, waypoints - 1, frames)
    path = np.stack([np.interp(t, np.arange(waypoints), knots[:, d]) for d in range(dims)], axis=1)
    kernel = np.ones(9) / 9
    for _ in range(3):
        padded = np.pad(path, ((4, 4), (0, 0)), mode="edge")
        path = np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(dims)], axis=1)
    return path


def gt_track(rng: np.random.Generator, frames: int) -> np.ndarray:
    active = smooth_path(rng, frames, int(rng.integers(3, 7)), 0.15, 0.85)
    idle = smooth_path(rng, frames, 2, 0.2, 0.8) * 0.2 + rng.uniform(0.2, 0.6, 2)
    arms = [active, idle] if rng.random() < 0.5 else [idle, active]
    track = np.stack(arms, axis=1) + rng.normal(0, 0.003, (frames, 2, 2))
    return drop_detections(rng, np.clip(track, 0, 1), rng.uniform(0.0, 0.1))


def generated_track(rng: np.random.Generator, gt_clean: np.ndarray) -> np.ndarray:
    frames = len(gt_clean)
    if rng.random() < 0.1:  # a failed generation: the grippers wander elsewhere
        track = np.stack([smooth_path(rng, frames, 3, 0.1, 0.9) for _ in range(2)], axis=1)
    else:
        warp = np.cumsum(rng.uniform(0.6, 1.4, frames))
        warp = (warp - warp[0]) / (warp[-1] - warp[0]) * (frames - 1)
        track = np.stack(
            [np.stack([np.interp(warp, np.arange(frames), gt_clean[:, arm, d]) for d in range(2)], axis=1) for arm in range(2)],
            axis=1,
        )
        drift = np.linspace(0, 1, frames)[:, None, None] * rng.normal(0, 0.04, (1, 2, 2))
        track = track + drift + rng.normal(0, rng.uniform(0.003, 0.02), track.shape)
    return drop_detections(rng, np.clip(track, 0, 1), rng.uniform(0.0, 0.3))


def drop_detections(rng: np.random.Generator, track: np.ndarray, rate: float) -> np.ndarray:
    track = track.astype(np.float32)
    lost = rng.random(track.shape[:2]) < rate
    if rng.random() < 0.3:  # a longer occlusion of one gripper
        start = int(rng.integers(0, len(track)))
        lost[start : start + int(rng.integers(5, 20)), int(rng.integers(0, 2))] = True
    track[lost] = -1
    return track


def make_trials(episodes: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(episodes):
        frames = int(rng.integers(60, 150))
        gt = gt_track(rng, frames)
        clean = np.where(gt == -1, np.nan, gt)
        for arm in range(2):  # the generated tracks follow the GT motion, not its dropouts
            for d in range(2):
                known = ~np.isnan(clean[:, arm, d])
                clean[:, arm, d] = np.interp(np.arange(frames), np.flatnonzero(known), clean[known, arm, d])
        pairs.extend((generated_track(rng, clean), gt) for _ in range(3))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000, help="GT episodes (3 trials each)")
    parser.add_argument("--reference-trials", type=int, default=300, help="trials timed with the official-style code")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pairs = make_trials(args.episodes, args.seed)
    reference_pairs = pairs[: args.reference_trials]
    print(f"{len(pairs)} trials, {args.episodes} episodes, 60-149 frames")

    start = time.perf_counter()
    reference = [official_style_motion.score_trial(pred, gt) for pred, gt in reference_pairs]
    reference_time = (time.perf_counter() - start) / len(reference_pairs)

    start = time.perf_counter()
    ours = trajectory_scores_batch(pairs, "ewmbench-v1")
    ours_time = (time.perf_counter() - start) / len(pairs)

    worst = max(abs(r[key] - o[key]) for r, o in zip(reference, ours) for key in r)
    for r, o in zip(reference, ours):
        assert all(round(r[key], 3) == round(o[key], 3) for key in r), (r, o)
    assert worst < 1e-9, worst
    print(f"v1 numbers: identical after rounding on {len(reference)} trials (largest raw difference {worst:.1e})")
    print(f"official-style: {reference_time * 1e3:.2f} ms per trial (over {len(reference_pairs)} trials)")
    print(f"ewmbench v1:    {ours_time * 1e3:.3f} ms per trial (over {len(pairs)} trials, batched)")
    print(f"speed-up:       {reference_time / ours_time:.1f}x")

    start = time.perf_counter()
    for pred, gt in reference_pairs:
        trajectory_scores_batch([(pred, gt)], "ewmbench-v1")
    print(f"ewmbench v1, one pair per call: {(time.perf_counter() - start) / len(reference_pairs) * 1e3:.2f} ms per trial")

    start = time.perf_counter()
    trajectory_scores_batch(pairs, "ewmbench-v2")
    print(f"ewmbench v2 (exact DTW): {(time.perf_counter() - start) / len(pairs) * 1e3:.3f} ms per trial")

    rng = np.random.default_rng(args.seed)
    trajectories = []
    for _ in range(1000):
        frames = int(rng.integers(100, 300))
        arms = [smooth_path(rng, frames, 5, -0.25, 0.25, dims=3) + [0.45, 0.25 * side, 0.2] for side in (1, -1)]
        trajectories.append(np.stack(arms, axis=1))
    start = time.perf_counter()
    picked = select_diverse(trajectories, 100)
    print(f"select_diverse: 1000 trajectories -> {len(picked)} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
