"""Action-conditioning renderers: pose maps, ray maps, action-space conversions (hand-checked)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ewmbench.data.layout import GroundTruth, write_episode
from ewmbench.errors import ConfigError
from ewmbench.models.conditioning import (
    BACKGROUND,
    embodiment,
    euler14_to_quat16,
    openness_colour,
    pose_map,
    pose_matrix,
    propagate_extrinsics,
    quat16_to_euler14,
    ray_map,
    rescale_intrinsics,
    to_corner_convention,
)
from ewmbench.sim.cameras import project as sim_project

W, H, FRAMES = 160, 120, 12


@pytest.fixture(scope="module")
def sample_episode(tmp_path_factory):
    from ewmbench.sim.record import episode_sidecar, record_episode

    root = tmp_path_factory.mktemp("gt")
    recorded = record_episode(5, "pick_place", 0, FRAMES, width=W, height=H)
    frames = recorded.recording.frames
    write_episode(
        root,
        "1",
        "0",
        frames["head"],
        recorded.plan.instruction,
        sidecar=episode_sidecar(recorded, 5),
        extra_views={"hand_left": frames["hand_left"], "hand_right": frames["hand_right"]},
    )
    return GroundTruth(root).episode("1", "0")


def circle_centre(image: np.ndarray, colour) -> tuple[float, float] | None:
    """Centroid (u, v) of pixels exactly of ``colour`` (the filled circle's interior)."""
    ys, xs = np.nonzero(np.all(image == np.array(colour, np.uint8), axis=-1))
    return (xs.mean(), ys.mean()) if len(xs) >= 5 else None


def test_pose_map_circle_centre_is_the_projected_grasp_point_in_every_view(sample_episode):
    """Every circle the map shows whole (not cut by the image edge, not under a nearer hand's
    circle) is centred on the grasp point projected by the simulator's own camera code."""
    sidecar = sample_episode.sidecar
    assert (
        embodiment(sidecar.meta["generator"]).tool_offset_m == 0.0
    )  # the sample's poses sit at the grasp point
    checked = {view: 0 for view in sidecar.views}
    for view in sidecar.views:
        k = sidecar.intrinsics[view]
        focal = (k[0, 0] + k[1, 1]) / 2
        for t in range(FRAMES):
            row, camera = sidecar.eef_pose[t], sidecar.extrinsics[view][t]
            image = pose_map(row, k, camera, H, W)
            projected = [sim_project(row[7 * i : 7 * i + 3], k, camera)[0] for i in (0, 1)]
            for arm, index in (("left", 0), ("right", 1)):
                u, v, depth = projected[index]
                if depth <= 0:
                    continue
                radius = 0.02 * focal / depth  # the default circle: 2 cm at the grasp point's depth
                if not (radius + 1 <= u < W - radius - 1 and radius + 1 <= v < H - radius - 1):
                    continue  # cut by the image edge
                ou, ov, odepth = projected[1 - index]
                if 0 < odepth < depth and np.hypot(ou - u, ov - v) < radius + 0.02 * focal / odepth + 2:
                    continue  # under the nearer hand's circle
                centre = circle_centre(image, openness_colour(arm, row[7 * index + 6]))
                assert centre is not None, (view, t, arm)
                assert abs(centre[0] - u) <= 1.0 and abs(centre[1] - v) <= 1.0, (view, t, arm, centre, (u, v))
                checked[view] += 1
    assert all(count >= FRAMES // 2 for count in checked.values()), checked  # every view checked many times


def test_pose_map_geometry_hand_worked():
    # camera at the base origin looking along base +z (identity camera-to-base), f = 100, centre (49.5, 39.5)
    k = np.array([[100.0, 0, 49.5], [0, 100.0, 39.5], [0, 0, 1]])
    row = np.zeros(14)
    row[0:3] = [0.1, 0.0, 1.0]  # left arm 1 m ahead, 0.1 m right -> u = 49.5 + 10
    row[6] = 1.0  # open
    row[7:10] = [0.0, 0.0, -1.0]  # right arm behind the camera: not drawn
    image = pose_map(row, k, np.eye(4), 80, 100, circle_radius_m=0.05)
    u, v = circle_centre(image, openness_colour("left", 1.0))
    assert abs(u - 59.5) <= 0.5 and abs(v - 39.5) <= 0.5
    # radius 0.05 m at 1 m with f = 100 -> 5 px; at 2 m -> 2.5 px: area shrinks with depth
    near = np.all(image == np.array(openness_colour("left", 1.0), np.uint8), axis=-1).sum()
    row[2] = 2.0
    far = np.all(
        pose_map(row, k, np.eye(4), 80, 100, circle_radius_m=0.05)
        == np.array(openness_colour("left", 1.0), np.uint8),
        axis=-1,
    ).sum()
    assert 60 < near < 90 and 10 < far < 25  # pi 5^2 = 78.5, pi 2.5^2 = 19.6 (interior pixels only)
    assert not np.any(np.all(image == np.array(openness_colour("right", 0.0), np.uint8), axis=-1))
    assert tuple(image[0, 0]) == BACKGROUND


def test_tool_offset_moves_the_origin_along_tool_z():
    row = np.zeros(14)
    row[3:6] = [0.0, np.pi / 2, 0.0]  # pitch 90 degrees: tool z points along base -x... Rotation decides
    pose = pose_matrix(row, 0, tool_offset_m=0.23)
    np.testing.assert_allclose(
        pose[:3, 3], 0.23 * Rotation.from_euler("xyz", [0, np.pi / 2, 0]).as_matrix()[:, 2]
    )
    np.testing.assert_allclose(pose[:3, 3], [0.23, 0, 0], atol=1e-12)
    assert embodiment("agibot-g1").tool_offset_m == 0.23 and embodiment("agibot-g1", 0.1).tool_offset_m == 0.1


def test_openness_colours():
    assert openness_colour("left", 0.0) == (0, 68, 27) and openness_colour("right", 1.0) == (252, 187, 161)
    dark, light = openness_colour("left", 0.2), openness_colour("left", 0.8)
    assert sum(light) > sum(dark)  # light = open


def test_ray_directions_are_unit_vectors_through_pixel_centres(sample_episode):
    sidecar = sample_episode.sidecar
    for view in sidecar.views:
        k, c2b = sidecar.intrinsics[view], sidecar.extrinsics[view][3]
        rays = ray_map(k, c2b, H, W)
        assert rays.shape == (6, H, W) and rays.dtype == np.float32
        np.testing.assert_allclose(rays[:3], np.broadcast_to(c2b[:3, 3, None, None], (3, H, W)), atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(rays[3:], axis=0), 1.0, atol=1e-6)
        # a point 1 m along each ray projects back onto that pixel's centre (integers in this convention)
        for v, u in [(0, 0), (H - 1, W - 1), (37, 101)]:
            point = rays[:3, v, u].astype(np.float64) + rays[3:, v, u]
            pu, pv, depth = sim_project(point, k, c2b)[0]
            assert depth > 0 and abs(pu - u) < 1e-3 and abs(pv - v) < 1e-3


def test_ray_map_in_the_corner_convention():
    k = np.array([[50.0, 0, 2.0], [0, 50.0, 1.5], [0, 0, 1]])  # 4x3 image, corner convention
    rays = ray_map(k, np.eye(4), 3, 4, pixel_centre=0.5)
    # pixel (u=1, v=1): centre (1.5, 1.5) -> direction (1.5 - 2, 0, 50) normalised
    np.testing.assert_allclose(
        rays[3:, 1, 1], np.array([-0.5, 0, 50]) / np.linalg.norm([-0.5, 0, 50]), atol=1e-6
    )


def test_intrinsics_rescaling_and_conventions():
    k = np.array([[100.0, 0, 319.5], [0, 100.0, 239.5], [0, 0, 1]])  # 640x480, centres at integers
    half = rescale_intrinsics(k, (480, 640), (240, 320))
    np.testing.assert_allclose(half, [[50, 0, 159.5], [0, 50, 119.5], [0, 0, 1]])
    corner = to_corner_convention(k)
    assert corner[0, 2] == 320 and corner[1, 2] == 240
    np.testing.assert_allclose(
        rescale_intrinsics(corner, (480, 640), (192, 256), pixel_centre=0.5),
        [[40, 0, 128], [0, 40, 96], [0, 0, 1]],
    )


def test_euler_quat_round_trip_and_gripper_range():
    rng = np.random.default_rng(0)
    actions = np.column_stack(
        [
            rng.normal(size=(5, 3)),
            rng.uniform(-3, 3, (5, 3)),
            rng.uniform(0, 1, (5, 1)),
            rng.normal(size=(5, 3)),
            rng.uniform(-3, 3, (5, 3)),
            rng.uniform(0, 1, (5, 1)),
        ]
    )
    quat = euler14_to_quat16(actions, (0.0, 120.0))
    assert quat.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(quat[:, 3:7], axis=1), 1.0)
    np.testing.assert_allclose(quat[:, 7], actions[:, 6] * 120.0)
    np.testing.assert_allclose(quat[:, 15], actions[:, 13] * 120.0)
    back = quat16_to_euler14(quat, (0.0, 120.0))
    np.testing.assert_allclose(
        Rotation.from_euler("xyz", back[:, 3:6]).as_matrix(),
        Rotation.from_euler("xyz", actions[:, 3:6]).as_matrix(),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        back[:, [0, 1, 2, 6, 7, 8, 9, 13]], actions[:, [0, 1, 2, 6, 7, 8, 9, 13]], atol=1e-12
    )
    # hand-worked: yaw 90 degrees is the quaternion (0, 0, sin 45, cos 45); an inverted range maps open to 0
    row = np.zeros((1, 14))
    row[0, 5], row[0, 6] = np.pi / 2, 1.0
    np.testing.assert_allclose(
        euler14_to_quat16(row, (120.0, 0.0))[0, 3:8], [0, 0, np.sqrt(0.5), np.sqrt(0.5), 0.0], atol=1e-12
    )
    with pytest.raises(ConfigError, match="\\(T, 14\\)"):
        euler14_to_quat16(np.zeros((3, 16)))
    with pytest.raises(ConfigError, match="\\(T, 16\\)"):
        quat16_to_euler14(np.zeros((3, 14)))


def test_propagated_wrist_extrinsics_follow_the_hand():
    hand = np.tile(np.eye(4), (3, 1, 1))
    hand[1, :3, 3] = [0.1, 0, 0]
    hand[2, :3, :3] = Rotation.from_euler("z", 0.3).as_matrix()
    c2b0 = np.eye(4)
    c2b0[:3, 3] = [0, 0, 0.05]
    c2b = propagate_extrinsics(hand, c2b0)
    # the camera keeps its pose relative to the hand in every frame
    for t in range(3):
        np.testing.assert_allclose(np.linalg.inv(hand[t]) @ c2b[t], c2b0, atol=1e-12)


def test_render_conditions_command(sample_episode, tmp_path):
    from typer.testing import CliRunner

    from ewmbench.cli import app
    from ewmbench.data.video import read_video

    out = tmp_path / "conditions"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "render-conditions",
            "--dataset",
            str(sample_episode.path.parent.parent),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    for view in ("head", "hand_left", "hand_right"):
        maps = read_video(out / "1" / "0" / "pose_map" / view)
        assert maps.shape == (FRAMES, H, W, 3) and np.any(maps != np.array(BACKGROUND, np.uint8))
        assert read_video(out / "1" / "0" / "ray_map" / view).shape == (FRAMES, H, W, 3)
    again = CliRunner().invoke(
        app,
        [
            "data",
            "render-conditions",
            "--dataset",
            str(sample_episode.path.parent.parent),
            "--output",
            str(out),
        ],
    )
    assert again.exit_code == 2 and "not empty" in again.output
