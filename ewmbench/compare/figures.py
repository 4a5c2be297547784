"""The report's pictures (matplotlib, Agg): radar, per-task bars with CIs, agreement matrix, and
frame strips of the worst episodes with gripper tracks for motion metrics.

Charts are written as SVG, frame strips as PNG. Every file is reproducible: no dates in the
metadata, a fixed SVG id salt.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ewmbench.compare.report import OVERALL, Comparison, WorstCase, radar_axes

FIGURES_DIR = "figures"
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
TRACK_COLOURS = {"gt": "#00c853", "generated": "#ff1744"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "ewmbench"
    plt.rcParams["font.size"] = 9
    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".svg":
        fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    else:
        fig.savefig(path, format="png", dpi=100, metadata={"Software": None}, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _colour(comparison: Comparison, label: str) -> str:
    return COLOURS[comparison.labels.index(label) % len(COLOURS)]


def draw_all(comparison: Comparison, output: Path) -> dict[str, object]:
    """Draw every figure under ``output/figures``; return their paths relative to ``output``."""
    files: dict[str, object] = {}
    if radar_axes(comparison):
        files["radar"] = radar(comparison, output / FIGURES_DIR / "radar.svg").relative_to(output).as_posix()
    files["tasks"] = task_bars(comparison, output / FIGURES_DIR / "tasks.svg").relative_to(output).as_posix()
    if len(comparison.agreement) >= 2:
        files["agreement"] = agreement(comparison, output / FIGURES_DIR / "agreement.svg").relative_to(output).as_posix()
    worst: dict[str, dict[str, str]] = {}
    for metric in comparison.metrics:
        for label in comparison.labels:
            cases = [w for w in comparison.worst if w.metric == metric.column and w.run == label]
            if not cases:
                continue
            path = output / FIGURES_DIR / f"worst-{_slug(metric.column)}-{comparison.labels.index(label) + 1}.png"
            frame_strips(comparison, cases, metric.group == "motion", path)
            worst.setdefault(metric.column, {})[label] = path.relative_to(output).as_posix()
    files["worst"] = worst
    return files


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def radar(comparison: Comparison, path: Path) -> Path:
    plt = _pyplot()
    axes_names = [axis for axis, _ in radar_axes(comparison)]
    angles = np.linspace(0, 2 * math.pi, len(axes_names), endpoint=False)
    fig = plt.figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot(projection="polar")
    for label in comparison.labels:
        values = [comparison.normalised[label].get(a) for a in axes_names]
        values = [v if v is not None else 0.0 for v in values]
        closed_angles = np.append(angles, angles[0])
        closed = values + values[:1]
        ax.plot(closed_angles, closed, color=_colour(comparison, label), linewidth=1.6, label=label)
        ax.fill(closed_angles, closed, color=_colour(comparison, label), alpha=0.12)
    ax.set_xticks(angles)
    ax.set_xticklabels(axes_names)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels(["0.25", "0.5", "0.75", "1"], fontsize=7)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.12), fontsize=8, frameon=False)
    ax.set_title("relative to the best run (1 = best)", fontsize=9, pad=16)
    _save(fig, path)
    return path


def task_bars(comparison: Comparison, path: Path) -> Path:
    """One panel per metric: grouped bars per task (and overall), one per run, with 95% CIs."""
    plt = _pyplot()
    metrics = [m for m in comparison.metrics if any(comparison.values.get((OVERALL, m.column, r)) for r in comparison.labels)]
    columns = min(3, max(1, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.9 * rows), squeeze=False)
    scopes = comparison.scopes
    width = 0.8 / max(1, len(comparison.labels))
    for index, metric in enumerate(metrics):
        ax = axes[index // columns][index % columns]
        for r, label in enumerate(comparison.labels):
            heights, errors = [], [[], []]
            for scope in scopes:
                interval = comparison.values.get((scope, metric.column, label))
                if interval is None or not math.isfinite(interval.estimate):
                    heights.append(np.nan)
                    errors[0].append(0.0)
                    errors[1].append(0.0)
                    continue
                heights.append(interval.estimate)
                errors[0].append(max(0.0, interval.estimate - interval.low))
                errors[1].append(max(0.0, interval.high - interval.estimate))
            x = np.arange(len(scopes)) + (r - (len(comparison.labels) - 1) / 2) * width
            ax.bar(x, heights, width, yerr=errors, capsize=2, color=_colour(comparison, label), label=label, error_kw={"linewidth": 0.8})
        arrow = "higher is better" if metric.direction == "higher" else "lower is better"
        ax.set_title(f"{metric.column} ({arrow})", fontsize=9)
        ax.set_xticks(np.arange(len(scopes)))
        ax.set_xticklabels([s if s == OVERALL else f"task {s}" for s in scopes], fontsize=7, rotation=30)
        ax.grid(axis="y", linewidth=0.3)
    for index in range(len(metrics), rows * columns):
        axes[index // columns][index % columns].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _save(fig, path)
    return path


def agreement(comparison: Comparison, path: Path) -> Path:
    plt = _pyplot()
    names = list(comparison.agreement)
    matrix = np.array([[comparison.agreement[a][b] for b in names] for a in names], dtype=float)
    size = 1.2 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    for i in range(len(names)):
        for j in range(len(names)):
            text = "-" if not math.isfinite(matrix[i, j]) else f"{matrix[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if abs(np.nan_to_num(matrix[i, j])) > 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Kendall tau (positive: agree)")
    ax.set_title(f"metric agreement over {comparison.agreement_items} trials", fontsize=9)
    _save(fig, path)
    return path


def _even_indices(length: int, count: int) -> list[int]:
    if length <= count:
        return list(range(length))
    return [int(round(i)) for i in np.linspace(0, length - 1, count)]


def _episode_videos(comparison: Comparison, case: WorstCase) -> tuple[Path | None, Path | None, Path | None]:
    """GT video, generated trial video and trial folder of a worst case (None when not on disk)."""
    from ewmbench.data.layout import Trial, _video_path

    run = comparison.run(case.run)
    gt = trial = trial_dir = None
    if run.gt_root is not None and (run.gt_root / case.task_id / case.episode_id).is_dir():
        gt = _video_path(run.gt_root / case.task_id / case.episode_id)
    if run.generated_root is not None:
        trial_dir = run.generated_root / case.task_id / case.episode_id / case.trial_id
        if trial_dir.is_dir():
            trial = Trial(case.task_id, case.episode_id, case.trial_id, trial_dir).video_path()
    return gt, trial, trial_dir


def _tracks(comparison: Comparison, case: WorstCase, gt: Path, trial_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """GT and generated gripper tracks (T, 2, 2), normalised; from the official files or the
    detector's cache (the run computed them). None when they cannot be had here."""
    from ewmbench.data.layout import _video_path
    from ewmbench.errors import EwmbenchError

    run = comparison.run(case.run)
    try:
        from ewmbench.preprocess import Preprocessor, trajectory_of

        preprocessor = Preprocessor()
        preprocessor.options["protocol"] = run.protocol
        if run.detector_weights:
            preprocessor.options["detector_weights"] = run.detector_weights
        episode_dir = run.gt_root / case.task_id / case.episode_id
        gt_track = trajectory_of(episode_dir / "traj" / "traj.npy", gt, preprocessor)
        generated = trajectory_of(trial_dir / "traj" / "traj.npy", _video_path(trial_dir), preprocessor, gt_video=gt)
        return np.asarray(gt_track, dtype=float), np.asarray(generated, dtype=float)
    except (EwmbenchError, ImportError, OSError, ValueError):
        return None


def _draw_track(ax, track: np.ndarray, width: int, height: int, colour: str, label: str) -> None:
    for gripper in range(track.shape[1]):
        points = track[:, gripper, :]
        valid = np.all(points >= 0, axis=1)
        if valid.sum() == 0:
            continue
        xs, ys = points[valid, 0] * width, points[valid, 1] * height
        ax.plot(xs, ys, color=colour, linewidth=1.4, label=label if gripper == 0 or not ax.get_legend_handles_labels()[1] else None)
        ax.scatter(xs[:1], ys[:1], color=colour, s=10)


def frame_strips(comparison: Comparison, cases: list[WorstCase], motion: bool, path: Path) -> Path:
    """Per worst case two rows of K evenly spaced frames, GT above and generated below; for motion
    metrics a larger last panel with both gripper tracks over the first GT frame."""
    from ewmbench.data.video import read_video

    plt = _pyplot()
    k = comparison.settings.frames
    extra = 2 if motion else 0  # the track panel spans two frame columns and both rows
    fig = plt.figure(figsize=(1.35 * (k + extra), 2.45 * len(cases)))
    blocks = fig.subfigures(len(cases), 1, squeeze=False)[:, 0]
    for block, case in zip(blocks, cases):
        block.suptitle(
            f"task {case.task_id} / episode {case.episode_id} / trial {case.trial_id}: {case.metric} = {case.value:.4g}",
            fontsize=8, x=0.01, ha="left",
        )
        grid = block.add_gridspec(2, k + extra, wspace=0.04, hspace=0.08)
        gt_path, trial_path, trial_dir = _episode_videos(comparison, case)
        gt_frames = read_video(gt_path) if gt_path is not None else None
        generated = read_video(trial_path) if trial_path is not None else None
        for row, (name, frames) in enumerate((("GT", gt_frames), ("generated", generated))):
            axes = [block.add_subplot(grid[row, j]) for j in range(k)]
            for ax in axes:
                ax.axis("off")
            if frames is None:
                axes[0].text(0, 0.5, f"{name}: frames not found", fontsize=7)
                continue
            for ax, t in zip(axes, _even_indices(len(frames), k)):
                step = max(1, frames.shape[2] // 200)  # thumbnails: keep the file small
                ax.imshow(frames[t][::step, ::step])
                if row == 0:
                    ax.set_title(f"t={t}", fontsize=6, pad=2)
            axes[0].text(-0.06, 0.5, name, transform=axes[0].transAxes, rotation=90, ha="right", va="center", fontsize=7)
        if motion:
            ax = block.add_subplot(grid[:, k:])
            ax.axis("off")
            if gt_frames is None or trial_dir is None:
                continue
            height, width = gt_frames.shape[1:3]
            ax.imshow(gt_frames[0])
            tracks = _tracks(comparison, case, gt_path, trial_dir)
            if tracks is not None:
                _draw_track(ax, tracks[0], width, height, TRACK_COLOURS["gt"], "GT")
                _draw_track(ax, tracks[1], width, height, TRACK_COLOURS["generated"], "generated")
                ax.set_title("gripper tracks: GT green, generated red", fontsize=6, pad=2)
            else:
                ax.set_title("gripper tracks unavailable here", fontsize=6, pad=2)
            ax.set_xlim(0, width)
            ax.set_ylim(height, 0)
    _save(fig, path)
    return path
