"""What scoring reads from videos, each kept once: decoded frames, content hashes, derived data.

- :class:`DecodedFrames`: the decoded frames of the last few videos, in memory;
- :class:`ContentHashes`: each video's content hash, computed once per process;
- :class:`DerivedCache`: arrays and texts computed from a video (tracks, features, captions), in
  the feature store (:mod:`ewmbench.store`) by (stage key, video content hash), so a killed run
  resumes without recomputing and two runs, workers or machines over the same videos share the
  work.

A stage key (:func:`ewmbench.store.stage_key`) names the stage, every setting its output depends
on and the weights' content hash: two computations share a file exactly when they would give the
same array. Inputs are only read, never written.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ewmbench.data.video import content_hash, read_video
from ewmbench.store import FeatureStore, StageKey


class DecodedFrames:
    """(T, H, W, 3) uint8 RGB frames of the last ``capacity`` videos read (read-only arrays)."""

    def __init__(self, capacity: int = 8):
        self.capacity = capacity
        self._frames: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, video: Path) -> np.ndarray:
        video = Path(video)
        if video in self._frames:
            self._frames.move_to_end(video)
            return self._frames[video]
        frames = read_video(video)
        frames.setflags(write=False)
        self._frames[video] = frames
        while len(self._frames) > self.capacity:
            self._frames.popitem(last=False)
        return frames


class ContentHashes:
    """Content hash of each video (frame names and bytes), computed once per process."""

    def __init__(self) -> None:
        self._hashes: dict[Path, str] = {}

    def of(self, video: Path) -> str:
        video = Path(video)
        if video not in self._hashes:
            self._hashes[video] = content_hash(video)
        return self._hashes[video]


class DerivedCache:
    """Arrays and texts derived from videos: the feature store, addressed by video path."""

    def __init__(self, root: Path | None = None, hashes: ContentHashes | None = None):
        self.store = FeatureStore(root)
        self.hashes = hashes or ContentHashes()

    @property
    def root(self) -> Path:
        return self.store.root

    def path(self, stage_key: StageKey | str, video: Path, suffix: str) -> Path:
        return self.store.path(stage_key, self.hashes.of(video), suffix)

    def array(self, stage_key: StageKey | str, video: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()`` once per (stage key, video content)."""
        return self.store.array(stage_key, self.hashes.of(video), compute)

    def text(self, stage_key: StageKey | str, video: Path, compute: Callable[[], str]) -> str:
        """Like :meth:`array`, for text (captions)."""
        return self.store.text(stage_key, self.hashes.of(video), compute)


class VideoCache:
    """The three caches scoring shares: ``decoded`` frames, content ``hashes``, ``derived`` data.

    ``cache_dir`` is the root of the feature store (default: ``<cache root>/features``).
    """

    def __init__(self, cache_dir: Path | None = None, frames_in_memory: int = 8):
        self.decoded = DecodedFrames(frames_in_memory)
        self.hashes = ContentHashes()
        self.derived = DerivedCache(cache_dir, self.hashes)

    def frames(self, video: Path) -> np.ndarray:
        return self.decoded.get(video)

    def content_hash(self, video: Path) -> str:
        return self.hashes.of(video)
