"""Policies: ``reset(instruction, observation)`` then ``act(observation) -> (K, 14)`` action chunks.

Actions are end-effector targets in the sidecar's layout: ``[L xyz, L rpy, L gripper, R xyz,
R rpy, R gripper]``, gripper openness 1 open, 0 closed. A policy that acts in joint space
(:meth:`Policy.commands_joints`) answers with an :class:`ActionChunk` instead: the same 14-D
targets (through its forward kinematics) and the joint positions it commanded, in the layout of
the episode's joint vector (sidecar ``joint_positions``), which a joint-conditioned world model
receives unchanged. The registry maps names to
``"module:Class"`` strings, so listing policies imports nothing heavy (no websockets, no pybullet).

A policy spec on the command line is a name with options: ``scripted``,
``scripted:grasp_offset=0.03``, ``openpi:host=127.0.0.1,port=8000``. ``scripted-ladder`` names the
built-in ladder of scripted policies whose true success rates differ by design.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ewmbench.errors import ConfigError, EwmbenchError
from ewmbench.registry import Entry, Registry, parse_options

ACTION_WIDTH = 14


class PolicyError(EwmbenchError):
    """A policy failed or answered with something unusable; the episode is marked failed with it."""


@dataclass
class Observation:
    """What a policy sees at one step of a rollout."""

    frames: dict[str, np.ndarray]  # view -> current frame (H, W, 3) uint8 RGB
    state: np.ndarray  # (14,) end-effector state in the action layout
    step: int  # index of the frame the observation shows (0 = the episode's initial frame)
    instruction: str = ""
    # What the dataset knows about the episode (the sidecar's meta: task, scene layout, seed, ...).
    # Privileged: only scripted experts read it; learned policies must not.
    episode_meta: dict = field(default_factory=dict)
    fps: float | None = None
    joints: np.ndarray | None = None  # (J,) the episode's joint positions (sidecar), first observation only


@dataclass(frozen=True)
class ActionChunk:
    """A joint-space policy's answer: end-effector targets and the joint positions behind them."""

    actions: np.ndarray  # (K, 14) end-effector targets in the action layout
    joints: np.ndarray | None = (
        None  # (K, J) commanded joint positions, columns as the episode's joint vector
    )


class Policy(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    needs_frames: ClassVar[bool] = True  # False for policies that act from the state alone

    def __init__(self, **options):
        if options:
            raise ConfigError(f"policy {self.name!r} takes no options, got {sorted(options)}")

    @abstractmethod
    def reset(self, instruction: str, observation: Observation) -> None: ...

    @abstractmethod
    def act(self, observation: Observation) -> np.ndarray | ActionChunk: ...

    def commands_joints(self) -> bool:
        """Whether :meth:`act` answers with an :class:`ActionChunk` carrying joint commands."""
        return False

    def config(self) -> dict:
        return {}

    def start(self) -> None:
        """Open connections before the first episode; raise when the policy cannot be reached at all."""

    def close(self) -> None:
        """Release connections or other resources."""


# Policies by name, as "module:Class" with a description, so listing imports nothing.
POLICIES = Registry(
    "policy",
    [
        Entry(
            "scripted",
            "ewmbench.loop.scripted:ScriptedPolicy",
            "the sample's task plans as closed-loop controllers (simulated episodes only); options grasp_offset, "
            "action_noise, wrong_order, give_up, chunk",
        ),
        Entry(
            "openpi",
            "ewmbench.loop.openpi:OpenPIPolicy",
            "client of an openpi websocket policy server; options host (or ws:// / wss:// URL), port, timeout, "
            "layout (ge-act, ge-act-eef14, gesim-pi05, droid, libero, aloha, or a .yaml), views, fk, api_key_env",
        ),
        Entry(
            "http",
            "ewmbench.loop.http_policy:HTTPPolicy",
            "JSON over HTTP: POST /reset and /act; options url, timeout, retries, backoff, send_frames",
        ),
    ],
    entry_point_group="ewmbench.policies",
    hint="(see `ewmbench policy-eval list`)",
)

# The built-in ladder: scripted policies whose success rates on the sample differ by construction.
LADDER: dict[str, str] = {
    "expert": "scripted",
    "late-release": "scripted:give_up=0.93",
    "offset-3cm": "scripted:grasp_offset=0.03",
    "wrong-order": "scripted:wrong_order=true",
    "give-up-half": "scripted:give_up=0.5",
}


@dataclass(frozen=True)
class PolicySpec:
    label: str  # how tables and folders name it
    name: str
    options: dict

    def text(self) -> str:
        return self.name + (
            ":" + ",".join(f"{k}={v}" for k, v in sorted(self.options.items())) if self.options else ""
        )


def parse_policy_spec(text: str, label: str | None = None, extra_options: dict | None = None) -> PolicySpec:
    """``"scripted:grasp_offset=0.03,give_up=0.5"`` -> name and options (values parsed as YAML scalars)."""
    text = text.strip()
    name, _, rest = text.partition(":")
    if name not in POLICIES:
        raise ConfigError(
            f"unknown policy {name!r}; available: {', '.join(sorted(POLICIES))}, or scripted-ladder (see `ewmbench policy-eval list`)"
        )
    options: dict = {}
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        if "=" not in pair:
            raise ConfigError(f"policy option must be key=value, got {pair!r} in {text!r}")
        options.update(parse_options([pair], f"policy {text!r}"))
    options.update(extra_options or {})
    return PolicySpec(label or text, name, options)


def parse_policies(text: str, extra_options: dict | None = None) -> list[PolicySpec]:
    """``"scripted,scripted:give_up=0.5,wrong_order=true,openpi:port=8000"`` -> policy specs.

    Comma-separated; a ``key=value`` item that does not start with a policy name belongs to the
    policy before it. ``"scripted-ladder"`` expands to :data:`LADDER`.
    """
    if text.strip() == "scripted-ladder":
        return [parse_policy_spec(spec, label, extra_options) for label, spec in LADDER.items()]
    groups: list[list[str]] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        if item.split(":", 1)[0] in POLICIES:
            groups.append([item])
        elif "=" in item and groups:
            groups[-1].append(item)
        else:
            raise ConfigError(
                f"unknown policy {item!r}; available: {', '.join(sorted(POLICIES))}, or scripted-ladder"
            )
    if not groups:
        raise ConfigError("no policy given")
    specs = [parse_policy_spec(",".join(g), extra_options=extra_options) for g in groups]
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"policies listed more than once: {', '.join(labels)}")
    return specs


def policy_class(name: str) -> type[Policy]:
    return POLICIES.load(name)


def make_policy(spec: PolicySpec) -> Policy:
    return policy_class(spec.name)(**spec.options)


def check_chunk(answer: object) -> ActionChunk:
    """The answer as float64 (K, 14) actions and, when given, (K, J) joint commands; or
    :class:`PolicyError` naming what is wrong with it."""
    joints = None
    if isinstance(answer, ActionChunk):
        answer, joints = answer.actions, answer.joints
    try:
        chunk = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"policy returned actions that are not numbers ({exc})") from None
    if chunk.ndim != 2 or chunk.shape[1] != ACTION_WIDTH or len(chunk) < 1:
        raise PolicyError(
            f"policy returned actions of shape {chunk.shape}; expected (K, {ACTION_WIDTH}) with K >= 1"
        )
    _check_finite(chunk, "actions")
    if joints is not None:
        try:
            joints = np.asarray(joints, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"policy returned joint commands that are not numbers ({exc})") from None
        if joints.ndim != 2 or len(joints) != len(chunk) or joints.shape[1] < 1:
            raise PolicyError(
                f"policy returned joint commands of shape {joints.shape} for {len(chunk)} actions; "
                f"expected ({len(chunk)}, J)"
            )
        _check_finite(joints, "joint commands")
    return ActionChunk(chunk, joints)


def _check_finite(values: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        rows = sorted({int(r) for r in np.nonzero(bad)[0]})
        raise PolicyError(f"policy returned non-finite {what} (NaN or inf) in chunk rows {rows[:5]}")
