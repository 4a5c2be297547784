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
* ``gripper_slip``: the grasp holds at most ``(1 - gripper_slip) * 300`` N; at 1 nothing can be
  lifted: every grasped object slips out of the hand, while pushing is unaffected;
* ``render_offset``: shift every rendered frame right by this many pixels (a perception error that
  leaves the physics, and so the returned state, exact).

Besides frames, :meth:`SimModel.generate` returns the simulator's state per frame in
``result.info["state"]``: ``eef_pose`` (T, 14), ``object_poses`` (name -> (T, 7)), ``held`` (per
frame, arm -> object). Chunked calls (the same episode, each request's actions extending the
previous one's) continue the live simulation instead of replaying the history, with the same result.
"""

from __future__ import annotations

import numpy as np

from ewmbench.errors import ConfigError, DataError, Unavailable, require
from ewmbench.models.base import GenerationRequest, GenerationResult, WorldModel, fit_length, register_model

SAMPLE_FIX = "use the simulated sample dataset: ewmbench data sample --output DIR (or --dataset sample)"


def _flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.lower() in {"true", "1", "yes"}
    raise ConfigError(f"sim option {name} must be true or false, got {value!r}")


def _number(value: object, name: str, low: float, high: float, integer: bool = False) -> float:
    try:
        number = float(value)  # CLI options arrive as text
    except (TypeError, ValueError):
        raise ConfigError(f"sim option {name} must be a number, got {value!r}") from None
    if not low <= number <= high or (integer and number != int(number)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"sim option {name} must be {kind} from {low} to {high}, got {value!r}")
    return int(number) if integer else number


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


class _Session:
    """A live simulation with everything it produced so far, for the next chunk to continue."""

    def __init__(self, key: tuple, sim, actions: np.ndarray):
        self.key = key
        self.sim = sim
        self.actions = actions  # the (degraded) actions executed so far, row 0 the initial pose
        self.frames: dict[str, list] = {}
        self.eef: list = []
        self.objects: dict[str, list] = {}
        self.held: list = []


@register_model
class SimModel(WorldModel):
    name = "sim"
    description = (
        "Action-conditioned oracle for the simulated sample dataset: re-executes the actions in the "
        "physics simulator; options action_noise, lag, drop_frames, wrong_color degrade it."
    )
    conditioning = frozenset({"image", "actions"})

    def __init__(
        self, action_noise: float = 0.0, lag: int = 0, drop_frames: float = 0.0, wrong_color: bool = False,
        friction: float = 1.0, mass: float = 1.0, gripper_slip: float = 0.0, render_offset: int = 0, **options,
    ):
        if options:
            raise ConfigError(
                f"unknown sim option(s) {sorted(options)}; known: action_noise, lag, drop_frames, wrong_color, "
                "friction, mass, gripper_slip, render_offset"
            )
        self.action_noise = _number(action_noise, "action_noise", 0.0, 0.5)
        self.lag = int(_number(lag, "lag", 0, 1000, integer=True))
        self.drop_frames = _number(drop_frames, "drop_frames", 0.0, 1.0)
        self.wrong_color = _flag(wrong_color, "wrong_color")
        self.friction = _number(friction, "friction", 0.01, 100.0)
        self.mass = _number(mass, "mass", 0.01, 100.0)
        self.gripper_slip = _number(gripper_slip, "gripper_slip", 0.0, 1.0)
        self.render_offset = int(_number(render_offset, "render_offset", 0, 10_000, integer=True))
        self._session: _Session | None = None

    def config(self) -> dict:
        return {
            "action_noise": self.action_noise, "lag": self.lag, "drop_frames": self.drop_frames, "wrong_color": self.wrong_color,
            "friction": self.friction, "mass": self.mass, "gripper_slip": self.gripper_slip, "render_offset": self.render_offset,
        }

    def physics(self):
        from ewmbench.sim.execute import REFERENCE_PHYSICS, Physics

        return Physics(friction=self.friction, mass=self.mass, grasp_force=REFERENCE_PHYSICS.grasp_force * (1.0 - self.gripper_slip))

    def check_available(self) -> None:
        require("pybullet", "sim", "the sim model")

    def check_episode(self, episode) -> None:
        """Raise :class:`Unavailable` when ``episode`` holds no simulator state to replay."""
        self._scene_of(episode)

    @staticmethod
    def _scene_of(episode):
        sidecar = episode.sidecar
        if sidecar is None or sidecar.actions is None or "scene" not in sidecar.meta:
            raise Unavailable(f"episode {episode.path} has no simulator state (sidecar actions and scene); the sim model replays simulated episodes only", SAMPLE_FIX)
        return sidecar

    def generate(self, request: GenerationRequest) -> GenerationResult:
        from ewmbench.sim.execute import VIEWS
        from ewmbench.sim.scene import COLOURS, SceneSpec

        sidecar = self._scene_of(request.episode)
        unknown = [v for v in request.views if v not in VIEWS]
        if unknown:
            raise DataError(request.episode.path, f"the sim model renders views {list(VIEWS)}, not {unknown}")
        if request.num_frames < 1:
            raise ConfigError(f"num_frames must be at least 1, got {request.num_frames}")
        try:
            spec = SceneSpec.from_json(sidecar.meta["scene"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(request.episode.path, f"sidecar scene description is malformed ({exc})") from None
        if self.wrong_color:
            subject = spec.object(sidecar.meta.get("subject", spec.objects[0].name))
            taken = {o.colour for o in spec.objects} | {f.colour for f in (spec.container, spec.marker) if f is not None}
            spec.colour_overrides[subject.name] = next(c for c in COLOURS if c not in taken)
        actions = request.actions if request.actions is not None else sidecar.actions
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != 14:
            raise DataError(request.episode.path, f"actions must be (T, 14), got {actions.shape}")
        actions = degrade_actions(fit_length(actions, request.num_frames), self.action_noise, self.lag, request.seed)
        fps = request.fps or sidecar.fps
        if not fps:
            raise DataError(request.episode.path, "no frame rate in the request or the sidecar")
        frames, state = self._simulate(request, spec, actions, float(fps))
        frames = drop_frames(frames, self.drop_frames, request.seed)
        frames = {view: shift_frames(f, self.render_offset) for view, f in frames.items()}
        return GenerationResult(frames, info={"eef_pose": state["eef_pose"], "state": state, **self.config()})

    def _simulate(self, request: GenerationRequest, spec, actions: np.ndarray, fps: float) -> tuple[dict, dict]:
        """Run ``actions``, continuing the live session when they extend what it already ran."""
        import json

        from ewmbench.sim.execute import Simulation, cameras, unwrap_rpy

        key = (str(request.episode.path), json.dumps(spec.to_json(), sort_keys=True), fps, tuple(request.views), request.width, request.height)
        session = self._session
        done = len(session.actions) if session is not None else 0
        if session is None or session.key != key or done > len(actions) or not np.array_equal(session.actions, actions[:done]):
            self.close()
            session = _Session(key, Simulation(spec, actions[0], fps, self.physics()), actions[:0])
            self._session = session
        cams = cameras(request.width, request.height)
        for t in range(len(session.actions), len(actions)):
            if t > 0:
                session.sim.advance(actions[t])
            pose_row, _, poses = session.sim.observe()
            session.eef.append(pose_row)
            session.held.append(session.sim.held_objects())
            for name, pose in session.sim.object_poses().items():
                session.objects.setdefault(name, []).append(pose)
            for view in request.views:
                session.frames.setdefault(view, []).append(session.sim.render(cams[view], poses[view])[0])
        session.actions = actions.copy()
        length = len(actions)
        frames = {view: np.stack(session.frames[view][:length]) for view in request.views}
        state = {
            "eef_pose": unwrap_rpy(np.array(session.eef[:length])),
            "object_poses": {name: np.array(rows[:length]) for name, rows in session.objects.items()},
            "held": list(session.held[:length]),
        }
        return frames, state

    def close(self) -> None:
        if self._session is not None:
            self._session.sim.close()
            self._session = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: pybullet may already be gone
            pass
