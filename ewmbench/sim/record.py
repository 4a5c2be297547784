"""Recording one simulated episode: plan it, check the plan succeeds, render it, and describe it
in a :class:`~ewmbench.data.layout.Sidecar` from which the ``sim`` model can rebuild it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ewmbench.data.layout import HEAD_VIEW, Sidecar
from ewmbench.errors import ConfigError
from ewmbench.sim.cameras import HEIGHT, WIDTH
from ewmbench.sim.execute import JOINT_NAMES, VIEWS, Recording, execute
from ewmbench.sim.scene import SceneSpec
from ewmbench.sim.tasks import TASKS, TaskPlan, TaskType, plan_episode

FPS = 10.0
MAX_ATTEMPTS = 8  # layouts tried per episode until the scripted controller succeeds
GENERATOR = "ewmbench.sim/1"
# Bounds the visible gripper (fingers and the front of the hand) around the grasp point.
GRIPPER_RADIUS_M = 0.11
BASE_FRAME = (
    "robot base frame: origin on the table top midway between the two arm bases; x toward the "
    "workspace, y to the robot's left, z up; metres"
)
EEF_FRAME = (
    "end effector: the grasp point midway between the fingertips (pybullet panda_grasptarget); "
    "orientation as extrinsic x-y-z Euler angles (roll, pitch, yaw; scipy 'xyz'), unwrapped over "
    "time; gripper openness 1 = open (8 cm), 0 = closed"
)


@dataclass
class RecordedEpisode:
    task: TaskType
    index: int
    plan: TaskPlan
    actions: np.ndarray
    recording: Recording
    success: bool
    details: dict
    attempt: int


def min_frames(task_name: str) -> int:
    """The shortest clip a task's plan fits in: one frame per motion segment, plus the first."""
    return len(plan_episode(0, task_name, 0).segments) + 1


def plan_successful(
    seed: int, task_name: str, index: int, num_frames: int, fps: float = FPS
) -> tuple[TaskPlan, np.ndarray, int]:
    """The first layout (attempt 0, 1, ...) whose scripted execution succeeds, checked without rendering."""
    for attempt in range(MAX_ATTEMPTS):
        plan = plan_episode(seed, task_name, index, attempt)
        # Round-trip through JSON, exactly as the sidecar stores it, so replays start identically.
        plan.spec = SceneSpec.from_json(json.loads(json.dumps(plan.spec.to_json())))
        actions = plan.actions(num_frames)
        ok, _ = plan.check(execute(plan.spec, actions, fps, views=()), plan.spec)
        if ok:
            return plan, actions, attempt
    raise ConfigError(
        f"the scripted {task_name!r} controller failed in {MAX_ATTEMPTS} layouts for episode {index} (seed {seed}) "
        f"with {num_frames} frames; motions this fast are not feasible: use more frames"
    )


def record_episode(
    seed: int,
    task_name: str,
    index: int,
    num_frames: int,
    fps: float = FPS,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> RecordedEpisode:
    """One successful episode rendered in every view (datasets are always 640x480; tests go smaller)."""
    plan, actions, attempt = plan_successful(seed, task_name, index, num_frames, fps)
    recording = execute(plan.spec, actions, fps, views=VIEWS, width=width, height=height)
    success, details = plan.check(recording, plan.spec)
    return RecordedEpisode(TASKS[task_name], index, plan, actions, recording, success, details, attempt)


def episode_sidecar(episode: RecordedEpisode, seed: int, fps: float = FPS) -> Sidecar:
    rec, plan = episode.recording, episode.plan
    return Sidecar(
        fps=fps,
        views=list(VIEWS),
        substeps=list(plan.substeps),
        eef_pose=rec.eef_pose,
        joint_positions=rec.joint_positions,
        actions=episode.actions,
        intrinsics=dict(rec.intrinsics),
        extrinsics=dict(rec.extrinsics),
        meta={
            "generator": GENERATOR,
            "task_name": episode.task.name,
            "task_id": episode.task.id,
            "episode_index": episode.index,
            "seed": seed,
            "layout_attempt": episode.attempt,
            "num_frames": len(episode.actions),
            "scene": plan.spec.to_json(),
            "subject": plan.subject,
            "task_params": plan.params,
            "success_condition": plan.success_condition,
            "success": bool(episode.success),
            "success_details": episode.details,
            "joint_names": list(JOINT_NAMES),
            "base_frame": BASE_FRAME,
            "eef_frame": EEF_FRAME,
            "gripper_radius_m": GRIPPER_RADIUS_M,
            "camera_convention": "intrinsics in pixels (pixel centres at integers); extrinsics camera-to-base, camera axes x right, y down, z forward",
            "scored_view": HEAD_VIEW,
            "action_timing": "actions[0] is the initial pose; actions[t] is commanded during the frame interval ending at frame t",
        },
    )
