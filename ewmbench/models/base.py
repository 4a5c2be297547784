"""The world-model adapter interface.

An adapter declares what it is conditioned on and what it needs, and turns a
:class:`GenerationRequest` into frames per view. The request carries everything the Genie
Envisioner family needs (multi-view memory frames, instruction and sub-steps, per-frame actions,
camera calibration, frame rate, seed) so adapters of every kind share one interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ewmbench.data.layout import HEAD_VIEW, Episode


def fit_length(frames_or_rows: np.ndarray, length: int) -> np.ndarray:
    """Truncate to ``length`` rows, or hold the last row until ``length`` (frames or actions)."""
    if len(frames_or_rows) >= length:
        return frames_or_rows[:length]
    return np.concatenate([frames_or_rows, np.repeat(frames_or_rows[-1:], length - len(frames_or_rows), axis=0)])


@dataclass
class GenerationRequest:
    episode: Episode
    trial: str
    seed: int
    num_frames: int  # frames to produce per view, the initial frame included
    fps: float | None
    height: int = 480
    width: int = 640
    views: tuple[str, ...] = (HEAD_VIEW,)
    instruction: str = ""
    substeps: list[str] = field(default_factory=list)
    # Per view, (M, H, W, 3) uint8 history frames, oldest first; the last one is the current frame.
    memory_frames: dict[str, np.ndarray] = field(default_factory=dict)
    # (T, 14) end-effector targets per frame: [L xyz, L rpy, L gripper, R xyz, R rpy, R gripper].
    actions: np.ndarray | None = None
    intrinsics: dict[str, np.ndarray] = field(default_factory=dict)  # per view, (3, 3) pixels
    extrinsics: dict[str, np.ndarray] = field(default_factory=dict)  # per view, (T, 4, 4) camera-to-base


@dataclass
class GenerationResult:
    frames: dict[str, np.ndarray]  # per view, (T, H, W, 3) uint8 RGB
    info: dict = field(default_factory=dict)


class WorldModel(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    conditioning: ClassVar[frozenset[str]] = frozenset()  # of "image", "text", "actions"
    needs_weights: ClassVar[bool] = False
    needs_gpu: ClassVar[bool] = False

    def __init__(self, **options):
        if options:
            raise TypeError(f"model {self.name!r} takes no options, got {sorted(options)}")

    def check_available(self) -> None:
        """Raise :class:`ewmbench.errors.Unavailable` when weights or devices are missing."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def config(self) -> dict:
        """Settings recorded in the run's provenance."""
        return {}


_REGISTRY: dict[str, type[WorldModel]] = {}


def register_model(cls: type[WorldModel]) -> type[WorldModel]:
    if cls.name in _REGISTRY:
        raise ValueError(f"model {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def model_registry() -> dict[str, type[WorldModel]]:
    import ewmbench.models  # noqa: F401  (importing the package registers every adapter module)

    return dict(_REGISTRY)
