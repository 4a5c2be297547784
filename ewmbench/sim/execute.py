"""The one function that turns an initial scene and per-frame end-effector targets into an episode.

Ground truth is recorded by :func:`execute`, and the ``sim`` world model replays recorded actions
through the same function, so an undegraded replay reproduces the ground-truth frames exactly.

Timing: frame 0 shows the initial state. For t >= 1, ``actions[t]`` is commanded (inverse
kinematics to joint targets, position control) and physics advances ``SUBSTEPS_PER_SECOND / fps``
steps before frame t is rendered. ``actions[0]`` is the initial end-effector pose.

Action / pose layout (14 per frame): [left xyz, left rpy, left gripper, right xyz, right rpy,
right gripper]; xyz is the grasp point between the fingertips (``panda_grasptarget``) in the robot
base frame, rpy are extrinsic x-y-z Euler angles (roll about base x, then pitch about base y, then
yaw about base z; ``scipy``'s ``"xyz"``), unwrapped over time so they never jump by 2 pi; gripper
openness is 1 fully open (8 cm between the fingers) and 0 closed.

Grasping: contact-only grasps of simulated fingers are fragile, so in the frame where a gripper's
command crosses from open to closed (openness below 0.5), an object whose box (grown by
GRASP_MARGIN) contains the grasp point is fixed to the hand by a constraint until the gripper is
commanded open again. A hand that is already closed never picks anything up (pushing stays pushing). Fingers
still close on the object and collide with everything as usual.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.spatial.transform import Rotation

from ewmbench.errors import require
from ewmbench.sim.cameras import (
    HEAD_FOV_Y_DEG,
    WRIST_FOV_Y_DEG,
    CameraSpec,
    head_extrinsics,
    render,
    wrist_extrinsics,
)
from ewmbench.sim.scene import ARM_OFFSET_Y, FINGER_OPEN, SceneSpec, build_scene

ARMS = ("left", "right")
VIEWS = ("head", "hand_left", "hand_right")
SUBSTEPS_PER_SECOND = 240
GRASP_LINK = 11  # panda_grasptarget: the point between the fingertips
ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
FINGER_FORCE = 40.0
GRASP_MARGIN = 0.012
GRIPPER_CLOSED_BELOW = 0.5
JOINT_NAMES = tuple(
    f"{arm}_{name}" for arm in ARMS for name in [*(f"joint{i}" for i in range(1, 8)), "finger1", "finger2"]
)


@dataclass
class Recording:
    """Everything one execution produced, per frame."""

    frames: dict[str, np.ndarray]  # view -> (T, H, W, 3) uint8
    eef_pose: np.ndarray  # (T, 14)
    joint_positions: np.ndarray  # (T, 18), order JOINT_NAMES
    extrinsics: dict[str, np.ndarray]  # view -> (T, 4, 4) camera-to-base, OpenCV axes
    intrinsics: dict[str, np.ndarray]  # view -> (3, 3)
    object_poses: dict[str, np.ndarray]  # object name -> (T, 7) xyz + quaternion (x, y, z, w)
    held: list[dict[str, str | None]] = field(default_factory=list)  # per frame, arm -> object held
    segmentation: dict[str, np.ndarray] = field(default_factory=dict)  # view -> (T, H, W) body ids
    robot_body_ids: dict[str, int] = field(default_factory=dict)
    object_body_ids: dict[str, int] = field(default_factory=dict)


def cameras(width: int = 640, height: int = 480) -> dict[str, CameraSpec]:
    return {
        "head": CameraSpec("head", HEAD_FOV_Y_DEG, width, height),
        "hand_left": CameraSpec("hand_left", WRIST_FOV_Y_DEG, width, height),
        "hand_right": CameraSpec("hand_right", WRIST_FOV_Y_DEG, width, height),
    }


def rpy_to_quat(rpy: np.ndarray) -> np.ndarray:
    return Rotation.from_euler("xyz", rpy).as_quat()


def quat_to_rpy(quat: np.ndarray) -> np.ndarray:
    return Rotation.from_quat(quat).as_euler("xyz")


@contextmanager
def _quiet_stderr():
    """Standard error silenced at the file-descriptor level: pybullet's C code prints its build
    banner there when it is imported, past Python's sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_pybullet(purpose: str = "the simulator (sample dataset, sim model)"):
    """pybullet, or a clear error naming the extra; imported without its build-time banner."""
    with _quiet_stderr():
        return require("pybullet", "sim", purpose)


def _connect() -> int:
    p = import_pybullet()
    import pybullet_data

    client = p.connect(p.DIRECT)
    p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
    p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=client)
    p.setGravity(0.0, 0.0, -9.81, physicsClientId=client)
    p.setTimeStep(1.0 / SUBSTEPS_PER_SECOND, physicsClientId=client)
    return client


def _load_arms(client: int, home_joints: tuple[float, ...], openness: tuple[float, float]) -> dict[str, int]:
    import pybullet as p

    robots = {}
    for arm, sign, grip in zip(ARMS, (1.0, -1.0), openness):
        body = p.loadURDF(
            "franka_panda/panda.urdf",
            (0.0, sign * ARM_OFFSET_Y, 0.0),
            useFixedBase=True,
            physicsClientId=client,
        )
        for joint, angle in zip(ARM_JOINTS, home_joints):
            p.resetJointState(body, joint, angle, physicsClientId=client)
        for joint in FINGER_JOINTS:
            p.resetJointState(body, joint, grip * FINGER_OPEN, physicsClientId=client)
            p.changeDynamics(body, joint, lateralFriction=1.0, physicsClientId=client)
        robots[arm] = body
    return robots


def _grasp_pose(client: int, body: int) -> tuple[np.ndarray, np.ndarray]:
    import pybullet as p

    state = p.getLinkState(body, GRASP_LINK, computeForwardKinematics=True, physicsClientId=client)
    return np.array(state[4]), np.array(state[5])


@lru_cache(maxsize=8)
def home_eef_pose(home_joints: tuple[float, ...]) -> tuple[float, ...]:
    """The 14-D pose of both hands at ``home_joints`` with open grippers."""
    import pybullet as p

    client = _connect()
    try:
        robots = _load_arms(client, home_joints, (1.0, 1.0))
        pose = []
        for arm in ARMS:
            position, quat = _grasp_pose(client, robots[arm])
            pose += [*position, *quat_to_rpy(quat), 1.0]
        return tuple(float(v) for v in pose)
    finally:
        p.disconnect(client)


def _ik_limits(client: int, body: int, home_joints: tuple[float, ...]) -> tuple[list, list, list, list]:
    import pybullet as p

    lower, upper, ranges, rest = [], [], [], []
    for joint in range(p.getNumJoints(body, physicsClientId=client)):
        info = p.getJointInfo(body, joint, physicsClientId=client)
        if info[2] == p.JOINT_FIXED:
            continue
        lower.append(info[8])
        upper.append(info[9])
        ranges.append(info[9] - info[8])
        # Bias the redundant degree of freedom toward the home posture, not the current one,
        # so a hand held still does not drift through the null space.
        rest.append(home_joints[joint] if joint < len(home_joints) else 0.0)
    return lower, upper, ranges, rest


@dataclass(frozen=True)
class Physics:
    """Physical settings a world model may get wrong, as departures from the reference simulator.

    The defaults are the reference (the settings every sample episode was recorded with).
    ``friction`` and ``mass`` scale every movable object's lateral friction and mass;
    ``grasp_force`` is the most force (N) the grasp constraint transmits before the object slips
    out of the hand (gripper slip).
    """

    friction: float = 1.0
    mass: float = 1.0
    grasp_force: float = 300.0


REFERENCE_PHYSICS = Physics()


class Simulation:
    """One live episode: build the scene, then advance it frame by frame and read its state.

    :func:`execute` runs a whole action sequence through it; the ``sim`` world model keeps one
    alive between the chunks of a closed-loop rollout, so a chunk costs only its own frames.
    """

    def __init__(
        self, spec: SceneSpec, first_action: np.ndarray, fps: float, physics: Physics = REFERENCE_PHYSICS
    ):
        first_action = np.asarray(first_action, dtype=np.float64)
        self.spec = spec
        self.physics = physics
        self.substeps = max(1, int(round(SUBSTEPS_PER_SECOND / fps)))
        self.client = _connect()
        self.robots = _load_arms(
            self.client, tuple(spec.home_joints), (float(first_action[6]), float(first_action[13]))
        )
        self.bodies = build_scene(self.client, spec, friction_scale=physics.friction, mass_scale=physics.mass)
        self.limits = {
            arm: _ik_limits(self.client, self.robots[arm], tuple(spec.home_joints)) for arm in ARMS
        }
        self.held: dict[str, tuple[str, int] | None] = {arm: None for arm in ARMS}
        self.previous_action = first_action
        self.frame = 0  # index of the frame the current state belongs to

    def advance(self, action: np.ndarray) -> None:
        """Command ``action`` and simulate one frame interval."""
        import pybullet as p

        action = np.asarray(action, dtype=np.float64)
        _command(self.client, self.robots, self.limits, action)
        for _ in range(self.substeps):
            p.stepSimulation(physicsClientId=self.client)
        _update_grasps(
            self.client,
            self.robots,
            self.bodies,
            self.spec,
            self.held,
            self.previous_action,
            action,
            self.physics.grasp_force,
        )
        self.previous_action = action
        self.frame += 1

    def observe(self) -> tuple[list[float], list[float], dict[str, np.ndarray]]:
        """The current 14-D end-effector pose, the joint positions, and each camera's pose."""
        import pybullet as p

        pose_row, joint_row, hand_poses = [], [], {}
        for arm in ARMS:
            body = self.robots[arm]
            position, quat = _grasp_pose(self.client, body)
            hand_poses[arm] = (position, Rotation.from_quat(quat).as_matrix())
            fingers = [p.getJointState(body, j, physicsClientId=self.client)[0] for j in FINGER_JOINTS]
            openness = float(np.clip(sum(fingers) / (2 * FINGER_OPEN), 0.0, 1.0))
            pose_row += [*position, *quat_to_rpy(quat), openness]
            joint_row += [
                p.getJointState(body, j, physicsClientId=self.client)[0] for j in ARM_JOINTS
            ] + fingers
        poses = {
            "head": head_extrinsics(),
            "hand_left": wrist_extrinsics(*hand_poses["left"]),
            "hand_right": wrist_extrinsics(*hand_poses["right"]),
        }
        return pose_row, joint_row, poses

    def held_objects(self) -> dict[str, str | None]:
        return {arm: (self.held[arm][0] if self.held[arm] else None) for arm in ARMS}

    def object_poses(self) -> dict[str, list[float]]:
        import pybullet as p

        return {
            name: [*position, *quat]
            for name, body in self.bodies.items()
            for position, quat in [p.getBasePositionAndOrientation(body, physicsClientId=self.client)]
        }

    def render(
        self, camera: CameraSpec, camera_to_base: np.ndarray, segmentation: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return render(self.client, camera, camera_to_base, segmentation)

    def close(self) -> None:
        import pybullet as p

        if self.client is not None:
            p.disconnect(self.client)
            self.client = None


def execute(
    spec: SceneSpec,
    actions: np.ndarray,
    fps: float,
    views: tuple[str, ...] = VIEWS,
    width: int = 640,
    height: int = 480,
    segmentation: bool = False,
    physics: Physics = REFERENCE_PHYSICS,
) -> Recording:
    """Build ``spec``, run ``actions`` (T, 14) and render ``views`` every frame."""
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] != 14 or len(actions) < 1:
        raise ValueError(f"actions must be (T, 14) with T >= 1, got {actions.shape}")
    unknown = set(views) - set(VIEWS)
    if unknown:
        raise ValueError(f"unknown views {sorted(unknown)}; known: {list(VIEWS)}")
    cams = cameras(width, height)
    sim = Simulation(spec, actions[0], fps, physics)
    try:
        frames: dict[str, list] = {v: [] for v in views}
        masks: dict[str, list] = {v: [] for v in views}
        eef, joints, held_log = [], [], []
        extrinsics: dict[str, list] = {v: [] for v in VIEWS}
        object_poses: dict[str, list] = {name: [] for name in sim.bodies}
        for t in range(len(actions)):
            if t > 0:
                sim.advance(actions[t])
            pose_row, joint_row, poses = sim.observe()
            eef.append(pose_row)
            joints.append(joint_row)
            held_log.append(sim.held_objects())
            for name, pose in sim.object_poses().items():
                object_poses[name].append(pose)
            for view in VIEWS:
                extrinsics[view].append(poses[view])
            for view in views:
                rgb, mask = sim.render(cams[view], poses[view], segmentation)
                frames[view].append(rgb)
                if segmentation:
                    masks[view].append(mask)
        return Recording(
            frames={v: np.stack(f) for v, f in frames.items()},
            eef_pose=unwrap_rpy(np.array(eef)),
            joint_positions=np.array(joints),
            extrinsics={v: np.stack(e) for v, e in extrinsics.items()},
            intrinsics={v: cams[v].intrinsics() for v in VIEWS},
            object_poses={n: np.array(v) for n, v in object_poses.items()},
            held=held_log,
            segmentation={v: np.stack(m) for v, m in masks.items()} if segmentation else {},
            robot_body_ids=dict(sim.robots),
            object_body_ids=dict(sim.bodies),
        )
    finally:
        sim.close()


def unwrap_rpy(eef_pose: np.ndarray) -> np.ndarray:
    """The rpy of each arm made continuous over time (no 2 pi jumps)."""
    eef_pose = np.array(eef_pose, dtype=np.float64)
    for offset in (3, 10):
        eef_pose[:, offset : offset + 3] = np.unwrap(eef_pose[:, offset : offset + 3], axis=0)
    return eef_pose


def _command(client: int, robots: dict[str, int], limits: dict, action: np.ndarray) -> None:
    import pybullet as p

    for arm, offset in zip(ARMS, (0, 7)):
        body = robots[arm]
        lower, upper, ranges, rest = limits[arm]
        solution = p.calculateInverseKinematics(
            body,
            GRASP_LINK,
            action[offset : offset + 3].tolist(),
            rpy_to_quat(action[offset + 3 : offset + 6]).tolist(),
            lowerLimits=lower,
            upperLimits=upper,
            jointRanges=ranges,
            restPoses=rest,
            maxNumIterations=100,
            residualThreshold=1e-5,
            physicsClientId=client,
        )
        p.setJointMotorControlArray(
            body,
            list(ARM_JOINTS),
            p.POSITION_CONTROL,
            targetPositions=list(solution[:7]),
            forces=list(ARM_FORCES),
            positionGains=[0.3] * 7,
            physicsClientId=client,
        )
        finger = float(np.clip(action[offset + 6], 0.0, 1.0)) * FINGER_OPEN
        p.setJointMotorControlArray(
            body,
            list(FINGER_JOINTS),
            p.POSITION_CONTROL,
            targetPositions=[finger, finger],
            forces=[FINGER_FORCE] * 2,
            physicsClientId=client,
        )


def _update_grasps(
    client: int,
    robots: dict[str, int],
    bodies: dict[str, int],
    spec: SceneSpec,
    held: dict,
    previous: np.ndarray,
    action: np.ndarray,
    grasp_force: float = 300.0,
) -> None:
    import pybullet as p

    for arm, offset in zip(ARMS, (6, 13)):
        closed = action[offset] < GRIPPER_CLOSED_BELOW
        if not closed and held[arm] is not None:
            p.removeConstraint(held[arm][1], physicsClientId=client)
            held[arm] = None
        closing = closed and previous[offset] >= GRIPPER_CLOSED_BELOW
        if not closing or held[arm] is not None:
            continue
        hand_position, hand_quat = _grasp_pose(client, robots[arm])
        for obj in spec.objects:
            body = bodies[obj.name]
            obj_position, obj_quat = p.getBasePositionAndOrientation(body, physicsClientId=client)
            local = Rotation.from_quat(obj_quat).inv().apply(hand_position - np.array(obj_position))
            if np.all(np.abs(local) <= np.array(obj.size) / 2 + GRASP_MARGIN):
                inv_position, inv_quat = p.invertTransform(hand_position.tolist(), hand_quat.tolist())
                rel_position, rel_quat = p.multiplyTransforms(inv_position, inv_quat, obj_position, obj_quat)
                constraint = p.createConstraint(
                    robots[arm],
                    GRASP_LINK,
                    body,
                    -1,
                    p.JOINT_FIXED,
                    (0.0, 0.0, 0.0),
                    rel_position,
                    (0.0, 0.0, 0.0),
                    parentFrameOrientation=rel_quat,
                    physicsClientId=client,
                )
                p.changeConstraint(constraint, maxForce=grasp_force, physicsClientId=client)
                held[arm] = (obj.name, constraint)
                break
