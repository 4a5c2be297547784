"""Action-conditioning renderers: end-effector pose maps, ray maps, and action-space conversions.

Written from the published description of the Genie Envisioner stack (GE-Sim), usable on their
own (``ewmbench data render-conditions`` writes them as images):

* :func:`pose_map`: per view, an image of both end effectors. For each arm the pose is moved
  ``tool_offset_m`` along its tool z axis (the embodiment's grasp point), the origin and one point
  ``axis_length_m`` along each tool axis are projected (OpenCV pinhole), and on a dark grey canvas
  three axis segments are drawn (x red, y green, z blue) under a filled circle at the origin (all
  axes first, then the circles from far to near, so a nearer hand's circle covers a farther one's). The
  circle's radius is a fixed physical size (``circle_radius_m``) projected at the origin's depth,
  so it shrinks with distance; its colour encodes gripper openness on a continuous ramp, greens for
  the left arm and reds for the right (dark = closed, light = open). An arm whose origin is behind
  the camera or outside the image is not drawn.
* :func:`ray_map`: per pixel centre, the camera centre in the base frame (3 channels) and the unit
  ray direction in the base frame (3 channels).
* :func:`euler14_to_quat16` / :func:`quat16_to_euler14`: the sidecar's 14-D layout
  [L xyz, L rpy (extrinsic xyz Euler), L openness 0..1, R ...] and the 16-D quaternion layout
  [L xyz, L quat (x, y, z, w), L gripper in the model's range, R ...].

Pixel convention: ewmbench's sidecar intrinsics put pixel centres at integer coordinates (the
centre of the top-left pixel is (0, 0)); ``pixel_centre=0.5`` selects the other common convention
(the top-left corner is (0, 0), its centre (0.5, 0.5)). :func:`rescale_intrinsics` and
:func:`to_corner_convention` convert between sizes and conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ewmbench.data.layout import GroundTruth
from ewmbench.data.video import video_size, write_frames
from ewmbench.errors import ConfigError

BACKGROUND = (40, 40, 40)
AXIS_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255))  # tool x, y, z
# Openness ramps (closed -> open): dark to light green (left), dark to light red (right).
ARM_RAMPS = {
    "left": (np.array([0.0, 68.0, 27.0]), np.array([199.0, 233.0, 192.0])),
    "right": (np.array([103.0, 0.0, 13.0]), np.array([252.0, 187.0, 161.0])),
}
ARMS = ("left", "right")


@dataclass(frozen=True)
class Embodiment:
    """What the renderers need to know about a robot.

    ``tool_offset_m``: distance along the tool z axis from the recorded end-effector pose to the
    grasp point (GE uses 0.23 m for AgiBot G1 flange poses; the simulated sample's poses already
    sit at the grasp point, so 0). ``gripper_range``: the 16-D action's gripper values for
    (closed, open); the sidecar's openness is 0 closed .. 1 open.
    """

    name: str
    tool_offset_m: float = 0.0
    gripper_range: tuple[float, float] = (0.0, 1.0)


EMBODIMENTS = {
    "ewmbench.sim/1": Embodiment("ewmbench.sim/1", 0.0, (0.0, 1.0)),
    # GE-Sim's 16-D actions carry AgiBot's raw effector position, high = closed: GE's bundled
    # samples hold about 35 with the fingers open and 117-123 holding a handle (the ge-sim options
    # gripper_closed / gripper_open override it).
    "agibot-g1": Embodiment("agibot-g1", 0.23, (120.0, 35.0)),
}


def embodiment(name: str | None, tool_offset_m: float | None = None) -> Embodiment:
    """A known embodiment by name (sidecar ``embodiment`` or ``generator``), optionally overridden."""
    base = EMBODIMENTS.get(name or "", Embodiment(name or "unknown"))
    if tool_offset_m is None:
        return base
    return Embodiment(base.name, float(tool_offset_m), base.gripper_range)


# ---------------------------------------------------------------------------- action spaces


def _check_width(actions: np.ndarray, width: int) -> np.ndarray:
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] != width:
        raise ConfigError(f"actions must be (T, {width}), got shape {actions.shape}")
    return actions


def euler14_to_quat16(actions: np.ndarray, gripper_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """(T, 14) [xyz, rpy, openness] x 2 -> (T, 16) [xyz, quat xyzw, gripper] x 2.

    Openness 0..1 maps linearly onto ``gripper_range`` = (closed value, open value).
    """
    actions = _check_width(actions, 14)
    closed, opened = gripper_range
    out = np.empty((len(actions), 16))
    for arm in range(2):
        src, dst = actions[:, 7 * arm : 7 * arm + 7], out[:, 8 * arm : 8 * arm + 8]
        dst[:, 0:3] = src[:, 0:3]
        dst[:, 3:7] = Rotation.from_euler("xyz", src[:, 3:6]).as_quat()
        dst[:, 7] = closed + src[:, 6] * (opened - closed)
    return out


def quat16_to_euler14(actions: np.ndarray, gripper_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """The inverse of :func:`euler14_to_quat16` (angles in (-pi, pi], unwrapped over time)."""
    actions = _check_width(actions, 16)
    closed, opened = gripper_range
    if opened == closed:
        raise ConfigError("gripper_range must hold two different values (closed, open)")
    out = np.empty((len(actions), 14))
    for arm in range(2):
        src, dst = actions[:, 8 * arm : 8 * arm + 8], out[:, 7 * arm : 7 * arm + 7]
        dst[:, 0:3] = src[:, 0:3]
        dst[:, 3:6] = np.unwrap(Rotation.from_quat(src[:, 3:7]).as_euler("xyz"), axis=0)
        dst[:, 6] = (src[:, 7] - closed) / (opened - closed)
    return out


def pose_matrix(eef14_row: np.ndarray, arm: int, tool_offset_m: float = 0.0) -> np.ndarray:
    """(4, 4) base-frame pose of one arm's grasp point from a 14-D row (offset along tool z)."""
    row = np.asarray(eef14_row, dtype=np.float64)[7 * arm : 7 * arm + 7]
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", row[3:6]).as_matrix()
    pose[:3, 3] = row[0:3] + pose[:3, 2] * tool_offset_m
    return pose


def propagate_extrinsics(hand_poses: np.ndarray, camera_to_base_0: np.ndarray) -> np.ndarray:
    """Per-frame camera-to-base of a camera fixed to a hand, when only frame 0's is known:
    ``c2b_t = pose_t @ inv(pose_0) @ c2b_0`` for hand poses (T, 4, 4)."""
    hand_poses = np.asarray(hand_poses, dtype=np.float64)
    return hand_poses @ np.linalg.inv(hand_poses[0]) @ np.asarray(camera_to_base_0, dtype=np.float64)


def resample_rows(rows: np.ndarray, count: int, source_fps: float, target_fps: float) -> np.ndarray:
    """``count`` rows at ``target_fps`` from ``rows`` at ``source_fps``, linearly interpolated in
    time (positions, unwrapped angles, gripper); past the last row, the last row is held."""
    rows = np.asarray(rows, dtype=np.float64)
    times = np.arange(count) / target_fps * source_fps  # in source frame units
    source = np.arange(len(rows))
    return np.stack([np.interp(times, source, rows[:, j]) for j in range(rows.shape[1])], axis=1)


def resample_poses(poses: np.ndarray, count: int, source_fps: float, target_fps: float) -> np.ndarray:
    """(T, 4, 4) rigid poses resampled like :func:`resample_rows`: translation linearly, rotation by slerp."""
    from scipy.spatial.transform import Slerp

    poses = np.asarray(poses, dtype=np.float64)
    times = np.minimum(np.arange(count) / target_fps * source_fps, len(poses) - 1)
    out = np.tile(np.eye(4), (count, 1, 1))
    if len(poses) == 1:
        out[:] = poses[0]
        return out
    out[:, :3, 3] = resample_rows(poses[:, :3, 3], count, source_fps, target_fps)
    out[:, :3, :3] = Slerp(np.arange(len(poses)), Rotation.from_matrix(poses[:, :3, :3]))(times).as_matrix()
    return out


# ---------------------------------------------------------------------------- cameras


def to_corner_convention(intrinsics: np.ndarray) -> np.ndarray:
    """Intrinsics with pixel centres at integers -> with the top-left corner at (0, 0)."""
    k = np.array(intrinsics, dtype=np.float64)
    k[0, 2] += 0.5
    k[1, 2] += 0.5
    return k


def rescale_intrinsics(
    intrinsics: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int], pixel_centre: float = 0.0
) -> np.ndarray:
    """Intrinsics for the image resized from (h, w) ``from_size`` to ``to_size`` (no crop)."""
    k = np.array(intrinsics, dtype=np.float64)
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    k[0, 0] *= sx
    k[0, 1] *= sx
    k[1, 1] *= sy
    c = 0.5 - pixel_centre  # 0.5 when centres are at integers: scale about the image corner
    k[0, 2] = (k[0, 2] + c) * sx - c
    k[1, 2] = (k[1, 2] + c) * sy - c
    return k


def project(points: np.ndarray, intrinsics: np.ndarray, camera_to_base: np.ndarray) -> np.ndarray:
    """(N, 3) base-frame points -> (N, 3) [u, v, depth] (OpenCV pinhole)."""
    base_to_camera = np.linalg.inv(np.asarray(camera_to_base, dtype=np.float64))
    cam = np.atleast_2d(points) @ base_to_camera[:3, :3].T + base_to_camera[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = cam @ np.asarray(intrinsics, dtype=np.float64).T
        return np.column_stack([uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2], cam[:, 2]])


def ray_map(
    intrinsics: np.ndarray, camera_to_base: np.ndarray, height: int, width: int, pixel_centre: float = 0.0
) -> np.ndarray:
    """(6, H, W) float32: camera centre (3) and unit ray direction (3) per pixel, base frame."""
    c2b = np.asarray(camera_to_base, dtype=np.float64)
    u, v = np.meshgrid(np.arange(width) + pixel_centre, np.arange(height) + pixel_centre)
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1)  # (H, W, 3)
    directions = pixels @ np.linalg.inv(np.asarray(intrinsics, dtype=np.float64)).T @ c2b[:3, :3].T
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    origin = np.broadcast_to(c2b[:3, 3], directions.shape)
    return np.concatenate([origin, directions], axis=-1).transpose(2, 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------- pose maps


def openness_colour(arm: str, openness: float) -> tuple[int, int, int]:
    dark, light = ARM_RAMPS[arm]
    t = float(np.clip(openness, 0.0, 1.0))
    return tuple(int(round(c)) for c in dark + t * (light - dark))


def pose_map(
    eef14_row: np.ndarray,
    intrinsics: np.ndarray,
    camera_to_base: np.ndarray,
    height: int,
    width: int,
    tool_offset_m: float = 0.0,
    axis_length_m: float = 0.1,
    circle_radius_m: float = 0.02,
    pixel_centre: float = 0.0,
) -> np.ndarray:
    """(H, W, 3) uint8 pose map of both arms for one frame (see the module docstring)."""
    import cv2

    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    shift = 4  # sub-pixel drawing: coordinates in 1/16 pixel
    scale = 1 << shift
    k = np.asarray(intrinsics, dtype=np.float64)
    focal = 0.5 * (k[0, 0] + k[1, 1])
    row = np.asarray(eef14_row, dtype=np.float64)
    if row.shape != (14,):
        raise ConfigError(f"an end-effector row must have 14 values, got shape {row.shape}")
    drawn = []  # (depth, arm, projected points) of the arms in view
    for index, arm in enumerate(ARMS):
        pose = pose_matrix(row, index, tool_offset_m)
        points = np.vstack(
            [pose[:3, 3], pose[:3, 3] + axis_length_m * pose[:3, :3].T]
        )  # origin, x, y, z tips
        projected = project(points, k, camera_to_base)
        u, v, depth = projected[0]
        if depth > 0 and 0 <= u - pixel_centre + 0.5 < width and 0 <= v - pixel_centre + 0.5 < height:
            drawn.append((depth, index, arm, projected))

    def at(p):  # cv2 puts pixel centres at integers; shift from the intrinsics' convention to it
        return (int(round((p[0] - pixel_centre) * scale)), int(round((p[1] - pixel_centre) * scale)))

    # Every axis first, then the circles from far to near, so no axis hides a circle and a nearer
    # hand's circle covers a farther one's, as the hands would.
    for _, _, _, projected in drawn:
        for axis in range(3):
            tip = projected[1 + axis]
            if tip[2] > 0:
                cv2.line(canvas, at(projected[0]), at(tip), AXIS_COLOURS[axis], 2, cv2.LINE_AA, shift)
    for depth, index, arm, projected in sorted(drawn, key=lambda item: -item[0]):
        radius = max(1.0, circle_radius_m * focal / depth)
        cv2.circle(
            canvas,
            at(projected[0]),
            int(round(radius * scale)),
            openness_colour(arm, row[7 * index + 6]),
            -1,
            cv2.LINE_AA,
            shift,
        )
    return canvas


def pose_maps(
    eef: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray, height: int, width: int, **kwargs
) -> np.ndarray:
    """(T, H, W, 3) pose maps for (T, 14) poses and (T, 4, 4) camera-to-base extrinsics."""
    eef = np.asarray(eef)
    if len(extrinsics) < len(eef):
        raise ConfigError(f"extrinsics cover {len(extrinsics)} frames, the poses {len(eef)}")
    return np.stack(
        [pose_map(eef[t], intrinsics, extrinsics[t], height, width, **kwargs) for t in range(len(eef))]
    )


def ray_map_image(rays: np.ndarray) -> np.ndarray:
    """A viewable (H, W, 3) uint8 picture of a ray map's directions: (d + 1) / 2 as RGB."""
    return np.clip((rays[3:6].transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def render_dataset_conditions(dataset, output, tool_offset_m: float | None = None, progress=None) -> dict:
    """Write pose maps and ray maps of every episode with poses and calibration, as PNG frames.

    ``<output>/<task>/<episode>/pose_map/<view>/frame_*.png`` and ``ray_map/<view>/frame_*.png``
    (directions as colours). Poses are the sidecar's ``eef_pose`` (else ``actions``). Returns
    which episodes and views were written and which were skipped, with the reason.
    """
    from pathlib import Path

    output = Path(output)
    gt = GroundTruth(Path(dataset))
    report: dict = {"written": [], "skipped": []}
    for episode in gt.episodes:
        sidecar = episode.sidecar
        where = f"{episode.task}/{episode.episode}"
        poses = (
            None
            if sidecar is None
            else (sidecar.eef_pose if sidecar.eef_pose is not None else sidecar.actions)
        )
        if poses is None:
            report["skipped"].append({"episode": where, "reason": "no sidecar eef_pose or actions"})
            continue
        body = embodiment(sidecar.meta.get("embodiment") or sidecar.meta.get("generator"), tool_offset_m)
        for view in sidecar.views:
            if view not in sidecar.intrinsics or view not in sidecar.extrinsics:
                report["skipped"].append(
                    {
                        "episode": where,
                        "view": view,
                        "reason": f"no intrinsics/{view} or extrinsics/{view} in the sidecar",
                    }
                )
                continue
            _, height, width = video_size(episode.video_path(view))
            extrinsics = sidecar.extrinsics[view]
            frames = min(len(poses), len(extrinsics))
            maps = pose_maps(
                poses[:frames],
                sidecar.intrinsics[view],
                extrinsics,
                height,
                width,
                tool_offset_m=body.tool_offset_m,
            )
            rays = np.stack(
                [
                    ray_map_image(ray_map(sidecar.intrinsics[view], extrinsics[t], height, width))
                    for t in range(frames)
                ]
            )
            folder = output / episode.task / episode.episode
            write_frames(maps, folder / "pose_map" / view, suffix=".png")
            write_frames(rays, folder / "ray_map" / view, suffix=".png")
            report["written"].append(
                {"episode": where, "view": view, "frames": frames, "tool_offset_m": body.tool_offset_m}
            )
        if progress:
            progress()
    return report
