"""End-effector tracks of videos: the official ``traj/traj.npy`` when present, otherwise the
gripper detector and tracker, cached by video content.

Tracking settings are always passed in (a protocol's ``metrics: trajectory_consistency:
tracking:`` block, as :class:`~ewmbench.perception.detector.TrackingSettings`), so a track is
computed with the settings of the metric that asked for it, never with a default protocol.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ewmbench.data.trajectory import load_traj
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError, Unavailable
from ewmbench.files import load_array, sha256_file
from ewmbench.perception.detector import TrackingSettings, records_to_trajectory, track_frames
from ewmbench.perception.detector_weights import DetectorChoice, choose_weights, embodiment_of
from ewmbench.store import StageKey, stage_key


def track_stage_key(tracking: TrackingSettings, weights: Path) -> StageKey:
    """Feature-store key of tracks: every tracking setting and the detector file's content."""
    settings = {k: v for k, v in tracking.__dict__.items() if k != "protocol"}
    return stage_key("eef-track", settings, "sha256:" + sha256_file(weights)[:16])


def track_records(
    video: Path,
    videos: VideoCache,
    tracking: TrackingSettings,
    choice: DetectorChoice = DetectorChoice(),
    device: str | None = None,
) -> np.ndarray:
    """Cached per-frame gripper records (T, 2, 7) of a video (see ``detector.RECORD_FIELDS``)."""
    weights = choose_weights(video, choice)

    def compute() -> np.ndarray:
        frames = videos.frames(video)
        if len(frames) == 0:
            raise DataError(video, "video has no frames")
        return track_frames(frames, weights, tracking, device=device)

    return videos.derived.array(track_stage_key(tracking, weights), video, compute)


def track_video(
    video: Path,
    videos: VideoCache,
    tracking: TrackingSettings,
    choice: DetectorChoice = DetectorChoice(),
    device: str | None = None,
) -> np.ndarray:
    """End-effector trajectory (T, 2, 2) float32 of a video: normalised centres, (-1, -1) missing."""
    return records_to_trajectory(track_records(video, videos, tracking, choice, device))


def trajectory_of(
    traj_path: Path,
    video: Path,
    videos: VideoCache,
    tracking: TrackingSettings,
    choice: DetectorChoice = DetectorChoice(),
    device: str | None = None,
    gt_video: Path | None = None,
) -> np.ndarray:
    """End-effector track (T, 2, 2) of a video: the official ``traj/traj.npy`` when present
    (validated), otherwise tracked with ``tracking`` (cached by video content).

    ``gt_video`` is the ground-truth video of the episode: its sidecar names the embodiment, which
    picks the detector (a generated trial has no sidecar of its own); an embodiment the user
    named in ``choice`` wins.
    """
    if Path(traj_path).is_file():
        return load_traj(traj_path)
    choice = choice.with_embodiment(embodiment_of(gt_video or video))
    return track_video(video, videos, tracking, choice, device)


def stored_trajectory(
    traj_path: Path,
    video: Path,
    videos: VideoCache,
    tracking: TrackingSettings,
    choice: DetectorChoice = DetectorChoice(),
    gt_video: Path | None = None,
) -> np.ndarray | None:
    """The track :func:`trajectory_of` gives a video, read only from what is stored: the official
    ``traj/traj.npy``, else the records cached by tracking it with ``tracking`` and the detector
    it picks. None when neither is stored (or that detector file is not here): never tracks."""
    if Path(traj_path).is_file():
        return load_traj(traj_path)
    choice = choice.with_embodiment(embodiment_of(gt_video or video))
    try:
        weights = choose_weights(video, choice)
    except Unavailable:
        return None
    stored = videos.derived.path(track_stage_key(tracking, weights), video, ".npy")
    if not stored.is_file():
        return None
    try:
        return records_to_trajectory(load_array(stored))
    except (ValueError, OSError, EOFError):
        return None  # unreadable: as if not stored


def trajectory_identity(
    traj_path: Path, video: Path, choice: DetectorChoice = DetectorChoice(), gt_video: Path | None = None
) -> str:
    """Where :func:`trajectory_of` takes a video's track from, as a short stable string: the
    ``traj.npy`` file's content, or the content of the detector checkpoint it would pick. A stored
    score keyed by it is recomputed when either changes (tracking settings are part of the
    metric's settings, the device type is keyed by the caller)."""
    if Path(traj_path).is_file():
        return "traj:" + sha256_file(traj_path)[:16]
    choice = choice.with_embodiment(embodiment_of(gt_video or video))
    try:
        return "detector:" + sha256_file(choose_weights(video, choice))[:16]
    except Unavailable:
        return "detector:unavailable"
