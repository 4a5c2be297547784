"""The full benchmark's weight-free stages, timed beside the official approach, projected to full size.

    PYTHONPATH=. python benchmarks/full_benchmark.py [--episodes 1000] [--video-episodes 4] [--pixel-trials 4]

The official EWMBench benchmark is 1,000 episodes x 3 trials of 60-149 frames (640x480). This
script builds that benchmark synthetically and times, per stage, our path and the official
approach side by side in one run (so machine load affects both alike):

- **motion** (hsd, ndtw, dyn) on all ``--episodes`` x 3 trials, for short (20-120 frame) and long
  (60-149 frame) trials: ours batched (``trajectory_scores_batch``, the runner's path), ours one
  pair per call, and the official approach (``tests/helpers/official_motion.py``: per-trial
  loops, fastdtw per trial; ``--reference-trials`` of them). The rounded v1 numbers must be
  identical (asserted).
- **motion through the runner**: the scorer's batched path over ``--runner-episodes`` x 3 trials on
  disk (tracks read from ``traj/traj.npy``, each record keyed and written), per trial, beside the
  official approach timed again in the same run.
- **decode**, **tracks from traj.npy** and **PSNR/SSIM** on ``--video-episodes`` episodes written to
  disk at full size (GT + 3 trials each); PSNR/SSIM on ``--pixel-trials`` of those trials, against
  scikit-image per frame (the official calls). We decode each video once for every stage; the
  official tool decodes per metric (counted as one decode per pixel metric).

Per stage: items, wall time, items per second, peak traced memory (tracemalloc, a separate pass)
and the projected time for the full benchmark (the measured rate x the full item count). Only
the motion stage runs at full size by default; the others are measured on the subset and
projected, and the output says so.

With ``--official PATH`` (a checkout of AgibotTech/EWMBench) it then measures what a user sees,
end to end against the official code, each command in a fresh process on the same folders
(``benchmarks/end_to_end.py``): motion on ``--e2e-episodes`` real-size GT episodes with 1 and 3
track-only trials each (whole command, first run over the GT folder, marginal cost per trial),
PSNR + SSIM on 640x480 PNG folders (decode included); and ``ewmbench metrics`` in fresh
processes (``benchmarks/cli_startup.py``). It ends with one table, official | ewmbench | ratio,
each row marked measured or projected (the full benchmark, from the measured rates), and the
load average. ``--e2e-only`` skips the stage table:

    PYTHONPATH=. python benchmarks/full_benchmark.py --official /path/to/EWMBench --e2e-only
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from ewmbench.data.layout import Generated, GroundTruth, write_episode, write_trial
from ewmbench.data.trajectory import load_traj
from ewmbench.data.video import read_video
from ewmbench.data.video_cache import VideoCache
from ewmbench.metrics import trajectory_scores_batch
from ewmbench.metrics.fidelity import psnr, ssim
from ewmbench.metrics.registry import metric_registry
from ewmbench.protocols import resolve_protocol
from ewmbench.run import Scorer
from tests.helpers import official_motion
from tests.helpers.motion_trials import generated_track, gt_track, make_trials

FULL_EPISODES, TRIALS = 1000, 3
HEIGHT, WIDTH = 480, 640


def timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def peak_mb(function, *args) -> float:
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def row(
    stage: str, items: int, seconds: float, full_items: int, memory: float | None, measured_full: bool
) -> dict:
    rate = items / seconds if seconds else float("inf")
    return {
        "stage": stage,
        "items": items,
        "seconds": seconds,
        "rate": rate,
        "peak_mb": memory,
        "projected_s": full_items / rate,
        "basis": "measured at full size" if measured_full else f"projected from {items}",
    }


def print_table(rows: list[dict]) -> None:
    print(
        f"\n{'stage':52s} {'items':>6s} {'wall s':>8s} {'items/s':>9s} {'peak MB':>8s} {'full benchmark':>15s}  basis"
    )
    for r in rows:
        memory = f"{r['peak_mb']:.0f}" if r["peak_mb"] is not None else "-"
        print(
            f"{r['stage']:52s} {r['items']:6d} {r['seconds']:8.2f} {r['rate']:9.1f} {memory:>8s} {r['projected_s'] / 60:12.1f} min  {r['basis']}"
        )


def motion(episodes: int, frames_range: tuple[int, int], reference_trials: int, seed: int) -> list[dict]:
    label = f"{frames_range[0]}-{frames_range[1] - 1} frames"
    pairs = make_trials(episodes, seed, frames_range)
    reference = pairs[:reference_trials]
    ours, ours_s = timed(trajectory_scores_batch, pairs, "ewmbench-v1")
    _, single_s = timed(lambda: [trajectory_scores_batch([p], "ewmbench-v1") for p in reference])
    official, official_s = timed(lambda: [official_motion.score_trial(pred, gt) for pred, gt in reference])
    for r, o in zip(official, ours):
        assert all(round(r[k], 3) == round(o[k], 3) for k in r), (r, o)
    full = FULL_EPISODES * TRIALS
    rows = [
        row(
            f"motion, batched ({label})",
            len(pairs),
            ours_s,
            full,
            peak_mb(trajectory_scores_batch, pairs, "ewmbench-v1"),
            episodes >= FULL_EPISODES,
        ),
        row(f"motion, one pair per call ({label})", len(reference), single_s, full, None, False),
        row(
            f"motion, official approach ({label})",
            len(reference),
            official_s,
            full,
            peak_mb(lambda: [official_motion.score_trial(p, g) for p, g in reference[:50]]),
            False,
        ),
    ]
    print(
        f"motion {label}: v1 rows identical on {len(reference)} trials; batched {official_s / len(reference) / (ours_s / len(pairs)):.1f}x "
        f"and one pair per call {official_s / single_s:.1f}x the official approach per trial"
    )
    return rows


def synthetic_video(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A textured scene panning slowly, with a moving block: compresses like camera frames do."""
    base = rng.integers(0, 255, (HEIGHT // 8, (WIDTH + 4 * frames) // 8, 3), dtype=np.uint8)
    scene = np.kron(base, np.ones((8, 8, 1), np.uint8))
    video = np.stack([scene[:, 4 * t : 4 * t + WIDTH] for t in range(frames)])
    for t in range(frames):
        video[t, 100:180, 50 + 3 * t : 130 + 3 * t] = (230, 40, 40)
    return video


def build_videos(root: Path, episodes: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    gt_root, generated_root = root / "gt", root / "synthetic_dataset"
    for e in range(episodes):
        frames = int(rng.integers(60, 150))
        video = synthetic_video(rng, frames)
        episode = write_episode(gt_root, "1", str(e), video, "pick up the block")
        track = gt_track(rng, frames)
        episode.traj_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(episode.traj_path, track.astype(np.float32))
        clean = np.where(track == -1, track.mean(), track)
        for t in range(1, TRIALS + 1):
            noisy = np.clip(
                video.astype(np.int16) + rng.integers(-12, 13, video.shape, dtype=np.int16), 0, 255
            ).astype(np.uint8)
            trial = write_trial(generated_root, "1", str(e), str(t), noisy)
            trial.traj_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(trial.traj_path, generated_track(rng, clean).astype(np.float32))
    return gt_root, generated_root


def official_pixels(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """The official calls, per frame: scikit-image SSIM (channel_axis=-1, 7x7 window) and PSNR."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    s = sum(structural_similarity(g, p, channel_axis=-1, data_range=255) for p, g in zip(pred, gt)) / len(gt)
    q = sum(peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(pred, gt)) / len(gt)
    return s, q


def motion_through_runner(
    episodes: int, frames_range: tuple[int, int], reference_trials: int, seed: int
) -> list[dict]:
    """The scorer's path for the motion metrics: per trial, its key (settings, traj.npy content),
    the tracks read from traj.npy, the batched scores and one stored record each, on trials
    whose videos are 2 frames (motion scores read no frames when every track has a traj.npy)."""
    label = f"{frames_range[0]}-{frames_range[1] - 1} frames"
    tracks = make_trials(episodes, seed, frames_range)
    frame = np.zeros((2, 8, 8, 3), np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for e in range(episodes):
            episode = write_episode(root / "gt", "1", str(e), frame, "x")
            episode.traj_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(episode.traj_path, tracks[TRIALS * e][1].astype(np.float32))
            for t in range(TRIALS):
                trial = write_trial(root / "m_dataset", "1", str(e), str(t + 1), frame)
                trial.traj_path.parent.mkdir(parents=True, exist_ok=True)
                np.save(trial.traj_path, tracks[TRIALS * e + t][0].astype(np.float32))
        gt = {e.key: e for e in GroundTruth(root / "gt").episodes}
        pairs = [(gt[(t.task, t.episode)], t) for t in Generated(root / "m_dataset").trials]
        metric = metric_registry()["trajectory_consistency"]()
        scorer = Scorer(root / "out", resolve_protocol("ewmbench-v1"), VideoCache(root / "cache"), "cpu")
        _, runner_s = timed(scorer.score_trials, metric, pairs)
    reference = tracks[:reference_trials]
    _, official_s = timed(lambda: [official_motion.score_trial(pred, gt) for pred, gt in reference])
    print(
        f"motion through the runner {label}: {official_s / len(reference) / (runner_s / len(pairs)):.1f}x the official approach per trial"
    )
    return [
        row(
            f"motion through the runner ({label})", len(pairs), runner_s, FULL_EPISODES * TRIALS, None, False
        ),
        row(
            f"motion, official approach ({label}, same run)",
            len(reference),
            official_s,
            FULL_EPISODES * TRIALS,
            None,
            False,
        ),
    ]


def video_stages(episodes: int, pixel_trials: int, seed: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"\nwriting {episodes} episodes x (GT + {TRIALS} trials) at {WIDTH}x{HEIGHT} ...", flush=True)
        gt_root, generated_root = build_videos(Path(tmp), episodes, seed)
        gt = {e.key: e for e in GroundTruth(gt_root).episodes}
        pairs = [(gt[(t.task, t.episode)], t) for t in Generated(generated_root).trials]
        videos = [e.video_path() for e in gt.values()] + [t.video_path() for _, t in pairs]
        frames_total = sum(len(list(v.iterdir())) for v in videos)
        mean_frames = frames_total / len(videos)
        full_videos = FULL_EPISODES * (TRIALS + 1)

        _, decode_s = timed(lambda: [read_video(v) for v in videos])
        rows.append(
            row(
                "decode, once per video (ours)",
                len(videos),
                decode_s,
                full_videos,
                peak_mb(read_video, videos[0]),
                False,
            )
        )
        rows.append(
            row(
                "decode, once per pixel metric (official approach: 2x)",
                len(videos),
                2 * decode_s,
                full_videos,
                None,
                False,
            )
        )
        tracks = [e.traj_path for e, _ in pairs[::TRIALS]] + [t.traj_path for _, t in pairs]
        _, load_s = timed(lambda: [load_traj(p) for p in tracks])
        rows.append(
            row("tracks from traj.npy (read, validated)", len(tracks), load_s, full_videos, None, False)
        )

        chosen = pairs[:pixel_trials]
        decoded = [(read_video(t.video_path()), read_video(e.video_path())) for e, t in chosen]
        frames = sum(len(g) for _, g in decoded)
        ours, ours_s = timed(lambda: [(ssim(p, g), psnr(p, g)) for p, g in decoded])
        official, official_s = timed(lambda: [official_pixels(p, g) for p, g in decoded])
        worst = max(abs(a[0] - b[0]) for a, b in zip(ours, official))
        assert worst < 1e-6, worst
        full_frames = int(FULL_EPISODES * TRIALS * mean_frames)
        rows.append(
            row(
                "PSNR + SSIM per frame pair (ours)",
                frames,
                ours_s,
                full_frames,
                peak_mb(lambda: ssim(*decoded[0])),
                False,
            )
        )
        rows.append(
            row(
                "PSNR + SSIM per frame pair (scikit-image, official)",
                frames,
                official_s,
                full_frames,
                None,
                False,
            )
        )
        print(
            f"PSNR/SSIM: {frames} frame pairs, SSIM equal to scikit-image within {worst:.1e}; "
            f"ours {official_s / ours_s:.1f}x scikit-image; mean {mean_frames:.0f} frames per video"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--episodes", type=int, default=FULL_EPISODES, help="episodes for the motion stage (3 trials each)"
    )
    parser.add_argument(
        "--reference-trials", type=int, default=300, help="trials timed with the official approach"
    )
    parser.add_argument(
        "--runner-episodes", type=int, default=200, help="episodes scored through the runner's motion path"
    )
    parser.add_argument(
        "--video-episodes", type=int, default=4, help="episodes written to disk for decode, tracks, pixels"
    )
    parser.add_argument(
        "--pixel-trials", type=int, default=4, help="trials scored for PSNR/SSIM on both sides"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--official", type=Path, help="a checkout of AgibotTech/EWMBench: also time end to end"
    )
    parser.add_argument("--e2e-episodes", type=int, default=100, help="end to end: motion GT episodes")
    parser.add_argument("--e2e-video-episodes", type=int, default=2, help="end to end: PSNR/SSIM episodes")
    parser.add_argument("--e2e-repeats", type=int, default=2, help="end to end: runs per command (best kept)")
    parser.add_argument(
        "--e2e-only", action="store_true", help="with --official: only the end-to-end figures, no stage table"
    )
    args = parser.parse_args()
    if args.official and args.e2e_only:
        end_to_end_stages(args)
        return

    rows = motion(args.episodes, (20, 121), args.reference_trials, args.seed)
    rows += motion(args.episodes, (60, 150), args.reference_trials, args.seed + 1)
    runner_episodes = min(args.episodes, args.runner_episodes)
    rows += motion_through_runner(runner_episodes, (20, 121), args.reference_trials, args.seed)
    rows += motion_through_runner(runner_episodes, (60, 150), args.reference_trials, args.seed + 1)
    if args.video_episodes:
        rows += video_stages(args.video_episodes, args.pixel_trials, args.seed)
    print_table(rows)
    print(
        f"\nfull benchmark: {FULL_EPISODES} episodes x {TRIALS} trials; 'projected' rows scale the measured rate to it."
    )
    if args.official:
        end_to_end_stages(args)


FULL_PAIRS = FULL_EPISODES * TRIALS * 105  # frame pairs: 60-149 frames a video, about 105 on average


def end_to_end_stages(args: argparse.Namespace) -> None:
    """What a user measures: each command in a fresh process against the official code, on the same
    folders (``end_to_end.py``), and ``ewmbench metrics`` (``cli_startup.py``); then one table:
    every figure measured, and the full benchmark projected from the measured rates."""
    import os
    import statistics
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cli_startup
    import end_to_end

    print("\nend to end, fresh processes, against the official code on the same folders:", flush=True)
    options = dict(official=args.official, frames=100, seed=args.seed, repeats=args.e2e_repeats)
    with tempfile.TemporaryDirectory() as tmp:
        motion = end_to_end.motion(
            argparse.Namespace(**options, episodes=args.e2e_episodes, trials=TRIALS), Path(tmp)
        )
    with tempfile.TemporaryDirectory() as tmp:
        pixels = end_to_end.fidelity(
            argparse.Namespace(**options, episodes=args.e2e_video_episodes), Path(tmp)
        )
    listing = cli_startup.measure(5)
    load = os.getloadavg()[0]

    episodes = motion["episodes"]
    lines = []
    for trials, (ours, official, first) in motion["trials"].items():
        lines.append(
            (f"motion, {episodes * trials} track-only trials, whole command", official, ours, "measured")
        )
        lines.append(
            ("  the same, first run over the GT folder (hashes its videos)", official, first, "measured")
        )
    ours_m, official_m = motion["marginal"]
    lines.append(("motion, marginal cost per extra trial", official_m, ours_m, "measured"))
    # The full benchmark from the 1-trial run scaled to 1,000 episodes (start-up counted 1000/E times
    # on both sides: conservative for ours) plus the other trials at the marginal cost.
    scale = FULL_EPISODES / episodes
    ours_1, official_1, _ = motion["trials"][1]
    extra = FULL_EPISODES * (TRIALS - 1)
    lines.append(
        (
            f"motion, full benchmark ({FULL_EPISODES} x {TRIALS} trials)",
            official_1 * scale + extra * official_m,
            ours_1 * scale + extra * max(ours_m, 0.0),
            "projected",
        )
    )
    pairs = pixels["pairs"]
    lines.append(
        (
            f"PSNR + SSIM, {pairs} PNG frame pairs, decode included",
            pixels["official"],
            pixels["ours"],
            "measured",
        )
    )
    lines.append(
        (
            f"PSNR + SSIM, full benchmark (~{FULL_PAIRS} pairs)",
            pixels["official"] / pairs * FULL_PAIRS,
            pixels["ours"] / pairs * FULL_PAIRS,
            "projected",
        )
    )
    times, heavy = listing["ewmbench metrics"]
    bare = statistics.median(listing["python -c pass"][0])
    print(
        f"\n{'figure':62s} {'official':>10s} {'ewmbench':>10s} {'ratio':>7s}  basis  (load average {load:.1f})"
    )
    for label, official, ours, basis in lines:
        ratio = f"{official / ours:6.1f}x" if ours > 0 else "   -"
        shown = _duration(ours) if ours > 0 else "<= 0 (noise)"
        print(f"{label:62s} {_duration(official):>10s} {shown:>10s} {ratio:>7s}  {basis}")
    print(
        f"{'ewmbench metrics (no official equivalent)':62s} {'-':>10s} {_duration(statistics.median(times)):>10s} "
        f"{'':>7s}  measured, median of {len(times)} (best {min(times):.2f} s; python -c pass {bare:.2f} s); "
        f"heavy imports: {', '.join(heavy) or 'none'}"
    )


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s" if seconds < 600 else f"{seconds / 3600:.2f} h"


if __name__ == "__main__":
    main()
