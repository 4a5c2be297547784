"""What scoring reads from videos, each kept once: decoded frames, content hashes, derived data.

- :class:`DecodedFrames`: the decoded frames of the last few videos, in memory;
- :class:`ContentHashes`: each video's content hash, computed once and kept (by the files'
  sizes and times) for later processes;
- :class:`DerivedCache`: arrays and texts computed from a video (tracks, features, captions), in
  the feature store (:mod:`ewmbench.store`) by (stage key, video content hash), so a killed run
  resumes without recomputing and two runs, workers or machines over the same videos share the
  work.

A stage key (:func:`ewmbench.store.stage_key`) names the stage, every setting its output depends
on and the weights' content hash: two computations share a file exactly when they would give the
same array. Inputs are only read, never written.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ewmbench.data.video import (
    FRAME_SUFFIXES,
    VIDEO_SUFFIXES,
    content_hash,
    list_frames,
    read_video,
    video_source,
)
from ewmbench.store import FeatureStore, StageKey

HASH_INDEX = "content-hashes.sqlite3"  # in the feature store's root: video signature -> content hash


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

    def clear(self) -> None:
        self._frames.clear()


class ContentHashes:
    """Content hash of each video (frame names and bytes, or the file's bytes).

    Kept in memory per process, and with ``index`` (a SQLite file) across processes: a video's
    hash is stored under its signature (its resolved path and every file's name, size,
    modification and change times and inode), so each video's bytes are read and hashed once,
    until a file of it changes. The index is a cache: a lost or unreadable one only costs the
    hashing again.
    """

    def __init__(self, index: Path | None = None) -> None:
        self._hashes: dict[Path, str] = {}
        self.index = Path(index) if index is not None else None
        self._db = None

    def of(self, video: Path) -> str:
        video = Path(video)
        if video not in self._hashes:
            self._hashes[video] = self._indexed(video) if self.index is not None else content_hash(video)
        return self._hashes[video]

    def _indexed(self, video: Path) -> str:
        signature = video_signature(video)
        db = self._connect()
        if db is not None:
            try:
                found = db.execute("SELECT hash FROM hashes WHERE signature = ?", (signature,)).fetchone()
                if found:
                    return found[0]
            except sqlite3.Error:
                db = None
        digest = content_hash(video)
        if db is not None:
            try:
                with db:
                    db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?)", (signature, digest))
            except sqlite3.Error:
                pass  # another process holds the lock for long, or the file is damaged: a cache miss
        return digest

    def _connect(self):
        if self._db is None:
            try:
                self.index.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.index, timeout=10, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS hashes (signature TEXT PRIMARY KEY, hash TEXT NOT NULL)"
                )
                self._db = db
            except (OSError, sqlite3.Error):
                self._db = False  # no index here (read-only cache folder, damaged file): hash every time
        return self._db or None

    def __getstate__(self) -> dict:
        return {"_hashes": {}, "index": self.index, "_db": None}


def video_signature(video: Path) -> str:
    """What identifies a video's bytes without reading them: its resolved path and, per file,
    name, size, modification and change times and inode. A frame folder is read with one
    directory scan (the frames as :func:`list_frames` picks them); anything else goes through
    :func:`video_source` and :func:`list_frames`."""
    video = Path(video)
    stats = _frame_folder_stats(video)
    if stats is None:
        source = video_source(video)
        files = [source] if source.is_file() else list_frames(source)
        stats, video = [(f.name, f.stat()) for f in files], source
    digest = hashlib.sha256(os.fsencode(video.resolve()))
    for name, stat in stats:
        digest.update(
            b"\0"
            + os.fsencode(name)
            + f"\0{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}".encode()
        )
    return digest.hexdigest()


def _frame_folder_stats(folder: Path) -> list[tuple[str, os.stat_result]] | None:
    """(name, stat) of the frames of a plain frame folder (regular files only, sorted by name),
    or None where :func:`video_source` decides otherwise (a file, a ``video/`` inside, no frames)
    or where :func:`list_frames` would raise."""
    try:
        entries = list(os.scandir(folder))
    except (NotADirectoryError, FileNotFoundError):
        return None
    frames = []
    for entry in entries:
        suffix = os.path.splitext(entry.name)[1].lower()
        if entry.name == "video" or (suffix in VIDEO_SUFFIXES and suffix not in FRAME_SUFFIXES):
            return None  # video_source's other cases
        if suffix not in FRAME_SUFFIXES or entry.name.startswith(".tmp-"):
            continue
        if not entry.is_file(follow_symlinks=False):
            return None  # a link or a folder: list_frames decides (and names the problem)
        frames.append((entry.name, entry.stat(follow_symlinks=False)))
    return sorted(frames) if frames else None


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
        store = FeatureStore(cache_dir)
        self.hashes = ContentHashes(store.root / HASH_INDEX)
        self.derived = DerivedCache(store.root, self.hashes)

    def frames(self, video: Path) -> np.ndarray:
        return self.decoded.get(video)

    def content_hash(self, video: Path) -> str:
        return self.hashes.of(video)
