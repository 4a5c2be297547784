from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RewardResult:
    success: np.ndarray
    progress: np.ndarray


@runtime_checkable
class RewardClient(Protocol):
    def evaluate(self, head_frames: np.ndarray, task: str) -> RewardResult: ...
