"""Cameras: the fixed head camera and one camera on each wrist, rendered by pybullet's CPU renderer.

Conventions written to the sidecar:

* intrinsics ``K`` (3, 3) in pixels, OpenCV style: pixel centres at integer coordinates, so the
  principal point of a centred camera is ((W - 1) / 2, (H - 1) / 2);
* extrinsics camera-to-base (4, 4), camera axes OpenCV style: x right, y down, z forward.

Both the pybullet view matrix and the extrinsics are derived from one rotation, so projecting a
base-frame point with ``K @ inv(extrinsics)`` lands on the pixel where the renderer draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WIDTH, HEIGHT = 640, 480
NEAR, FAR = 0.01, 5.0
HEAD_FOV_Y_DEG = 58.0
WRIST_FOV_Y_DEG = 70.0
# Head camera: above and behind the arms, looking down at the workspace.
HEAD_EYE = (-0.12, 0.0, 0.78)
HEAD_TARGET = (0.52, 0.0, 0.0)
# Wrist camera in the grasp-target frame (hand z = approach direction, hand x = across the
# palm): mounted on the back of the hand, looking past the fingertips at what they grasp.
WRIST_EYE_IN_HAND = (0.075, 0.0, -0.09)
WRIST_TARGET_IN_HAND = (0.0, 0.0, 0.06)
WRIST_UP_IN_HAND = (1.0, 0.0, 0.0)


@dataclass(frozen=True)
class CameraSpec:
    name: str
    fov_y_deg: float
    width: int = WIDTH
    height: int = HEIGHT

    def intrinsics(self) -> np.ndarray:
        f = (self.height / 2) / math.tan(math.radians(self.fov_y_deg) / 2)
        return np.array([[f, 0.0, (self.width - 1) / 2], [0.0, f, (self.height - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Camera-to-base (4, 4) in OpenCV axes for a camera at ``eye`` looking at ``target``."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def head_extrinsics() -> np.ndarray:
    return look_at(np.array(HEAD_EYE), np.array(HEAD_TARGET), np.array([0.0, 0.0, 1.0]))


def wrist_extrinsics(hand_position: np.ndarray, hand_rotation: np.ndarray) -> np.ndarray:
    """The wrist camera pose from the grasp-target link's pose (position, 3x3 rotation)."""
    eye = hand_position + hand_rotation @ np.array(WRIST_EYE_IN_HAND)
    target = hand_position + hand_rotation @ np.array(WRIST_TARGET_IN_HAND)
    up = hand_rotation @ np.array(WRIST_UP_IN_HAND)
    return look_at(eye, target, up)


def view_matrix(camera_to_base: np.ndarray) -> list[float]:
    """pybullet's (OpenGL, column-major) view matrix for an OpenCV camera-to-base pose."""
    gl_pose = camera_to_base.copy()
    gl_pose[:3, 1:3] *= -1.0  # OpenGL cameras look down -z with y up
    return np.linalg.inv(gl_pose).T.reshape(-1).tolist()


def projection_matrix(camera: CameraSpec) -> list[float]:
    import pybullet as p

    return list(p.computeProjectionMatrixFOV(camera.fov_y_deg, camera.width / camera.height, NEAR, FAR))


def render(
    client: int, camera: CameraSpec, camera_to_base: np.ndarray, segmentation: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (H, W, 3) uint8, and the segmentation mask (H, W) of body ids when asked."""
    import pybullet as p

    flags = 0 if segmentation else p.ER_NO_SEGMENTATION_MASK
    _, _, rgba, _, seg = p.getCameraImage(
        camera.width,
        camera.height,
        view_matrix(camera_to_base),
        projection_matrix(camera),
        renderer=p.ER_TINY_RENDERER,
        flags=flags,
        physicsClientId=client,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[..., :3].copy()
    mask = np.asarray(seg, dtype=np.int64).reshape(camera.height, camera.width) if segmentation else None
    return rgb, mask


def project(points_base: np.ndarray, intrinsics: np.ndarray, camera_to_base: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) and depth (N,) of base-frame points: returns (N, 3) [u, v, z]."""
    points = np.atleast_2d(points_base)
    base_to_camera = np.linalg.inv(camera_to_base)
    cam = points @ base_to_camera[:3, :3].T + base_to_camera[:3, 3]
    uv = cam @ intrinsics.T
    return np.column_stack([uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2], cam[:, 2]])
