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

And, for closed-loop policy evaluation, world models that get physics or perception wrong against
the reference simulator (the unperturbed one), so the agreement of their verdicts falls in a known
way:

* ``friction``, ``mass``: scale every movable object's friction and mass (1 = reference);
* ``gripper_slip``: the grasp constraint holds at most ``(1 - gripper_slip) * 300`` N (the fingers'
  own friction may still hold a light object; combine with ``mass`` to make objects slip);
* ``render_offset``: shift every rendered frame right by this many pixels (a perception error that
  leaves the physics, and so the returned state, exact).

Besides frames, a result carries the simulator's state per frame: ``state["eef_pose"]`` (T, 14),
``state["object_pose/<name>"]`` (T, 7: xyz and quaternion x, y, z, w) and ``info["held"]`` (per
frame, arm -> the object it holds). A request with ``start_frame`` s > 0 (a chunk) returns episode
frames s .. s + num_frames - 1; the model keeps the live simulation between the chunks of one
rollout (each request's actions extending the last), so a chunk costs only its own frames, and a
fresh model gives the same answer by replaying the history.
"""

from __future__ import annotations

import numpy as np

from ewmbench.errors import ConfigError, DataError, Unavailable
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import Capabilities
from ewmbench.models.request import GenerationRequest, GenerationResult, fit_length
from ewmbench.registry import Option

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
    if probability <= 0 or not frames:
        return frames
    length = len(next(iter(frames.values())))
    dropped = np.random.default_rng([seed, 1]).random(length) < probability
    out = {view: f.copy() for view, f in frames.items()}
    for t in range(1, length):
        if dropped[t]:
            for view in out:
                out[view][t] = out[view][t - 1]
    return out


def shift_frames(frames: np.ndarray, pixels: int) -> np.ndarray:
    """Frames (T, H, W, 3) moved right by ``pixels``, the left edge column repeated into the gap."""
    if pixels <= 0:
        return frames
    pixels = min(pixels, frames.shape[2])
    out = np.empty_like(frames)
    out[:, :, pixels:] = frames[:, :, : frames.shape[2] - pixels]
    out[:, :, :pixels] = frames[:, :, :1]
    return out


class _LiveRun:
    """A live simulation and everything it produced so far, for the next chunk to continue."""

    def __init__(self, key: tuple, sim):
        self.key = key
        self.sim = sim
        self.actions = np.zeros((0, 14))  # the (degraded) actions executed so far, row 0 the initial pose
        self.frames: dict[str, list] = {}
        self.eef: list = []
        self.objects: dict[str, list] = {}
        self.held: list = []


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
        Option(
            "action_noise", float, 0.0, "std (m) of Gaussian noise on both hands' target positions", 0.0, 0.5
        ),
        Option("lag", int, 0, "frames the first action is held before the sequence starts", 0, 1000),
        Option("drop_frames", float, 0.0, "probability that a frame repeats the previous one", 0.0, 1.0),
        Option("wrong_color", bool, False, "recolour the object the task is about"),
        Option(
            "friction",
            float,
            1.0,
            "scale of every object's friction against the reference (physics error)",
            0.01,
            100.0,
        ),
        Option(
            "mass",
            float,
            1.0,
            "scale of every object's mass against the reference (physics error)",
            0.01,
            100.0,
        ),
        Option(
            "gripper_slip",
            float,
            0.0,
            "share of the grasp force lost: the grasp holds (1 - slip) x 300 N",
            0.0,
            1.0,
        ),
        Option(
            "render_offset",
            int,
            0,
            "pixels every frame is shifted right (perception error; state stays exact)",
            0,
            10_000,
        ),
    )
    needs_also = ("pybullet", "a simulated dataset (the sample)")
    status = "exact replay checked against the ground truth; CPU (pybullet)"

    def __init__(self, **options):
        super().__init__(**options)
        self.action_noise = self.settings["action_noise"]
        self.lag = self.settings["lag"]
        self.drop_frames = self.settings["drop_frames"]
        self.wrong_color = self.settings["wrong_color"]
        self.render_offset = self.settings["render_offset"]
        self._live: _LiveRun | None = None

    def physics(self):
        from ewmbench.sim.execute import REFERENCE_PHYSICS, Physics

        slip = self.settings["gripper_slip"]
        return Physics(
            friction=self.settings["friction"],
            mass=self.settings["mass"],
            grasp_force=REFERENCE_PHYSICS.grasp_force * (1.0 - slip),
        )

    def check_available(self) -> None:
        from ewmbench.sim.execute import import_pybullet

        import_pybullet("the sim model")

    def generate_oracle(self, request: GenerationRequest, episode) -> GenerationResult:
        return self.generate(request)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        from ewmbench.sim.execute import VIEWS
        from ewmbench.sim.scene import COLOURS, SceneSpec

        where = f"{request.task}/{request.episode}"
        if not request.scene or "scene" not in request.scene or request.actions is None:
            raise Unavailable(
                f"episode {where} has no simulator state (sidecar actions and scene); the sim model replays simulated episodes only",
                SAMPLE_FIX,
            )
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
            taken = {o.colour for o in spec.objects} | {
                f.colour for f in (spec.container, spec.marker) if f is not None
            }
            spec.colour_overrides[subject.name] = next(c for c in COLOURS if c not in taken)
        actions = np.asarray(request.actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != 14:
            raise DataError(where, f"actions must be (T, 14), got {actions.shape}")
        # The simulator starts from the episode's initial state, so it runs from frame 0 to the
        # chunk's last frame and returns the chunk's frames.
        end = request.start_frame + request.num_frames
        actions = degrade_actions(fit_length(actions, end), self.action_noise, self.lag, request.seed)
        if not request.fps:
            raise DataError(where, "no frame rate in the request (sidecar `fps`)")
        frames, state, held = self._simulate(request, spec, actions, float(request.fps))
        frames = drop_frames(frames, self.drop_frames, request.seed)
        start = request.start_frame
        frames = {view: shift_frames(f[start:], self.render_offset) for view, f in frames.items()}
        state = {key: value[start:] for key, value in state.items()}
        return GenerationResult(frames, state=state, info={**self.config(), "held": held[start:]})

    def _simulate(
        self, request: GenerationRequest, spec, actions: np.ndarray, fps: float
    ) -> tuple[dict, dict, list]:
        """Frames, state and holds of frames 0 .. len(actions) - 1, continuing the live simulation
        when ``actions`` extend what it already ran."""
        import json

        from ewmbench.sim.execute import Simulation, cameras, unwrap_rpy

        key = (
            request.task,
            request.episode,
            json.dumps(spec.to_json(), sort_keys=True),
            fps,
            tuple(request.views),
            request.width,
            request.height,
        )
        live = self._live
        done = len(live.actions) if live is not None else 0
        if (
            live is None
            or live.key != key
            or done > len(actions)
            or not np.array_equal(live.actions, actions[:done])
        ):
            self.close()
            live = self._live = _LiveRun(key, Simulation(spec, actions[0], fps, self.physics()))
        cams = cameras(request.width, request.height)
        for t in range(len(live.actions), len(actions)):
            if t > 0:
                live.sim.advance(actions[t])
            pose_row, _, poses = live.sim.observe()
            live.eef.append(pose_row)
            live.held.append(live.sim.held_objects())
            for name, pose in live.sim.object_poses().items():
                live.objects.setdefault(name, []).append(pose)
            for view in request.views:
                live.frames.setdefault(view, []).append(live.sim.render(cams[view], poses[view])[0])
        live.actions = actions.copy()
        length = len(actions)
        frames = {view: np.stack(live.frames[view][:length]) for view in request.views}
        state = {"eef_pose": unwrap_rpy(np.array(live.eef[:length]))}
        state.update({f"object_pose/{name}": np.array(rows[:length]) for name, rows in live.objects.items()})
        return frames, state, list(live.held[:length])

    def close(self) -> None:
        """End the live simulation (the next request starts a fresh one)."""
        if self._live is not None:
            self._live.sim.close()
            self._live = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: pybullet may already be gone
            pass
