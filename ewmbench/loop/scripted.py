"""``scripted``: the sample's task plans (``sim/tasks.py``) as closed-loop controllers.

The plan of an episode is rebuilt from its layout (task, seed, episode index, layout attempt in the
sidecar) and turned into a per-frame schedule of end-effector targets over the episode's length.
The controller keeps a cursor in that schedule and decides from the observed state whether to
advance it: a hand that is further than ``tolerance`` from where the schedule says it should be
(blocked, slipping, lost) makes the controller hold its current target for up to
``max_wait`` chunks so the hand can catch up, instead of running ahead of it.

Options make a ladder of known quality (each is a plain, named mistake):

* ``grasp_offset`` (m): every target of the acting hands moves this far along the base x axis, so
  grasps close beside the object: objects narrower than about twice the offset are missed;
* ``action_noise`` (m): Gaussian noise on every target position, drawn from ``seed`` and the
  episode;
* ``wrong_order``: the second and third motions of the plan are swapped (for a pick, the gripper
  closes before it has descended to the object; for a push, the hand pushes before lowering);
* ``give_up`` (fraction of the schedule): after this share of the episode the controller stops and
  holds its last target;
* ``chunk``: actions per call (default 4).
"""

from __future__ import annotations

import json

import numpy as np

from ewmbench.errors import ConfigError
from ewmbench.loop.policies import Observation, Policy, PolicyError
from ewmbench.registry import Option

ARM_POSITIONS = {"left": slice(0, 3), "right": slice(7, 10)}


# Numbers are read as floats and the counts truncated to integers, as they always have been.
OPTIONS = {
    option.name: option
    for option in (
        Option("grasp_offset", float, 0.0, low=-0.5, high=0.5),
        Option("action_noise", float, 0.0, low=0.0, high=0.5),
        Option("give_up", float, 1.0, low=0.0, high=1.0),
        Option("chunk", float, 4, low=1, high=1000),
        Option("tolerance", float, 0.15, low=0.0, high=10.0),
        Option("max_wait", float, 2, low=0, high=1000),
        Option("seed", float, 0, low=0, high=2**31 - 1),
        Option("wrong_order", bool, False),
    )
}


def _option(options: dict, name: str):
    option = OPTIONS[name]
    return option.check(options.pop(name, option.default), f"scripted policy option {name}")


class ScriptedPolicy(Policy):
    name = "scripted"
    description = "the sample's task plans as closed-loop controllers"
    needs_frames = False

    def __init__(self, **options):
        self.grasp_offset = _option(options, "grasp_offset")
        self.action_noise = _option(options, "action_noise")
        self.give_up = _option(options, "give_up")
        self.chunk = int(_option(options, "chunk"))
        self.tolerance = _option(options, "tolerance")
        self.max_wait = int(_option(options, "max_wait"))
        self.seed = int(_option(options, "seed"))
        self.wrong_order = _option(options, "wrong_order")
        if options:
            raise ConfigError(
                f"unknown scripted policy option(s) {sorted(options)}; known: grasp_offset, action_noise, wrong_order, "
                "give_up, chunk, tolerance, max_wait, seed"
            )
        self.schedule: np.ndarray | None = None
        self.arms: tuple[str, ...] = ()

    def config(self) -> dict:
        return {
            "grasp_offset": self.grasp_offset,
            "action_noise": self.action_noise,
            "wrong_order": self.wrong_order,
            "give_up": self.give_up,
            "chunk": self.chunk,
            "tolerance": self.tolerance,
            "max_wait": self.max_wait,
            "seed": self.seed,
        }

    def reset(self, instruction: str, observation: Observation) -> None:
        from ewmbench.sim.tasks import Segment, Target, plan_actions, plan_episode

        meta = observation.episode_meta
        try:
            plan = plan_episode(
                int(meta["seed"]),
                str(meta["task_name"]),
                int(meta["episode_index"]),
                int(meta.get("layout_attempt", 0)),
            )
            length = int(meta["num_frames"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyError(
                f"the scripted policy needs a simulated episode's layout in the sidecar (task, seed, index): {exc}"
            ) from None
        if "scene" in meta and json.loads(json.dumps(plan.spec.to_json())) != meta["scene"]:
            raise PolicyError(
                "the episode's scene differs from the layout its task plan gives; the scripted policy cannot act on it"
            )
        segments = list(plan.segments)
        if self.wrong_order and len(segments) > 2:
            segments[1], segments[2] = segments[2], segments[1]
        if self.grasp_offset:
            segments = [
                Segment(
                    s.weight,
                    {
                        arm: Target(
                            (t.position[0] + self.grasp_offset, t.position[1], t.position[2]),
                            t.rotation,
                            t.gripper,
                        )
                        for arm, t in s.targets.items()
                    },
                )
                for s in segments
            ]
        schedule = plan_actions(plan.spec, segments, length)
        self.arms = tuple(sorted({arm for s in segments for arm in s.targets}))
        if self.action_noise:
            episode = [int(meta["seed"]), int(meta.get("task_id", 0)), int(meta["episode_index"])]
            noise = (
                np.random.default_rng([self.seed, *episode]).standard_normal((len(schedule) - 1, 2, 3))
                * self.action_noise
            )
            schedule[1:, 0:3] += noise[:, 0]
            schedule[1:, 7:10] += noise[:, 1]
        stop = max(1, int(round(self.give_up * (length - 1))))
        schedule[stop + 1 :] = schedule[stop]
        self.schedule = schedule
        self.cursor = 0
        self.waited = 0

    def act(self, observation: Observation) -> np.ndarray:
        if self.schedule is None:
            raise PolicyError("act() before reset()")
        state = np.asarray(observation.state, dtype=np.float64)
        error = max(
            (
                float(np.linalg.norm(state[ARM_POSITIONS[a]] - self.schedule[self.cursor][ARM_POSITIONS[a]]))
                for a in self.arms
            ),
            default=0.0,
        )
        if error > self.tolerance and self.waited < self.max_wait and self.cursor > 0:
            self.waited += 1
            return np.repeat(self.schedule[self.cursor][None], self.chunk, axis=0)
        self.waited = 0
        rows = np.arange(self.cursor + 1, self.cursor + 1 + self.chunk)
        self.cursor = min(self.cursor + self.chunk, len(self.schedule) - 1)
        return self.schedule[np.minimum(rows, len(self.schedule) - 1)].copy()
