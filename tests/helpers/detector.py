"""Synthetic episodes for detector tests: two drawn grippers at known projected positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ewmbench.data.layout import Episode, Sidecar, write_episode

K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
RADIUS_M = 0.04  # 20 px at 1 m with fx = 500


def synthetic_poses(frames: int, seed: int) -> np.ndarray:
    """(T, 14) poses with the camera frame equal to the base frame: grasp points 1 m ahead,
    left on the left half of the image, right on the right half, moving smoothly."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, frames)
    poses = np.zeros((frames, 14))
    for arm, (x0, sign) in enumerate(((-0.25, 1), (0.25, -1))):
        phase = rng.uniform(0, np.pi)
        poses[:, arm * 7 + 0] = x0 + sign * 0.1 * np.sin(2 * np.pi * t + phase)
        poses[:, arm * 7 + 1] = 0.12 * np.cos(2 * np.pi * t + phase)
        poses[:, arm * 7 + 2] = 1.0 + 0.1 * t
    return poses


def draw_frames(poses: np.ndarray, radius_m: float = RADIUS_M) -> np.ndarray:
    """Grey frames with a red disc (left) and a blue square (right) at the projected points."""
    import cv2

    frames = np.full((len(poses), 480, 640, 3), 90, dtype=np.uint8)
    for frame, pose in zip(frames, poses):
        for arm, colour in ((0, (220, 40, 40)), (1, (40, 40, 220))):
            x, y, z = pose[arm * 7 : arm * 7 + 3]
            u, v, r = 500 * x / z + 320, 500 * y / z + 240, 500 * radius_m / z
            if arm == 0:
                cv2.circle(frame, (round(u), round(v)), round(r), colour, -1)
            else:
                cv2.rectangle(frame, (round(u - r), round(v - r)), (round(u + r), round(v + r)), colour, -1)
    return frames


def make_episode(
    root: Path,
    task: str,
    episode: str,
    frames: int = 6,
    seed: int = 0,
    embodiment: str | None = None,
    meta: dict | None = None,
) -> Episode:
    poses = synthetic_poses(frames, seed)
    meta = {"gripper_radius_m": RADIUS_M, **(meta or {})}
    if embodiment:
        meta["embodiment"] = embodiment
    sidecar = Sidecar(
        fps=5.0,
        eef_pose=poses,
        intrinsics={"head": K},
        extrinsics={"head": np.repeat(np.eye(4)[None], frames, axis=0)},
        meta=meta,
    )
    return write_episode(root, task, episode, draw_frames(poses), "pick the cube", sidecar=sidecar)


def untrained_detector(path: Path, classes: int = 2) -> Path:
    """An untrained yolov8n detector checkpoint with ``classes`` classes (built from its config)."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=classes, verbose=False)
    model.names = {i: f"class{i}" for i in range(classes)}
    torch.save({"model": model, "train_args": {"task": "detect"}}, path)
    return path
