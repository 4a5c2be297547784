"""World judges: did the rollout achieve the task? A registry of names to ``"module:Class"``.

* ``state``: the task's own success condition (``sim/tasks.py``) evaluated on the object and
  gripper state the world model returned, exactly as the simulator checks its ground truth. Only
  for world models that return that state (the ``sim`` model does).
* ``vlm``: a video-language model reads the rollout's frames and answers, per sub-step, done or
  not done, then an overall success and a reward (:mod:`ewmbench.loop.vlm_judge`).

Every verdict keeps its evidence: what the judge looked at and what it answered.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ewmbench.errors import ConfigError, EwmbenchError
from ewmbench.registry import Entry, Registry, parse_flag


class JudgeError(EwmbenchError):
    """The judge could not reach a verdict on a rollout; the episode is marked failed with it."""


@dataclass
class Rollout:
    """One finished rollout, as a judge sees it."""

    instruction: str
    substeps: list[str]
    frames: dict[str, np.ndarray]  # view -> (T, H, W, 3) uint8
    state: np.ndarray  # (T, 14)
    actions: np.ndarray  # (T, 14)
    world_state: dict = field(default_factory=dict)  # object_poses (name -> (T, 7)), held (per frame)
    episode_meta: dict = field(default_factory=dict)
    fps: float | None = None


@dataclass
class Verdict:
    success: bool
    score: float  # in [0, 1]: the judge's confidence or reward that the task succeeded
    substeps: list[bool | None] = field(default_factory=list)  # per sub-step done, None where not judged
    evidence: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "success": bool(self.success),
            "score": float(self.score),
            "substeps": list(self.substeps),
            "evidence": self.evidence,
        }


class Judge(ABC):
    name: ClassVar[str]
    needs_world_state: ClassVar[bool] = False

    def __init__(self, **options):
        if options:
            raise ConfigError(f"judge {self.name!r} takes no options, got {sorted(options)}")

    @abstractmethod
    def judge(self, rollout: Rollout) -> Verdict: ...

    def should_stop(self, rollout: Rollout) -> bool:
        """Asked after every chunk: end the rollout before the horizon? (Never, unless a judge says.)"""
        return False

    def config(self) -> dict:
        return {}


# Judges by name, as "module:Class" with a description, so listing imports nothing.
JUDGES = Registry(
    "judge",
    [
        Entry(
            "state",
            "ewmbench.loop.judges:StateJudge",
            "the task's success condition on the returned object and gripper state (world models that return it, like sim)",
        ),
        Entry(
            "vlm",
            "ewmbench.loop.vlm_judge:VLMJudge",
            "a video-language model scores the rollout against the instruction and its sub-steps",
        ),
    ],
    entry_point_group="ewmbench.judges",
)


def make_judge(name: str, options: dict | None = None) -> Judge:
    return JUDGES.load(name)(**(options or {}))


class StateJudge(Judge):
    """``early_stop=true`` ends a rollout as soon as the condition holds (the verdict is then taken
    there); by default every rollout runs to the horizon and is judged on its final state."""

    name = "state"
    needs_world_state = True

    def __init__(self, early_stop: bool | str = False, **options):
        super().__init__(**options)
        self.early_stop = parse_flag(early_stop, "state judge option early_stop")

    def config(self) -> dict:
        return {"early_stop": self.early_stop}

    def should_stop(self, rollout: Rollout) -> bool:
        return self.early_stop and self.judge(rollout).success

    def judge(self, rollout: Rollout) -> Verdict:
        from ewmbench.sim.execute import Recording
        from ewmbench.sim.tasks import plan_episode

        poses, held = rollout.world_state.get("object_poses"), rollout.world_state.get("held")
        if not poses or not held:
            raise JudgeError(
                "the state judge needs the world model to return object and gripper state (the sim model does); use --judge vlm"
            )
        meta = rollout.episode_meta
        try:
            plan = plan_episode(
                int(meta["seed"]),
                str(meta["task_name"]),
                int(meta["episode_index"]),
                int(meta.get("layout_attempt", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise JudgeError(
                f"the state judge needs a simulated episode's task and layout in the sidecar ({exc})"
            ) from None
        recording = Recording(
            frames={},
            eef_pose=np.asarray(rollout.state),
            joint_positions=np.zeros((len(rollout.state), 0)),
            extrinsics={},
            intrinsics={},
            object_poses={k: np.asarray(v) for k, v in poses.items()},
            held=list(held),
        )
        try:
            success, details = plan.check(recording, plan.spec)
        except (KeyError, IndexError) as exc:
            raise JudgeError(
                f"the returned state lacks what the {meta['task_name']} condition needs ({exc})"
            ) from None
        return Verdict(
            bool(success),
            float(bool(success)),
            [],
            evidence={"condition": plan.success_condition, "details": details, "final_held": held[-1]},
        )
