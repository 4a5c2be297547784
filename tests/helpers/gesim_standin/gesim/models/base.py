"""Stand-in for gesim.models.base: the WorldModel interface and its name registry."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepResult:
    frames: np.ndarray  # (T, 3, V, H, W) float32 in [0, 1]
    state: np.ndarray | None  # (T, D)


class WorldModel(ABC):
    chunk_size: int = 25

    @classmethod
    @abstractmethod
    def from_config(cls, config: dict) -> WorldModel: ...

    @abstractmethod
    def reset(self) -> None: ...

    @abstractmethod
    def set_camera_params(self, intrinsic: np.ndarray, extrinsic: np.ndarray | None = None) -> None: ...

    @abstractmethod
    def set_episode_data(self, first_frame: np.ndarray) -> None: ...

    @abstractmethod
    def set_episode_traj(self, traj: np.ndarray, c2w: np.ndarray) -> None: ...

    def set_task(self, task: str) -> None:  # noqa: B027  (optional hook, as upstream)
        pass

    @abstractmethod
    def step(self, actions: np.ndarray) -> StepResult: ...


_REGISTRY: dict[str, str] = {"example": "gesim.models.example:ExampleWorldModel"}


def available_world_models() -> list[str]:
    return sorted(_REGISTRY)


def get_world_model(name: str) -> type[WorldModel]:
    if name not in _REGISTRY:
        raise KeyError(f"unknown world model {name!r}; available: {available_world_models()}")
    module_name, _, class_name = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
