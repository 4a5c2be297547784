"""Auto-labelling geometry: grasp points projected through hand-worked calibrations."""

from __future__ import annotations

import numpy as np
import pytest

from ewmbench.data.layout import Sidecar, write_episode
from ewmbench.errors import DataError
from ewmbench.perception.autolabel import episode_grippers, project_grippers, project_points
from tests.helpers.detector import RADIUS_M, K, make_episode

# Camera 2 m above the base origin looking straight down: camera x = base x, camera y = -base y,
# camera z (forward) = -base z.
LOOKING_DOWN = np.array([[1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, -1.0, 2.0], [0, 0, 0, 1.0]])


def pose_row(left_xyz, right_xyz) -> np.ndarray:
    row = np.zeros(14)
    row[0:3], row[7:10] = left_xyz, right_xyz
    return row


def test_point_in_camera_frame_projects_by_hand():
    # Identity extrinsics: camera frame = base frame. (0.1, 0, 1): u = 500 * 0.1 / 1 + 320 = 370,
    # v = 500 * 0 / 1 + 240 = 240.
    pixels, depth = project_points(np.array([[0.1, 0.0, 1.0]]), K, np.eye(4))
    np.testing.assert_allclose(pixels, [[370.0, 240.0]])
    np.testing.assert_allclose(depth, [1.0])


def test_extrinsics_are_inverted_for_base_to_camera():
    # Base point (0.1, 0.2, 1): p_cam = R^T (p - t) = R^T (0.1, 0.2, -1) = (0.1, -0.2, 1);
    # u = 500 * 0.1 + 320 = 370, v = 500 * -0.2 + 240 = 140, depth 1.
    pixels, depth = project_points(np.array([[0.1, 0.2, 1.0]]), K, LOOKING_DOWN)
    np.testing.assert_allclose(pixels, [[370.0, 140.0]])
    np.testing.assert_allclose(depth, [1.0])


def test_points_behind_the_camera_have_no_pixel():
    pixels, depth = project_points(np.array([[0.1, 0.0, -1.0], [0.0, 0.0, 0.0]]), K, np.eye(4))
    assert np.isnan(pixels).all()
    np.testing.assert_allclose(depth, [-1.0, 0.0])


def test_box_is_gripper_radius_projected_at_depth():
    # Left at depth 1: half size 500 * 0.04 / 1 = 20 px around (370, 240) -> (350, 220, 390, 260).
    # Right at (0, 0, 2): centre (320, 240), half size 500 * 0.04 / 2 = 10 -> (310, 230, 330, 250).
    poses = pose_row([0.1, 0.0, 1.0], [0.0, 0.0, 2.0])[None]
    gt = project_grippers(poses, K, np.eye(4)[None], RADIUS_M, 640, 480)
    np.testing.assert_allclose(gt.centres[0], [[370, 240], [320, 240]])
    np.testing.assert_allclose(gt.boxes[0], [[350, 220, 390, 260], [310, 230, 330, 250]])
    assert gt.visible.tolist() == [[True, True]]


def test_boxes_are_clipped_and_outside_points_skipped():
    # Left: x = (5 - 320) / 500 = -0.63 at depth 1 -> u = 5, box x from 5 - 20 = -15, clipped to 0.
    # Right: x = 0.7 -> u = 670, outside a 640-wide image: no box. Frame 2: right behind camera.
    poses = np.stack(
        [pose_row([-0.63, 0.0, 1.0], [0.7, 0.0, 1.0]), pose_row([0.0, 0.0, 1.0], [0.0, 0.0, -1.0])]
    )
    gt = project_grippers(poses, K, np.eye(4), RADIUS_M, 640, 480)
    np.testing.assert_allclose(gt.boxes[0, 0], [0, 220, 25, 260])
    assert gt.visible.tolist() == [[True, False], [True, False]]
    assert np.isnan(gt.centres[0, 1]).all() and np.isnan(gt.boxes[1, 1]).all()


def test_episode_grippers_reads_the_sidecar(tmp_path):
    episode = make_episode(tmp_path, "1", "1", frames=4, seed=3)
    gt = episode_grippers(episode, 4, 640, 480)
    poses = episode.sidecar.eef_pose
    # Identity extrinsics: u = 500 x / z + 320, v = 500 y / z + 240.
    expected_left = np.stack(
        [500 * poses[:, 0] / poses[:, 2] + 320, 500 * poses[:, 1] / poses[:, 2] + 240], axis=1
    )
    np.testing.assert_allclose(gt.centres[:, 0], expected_left)
    assert gt.visible.all()


def _episode_with(tmp_path, **changes):
    frames = 3
    fields = dict(
        eef_pose=np.tile(pose_row([0, 0, 1.0], [0.1, 0, 1.0]), (frames, 1)),
        intrinsics={"head": K},
        extrinsics={"head": np.repeat(np.eye(4)[None], frames, axis=0)},
        meta={"gripper_radius_m": RADIUS_M},
    )
    fields.update(changes)
    return write_episode(
        tmp_path, "1", "1", np.zeros((frames, 480, 640, 3), np.uint8), "x", sidecar=Sidecar(**fields)
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eef_pose": None}, "no eef_pose"),
        ({"intrinsics": {}}, "no intrinsics/head"),
        ({"extrinsics": {}}, "no extrinsics/head"),
        ({"meta": {}}, "gripper_radius_m"),
        ({"meta": {"gripper_radius_m": -0.1}}, "gripper_radius_m"),
        ({"extrinsics": {"head": np.repeat(np.eye(4)[None], 2, axis=0)}}, "3 frames"),
    ],
)
def test_missing_calibration_is_a_clear_error(tmp_path, changes, message):
    episode = _episode_with(tmp_path, **changes)
    with pytest.raises(DataError, match=message):
        episode_grippers(episode, 3, 640, 480)


def test_no_sidecar_is_a_clear_error(tmp_path):
    episode = write_episode(tmp_path, "1", "1", np.zeros((2, 48, 64, 3), np.uint8), "x")
    with pytest.raises(DataError, match="no sidecar"):
        episode_grippers(episode, 2, 64, 48)
    assert not (episode.path / "ewmbench").exists()  # nothing written into the episode
