"""``sim``: an action-conditioned oracle world model for the simulated sample dataset.

It rebuilds an episode's initial state from its sidecar, re-executes the actions in the physics
simulator through the very function that recorded the ground truth, and renders the requested
views. Undegraded, it reproduces the ground truth exactly; its options degrade it in controlled
ways, giving world models of known, graded quality that every metric should rank correctly:

* ``action_noise``: standard deviation (metres) of Gaussian noise added to both hands' target
  positions in every frame after the first, drawn from ``request.seed``;
* ``lag``: frames of delay: the first action is held ``lag`` frames before the sequence starts;
* ``drop_frames``: probability that a frame repeats the previous one (a stutter), drawn per
  frame from ``request.seed``;
* ``wrong_color``: recolour the object the task is about.
"""

from __future__ import annotations

import numpy as np

from ewmbench.errors import ConfigError, DataError, Unavailable, require
from ewmbench.models.base import Capabilities, GenerationRequest, GenerationResult, Option, WorldModel, fit_length

SAMPLE_FIX = "use the simulated sample dataset: ewmbench data sample --output DIR (or --dataset sample)"


def degrade_actions(actions: np.ndarray, action_noise: float, lag: int, seed: int) -> np.ndarray:
    """Noisy, delayed copy of ``actions`` (T, 14); the first row (the initial pose) stays exact."""
    out = np.array(actions, dtype=np.float64, copy=True)
    if action_noise > 0 and len(out) > 1:
        noise = np.random.default_rng([seed, 0]).standard_normal((len(out) - 1, 2, 3)) * action_noise
        out[1:, 0:3] += noise[:, 0]
        out[1:, 7:10] += noise[:, 1]
    if lag > 0:
        out = np.concatenate([np.repeat(out[:1], lag, axis=0), out])[: len(actions)]
    return out


def drop_frames(frames: dict[str, np.ndarray], probability: float, seed: int) -> dict[str, np.ndarray]:
    """Each frame after the first repeats its predecessor with ``probability`` (same for every view)."""
    if probability <= 0:
        return frames
    length = len(next(iter(frames.values())))
    dropped = np.random.default_rng([seed, 1]).random(length) < probability
    out = {view: f.copy() for view, f in frames.items()}
    for t in range(1, length):
        if dropped[t]:
            for view in out:
                out[view][t] = out[view][t - 1]
    return out


class SimModel(WorldModel):
    name = "sim"
    description = (
        "Action-conditioned oracle for the simulated sample dataset: re-executes the actions from the "
        "episode's exact initial simulator state; options action_noise, lag, drop_frames, wrong_color degrade it."
    )
    # An oracle: it is given the episode's exact initial simulator state (`scene`), which no learnt
    # world model has, so undegraded it reproduces the ground truth.
    oracle = True
    capabilities = Capabilities(
        conditioning=frozenset({"image", "actions", "scene"}),
        views=("head", "hand_left", "hand_right"),
        action_space="eef14-euler",
    )
    options = (
        Option("action_noise", float, 0.0, "std (m) of Gaussian noise on both hands' target positions", 0.0, 0.5),
        Option("lag", int, 0, "frames the first action is held before the sequence starts", 0, 1000),
        Option("drop_frames", float, 0.0, "probability that a frame repeats the previous one", 0.0, 1.0),
        Option("wrong_color", bool, False, "recolour the object the task is about"),
    )
    needs_also = ("pybullet", "a simulated dataset (the sample)")
    status = "exact replay checked against the ground truth; CPU (pybullet)"

    def __init__(self, **options):
        super().__init__(**options)
        self.action_noise = self.settings["action_noise"]
        self.lag = self.settings["lag"]
        self.drop_frames = self.settings["drop_frames"]
        self.wrong_color = self.settings["wrong_color"]

    def check_available(self) -> None:
        require("pybullet", "sim", "the sim model")

    def generate_oracle(self, request: GenerationRequest, episode) -> GenerationResult:
        return self.generate(request)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        from ewmbench.sim.execute import VIEWS, execute
        from ewmbench.sim.scene import COLOURS, SceneSpec

        where = f"{request.task}/{request.episode}"
        if not request.scene or "scene" not in request.scene or request.actions is None:
            raise Unavailable(f"episode {where} has no simulator state (sidecar actions and scene); the sim model replays simulated episodes only", SAMPLE_FIX)
        unknown = [v for v in request.views if v not in VIEWS]
        if unknown:
            raise DataError(where, f"the sim model renders views {list(VIEWS)}, not {unknown}")
        if request.num_frames < 1:
            raise ConfigError(f"num_frames must be at least 1, got {request.num_frames}")
        try:
            spec = SceneSpec.from_json(request.scene["scene"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(where, f"sidecar scene description is malformed ({exc})") from None
        if self.wrong_color:
            subject = spec.object(request.scene.get("subject") or spec.objects[0].name)
            taken = {o.colour for o in spec.objects} | {f.colour for f in (spec.container, spec.marker) if f is not None}
            spec.colour_overrides[subject.name] = next(c for c in COLOURS if c not in taken)
        actions = np.asarray(request.actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != 14:
            raise DataError(where, f"actions must be (T, 14), got {actions.shape}")
        # The simulator starts from the episode's initial state, so it replays from frame 0.
        actions = degrade_actions(fit_length(actions, request.num_frames), self.action_noise, self.lag, request.seed)
        if not request.fps:
            raise DataError(where, "no frame rate in the request (sidecar `fps`)")
        recording = execute(spec, actions, float(request.fps), views=tuple(request.views), width=request.width, height=request.height)
        frames = drop_frames(recording.frames, self.drop_frames, request.seed)
        return GenerationResult(frames, state={"eef_pose": recording.eef_pose}, info=self.config())
