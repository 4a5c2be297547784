"""The report's pictures (matplotlib, Agg): radar, per-task bars with CIs, agreement matrix, and
frame strips of the worst episodes with gripper tracks for motion metrics.

Charts are written as SVG with their text as text (the page's font draws it; tens of kB each),
frame strips as full-size JPEG with a small thumbnail beside it for the page. Every file is
reproducible: no dates in the metadata, a fixed SVG id salt.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ewmbench.compare.report import OVERALL, Comparison, WorstCase, radar_axes, radar_informative
from ewmbench.data.layout import Episode, Trial
from ewmbench.data.video import list_frames, read_image, read_video, video_source
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import EwmbenchError, require
from ewmbench.perception.detector import TrackingSettings
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.trajectories import stored_trajectory
from ewmbench.protocols import load_protocol

FIGURES_DIR = "figures"
THUMBNAILS_DIR = "thumbnails"  # under FIGURES_DIR
THUMBNAIL_WIDTH = 400  # pixels: three runs side by side on the page
THUMBNAIL_QUALITY = 75  # JPEG
STRIP_QUALITY = 80  # JPEG of the full-size strips: a third of their PNG, and three runs stay under 2 MB
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
TRACK_COLOURS = {"gt": "#00c853", "generated": "#ff1744"}


def _pyplot():
    matplotlib = require("matplotlib", "report", "report figures (or pass --no-figures)")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "ewmbench"
    plt.rcParams["svg.fonttype"] = "none"  # text as <text>, not one path per glyph
    plt.rcParams["font.size"] = 9
    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".svg":
        fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    elif path.suffix == ".jpg":
        fig.savefig(
            path,
            format="jpeg",
            dpi=100,
            bbox_inches="tight",
            pil_kwargs={"quality": STRIP_QUALITY, "optimize": True},
        )
    else:
        fig.savefig(path, format="png", dpi=100, metadata={"Software": None}, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _colour(comparison: Comparison, label: str) -> str:
    return COLOURS[comparison.labels.index(label) % len(COLOURS)]


def thumbnail(image: Path, path: Path, width: int = THUMBNAIL_WIDTH) -> Path:
    """A small JPEG of ``image`` (``width`` pixels wide, never enlarged) for the page to show."""
    from PIL import Image  # matplotlib's own dependency

    path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(image) as full:
        full = full.convert("RGB")
        if full.width > width:
            full = full.resize((width, max(1, round(full.height * width / full.width))), Image.LANCZOS)
        full.save(path, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return path


def draw_all(comparison: Comparison, output: Path) -> dict[str, object]:
    """Draw every figure under ``output/figures``; return their paths relative to ``output``.

    ``worst`` maps metric -> run -> the full-size strip, ``thumbnails`` the same to its thumbnail.
    The radar is drawn only where it says something (:func:`radar_informative`)."""
    files: dict[str, object] = {}
    if radar_informative(comparison):
        files["radar"] = radar(comparison, output / FIGURES_DIR / "radar.svg").relative_to(output).as_posix()
    files["tasks"] = task_bars(comparison, output / FIGURES_DIR / "tasks.svg").relative_to(output).as_posix()
    if len(comparison.agreement) >= 2:
        files["agreement"] = (
            agreement(comparison, output / FIGURES_DIR / "agreement.svg").relative_to(output).as_posix()
        )
    worst: dict[str, dict[str, str]] = {}
    thumbnails: dict[str, dict[str, str]] = {}
    for metric in comparison.metrics:
        for label in comparison.labels:
            cases = [w for w in comparison.worst if w.metric == metric.column and w.run == label]
            if not cases:
                continue
            name = f"worst-{_slug(metric.column)}-{comparison.labels.index(label) + 1}"
            path = output / FIGURES_DIR / f"{name}.jpg"
            frame_strips(comparison, cases, metric.group == "motion", path)
            small = thumbnail(path, output / FIGURES_DIR / THUMBNAILS_DIR / f"{name}.jpg")
            worst.setdefault(metric.column, {})[label] = path.relative_to(output).as_posix()
            thumbnails.setdefault(metric.column, {})[label] = small.relative_to(output).as_posix()
    files["worst"] = worst
    files["thumbnails"] = thumbnails
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
    metrics = [
        m
        for m in comparison.metrics
        if any(comparison.values.get((OVERALL, m.column, r)) for r in comparison.labels)
    ]
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
            ax.bar(
                x,
                heights,
                width,
                yerr=errors,
                capsize=2,
                color=_colour(comparison, label),
                label=label,
                error_kw={"linewidth": 0.8},
            )
        arrow = "higher is better" if metric.direction == "higher" else "lower is better"
        ax.set_title(f"{metric.column} ({arrow})", fontsize=9)
        ax.set_xticks(np.arange(len(scopes)))
        ax.set_xticklabels([comparison.task_label(s) for s in scopes], fontsize=7, rotation=30)
        ax.grid(axis="y", linewidth=0.3)
    for index in range(len(metrics), rows * columns):
        axes[index // columns][index % columns].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.02)
    )
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
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(np.nan_to_num(matrix[i, j])) > 0.6 else "black",
            )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Kendall tau (positive: agree)")
    ax.set_title(f"metric agreement over {comparison.agreement_items} trials", fontsize=9)
    _save(fig, path)
    return path


def _even_indices(length: int, count: int) -> list[int]:
    if length <= count:
        return list(range(length))
    return [round(i) for i in np.linspace(0, length - 1, count)]


def _frames_at(video: Path, count: int) -> tuple[list[int], list[np.ndarray]]:
    """``count`` evenly spaced frames of a video (only those are decoded from a frame folder)."""
    source = video_source(video)
    if source.is_dir():
        files = list_frames(source)
        indices = _even_indices(len(files), count)
        return indices, [read_image(files[i]) for i in indices]
    frames = read_video(source)
    indices = _even_indices(len(frames), count)
    return indices, [frames[i] for i in indices]


def _episode_videos(comparison: Comparison, case: WorstCase) -> tuple[Episode | None, Trial | None]:
    """The GT episode and the generated trial of a worst case (None when not on disk)."""
    run = comparison.run(case.run)
    episode = trial = None
    if run.gt_root is not None and (run.gt_root / case.task_id / case.episode_id).is_dir():
        episode = Episode(case.task_id, case.episode_id, run.gt_root / case.task_id / case.episode_id)
    if run.generated_root is not None:
        trial_dir = run.generated_root / case.task_id / case.episode_id / case.trial_id
        if trial_dir.is_dir():
            trial = Trial(case.task_id, case.episode_id, case.trial_id, trial_dir)
    return episode, trial


def _tracks(
    comparison: Comparison, case: WorstCase, episode: Episode, trial: Trial
) -> tuple[np.ndarray, np.ndarray] | None:
    """GT and generated gripper tracks (T, 2, 2), normalised, as the run stored them: the official
    ``traj/traj.npy`` files, else the tracks the run cached with its tracking settings and
    detector. None when the run did not store them (the tracker is never run here)."""
    run = comparison.run(case.run)
    try:
        tracking = TrackingSettings.from_protocol(load_protocol(run.protocol))
    except EwmbenchError:
        return None  # the run's protocol file is gone: its tracks cannot be found
    videos = VideoCache(run.cache_dir)
    choice = DetectorChoice(weights=run.detector_weights)
    gt_video = episode.video_path()
    gt_track = stored_trajectory(episode.traj_path, gt_video, videos, tracking, choice)
    generated = stored_trajectory(
        trial.traj_path, trial.video_path(), videos, tracking, choice, gt_video=gt_video
    )
    if gt_track is None or generated is None:
        return None
    return np.asarray(gt_track, dtype=float), np.asarray(generated, dtype=float)


THUMB_WIDTH = 160
GAP = 4


def _thumbnail(frame: np.ndarray, width: int) -> np.ndarray:
    step = max(1, frame.shape[1] // width)
    return frame[::step, ::step]


def _case_mosaic(comparison: Comparison, case: WorstCase, motion: bool):
    """One image for a worst case: K GT thumbnails above K generated ones and, for motion, the
    first GT frame at twice the size on the right; plus where to write and draw on it."""
    k = comparison.settings.frames
    episode, trial = _episode_videos(comparison, case)
    rows = []
    for video in (episode and episode.video_path(), trial and trial.video_path()):
        rows.append(_frames_at(video, k) if video is not None else ([], []))
    sample = next((frames[0] for _, frames in rows if frames), None)
    if sample is None:
        return None
    thumb = _thumbnail(sample, THUMB_WIDTH)
    h, w = thumb.shape[:2]
    panel_w = 2 * w + GAP if motion else 0
    mosaic = np.full((2 * h + GAP, k * (w + GAP) + panel_w, 3), 255, dtype=np.uint8)
    for r, (_, frames) in enumerate(rows):
        for j, frame in enumerate(frames[:k]):
            small = _thumbnail(frame, THUMB_WIDTH)[:h, :w]
            mosaic[
                r * (h + GAP) : r * (h + GAP) + small.shape[0], j * (w + GAP) : j * (w + GAP) + small.shape[1]
            ] = small
    layout = {
        "h": h,
        "w": w,
        "indices": rows[0][0] or rows[1][0],
        "missing": [name for name, (_, f) in zip(("GT", "generated"), rows) if not f],
    }
    if motion and rows[0][1]:
        first = rows[0][1][0]
        step = max(1, first.shape[1] // THUMB_WIDTH)
        big = first[:: max(1, step // 2), :: max(1, step // 2)]  # twice the thumbnails' resolution
        if step == 1:
            big = np.repeat(np.repeat(big, 2, axis=0), 2, axis=1)
        big = big[: 2 * h + GAP, : 2 * w + GAP]
        x0 = k * (w + GAP)
        mosaic[: big.shape[0], x0 : x0 + big.shape[1]] = big
        layout["panel"] = (x0, big.shape[1], big.shape[0])
        layout["tracks"] = _tracks(comparison, case, episode, trial) if trial is not None else None
    return mosaic, layout


def _draw_track(ax, track: np.ndarray, width: float, height: float, colour: str, x0: float = 0.0) -> None:
    """Normalised (T, 2, 2) tracks drawn over a panel of ``width`` x ``height`` starting at ``x0``."""
    for gripper in range(track.shape[1]):
        points = track[:, gripper, :]
        valid = np.all(points >= 0, axis=1)
        if not valid.any():
            continue
        xs, ys = x0 + points[valid, 0] * width, points[valid, 1] * height
        ax.plot(xs, ys, color=colour, linewidth=1.4)
        ax.scatter(xs[:1], ys[:1], color=colour, s=10)


def frame_strips(comparison: Comparison, cases: list[WorstCase], motion: bool, path: Path) -> Path:
    """Per worst case two rows of K evenly spaced frames, GT above and generated below; for motion
    metrics a larger panel with both gripper tracks (GT green, generated red) over the first GT frame.

    Each case is one composed image in one axes: a strip costs one image draw, not 2K axes.
    """
    plt = _pyplot()
    built = [(case, _case_mosaic(comparison, case, motion)) for case in cases]
    width = max((m[0].shape[1] for _, m in built if m is not None), default=800)
    height = sum((m[0].shape[0] if m is not None else 60) + 40 for _, m in built)
    dpi = 100
    fig, axes = plt.subplots(
        len(built), 1, figsize=(width / dpi * 1.04, height / dpi), squeeze=False, dpi=dpi
    )
    for ax, (case, mosaic) in zip(axes[:, 0], built):
        ax.axis("off")
        task = comparison.task_label(case.task_id)
        title = (
            f"{task} / episode {case.episode_id} / trial {case.trial_id}: {case.metric} = {case.value:.4g}"
        )
        ax.set_title(title, fontsize=8, loc="left", pad=12)
        if mosaic is None:
            ax.text(0, 0.5, "frames not found here", fontsize=8)
            continue
        image, layout = mosaic
        h, w = layout["h"], layout["w"]
        ax.imshow(image, interpolation="nearest")
        for j, t in enumerate(layout["indices"]):
            ax.text(j * (w + GAP) + w / 2, -3, f"t={t}", fontsize=6, ha="center", va="bottom")
        for r, name in enumerate(("GT", "generated")):
            ax.text(-4, r * (h + GAP) + h / 2, name, fontsize=7, rotation=90, ha="right", va="center")
            if name in layout["missing"]:
                ax.text(4, r * (h + GAP) + h / 2, f"{name} frames not found", fontsize=7, va="center")
        if "panel" in layout:
            x0, pw, ph = layout["panel"]
            tracks = layout["tracks"]
            if tracks is None:
                ax.text(
                    x0 + pw / 2,
                    -3,
                    "gripper tracks not stored by the run",
                    fontsize=6,
                    ha="center",
                    va="bottom",
                )
            else:
                ax.text(
                    x0 + pw / 2,
                    -3,
                    "gripper tracks: GT green, generated red",
                    fontsize=6,
                    ha="center",
                    va="bottom",
                )
                for track, colour in zip(tracks, (TRACK_COLOURS["gt"], TRACK_COLOURS["generated"])):
                    _draw_track(ax, track, pw, ph, colour, x0)
        ax.set_xlim(-1, image.shape[1])
        ax.set_ylim(image.shape[0], -1)
    fig.subplots_adjust(left=0.03, right=0.99, top=0.97, bottom=0.01, hspace=0.25)
    _save(fig, path)
    return path
