"""The feature store: arrays and texts derived from videos, content-addressed.

Every derived item (an end-effector track, per-frame encoder features, a caption, FID/FVD
features) is stored under::

    <root>/<stage>/<settings digest>/<video content hash>.npy   (or .txt)
    <root>/<stage>/<settings digest>/key.json                   what the digest stands for

The key is (video content hash, stage, the settings that change the output, the content hash
of the weights that computed it, the stage's version). Two computations share a file exactly
when they would give the same array, so every run, every executor (serial, processes, Ray) and
every machine that shares the cache folder reuses each other's work. Writes are atomic
(:mod:`ewmbench.files`): a reader sees a whole file or none, and two workers computing the same
item at once both write the same bytes, the last rename winning.

The store knows nothing about videos: callers pass the content hash (``data.video_cache``
computes it once per process).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ewmbench.files import cache_root, load_array, save_array, write_json, write_text

__all__ = ["FeatureStore", "StageKey", "stage_key"]


@dataclass(frozen=True)
class StageKey:
    """What a stage's output depends on besides the video: its name, settings, weights, version.

    ``settings`` holds only what changes the output (not batch sizes); ``weights`` is the weights'
    content hash (:func:`ewmbench.perception.weights.content_hash`), or a description of a
    random-init test model, or ``None`` for weight-free stages.
    """

    stage: str
    settings: Mapping = field(default_factory=dict)
    weights: str | None = None
    version: int = 1

    def described(self) -> dict:
        return {
            "stage": self.stage,
            "settings": _plain(self.settings),
            "weights": self.weights,
            "version": self.version,
        }

    @property
    def digest(self) -> str:
        text = json.dumps(self.described(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def folder(self) -> str:
        """The key as a relative folder: ``<stage>/<digest>``."""
        return f"{self.stage}/{self.digest}"

    def __str__(self) -> str:
        return self.folder


def stage_key(
    stage: str, settings: Mapping | None = None, weights: str | None = None, version: int = 1
) -> StageKey:
    """The one way a stage key is built (tracks, encoder features, captions, FID/FVD features)."""
    if not stage or "/" in stage or stage.startswith("."):
        raise ValueError(f"stage names one stage, e.g. 'fid-inception-pool3', got {stage!r}")
    return StageKey(stage, dict(settings or {}), weights, version)


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class FeatureStore:
    """Derived arrays and texts by (stage key, video content hash), under ``root``."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else cache_root() / "features"

    def path(self, key: StageKey | str, content_hash: str, suffix: str) -> Path:
        if not content_hash or "/" in content_hash or content_hash.startswith("."):
            raise ValueError(f"not a content hash: {content_hash!r}")
        return self.root / str(key) / f"{content_hash}{suffix}"

    def _describe(self, key: StageKey | str) -> None:
        # The key's meaning beside its files, for people reading the cache (written once).
        if isinstance(key, StageKey):
            described = self.root / key.folder / "key.json"
            if not described.is_file():
                write_json(described, key.described(), sort_keys=True)

    def has(self, key: StageKey | str, content_hash: str, suffix: str = ".npy") -> bool:
        return self.path(key, content_hash, suffix).is_file()

    def array(self, key: StageKey | str, content_hash: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The stored array, or ``compute()`` stored atomically and returned."""
        path = self.path(key, content_hash, ".npy")
        if path.is_file():
            try:
                return load_array(path)
            except (ValueError, OSError, EOFError):
                pass  # unreadable (a disk error, a foreign file): compute again and replace it
        value = np.asarray(compute())
        self._describe(key)
        save_array(path, value)
        return value

    def text(self, key: StageKey | str, content_hash: str, compute: Callable[[], str]) -> str:
        """Like :meth:`array`, for text (captions)."""
        path = self.path(key, content_hash, ".txt")
        if path.is_file():
            return path.read_text(encoding="utf-8")
        value = compute()
        self._describe(key)
        write_text(path, value)
        return value
