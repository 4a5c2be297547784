"""The simulated world: cameras, plans, task success and the geometry the sidecar promises."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ewmbench.sim.cameras import CameraSpec, head_extrinsics, look_at, project, view_matrix
from ewmbench.sim.execute import ARMS, execute, home_eef_pose
from ewmbench.sim.record import GRIPPER_RADIUS_M, plan_successful
from ewmbench.sim.tasks import TASKS, frames_per_segment, plan_episode, top_down

LOW_W, LOW_H = 160, 120  # geometry does not depend on resolution; tests render small to stay fast


def test_intrinsics_hand_worked():
    # fov_y 90 deg at 640x480: f = (480 / 2) / tan(45 deg) = 240; centre (639 / 2, 479 / 2)
    k = CameraSpec("x", 90.0, 640, 480).intrinsics()
    np.testing.assert_allclose(k, [[240.0, 0.0, 319.5], [0.0, 240.0, 239.5], [0.0, 0.0, 1.0]])


def test_look_at_axes_hand_worked():
    # A camera 1 m above the origin looking straight down, with "up" = +x in the image:
    # forward = (0, 0, -1); right = forward x up = (0, 0, -1) x (1, 0, 0) = (0, -1, 0);
    # down = forward x right = (0, 0, -1) x (0, -1, 0) = (-1, 0, 0).
    pose = look_at(np.array([0.0, 0.0, 1.0]), np.zeros(3), np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(pose[:3, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, 1], [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, 2], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(pose[:3, 3], [0, 0, 1])
    # the origin projects to the principal point, 1 m deep; a point 0.1 m toward +x goes up
    k = CameraSpec("x", 90.0, 640, 480).intrinsics()
    uvz = project(np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]]), k, pose)
    np.testing.assert_allclose(uvz[0], [319.5, 239.5, 1.0], atol=1e-9)
    np.testing.assert_allclose(uvz[1], [319.5, 239.5 - 24.0, 1.0], atol=1e-9)  # 240 * 0.1 / 1


def test_view_matrix_is_the_inverse_opengl_pose():
    pose = head_extrinsics()
    view = np.array(view_matrix(pose)).reshape(4, 4).T  # column-major
    # a point in front of the camera has negative z in OpenGL eye space
    point = pose[:3, 3] + 0.5 * pose[:3, 2]
    eye = view @ np.append(point, 1.0)
    np.testing.assert_allclose(eye[:3], [0.0, 0.0, -0.5], atol=1e-12)


def test_frames_per_segment_hand_worked():
    # weights 1, 1, 2 over 8 frames: one each, then 5 spare split 1.25, 1.25, 2.5 -> floors 1, 1, 2
    # and the last spare frame to the largest remainder (0.5): 1+1, 1+1, 1+3 = 2, 2, 4
    assert frames_per_segment([1.0, 1.0, 2.0], 8) == [2, 2, 4]
    assert frames_per_segment([3.0, 1.0], 2) == [1, 1]
    with pytest.raises(ValueError, match="cannot hold"):
        frames_per_segment([1.0, 1.0, 1.0], 2)


@pytest.mark.parametrize("task", list(TASKS))
def test_plan_starts_at_home_and_stays_smooth(task):
    plan = plan_episode(0, task, 0)
    actions = plan.actions(24)
    assert actions.shape == (24, 14)
    np.testing.assert_allclose(actions[0], home_eef_pose(tuple(plan.spec.home_joints)))
    assert np.all((actions[:, [6, 13]] >= 0) & (actions[:, [6, 13]] <= 1))
    # no angle jumps (unwrapped) and no teleporting hands: under 15 cm per frame at 10 fps,
    # i.e. below the Panda's 1.7 m/s Cartesian speed limit
    assert np.abs(np.diff(actions[:, [3, 4, 5, 10, 11, 12]], axis=0)).max() < math.pi / 2
    assert np.linalg.norm(np.diff(actions[:, 0:3], axis=0), axis=1).max() < 0.15
    assert np.linalg.norm(np.diff(actions[:, 7:10], axis=0), axis=1).max() < 0.15


def test_different_seeds_vary_layout_and_trajectories():
    for task in TASKS:
        a, b = plan_episode(0, task, 0), plan_episode(1, task, 0)
        assert a.spec.to_json() != b.spec.to_json()
        assert not np.allclose(a.actions(24), b.actions(24))
    # same seed, different episodes differ too; same everything is identical
    assert plan_episode(0, "push", 0).spec.to_json() != plan_episode(0, "push", 1).spec.to_json()
    assert plan_episode(3, "stack", 2).spec.to_json() == plan_episode(3, "stack", 2).spec.to_json()


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_succeeds_and_success_check_can_fail(task):
    plan, actions, attempt = plan_successful(0, task, 0, 24)
    recording = execute(plan.spec, actions, 10.0, views=())
    ok, details = plan.check(recording, plan.spec)
    assert ok, details
    # the same scene with the hands held still must not count as success
    still = np.repeat(actions[:1], len(actions), axis=0)
    ok_still, _ = plan.check(execute(plan.spec, still, 10.0, views=()), plan.spec)
    assert not ok_still


def test_hands_track_their_targets():
    plan, actions, _ = plan_successful(0, "pick_place", 0, 24)
    recording = execute(plan.spec, actions, 10.0, views=())
    # frame 0 exactly; the moving hand lags its target by a few centimetres at most
    np.testing.assert_allclose(recording.eef_pose[0, :3], actions[0, :3], atol=1e-6)
    error = np.linalg.norm(
        recording.eef_pose[:, [0, 1, 2, 7, 8, 9]].reshape(-1, 2, 3)
        - actions[:, [0, 1, 2, 7, 8, 9]].reshape(-1, 2, 3),
        axis=2,
    )
    assert error.max() < 0.05
    assert np.median(error) < 0.01


def test_head_projection_lands_on_the_rendered_objects_and_grippers():
    plan, actions, _ = plan_successful(0, "stack", 0, 24)
    recording = execute(
        plan.spec, actions[:4], 10.0, views=("head",), width=LOW_W, height=LOW_H, segmentation=True
    )
    k, extrinsics, masks = (
        recording.intrinsics["head"],
        recording.extrinsics["head"],
        recording.segmentation["head"],
    )
    # intrinsics of the low-resolution render: f = (120 / 2) / tan(58 deg / 2)
    assert k[1, 1] == pytest.approx(60.0 / math.tan(math.radians(29.0)))
    for obj in plan.spec.objects:
        body = recording.object_body_ids[obj.name]
        top = np.array(recording.object_poses[obj.name][0, :3]) + [0.0, 0.0, obj.size[2] / 2]
        u, v, z = project(top, k, extrinsics[0])[0]
        assert z > 0 and 0 <= u < LOW_W and 0 <= v < LOW_H
        assert masks[0, int(round(v)), int(round(u))] == body  # the pixel shows that very object
    for t in range(len(masks)):
        for arm, offset in zip(ARMS, (0, 7)):
            u, v, z = project(recording.eef_pose[t, offset : offset + 3], k, extrinsics[t])[0]
            assert z > 0 and 0 <= u < LOW_W and 0 <= v < LOW_H
            # the grasp point lies between the fingertips, so its pixel may show what is behind
            # them; the gripper must lie within its bounding radius around that pixel
            radius = int(math.ceil(GRIPPER_RADIUS_M * k[0, 0] / z))
            r, c = int(round(v)), int(round(u))
            window = masks[t, max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1]
            assert recording.robot_body_ids[arm] in window
            assert recording.robot_body_ids[ARMS[1 - ARMS.index(arm)]] not in window  # not the other arm


def test_wrist_cameras_see_their_grasp_point():
    plan, actions, _ = plan_successful(0, "pick_place", 0, 24)
    recording = execute(
        plan.spec,
        actions[:2],
        10.0,
        views=("hand_left", "hand_right"),
        width=LOW_W,
        height=LOW_H,
        segmentation=True,
    )
    for arm, offset in zip(ARMS, (0, 7)):
        view = f"hand_{arm}"
        u, v, z = project(
            recording.eef_pose[0, offset : offset + 3],
            recording.intrinsics[view],
            recording.extrinsics[view][0],
        )[0]
        assert 0.05 < z < 0.3 and 0 <= u < LOW_W and 0 <= v < LOW_H
        # the camera moves with its hand: the hand's own body fills part of its view
        assert (recording.segmentation[view][0] == recording.robot_body_ids[arm]).mean() > 0.02


def test_top_down_orientation_points_the_gripper_down():
    # the gripper's approach axis (its z) points along -z of the base frame at any yaw
    for yaw in (0.0, 0.7, -2.0):
        np.testing.assert_allclose(top_down(yaw).as_matrix()[:, 2], [0, 0, -1], atol=1e-12)


def test_execute_rejects_bad_actions_and_views():
    plan = plan_episode(0, "push", 0)
    with pytest.raises(ValueError, match="actions must be"):
        execute(plan.spec, np.zeros((3, 7)), 10.0, views=())
    with pytest.raises(ValueError, match="unknown views"):
        execute(plan.spec, plan.actions(10), 10.0, views=("top",))
