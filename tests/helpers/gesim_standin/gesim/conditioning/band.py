"""Stand-in for gesim.conditioning.band.render_traj: a grey canvas with one white pixel where each
arm's offset end-effector origin projects (the real one draws circles and axis sticks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

DEFAULT_CAM_NAMES = (
    "observation.images.top_head",
    "observation.images.hand_left",
    "observation.images.hand_right",
)
DEFAULT_H = 384
DEFAULT_W = 512
CALLS: list[dict] = []


def render_traj(
    eef_rpy: np.ndarray,
    c2w: np.ndarray,
    intrinsic: np.ndarray,
    *,
    cam_names: Sequence[str] = DEFAULT_CAM_NAMES,
    sample_size: tuple[int, int] = (DEFAULT_H, DEFAULT_W),
    gripper_offset: float = 0.15,
    fast: bool = True,
):
    eef_rpy = np.asarray(eef_rpy, dtype=np.float32)
    c2w = np.asarray(c2w, dtype=np.float32)
    intrinsic = np.asarray(intrinsic, dtype=np.float32)
    if eef_rpy.ndim != 2 or eef_rpy.shape[1] != 14:
        raise ValueError(f"eef_rpy must be (T, 14), got {eef_rpy.shape}")
    views, frames = c2w.shape[:2]
    if intrinsic.shape != (views, 3, 3):
        raise ValueError(f"intrinsic must be (V, 3, 3), got {intrinsic.shape}")
    CALLS.append(
        {
            "eef_rpy": eef_rpy,
            "c2w": c2w,
            "intrinsic": intrinsic,
            "sample_size": sample_size,
            "gripper_offset": gripper_offset,
        }
    )
    height, width = sample_size
    out = np.full((3, views, frames, height, width), 50 / 255, dtype=np.float32)
    for t in range(frames):
        for arm in range(2):
            row = eef_rpy[t, 7 * arm : 7 * arm + 7]
            pose = np.eye(4)
            pose[:3, :3] = Rotation.from_euler("xyz", row[3:6]).as_matrix()
            pose[:3, 3] = row[:3]
            point = pose @ np.array([0.0, 0.0, gripper_offset, 1.0])
            for v in range(views):
                cam = np.linalg.inv(c2w[v, t]) @ point
                if cam[2] <= 0:
                    continue
                u, w = (intrinsic[v] @ cam[:3])[:2] / cam[2]
                u, w = int(u), int(w)
                if 0 <= u < width and 0 <= w < height:
                    out[:, v, t, w, u] = 1.0
    return out
