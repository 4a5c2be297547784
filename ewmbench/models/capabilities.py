"""What an adapter declares it needs and produces, read without loading anything.

:class:`Capabilities` (conditioning, views, native size, frame rate, frame-count rule, chunk length,
memory frames, action space, batch size) is checked against the dataset before the first
generation; :data:`CONDITIONING` and :data:`ACTION_SPACES` name what a request may carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ewmbench.data.layout import HEAD_VIEW

# Conditioning an adapter may declare; the runner fills only the request fields it declares.
CONDITIONING = {
    "text": "instruction and sub-steps",
    "image": "memory frames per view",
    "actions": "per-frame end-effector actions (sidecar `actions`)",
    "calibration": "per-view intrinsics and per-frame extrinsics (sidecar `intrinsics/<view>`, `extrinsics/<view>`)",
    "scene": "the episode's initial simulator state as plain data (sidecar meta `scene`)",
    "joints": "per-frame joint positions (sidecar `joint_positions`, column names in meta `joint_names`)",
}
# Action spaces by name: width and layout. The sidecar stores eef14-euler.
ACTION_SPACES = {
    "eef14-euler": (14, "[L xyz, L rpy (euler xyz, rad), L gripper 0..1, R xyz, R rpy, R gripper]"),
    "eef16-quat": (16, "[L xyz, L quat (x, y, z, w), L gripper (model range), R xyz, R quat, R gripper]"),
    "joint16-gesim": (16, "[L 7 arm joints (rad), L gripper 0 open..1 closed, R 7 arm joints, R gripper]"),
}


@dataclass(frozen=True)
class FrameRule:
    """Valid frame counts ``step * n + offset`` (n >= 0): 8n+1 for LTX-Video, 4n+1 for Cosmos."""

    step: int = 1
    offset: int = 0

    def valid(self, count: int) -> bool:
        return count >= max(self.offset, 1) and (count - self.offset) % self.step == 0

    def at_least(self, count: int) -> int:
        """The smallest valid count >= ``count``."""
        n = max(0, math.ceil((count - self.offset) / self.step))
        value = self.step * n + self.offset
        return value if value >= 1 else value + self.step

    def __str__(self) -> str:
        return "any" if self.step == 1 and self.offset == 0 else f"{self.step}n+{self.offset}"


@dataclass(frozen=True)
class Capabilities:
    """What an adapter needs and produces; the runner checks it against the dataset."""

    conditioning: frozenset[str] = frozenset()  # of CONDITIONING
    views: tuple[str, ...] | None = None  # views it produces (None: whichever the request asks for)
    required_views: tuple[str, ...] = (HEAD_VIEW,)  # views the dataset must have (memory or calibration)
    native_size: tuple[int, int] | None = None  # (height, width) it generates at; None: the request's
    fps: float | None = None  # native frame rate; None: the request's
    frame_rule: FrameRule = FrameRule()
    chunk_frames: int | None = None  # frames per generation window (frame 0 included); None: whole episode
    memory_frames: int = 1  # memory frames per view it takes
    action_space: str | None = None  # of ACTION_SPACES, for action-conditioned adapters
    max_batch: int = 1  # requests per `generate_batch` call

    def describe(self) -> dict:
        return {
            "conditioning": sorted(self.conditioning),
            "views": list(self.views) if self.views else "as requested",
            "native_size": list(self.native_size) if self.native_size else "as requested",
            "fps": self.fps,
            "frame_rule": str(self.frame_rule),
            "chunk_frames": self.chunk_frames,
            "memory_frames": self.memory_frames,
            "action_space": self.action_space,
            "max_batch": self.max_batch,
        }
