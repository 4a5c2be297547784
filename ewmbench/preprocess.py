"""Preprocessing shared by metrics: decoded frames, trajectories, features and captions.

Everything derived from a video is cached on disk by the video's content hash, so a killed run
resumes without recomputing, and two runs over the same videos share the work. Inputs are only
read, never written.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ewmbench.data.video import content_hash, read_video

DEFAULT_CACHE = Path(os.environ.get("EWMBENCH_CACHE", Path.home() / ".cache" / "ewmbench"))


class Preprocessor:
    """Per-process access to decoded frames and content-hash-cached derived arrays."""

    def __init__(self, cache_dir: Path | None = None, frames_in_memory: int = 8, device: str | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir else DEFAULT_CACHE
        self.device = device or default_device()
        self._frames: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._frames_in_memory = frames_in_memory
        self._hashes: dict[Path, str] = {}
        self.options: dict = {}  # per-run options of preprocessing stages (detector weights, ...)

    def frames(self, video: Path) -> np.ndarray:
        """Decoded (T, H, W, 3) uint8 RGB frames, kept for the last few videos."""
        video = Path(video)
        if video in self._frames:
            self._frames.move_to_end(video)
            return self._frames[video]
        frames = read_video(video)
        frames.setflags(write=False)
        self._frames[video] = frames
        while len(self._frames) > self._frames_in_memory:
            self._frames.popitem(last=False)
        return frames

    def content_hash(self, video: Path) -> str:
        video = Path(video)
        if video not in self._hashes:
            self._hashes[video] = content_hash(video)
        return self._hashes[video]

    def cached_array(self, kind: str, video: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()`` once per (kind, video content); ``kind`` must name every setting that matters."""
        path = self.cache_dir / kind / f"{self.content_hash(video)}.npy"
        if path.is_file():
            return np.load(path, allow_pickle=False)
        value = np.asarray(compute())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, value, allow_pickle=False)
        os.replace(tmp, path)
        return value

    def cached_text(self, kind: str, video: Path, compute: Callable[[], str]) -> str:
        """Like :meth:`cached_array`, for text (captions)."""
        path = self.cache_dir / kind / f"{self.content_hash(video)}.txt"
        if path.is_file():
            return path.read_text(encoding="utf-8")
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value)
        os.replace(tmp, path)
        return value


def default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def trajectory_of(traj_path: Path, video: Path, preprocessor: Preprocessor, gt_video: Path | None = None) -> np.ndarray:
    """End-effector track (T, 2, 2) of a video: the official ``traj/traj.npy`` when present
    (validated), otherwise the gripper detector and tracker (cached by video content).

    ``gt_video`` is the ground-truth video of the episode: its sidecar names the embodiment, which
    picks the detector (a generated trial has no sidecar of its own).
    """
    if Path(traj_path).is_file():
        from ewmbench.data.trajectory import load_traj

        return load_traj(traj_path)
    from ewmbench.perception.detector import embodiment_of, track_video

    return track_video(video, preprocessor, embodiment=embodiment_of(gt_video or video))


def trajectory_identity(traj_path: Path, video: Path, preprocessor: Preprocessor, gt_video: Path | None = None) -> str:
    """What the trajectory :func:`trajectory_of` returns is made from, as a short stable string:
    the ``traj.npy`` file's content, or the detector weights' content, the tracking settings and
    the device type. A stored score keyed by it is recomputed when any of these changes."""
    import hashlib

    from ewmbench.errors import Unavailable

    if Path(traj_path).is_file():
        return "traj:" + hashlib.sha256(Path(traj_path).read_bytes()).hexdigest()[:16]
    from ewmbench.perception.detector import choose_weights, embodiment_of, tracking_settings, weights_hash

    options = dict(preprocessor.options)
    if not options.get("embodiment"):
        options["embodiment"] = embodiment_of(gt_video or video)
    try:
        weights = weights_hash(choose_weights(video, options))[:16]
    except Unavailable:
        weights = "unavailable"
    settings = tracking_settings(preprocessor.options.get("protocol"))
    return f"detector:{weights}:{settings.key()}:{str(preprocessor.device).split(':')[0]}"
