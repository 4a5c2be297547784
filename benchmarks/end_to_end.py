"""End to end against the official EWMBench code: each command in a fresh process, on the same folders.

    PYTHONPATH=. python benchmarks/end_to_end.py motion   --official /path/to/EWMBench [--episodes 100] [--frames 100]
    PYTHONPATH=. python benchmarks/end_to_end.py fidelity --official /path/to/EWMBench [--episodes 2] [--frames 100]

``--official`` is a checkout of github.com/AgibotTech/EWMBench (tested against 3a5531c). Its
``evaluate.py`` needs CUDA and NCCL, so the official side runs the dimension's own function in a
fresh Python process, the module loaded from its file (without the package ``__init__``, which
imports torch, CLIP and torchmetrics): ``compute_trajectory_consistency`` or
``compute_basic_metrics``, its result written as JSON. That is a lower bound on the official
command's time (no torch import, no CSV writer), so every ratio here is conservative.

Our side is the command a user types, in a fresh process:
``python -m ewmbench evaluate --gt GT --generated NAME_dataset --metrics ... --protocol ewmbench-v1
--device cpu --output OUT``, which also writes the run record, rows, summary and the official files.
The values are compared: motion and PSNR identical to the official entries, SSIM within 1e-12.

- **motion**: GT episodes with ``--frames`` real-size 640x480 JPEG frames and ``traj/traj.npy``;
  generated trials holding only ``traj/traj.npy`` (the official tool reads nothing else for
  motion). Timed with 1 and with ``--trials`` trials per episode: the whole command, and the
  marginal cost per trial (the difference over the extra trials). Our first run over a GT
  folder hashes its videos for the run record; later runs (any model, same GT) find the hashes
  by the files' sizes and times: both are printed, the later runs' best is the headline.
- **fidelity**: GT episodes and 3 trials each, ``--frames`` 640x480 PNG frames (the official
  ``compute_basic_metrics`` reads ``frame_*.png``); PSNR and SSIM, decode included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.motion_trials import generated_track, gt_track  # noqa: E402

HEIGHT, WIDTH = 480, 640

OFFICIAL_DRIVER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("official_dimension", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if sys.argv[2] == "motion":
    result = module.compute_trajectory_consistency(gt_path=sys.argv[3], data_base=sys.argv[4])
else:
    result = module.compute_basic_metrics(sys.argv[3], sys.argv[4])
with open(sys.argv[5], "w") as f:
    json.dump(result, f)
"""


def scene_frames(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A textured scene panning slowly with a moving block: compresses as camera frames do."""
    base = rng.integers(0, 255, (HEIGHT // 8, (WIDTH + 4 * frames) // 8, 3), dtype=np.uint8)
    scene = np.kron(base, np.ones((8, 8, 1), np.uint8))
    video = np.stack([scene[:, 4 * t : 4 * t + WIDTH] for t in range(frames)])
    for t in range(frames):
        video[t, 100:180, 50 + 3 * t : 130 + 3 * t] = (230, 40, 40)
    return video


def write_frames(folder: Path, video: np.ndarray, suffix: str) -> None:
    from ewmbench.data.video import write_frames as write

    write(video, folder, suffix=suffix)


def write_prompt(episode: Path, first_frame: np.ndarray) -> None:
    """``prompt/init_frame.png`` and ``prompt/introduction.txt``, as every official GT episode has."""
    from ewmbench.data.video import save_image

    (episode / "prompt").mkdir(parents=True, exist_ok=True)
    save_image(first_frame, episode / "prompt" / "init_frame.png")
    (episode / "prompt" / "introduction.txt").write_text("pick up the block\n")


def link_tree(source: Path, target: Path) -> None:
    """``target`` as hard links to ``source``'s files (same bytes, no second encode)."""
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, dest)


def build_motion(root: Path, episodes: int, frames: int, trials: int, seed: int) -> tuple[Path, Path]:
    """GT: real-size JPEG frames (one video encoded once, linked into every episode: the bytes
    are read and hashed per episode all the same) and a track per episode; generated: tracks only."""
    rng = np.random.default_rng(seed)
    gt_root, generated = root / "gt", root / f"tracks{trials}_dataset"
    template = root / "template"
    if not template.exists():
        video = scene_frames(rng, frames)
        write_frames(template / "video", video, ".jpg")
        write_prompt(template, video[0])
    for e in range(episodes):
        episode = gt_root / "1" / str(e)
        rng_e = np.random.default_rng([seed, e])
        track = gt_track(rng_e, frames)
        if not episode.exists():
            link_tree(template, episode)
            (episode / "traj").mkdir()
            np.save(episode / "traj" / "traj.npy", track)
        clean = np.where(track == -1, track.mean(), track)
        for t in range(1, trials + 1):
            folder = generated / "1" / str(e) / str(t) / "traj"
            folder.mkdir(parents=True)
            np.save(folder / "traj.npy", generated_track(rng_e, clean))
    return gt_root, generated


def build_fidelity(root: Path, episodes: int, frames: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    gt_root, generated = root / "gt", root / "noisy_dataset"
    for e in range(episodes):
        video = scene_frames(rng, frames)
        write_frames(gt_root / "1" / str(e) / "video", video, ".png")
        write_prompt(gt_root / "1" / str(e), video[0])
        for t in range(1, 4):
            noise = rng.integers(-12, 13, video.shape, dtype=np.int16)
            noisy = np.clip(video.astype(np.int16) + noise, 0, 255).astype(np.uint8)
            write_frames(generated / "1" / str(e) / str(t) / "video", noisy, ".png")
    return gt_root, generated


def timed_command(command: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def run_official(official: Path, dimension: str, gt: Path, generated: Path, out: Path) -> float:
    module = (
        official / "EWMBench" / ("trajectory_consistency.py" if dimension == "motion" else "basic_metrics.py")
    )
    return timed_command(
        [sys.executable, "-c", OFFICIAL_DRIVER, str(module), dimension, str(gt), str(generated), str(out)]
    )


def run_ours(metrics: str, gt: Path, generated: Path, out: Path, cache: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EWMBENCH_CACHE": str(cache)}
    command = [sys.executable, "-m", "ewmbench", "evaluate", "--gt", str(gt), "--generated", str(generated)]
    command += ["--metrics", metrics, "--protocol", "ewmbench-v1", "--device", "cpu", "--output", str(out)]
    return timed_command(command, env)


def same_values(official_json: Path, ours: Path, dimension: str, name: str) -> tuple[int, float]:
    """The official result entries against ours (our official-format ``<name>_results.json``):
    motion and PSNR identical (asserted); SSIM within 1e-12 (its exact-integer window sums differ
    from scikit-image's float64 filters in the last bits). Returns (values compared, largest SSIM
    difference)."""
    official = json.loads(official_json.read_text())
    mine = json.loads((ours / f"{name}_results.json").read_text())
    compared, ssim_worst = 0, 0.0
    keys = ["trajectory_consistency"] if dimension == "motion" else ["psnr", "ssim"]
    for key in keys:
        theirs = official if dimension == "motion" else official[key]
        for task, episodes in theirs.items():
            for episode, trials in episodes.items():
                for trial, value in trials.items():
                    got = mine[key][task][episode][trial]
                    if key == "ssim":
                        ssim_worst = max(ssim_worst, abs(got - value))
                        assert ssim_worst < 1e-12, (key, task, episode, trial, got, value)
                    else:
                        assert got == value, (key, task, episode, trial, got, value)
                    compared += 1
    return compared, ssim_worst


def best(times: list[float]) -> float:
    return min(times)


def motion(args: argparse.Namespace, tmp: Path) -> dict:
    """Times, printed and returned: per trial count, (ours after a first run, official, our first
    run); and the marginal cost per extra trial, (ours, official) in seconds."""
    print(
        f"motion: {args.episodes} GT episodes of {args.frames} frames at {WIDTH}x{HEIGHT} (JPEG) with traj.npy; "
        f"trials with traj/traj.npy only; 1 and {args.trials} trials per episode; best of {args.repeats}",
        flush=True,
    )
    figures = {}
    for trials in (1, args.trials):
        gt, generated = build_motion(tmp, args.episodes, args.frames, trials, args.seed)
        ours_t, official_t = [], []
        cache = tmp / f"cache{trials}"  # the first run hashes the GT videos; later ones find the hashes
        for r in range(args.repeats + 1):
            out = tmp / f"ours{trials}-{r}"
            ours_t.append(run_ours("trajectory_consistency", gt, generated, out, cache))
            official_json = tmp / f"official{trials}.json"
            official_t.append(run_official(args.official, "motion", gt, generated, official_json))
        compared, _ = same_values(official_json, out, "motion", generated.name.removesuffix("_dataset"))
        warm, official = best(ours_t[1:]), best(official_t)
        figures[trials] = (warm, official, ours_t[0])
        print(
            f"  {args.episodes * trials:5d} trials: ewmbench {warm:6.2f} s (first run, GT videos hashed: {ours_t[0]:.2f} s), "
            f"official {official:6.2f} s: {official / warm:.2f}x whole command ({official / ours_t[0]:.2f}x on the first run); "
            f"{compared} trials, values identical; times: ewmbench {_seconds(ours_t)}, official {_seconds(official_t)}",
            flush=True,
        )
    extra = args.episodes * (args.trials - 1)
    ours_m = (figures[args.trials][0] - figures[1][0]) / extra
    official_m = (figures[args.trials][1] - figures[1][1]) / extra
    print(
        f"  marginal cost per trial: ewmbench {ours_m * 1e3:.2f} ms, official {official_m * 1e3:.2f} ms "
        f"({official_m / ours_m:.1f}x)"
        if ours_m > 0
        else f"  marginal cost per trial: ewmbench <= 0 ms (noise), official {official_m * 1e3:.2f} ms",
        flush=True,
    )
    return {"trials": figures, "marginal": (ours_m, official_m), "episodes": args.episodes}


def _seconds(times: list[float]) -> str:
    return "[" + ", ".join(f"{t:.2f}" for t in times) + "]"


def fidelity(args: argparse.Namespace, tmp: Path) -> dict:
    """Times, printed and returned: best of ours and of the official, and the frame pairs."""
    gt, generated = build_fidelity(tmp, args.episodes, args.frames, args.seed)
    pairs = args.episodes * 3 * args.frames
    print(
        f"fidelity: {args.episodes} episodes x 3 trials of {args.frames} PNG frames at {WIDTH}x{HEIGHT} "
        f"({pairs} frame pairs); best of {args.repeats}",
        flush=True,
    )
    ours_t, official_t = [], []
    for r in range(args.repeats):
        out = tmp / f"ours-{r}"
        # A fresh feature store each time: every video's bytes are hashed (a new model's videos always are).
        ours_t.append(run_ours("psnr,ssim", gt, generated, out, tmp / f"cache-{r}"))
        official_t.append(run_official(args.official, "fidelity", gt, generated, tmp / "official.json"))
    print(f"  times: ewmbench {_seconds(ours_t)}, official {_seconds(official_t)}", flush=True)
    compared, worst = same_values(tmp / "official.json", out, "fidelity", "noisy")
    print(
        f"  ewmbench {best(ours_t):6.2f} s ({pairs / best(ours_t):.1f} pairs/s), official {best(official_t):6.2f} s "
        f"({pairs / best(official_t):.1f} pairs/s): {best(official_t) / best(ours_t):.2f}x end to end "
        f"(every video decoded and hashed by us, none found in a cache); {compared} values compared: PSNR "
        f"identical, SSIM within {worst:.1e}",
        flush=True,
    )
    return {"ours": best(ours_t), "official": best(official_t), "pairs": pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["motion", "fidelity"])
    parser.add_argument("--official", type=Path, required=True, help="a checkout of AgibotTech/EWMBench")
    parser.add_argument("--episodes", type=int, default=None, help="GT episodes (motion 100, fidelity 2)")
    parser.add_argument("--frames", type=int, default=100, help="frames per GT video")
    parser.add_argument("--trials", type=int, default=5, help="motion: trials per episode of the larger run")
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="runs per command (the best is kept; motion: after a first run)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.episodes = args.episodes or (100 if args.stage == "motion" else 2)
    with tempfile.TemporaryDirectory() as tmp:
        (motion if args.stage == "motion" else fidelity)(args, Path(tmp))


if __name__ == "__main__":
    main()
