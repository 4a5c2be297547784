"""Gripper boxes from end-effector poses and camera calibration, for training and validation.

Each frame's grasp point (sidecar ``eef_pose``, robot base frame) is moved into the camera frame
with the inverse of the camera-to-base extrinsics (OpenCV axes: x right, y down, z forward) and
projected with the pinhole intrinsics. The box is a square of the gripper's radius projected at
the point's depth (half-width ``fx * r / z``, half-height ``fy * r / z``), clipped to the image.
A point behind the camera or projecting outside the image has no box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ewmbench.data.layout import HEAD_VIEW, Episode
from ewmbench.errors import DataError

# Columns of the grasp point of each arm in the 14-D eef_pose: [L xyz, L rpy, L grip, R xyz, ...].
LEFT_XYZ = slice(0, 3)
RIGHT_XYZ = slice(7, 10)
# Points closer than this to the camera plane are treated as behind it (no finite projection).
MIN_DEPTH_M = 1e-6


@dataclass(frozen=True)
class ProjectedGrippers:
    """Per-frame projected grippers of one episode, index 0 = left, 1 = right.

    ``centres`` (T, 2, 2) pixels (x, y); ``boxes`` (T, 2, 4) pixels (x1, y1, x2, y2), clipped to
    the image; ``visible`` (T, 2) bool: the point is in front of the camera and its centre inside
    the image. Entries of invisible grippers are NaN.
    """

    centres: np.ndarray
    boxes: np.ndarray
    visible: np.ndarray
    width: int
    height: int


def project_points(
    points_base: np.ndarray, intrinsics: np.ndarray, camera_to_base: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 2) and depths (N,) of base-frame points (N, 3).

    ``camera_to_base`` is (4, 4) or one (N, 4, 4) per point. Points with depth <= MIN_DEPTH_M get
    NaN pixels.
    """
    points = np.asarray(points_base, dtype=np.float64).reshape(-1, 3)
    pose = np.asarray(camera_to_base, dtype=np.float64)
    if pose.ndim == 2:
        pose = np.broadcast_to(pose, (len(points), 4, 4))
    rotation, translation = pose[:, :3, :3], pose[:, :3, 3]
    # base -> camera is the inverse rigid transform: p_cam = R^T (p_base - t).
    in_camera = np.einsum("nji,nj->ni", rotation, points - translation)
    depth = in_camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        homogeneous = in_camera @ np.asarray(intrinsics, dtype=np.float64).T
        pixels = homogeneous[:, :2] / homogeneous[:, 2:3]
    pixels[depth <= MIN_DEPTH_M] = np.nan
    return pixels, depth


def project_grippers(
    eef_pose: np.ndarray,
    intrinsics: np.ndarray,
    camera_to_base: np.ndarray,
    gripper_radius_m: float,
    width: int,
    height: int,
) -> ProjectedGrippers:
    """Project both arms' grasp points of (T, 14) poses into a (width x height) image."""
    eef_pose = np.asarray(eef_pose, dtype=np.float64)
    frames = len(eef_pose)
    k = np.asarray(intrinsics, dtype=np.float64)
    centres = np.full((frames, 2, 2), np.nan)
    boxes = np.full((frames, 2, 4), np.nan)
    visible = np.zeros((frames, 2), dtype=bool)
    for arm, columns in enumerate((LEFT_XYZ, RIGHT_XYZ)):
        pixels, depth = project_points(eef_pose[:, columns], k, camera_to_base)
        inside = (
            (depth > MIN_DEPTH_M)
            & (pixels[:, 0] >= 0) & (pixels[:, 0] < width)
            & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
        )  # fmt: skip
        safe_depth = np.where(inside, depth, 1.0)
        half_w = k[0, 0] * gripper_radius_m / safe_depth
        half_h = k[1, 1] * gripper_radius_m / safe_depth
        box = np.stack(
            [
                np.clip(pixels[:, 0] - half_w, 0, width),
                np.clip(pixels[:, 1] - half_h, 0, height),
                np.clip(pixels[:, 0] + half_w, 0, width),
                np.clip(pixels[:, 1] + half_h, 0, height),
            ],
            axis=1,
        )
        centres[inside, arm] = pixels[inside]
        boxes[inside, arm] = box[inside]
        visible[:, arm] = inside
    return ProjectedGrippers(centres, boxes, visible, width, height)


def episode_grippers(
    episode: Episode, frames: int, width: int, height: int, view: str = HEAD_VIEW
) -> ProjectedGrippers:
    """Projected grippers of a GT episode's ``view``, from its sidecar; clear errors when the
    poses or calibration are missing or do not match the video."""
    sidecar = episode.sidecar
    where = episode.path / "ewmbench"
    if sidecar is None:
        raise DataError(
            where,
            "no sidecar (meta.json, arrays.npz): end-effector poses and camera calibration are needed to label grippers",
        )
    if sidecar.eef_pose is None:
        raise DataError(
            where / "arrays.npz", "no eef_pose: per-frame end-effector poses are needed to label grippers"
        )
    if view not in sidecar.intrinsics:
        raise DataError(
            where / "arrays.npz", f"no intrinsics/{view}: camera calibration is needed to label grippers"
        )
    if view not in sidecar.extrinsics:
        raise DataError(
            where / "arrays.npz", f"no extrinsics/{view}: camera calibration is needed to label grippers"
        )
    radius = sidecar.meta.get("gripper_radius_m")
    if not isinstance(radius, (int, float)) or isinstance(radius, bool) or not radius > 0:
        raise DataError(
            where / "meta.json", f"gripper_radius_m must be a positive number (metres), got {radius!r}"
        )
    extrinsics = sidecar.extrinsics[view]
    if len(sidecar.eef_pose) != frames or len(extrinsics) != frames:
        raise DataError(
            where / "arrays.npz",
            f"video has {frames} frames but eef_pose has {len(sidecar.eef_pose)} and extrinsics/{view} {len(extrinsics)}",
        )
    if not np.all(np.isfinite(sidecar.eef_pose[:, LEFT_XYZ])) or not np.all(
        np.isfinite(sidecar.eef_pose[:, RIGHT_XYZ])
    ):
        raise DataError(where / "arrays.npz", "eef_pose has non-finite grasp-point positions")
    return project_grippers(
        sidecar.eef_pose, sidecar.intrinsics[view], extrinsics, float(radius), width, height
    )
