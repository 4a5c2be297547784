"""Request layouts of openpi policy servers, as data: which keys a request carries and what they mean.

Every openpi server reads its own keys: GE-Act's ``obs``/``state``/``prompt``/``execution_step``,
GE-Sim 2.0's pi05 ``observation.images.head``/``observation.state``, openpi's DROID example
``observation/exterior_image_1_left``, its ALOHA example an ``images`` dict of channel-first
frames. A layout file (``ewmbench/loop/layouts/NAME.yaml``, or any path) declares them:

- ``images``: one key per view (``keys: {KEY: VIEW}``, optionally ``under`` a nested dict), or one
  stacked array (``stack: {key: obs, views: [...]}``, shape (views, H, W, 3)); ``format`` ``hwc``
  or ``chw``; frames travel as uint8.
- ``state``: ``{KEY: [parts]}``; each vector is the concatenation of its parts, sent as float32.
- ``prompt``: the key carrying the instruction (or none) and the prefix of an episode's first
  prompt (GE-Act's ``<reset>``, which clears its memory), if any.
- ``step_key`` (the observed frame's index) and ``constants`` (fixed extra fields).
- ``actions``: the reply's key, its parts and ``mode``: ``absolute``, ``delta`` (each row relative
  to the row before, the first to the current state) or ``velocity`` (a delta per second,
  integrated over the episode's frame period). Grippers are always absolute.

Parts, per arm (``left`` or ``right``) of the sidecar's 14-D state ``[xyz, rpy, openness] x 2``:
``xyz`` (3), ``rpy`` (3, euler xyz), ``quat`` (4, x y z w), ``axisangle`` (3), ``gripper`` (1:
openness 0 closed .. 1 open mapped linearly onto ``range: [closed value, open value]``); and
``joints`` (``index: [start, stop]`` into the episode's joint vector, the sidecar's
``joint_positions``). ``scale`` multiplies the server's value into ours (metres, radians).
Joint-space replies become 14-D poses through forward kinematics the user names
(``fk=module:function``, (K, J) joints -> (K, 14) poses); an arm no part mentions holds its pose.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ewmbench.errors import ConfigError
from ewmbench.loop.policies import ACTION_WIDTH, PolicyError

PART_WIDTH = {"xyz": 3, "rpy": 3, "quat": 4, "axisangle": 3, "gripper": 1}
ARM_OFFSET = {"left": 0, "right": 7}
ROTATIONS = ("rpy", "quat", "axisangle")
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Index = Annotated[int, Field(strict=True, ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Part(_Strict):
    part: Literal["xyz", "rpy", "quat", "axisangle", "gripper", "joints"]
    arm: Literal["left", "right"] | None = None
    # YAML gives lists where pairs are meant; their items stay strictly numbers
    range: Annotated[tuple[Number, Number], Field(strict=False)] | None = (
        None  # gripper: (closed, open) value
    )
    index: Annotated[tuple[Index, Index], Field(strict=False)] | None = None  # joints: [start, stop)
    scale: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0

    @model_validator(mode="after")
    def _consistent(self):
        if self.part == "joints":
            if self.index is None or self.index[1] <= self.index[0]:
                raise ValueError("a joints part needs index: [start, stop] with stop > start")
            if self.arm is not None or self.range is not None:
                raise ValueError("a joints part takes index (and scale), not arm or range")
        else:
            if self.arm is None:
                raise ValueError(f"a {self.part} part needs arm: left or right")
            if self.index is not None:
                raise ValueError(f"index belongs to joints parts, not {self.part}")
        if self.part == "gripper":
            if self.range is None or self.range[0] == self.range[1]:
                raise ValueError(
                    "a gripper part needs range: [closed value, open value], two different values"
                )
        elif self.range is not None:
            raise ValueError(f"range belongs to gripper parts, not {self.part}")
        if self.scale != 1.0 and self.part in ("quat", "gripper"):
            raise ValueError(f"scale applies to xyz, rpy, axisangle and joints parts, not {self.part}")
        return self

    @property
    def width(self) -> int:
        return self.index[1] - self.index[0] if self.part == "joints" else PART_WIDTH[self.part]


class Stack(_Strict):
    key: str
    views: list[str] = Field(min_length=1)


class Images(_Strict):
    format: Literal["hwc", "chw"] = "hwc"
    keys: dict[str, str] | None = None  # request key -> view
    under: str | None = None  # the keys live in this nested dict (openpi's ALOHA example: images)
    stack: Stack | None = None

    @model_validator(mode="after")
    def _one_shape(self):
        if (self.keys is None) == (self.stack is None):
            raise ValueError("images need either keys (one per view) or stack (one array), not both")
        if self.stack is not None and self.under is not None:
            raise ValueError("under applies to keys, not to a stack")
        if self.keys is not None and not self.keys:
            raise ValueError("images.keys is empty")
        return self


class Prompt(_Strict):
    key: str | None = "prompt"  # None: the request carries no instruction
    reset_prefix: str = ""  # added to an episode's first prompt


class Actions(_Strict):
    key: str = "actions"
    mode: Literal["absolute", "delta", "velocity"] = "absolute"
    parts: list[Part] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_rotation_per_arm(self):
        _check_parts(self.parts)
        return self


class Layout(_Strict):
    name: str
    description: str
    source: str  # where the key names were read (repository, commit, file)
    images: Images
    state: dict[str, list[Part]] = Field(min_length=1)
    prompt: Prompt = Prompt()
    step_key: str | None = None
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    actions: Actions

    @model_validator(mode="after")
    def _distinct_keys(self):
        for parts in self.state.values():
            if not parts:
                raise ValueError("a state key needs at least one part")
        keys = [*self.state, *([self.prompt.key] if self.prompt.key else [])]
        keys += [self.step_key] if self.step_key else []
        keys += list(self.constants)
        if self.images.stack is not None:
            keys.append(self.images.stack.key)
        elif self.images.under is not None:
            keys.append(self.images.under)
        else:
            keys += list(self.images.keys or {})
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"request keys used twice: {repeated}")
        return self

    @property
    def views(self) -> list[str]:
        return (
            list(self.images.stack.views)
            if self.images.stack
            else list(dict.fromkeys(self.images.keys.values()))
        )

    @property
    def uses_joints(self) -> bool:
        return any(p.part == "joints" for parts in (*self.state.values(), self.actions.parts) for p in parts)

    @property
    def action_width(self) -> int:
        return sum(p.width for p in self.actions.parts)


def _check_parts(parts: list[Part]) -> None:
    for arm in ("left", "right"):
        rotations = [p.part for p in parts if p.arm == arm and p.part in ROTATIONS]
        if len(rotations) > 1:
            raise ValueError(f"the {arm} arm has more than one rotation part: {rotations}")
        if [p.part for p in parts if p.arm == arm].count("xyz") > 1:
            raise ValueError(f"the {arm} arm has more than one xyz part")


def shipped_layouts() -> list[str]:
    folder = resources.files("ewmbench.loop") / "layouts"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_layout(name_or_path: str) -> Layout:
    """A shipped layout by name (``ge-act``), or a layout file by path; checked against the schema."""
    import yaml

    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"openpi layout file {path} does not exist")
        where = str(path)
        raw = path.read_text()
    else:
        if text not in shipped_layouts():
            raise ConfigError(
                f"unknown openpi layout {text!r}; shipped: {', '.join(shipped_layouts())}, or a path to a layout .yaml"
            )
        where = f"openpi layout {text!r}"
        raw = (resources.files("ewmbench.loop") / "layouts" / f"{text}.yaml").read_text()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a layout is a mapping of keys, got {type(data).__name__}")
    try:
        return Layout.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"]) or "(top level)"
            if error["type"] == "extra_forbidden":
                message = "unknown key (misspelled?)"
            elif error["type"] == "missing":
                message = "required key is missing"
            else:
                message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{key}: {message}")
        raise ConfigError(f"{where} is not a valid layout:\n  " + "\n  ".join(problems)) from None


# ---------------------------------------------------------------------------- conversions


def _rotation(part: str, values: np.ndarray):
    from scipy.spatial.transform import Rotation

    if part == "rpy":
        return Rotation.from_euler("xyz", values)
    if part == "quat":
        if not np.all(np.linalg.norm(values, axis=-1) > 1e-9):
            raise PolicyError("openpi reply holds a zero quaternion")
        return Rotation.from_quat(values)
    return Rotation.from_rotvec(values)


def _rotation_values(part: str, rotation) -> np.ndarray:
    if part == "rpy":
        return rotation.as_euler("xyz")
    if part == "quat":
        return rotation.as_quat()
    return rotation.as_rotvec()


def encode_vector(parts: list[Part], state: np.ndarray, joints: np.ndarray | None) -> np.ndarray:
    """The server's vector (float32) from our 14-D state and the joint vector."""
    pieces = []
    for p in parts:
        if p.part == "joints":
            start, stop = p.index
            if joints is None or len(joints) < stop:
                raise PolicyError(
                    f"the layout sends joints [{start}:{stop}]; the episode's joint vector has "
                    f"{0 if joints is None else len(joints)} entries (sidecar joint_positions)"
                )
            pieces.append(joints[start:stop] / p.scale)
            continue
        arm = ARM_OFFSET[p.arm]
        if p.part == "xyz":
            pieces.append(state[arm : arm + 3] / p.scale)
        elif p.part == "gripper":
            closed, opened = p.range
            pieces.append([closed + state[arm + 6] * (opened - closed)])
        elif p.part == "rpy":
            pieces.append(state[arm + 3 : arm + 6] / p.scale)
        else:
            value = _rotation_values(p.part, _rotation("rpy", state[arm + 3 : arm + 6]))
            pieces.append(value / p.scale)
    return np.concatenate([np.asarray(v, dtype=np.float64) for v in pieces]).astype(np.float32)


def decode_actions(
    layout: Layout,
    reply,
    state: np.ndarray,
    joints: np.ndarray | None,
    fps: float | None,
    fk,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The reply's (K, W) chunk -> (K, 14) poses in the sidecar's layout, and the commanded joints."""
    try:
        chunk = np.asarray(reply, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"openpi reply's actions are not numbers ({exc})") from None
    width = layout.action_width
    if chunk.ndim != 2 or chunk.shape[1] != width or len(chunk) < 1:
        raise PolicyError(
            f"openpi reply's actions have shape {chunk.shape}; layout {layout.name!r} expects (K, {width})"
        )
    if not np.isfinite(chunk).all():
        raise PolicyError("openpi reply holds non-finite actions (NaN or inf)")
    mode = layout.actions.mode
    step_scale = 1.0
    if mode == "velocity":
        if not fps:
            raise PolicyError(f"layout {layout.name!r} answers velocities; the episode has no frame rate")
        step_scale = 1.0 / fps
    columns, start = [], 0
    for p in layout.actions.parts:
        columns.append(chunk[:, start : start + p.width] * p.scale)
        start += p.width
    rows = np.tile(np.asarray(state, dtype=np.float64), (len(chunk), 1))
    commanded = None
    joint_parts = [(p, c) for p, c in zip(layout.actions.parts, columns, strict=True) if p.part == "joints"]
    if joint_parts:
        if joints is None:
            raise PolicyError(
                f"layout {layout.name!r} answers in joint space; the episode has no joint vector"
            )
        commanded = np.tile(np.asarray(joints, dtype=np.float64), (len(chunk), 1))
        for p, values in joint_parts:
            a, b = p.index
            if b > commanded.shape[1]:
                raise PolicyError(
                    f"the layout answers joints [{a}:{b}]; the episode's joint vector has {commanded.shape[1]} entries"
                )
            if mode == "absolute":
                commanded[:, a:b] = values
            else:
                commanded[:, a:b] = joints[a:b] + np.cumsum(values * step_scale, axis=0)
        poses = np.asarray(fk(commanded), dtype=np.float64)
        if poses.shape != (len(chunk), ACTION_WIDTH) or not np.isfinite(poses).all():
            raise PolicyError(
                f"fk returned {poses.shape} (finite: {bool(np.isfinite(poses).all())}); expected ({len(chunk)}, 14) finite poses"
            )
        gripper_columns = [6, 13]
        rows[:, [c for c in range(ACTION_WIDTH) if c not in gripper_columns]] = poses[
            :, [c for c in range(ACTION_WIDTH) if c not in gripper_columns]
        ]
    for p, values in zip(layout.actions.parts, columns, strict=True):
        if p.part == "joints":
            continue
        arm = ARM_OFFSET[p.arm]
        if p.part == "gripper":
            closed, opened = p.range
            rows[:, arm + 6] = (values[:, 0] - closed) / (opened - closed)
        elif p.part == "xyz":
            rows[:, arm : arm + 3] = (
                values
                if mode == "absolute"
                else state[arm : arm + 3] + np.cumsum(values * step_scale, axis=0)
            )
        else:
            rows[:, arm + 3 : arm + 6] = _decode_rotation(
                p.part, values, state[arm + 3 : arm + 6], mode, step_scale
            )
    return rows, commanded


def _decode_rotation(part: str, values: np.ndarray, current_rpy: np.ndarray, mode: str, step_scale: float):
    from scipy.spatial.transform import Rotation

    if mode == "absolute":
        if part == "rpy":
            return values  # our own representation: the server's numbers, unchanged
        angles = _rotation(part, values).as_euler("xyz")
        # continuous with the current pose (a roll of pi stays pi, not -pi)
        return np.unwrap(np.concatenate([current_rpy[None], angles]), axis=0)[1:]
    if part == "quat":
        raise PolicyError("a quaternion cannot be a delta or a velocity; declare axisangle or rpy parts")
    pose = Rotation.from_euler("xyz", current_rpy)
    out = []
    for row in values:
        pose = _rotation(part, row * step_scale) * pose  # deltas in the base frame, applied in turn
        out.append(pose.as_euler("xyz"))
    return np.unwrap(np.concatenate([current_rpy[None], out]), axis=0)[1:]


def build_request(
    layout: Layout,
    frames: dict[str, np.ndarray],
    state: np.ndarray,
    joints: np.ndarray | None,
    prompt: str,
    step: int,
    views: list[str],
) -> dict:
    """One request in the layout's keys (``views``: the stacked order, when the layout stacks)."""
    missing = [v for v in views if v not in frames]
    if missing:
        raise PolicyError(
            f"layout {layout.name!r} sends views {views}; the rollout renders {sorted(frames)} (set --views)"
        )

    def image(view: str) -> np.ndarray:
        frame = np.asarray(frames[view], dtype=np.uint8)
        return np.ascontiguousarray(frame.transpose(2, 0, 1) if layout.images.format == "chw" else frame)

    request: dict = {}
    if layout.images.stack is not None:
        request[layout.images.stack.key] = np.stack([image(v) for v in views])
    else:
        pictures = {key: image(view) for key, view in layout.images.keys.items()}
        if layout.images.under:
            request[layout.images.under] = pictures
        else:
            request.update(pictures)
    for key, parts in layout.state.items():
        request[key] = encode_vector(parts, np.asarray(state, dtype=np.float64), joints)
    if layout.prompt.key:
        request[layout.prompt.key] = prompt
    if layout.step_key:
        request[layout.step_key] = int(step)
    request.update(layout.constants)
    return request
