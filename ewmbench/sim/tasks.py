"""Task types: a random layout per seed, a scripted plan of per-frame end-effector targets, and a
success condition checked on the executed episode.

A plan is a list of segments; each moves some hands to new targets (position, orientation,
gripper) over a share of the clip proportional to its weight, with smooth (ease-in-out) timing and
spherical interpolation of orientations. The clip length is therefore free: a longer clip is the
same motion, slower.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from ewmbench.sim.execute import ARMS, Recording, home_eef_pose
from ewmbench.sim.scene import COLOURS, ContainerSpec, MarkerSpec, SceneSpec, random_object

TOP_DOWN_ROLL = math.pi
# Right hand pointing along +y (toward the left arm), tilted 15 degrees down (which also keeps
# its Euler angles away from gimbal lock), fingers closing along x. Columns: the hand's x, y
# (finger) and z (approach) axes in the base frame.
_TILT = math.radians(15.0)
SIDE_GRASP_FROM_RIGHT = Rotation.from_matrix(
    np.array(
        [[0.0, 1.0, 0.0], [math.sin(_TILT), 0.0, math.cos(_TILT)], [math.cos(_TILT), 0.0, -math.sin(_TILT)]]
    )
)


@dataclass
class Target:
    position: tuple[float, float, float]
    rotation: Rotation
    gripper: float


@dataclass
class Segment:
    weight: float
    targets: dict[str, Target]  # arm -> target; arms not named hold still


@dataclass
class TaskPlan:
    spec: SceneSpec
    segments: list[Segment]
    instruction: str
    substeps: list[str]
    subject: str  # the object the task is about (the one the sim model may recolour)
    success_condition: str
    check: Callable[[Recording, SceneSpec], tuple[bool, dict]] = field(repr=False)
    params: dict = field(default_factory=dict)

    def actions(self, num_frames: int) -> np.ndarray:
        return plan_actions(self.spec, self.segments, num_frames)


def top_down(yaw: float) -> Rotation:
    """Gripper pointing down; at yaw 0 the fingers close along the base y axis."""
    return Rotation.from_euler("xyz", [TOP_DOWN_ROLL, 0.0, yaw])


def frames_per_segment(weights: list[float], frames: int) -> list[int]:
    """Split ``frames`` over segments in proportion to ``weights``, at least one each (largest remainder)."""
    if frames < len(weights):
        raise ValueError(f"{frames} frames cannot hold {len(weights)} motion segments")
    spare = frames - len(weights)
    shares = np.array(weights, dtype=float) / sum(weights) * spare
    counts = np.floor(shares).astype(int)
    order = np.argsort(-(shares - counts), kind="stable")
    counts[order[: spare - counts.sum()]] += 1
    return [int(c) + 1 for c in counts]


def plan_actions(spec: SceneSpec, segments: list[Segment], num_frames: int) -> np.ndarray:
    """The (num_frames, 14) action sequence: row 0 is the home pose, then each segment in turn."""
    home = np.array(home_eef_pose(tuple(spec.home_joints)))
    current = {
        arm: Target(
            tuple(home[o : o + 3]), Rotation.from_euler("xyz", home[o + 3 : o + 6]), float(home[o + 6])
        )
        for arm, o in zip(ARMS, (0, 7))
    }
    rows = [home.copy()]
    for segment, count in zip(segments, frames_per_segment([s.weight for s in segments], num_frames - 1)):
        starts = dict(current)
        ends = {arm: segment.targets.get(arm, starts[arm]) for arm in ARMS}
        slerps = {
            arm: Slerp([0.0, 1.0], Rotation.concatenate([starts[arm].rotation, ends[arm].rotation]))
            for arm in ARMS
        }
        for i in range(1, count + 1):
            s = i / count
            s = s * s * (3.0 - 2.0 * s)  # ease in and out
            row = []
            for arm in ARMS:
                a, b = starts[arm], ends[arm]
                position = (1 - s) * np.array(a.position) + s * np.array(b.position)
                rpy = slerps[arm]([s]).as_euler("xyz")[0]
                row += [*position, *rpy, (1 - s) * a.gripper + s * b.gripper]
            rows.append(np.array(row))
        current = ends
    actions = np.array(rows)
    for offset in (3, 10):
        actions[:, offset : offset + 3] = np.unwrap(actions[:, offset : offset + 3], axis=0)
    return actions


def _colours(rng: np.random.Generator, count: int, exclude: tuple[str, ...] = ()) -> list[str]:
    names = [c for c in COLOURS if c not in exclude]
    return [str(c) for c in rng.choice(names, size=count, replace=False)]


def _xy(rng: np.random.Generator, x: tuple[float, float], y: tuple[float, float]) -> tuple[float, float]:
    return (round(float(rng.uniform(*x)), 4), round(float(rng.uniform(*y)), 4))


def _arm_for(y: float) -> str:
    return "left" if y >= 0 else "right"


def _final_position(recording: Recording, name: str) -> np.ndarray:
    return recording.object_poses[name][-1, :3]


def _pick_segments(arm: str, obj, place_xy: tuple[float, float], place_grasp_z: float) -> list[Segment]:
    grasp_z = min(obj.size[2] / 2, 0.035)
    rot = top_down(obj.yaw)
    x, y = obj.position[0], obj.position[1]
    carry_z = 0.16
    return [
        Segment(3.0, {arm: Target((x, y, grasp_z + 0.12), rot, 1.0)}),
        Segment(2.0, {arm: Target((x, y, grasp_z), rot, 1.0)}),
        Segment(1.0, {arm: Target((x, y, grasp_z), rot, 0.0)}),
        Segment(2.0, {arm: Target((x, y, carry_z), rot, 0.0)}),
        Segment(3.0, {arm: Target((place_xy[0], place_xy[1], carry_z), rot, 0.0)}),
        Segment(2.0, {arm: Target((place_xy[0], place_xy[1], place_grasp_z), rot, 0.0)}),
        Segment(1.0, {arm: Target((place_xy[0], place_xy[1], place_grasp_z), rot, 1.0)}),
        Segment(1.5, {arm: Target((place_xy[0], place_xy[1], carry_z), rot, 1.0)}),
    ]


def plan_pick_place(rng: np.random.Generator) -> TaskPlan:
    side = 1.0 if rng.random() < 0.5 else -1.0
    colours = _colours(rng, 3, exclude=("white",))
    target = random_object(
        rng, "target", colours[0], _xy(rng, (0.42, 0.58), sorted((0.12 * side, 0.24 * side)))
    )
    container = ContainerSpec(position=_xy(rng, (0.45, 0.58), sorted((-0.12 * side, -0.02 * side))))
    distractor = random_object(rng, "distractor", colours[1], _xy(rng, (0.62, 0.68), (-0.05, 0.05)))
    spec = SceneSpec(objects=[target, distractor], container=container)
    arm = _arm_for(target.position[1])
    grasp_offset = target.size[2] / 2 - min(
        target.size[2] / 2, 0.035
    )  # grasp point below the object's centre
    place_z = 0.006 + target.size[2] / 2 + 0.015 - grasp_offset
    segments = _pick_segments(arm, target, container.position, place_z)
    label = target.label

    def check(recording: Recording, spec: SceneSpec) -> tuple[bool, dict]:
        final = _final_position(recording, "target")
        offset = final[:2] - np.array(container.position)
        inside = bool(
            np.all(np.abs(offset) < container.inner / 2) and final[2] < container.wall_height + target.size[2]
        )
        return inside, {"final_position": final.tolist(), "offset_from_container": offset.tolist()}

    return TaskPlan(
        spec,
        segments,
        instruction=f"Pick up the {label} and place it in the tray.",
        substeps=[
            f"Move the {arm} gripper above the {label}.",
            f"Grasp the {label}.",
            "Lift it and carry it over the tray.",
            f"Lower the {label} into the tray and release it.",
        ],
        subject="target",
        success_condition="the object's centre lies inside the tray's inner square and below the wall top plus its height",
        check=check,
        params={"arm": arm},
    )


def plan_push(rng: np.random.Generator) -> TaskPlan:
    side = 1.0 if rng.random() < 0.5 else -1.0
    colours = _colours(rng, 3, exclude=("green",))
    start_y = side * round(float(rng.uniform(0.14, 0.22)), 4)
    distance = round(float(rng.uniform(0.11, 0.15)), 4)
    x = round(float(rng.uniform(0.45, 0.58)), 4)
    obj = random_object(rng, "target", colours[0], (x, start_y), shape=str(rng.choice(["cube", "cylinder"])))
    obj.yaw = 0.0
    marker = MarkerSpec(position=(x, round(start_y - side * distance, 4)))
    distractor = random_object(rng, "distractor", colours[1], _xy(rng, (0.66, 0.7), (-0.25, 0.25)))
    spec = SceneSpec(objects=[obj, distractor], marker=marker)
    arm = _arm_for(start_y)
    rot = top_down(math.pi / 2)
    half = obj.size[1] / 2
    push_z = 0.03
    behind = start_y + side * (half + 0.035)
    stop = marker.position[1] + side * (half + 0.012)
    segments = [
        Segment(3.0, {arm: Target((x, behind, push_z + 0.1), rot, 0.0)}),
        Segment(2.0, {arm: Target((x, behind, push_z), rot, 0.0)}),
        Segment(5.0, {arm: Target((x, stop, push_z), rot, 0.0)}),
        Segment(2.0, {arm: Target((x, stop + side * 0.03, push_z + 0.1), rot, 0.0)}),
    ]
    label = obj.label
    tolerance = 0.035

    def check(recording: Recording, spec: SceneSpec) -> tuple[bool, dict]:
        final = _final_position(recording, "target")
        error = float(np.linalg.norm(final[:2] - np.array(marker.position)))
        return error < tolerance, {"final_position": final.tolist(), "distance_to_target": error}

    return TaskPlan(
        spec,
        segments,
        instruction=f"Push the {label} onto the green target square.",
        substeps=[
            f"Close the {arm} gripper and move it beside the {label}.",
            "Lower it to the table.",
            f"Push the {label} onto the green square.",
            "Lift the gripper away.",
        ],
        subject="target",
        success_condition=f"the object's centre ends within {tolerance} m of the target square's centre",
        check=check,
        params={"arm": arm, "tolerance_m": tolerance},
    )


def plan_stack(rng: np.random.Generator) -> TaskPlan:
    side = 1.0 if rng.random() < 0.5 else -1.0
    colours = _colours(rng, 3)
    top = random_object(
        rng, "top", colours[0], _xy(rng, (0.42, 0.56), sorted((0.1 * side, 0.22 * side))), shape="cube"
    )
    base = random_object(
        rng,
        "base",
        colours[1],
        _xy(rng, (0.45, 0.58), sorted((-0.04 * side, -0.14 * side))),
        shape=str(rng.choice(["cube", "cylinder"])),
    )
    base.size = (0.06, 0.06, 0.05)
    base.position = (base.position[0], base.position[1], 0.025)
    spec = SceneSpec(objects=[top, base])
    arm = _arm_for(top.position[1])
    grasp_offset = top.size[2] / 2 - min(top.size[2] / 2, 0.035)
    place_z = base.size[2] + top.size[2] / 2 + 0.012 - grasp_offset
    segments = _pick_segments(arm, top, base.position[:2], place_z)

    def check(recording: Recording, spec: SceneSpec) -> tuple[bool, dict]:
        final_top = _final_position(recording, "top")
        final_base = _final_position(recording, "base")
        offset = float(np.linalg.norm(final_top[:2] - final_base[:2]))
        height = float(final_top[2] - final_base[2])
        expected = (base.size[2] + top.size[2]) / 2
        ok = offset < base.size[0] / 2 and abs(height - expected) < 0.01
        return ok, {"horizontal_offset": offset, "height_above_base": height, "expected_height": expected}

    return TaskPlan(
        spec,
        segments,
        instruction=f"Stack the {top.label} on top of the {base.label}.",
        substeps=[
            f"Move the {arm} gripper above the {top.label}.",
            f"Grasp the {top.label}.",
            f"Carry it over the {base.label}.",
            f"Set it down on the {base.label} and release it.",
        ],
        subject="top",
        success_condition="the top object rests on the base object: centres within half the base's width horizontally and stacked heights within 1 cm",
        check=check,
        params={"arm": arm},
    )


def plan_handover(rng: np.random.Generator) -> TaskPlan:
    colours = _colours(rng, 2)
    obj = random_object(rng, "target", colours[0], _xy(rng, (0.42, 0.55), (0.12, 0.2)), shape="block")
    obj.size = (obj.size[0], obj.size[1], 0.12)
    obj.position = (obj.position[0], obj.position[1], 0.06)
    obj.yaw = 0.0
    distractor = random_object(rng, "distractor", colours[1], _xy(rng, (0.62, 0.68), (-0.22, -0.1)))
    spec = SceneSpec(objects=[obj, distractor])
    x, y = obj.position[0], obj.position[1]
    h = obj.size[2]
    top_grasp = h - 0.022  # near the top, so the other hand has room below
    rot_left = top_down(math.pi / 2)  # fingers close along x
    exchange = (0.48, 0.0, 0.24)  # where the object's centre is held for the exchange
    left_at_exchange = (exchange[0], exchange[1], exchange[2] + h / 2 - 0.022)
    right_grasp = (exchange[0], exchange[1], exchange[2] - 0.03)
    right_pre = (exchange[0], exchange[1] - 0.12, exchange[2] - 0.03)
    drop_off = (0.45, -0.2, 0.2)
    segments = [
        Segment(3.0, {"left": Target((x, y, top_grasp + 0.1), rot_left, 1.0)}),
        Segment(2.0, {"left": Target((x, y, top_grasp), rot_left, 1.0)}),
        Segment(1.0, {"left": Target((x, y, top_grasp), rot_left, 0.0)}),
        Segment(
            3.0,
            {
                "left": Target(left_at_exchange, rot_left, 0.0),
                "right": Target(right_pre, SIDE_GRASP_FROM_RIGHT, 1.0),
            },
        ),
        Segment(2.0, {"right": Target(right_grasp, SIDE_GRASP_FROM_RIGHT, 1.0)}),
        Segment(1.0, {"right": Target(right_grasp, SIDE_GRASP_FROM_RIGHT, 0.0)}),
        Segment(1.0, {"left": Target(left_at_exchange, rot_left, 1.0)}),
        Segment(
            2.0,
            {"left": Target((left_at_exchange[0] - 0.05, 0.12, left_at_exchange[2] + 0.08), rot_left, 1.0)},
        ),
        Segment(2.5, {"right": Target(drop_off, SIDE_GRASP_FROM_RIGHT, 0.0)}),
    ]
    label = obj.label

    def check(recording: Recording, spec: SceneSpec) -> tuple[bool, dict]:
        final = _final_position(recording, "target")
        holder = recording.held[-1]
        ok = bool(
            final[1] < -0.1 and final[2] > 0.08 and holder["right"] == "target" and holder["left"] is None
        )
        return ok, {"final_position": final.tolist(), "held_by": holder}

    return TaskPlan(
        spec,
        segments,
        instruction=f"Hand the {label} from the left arm to the right arm.",
        substeps=[
            f"Grasp the {label} with the left gripper.",
            "Lift it to the middle of the table.",
            f"Grasp the {label} with the right gripper.",
            "Release it from the left gripper.",
            "Move it to the right side with the right arm.",
        ],
        subject="target",
        success_condition="at the end the right gripper alone holds the object above the table (z > 0.08 m) on the right side (y < -0.1 m)",
        check=check,
        params={},
    )


@dataclass(frozen=True)
class TaskType:
    id: int
    name: str
    planner: Callable[[np.random.Generator], TaskPlan]


TASKS: dict[str, TaskType] = {
    t.name: t
    for t in (
        TaskType(1, "pick_place", plan_pick_place),
        TaskType(2, "push", plan_push),
        TaskType(3, "stack", plan_stack),
        TaskType(4, "handover", plan_handover),
    )
}


def task_by_id(task_id: int) -> TaskType:
    for task in TASKS.values():
        if task.id == task_id:
            return task
    raise KeyError(task_id)


def episode_rng(seed: int, task: TaskType, episode: int, attempt: int = 0) -> np.random.Generator:
    """Independent, reproducible randomness per (seed, task, episode, layout attempt)."""
    return np.random.default_rng([seed, task.id, episode, attempt])


def plan_episode(seed: int, task_name: str, episode: int, attempt: int = 0) -> TaskPlan:
    task = TASKS[task_name]
    return task.planner(episode_rng(seed, task, episode, attempt))
