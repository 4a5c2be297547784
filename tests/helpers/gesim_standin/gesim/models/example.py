"""Stand-in for gesim's example model: the first frame brightened by a ramp over each chunk, the
actions echoed as state; records every call for the tests."""

from __future__ import annotations

import numpy as np

from gesim.models.base import StepResult, WorldModel

CALLS: list[tuple] = []  # (method, arrays) of every call, for the tests


class ExampleWorldModel(WorldModel):
    chunk_size = 25

    def __init__(self):
        self._first_frame = None
        self._traj = None

    @classmethod
    def from_config(cls, config: dict) -> ExampleWorldModel:
        return cls()

    def reset(self) -> None:
        CALLS.append(("reset",))
        self._first_frame = None
        self._traj = None

    def set_camera_params(self, intrinsic, extrinsic=None) -> None:
        CALLS.append(
            ("set_camera_params", np.asarray(intrinsic), None if extrinsic is None else np.asarray(extrinsic))
        )

    def set_episode_data(self, first_frame) -> None:
        frame = np.asarray(first_frame, dtype=np.float32)
        if frame.ndim != 4 or frame.shape[0] != 3:
            raise ValueError(f"first_frame must be (3, V, H, W), got {frame.shape}")
        CALLS.append(("set_episode_data", frame))
        self._first_frame = frame

    def set_episode_traj(self, traj, c2w) -> None:
        traj = np.asarray(traj, dtype=np.float32)
        if traj.ndim != 5 or traj.shape[0] != 3:
            raise ValueError(f"traj must be (3, V, T, H, W), got {traj.shape}")
        CALLS.append(("set_episode_traj", traj, np.asarray(c2w)))
        self._traj = traj

    def step(self, actions) -> StepResult:
        if self._first_frame is None or self._traj is None:
            raise RuntimeError("set_episode_data and set_episode_traj must come before step")
        actions = np.asarray(actions, dtype=np.float32)
        CALLS.append(("step", actions))
        ramp = np.linspace(0.0, 0.25, actions.shape[0], dtype=np.float32)
        frames = np.clip(self._first_frame[None] + ramp[:, None, None, None, None], 0.0, 1.0)
        return StepResult(frames=frames.astype(np.float32), state=actions.copy())
