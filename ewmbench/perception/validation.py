"""``ewmbench detector validate``: tracked gripper centres against projected GT end-effector positions.

For every GT episode with poses and calibration: the detector runs exactly as in the trajectory
stage (same settings, fresh tracker per video); the reference is each frame's grasp point
projected into the head camera (see autolabel). Among frames x grippers whose projected point is
inside the image, ``recall`` is the fraction with a detection, and the centre error (pixels of
the original image) is measured where both exist; ``median_error_frac`` = median error / width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ewmbench.data.layout import Episode
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError
from ewmbench.perception.autolabel import ProjectedGrippers, episode_grippers
from ewmbench.perception.detector import MISSING, TrackingSettings
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.trajectories import track_records


@dataclass(frozen=True)
class EpisodeComparison:
    visible: int  # frames x grippers whose projected GT is in the image
    detected: int  # of those, how many have a detection
    spurious: int  # detections where the projected GT is not in the image
    errors_px: np.ndarray  # centre errors (pixels) of detected visible grippers


def compare_tracks(trajectory: np.ndarray, gt: ProjectedGrippers) -> EpisodeComparison:
    """Compare a normalised (T, 2, 2) trajectory with projected GT grippers (pixels)."""
    if len(trajectory) != len(gt.centres):
        raise ValueError(f"trajectory has {len(trajectory)} frames, GT {len(gt.centres)}")
    found = ~np.all(trajectory == MISSING, axis=-1)
    pixels = trajectory.astype(np.float64) * np.array([gt.width, gt.height])
    both = found & gt.visible
    errors = np.linalg.norm(pixels[both] - gt.centres[both], axis=-1)
    return EpisodeComparison(
        visible=int(gt.visible.sum()),
        detected=int(both.sum()),
        spurious=int((found & ~gt.visible).sum()),
        errors_px=errors,
    )


def summarise(comparisons: dict[str, EpisodeComparison], width: int) -> dict:
    visible = sum(c.visible for c in comparisons.values())
    detected = sum(c.detected for c in comparisons.values())
    errors = np.concatenate([c.errors_px for c in comparisons.values()]) if comparisons else np.empty(0)
    median = float(np.median(errors)) if len(errors) else None
    return {
        "episodes": len(comparisons),
        "visible": visible,
        "detected": detected,
        "spurious": sum(c.spurious for c in comparisons.values()),
        "recall": detected / visible if visible else None,
        "median_error_px": median,
        "median_error_frac": median / width if median is not None else None,
        "p95_error_frac": float(np.percentile(errors, 95)) / width if len(errors) else None,
        "mean_error_frac": float(errors.mean()) / width if len(errors) else None,
        "image_width": width,
        "per_episode": {
            key: {
                "recall": c.detected / c.visible if c.visible else None,
                "median_error_frac": float(np.median(c.errors_px)) / width if len(c.errors_px) else None,
            }
            for key, c in comparisons.items()
        },
    }


def validate_episodes(
    episodes: list[Episode],
    videos: VideoCache,
    tracking: TrackingSettings,
    choice: DetectorChoice = DetectorChoice(),
    device: str | None = None,
    progress=None,
) -> dict:
    """Recall and centre error of the detector on GT episodes (see module doc)."""
    if not episodes:
        raise DataError(Path("."), "no GT episodes to validate on")
    comparisons: dict[str, EpisodeComparison] = {}
    widths = set()
    for episode in episodes:
        video = episode.video_path()
        frames = videos.frames(video)
        height, width = frames.shape[1:3]
        widths.add(width)
        gt = episode_grippers(episode, len(frames), width, height)
        trajectory = track_records(video, videos, tracking, choice, device)[..., :2]
        comparisons[f"{episode.path.parent.parent.name}/{episode.task}/{episode.episode}"] = compare_tracks(
            trajectory, gt
        )
        if progress is not None:
            progress()
    if len(widths) > 1:
        raise DataError(
            episodes[0].path.parent.parent, f"episodes have different image widths {sorted(widths)}"
        )
    report = summarise(comparisons, widths.pop())
    report["protocol"] = tracking.protocol
    return report
