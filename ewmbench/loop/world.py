"""The one place the loop calls a world model: execute an action chunk, get frames and state back.

Each call is one stateless request of the adapter interface (``models/request.py``, ``models/adapter.py``) that carries its
history: frame 0 of the request is the current frame (episode frame ``start_frame``), the memory
is the model's share of the frames so far (re-sampled evenly, as chunked generation does), and the
actions cover every frame from the episode's start to the chunk's end. The model returns the
current frame and the chunk's frames; the loop keeps the new ones. An adapter may keep a live
simulation to avoid re-simulating the history (the ``sim`` model does); the answer is the same.
A model that generates at its own frame rate or size is conformed to the rollout's. A model
conditioned on joints (``ge-sim-2``) also receives the joint positions over the same frames: the
episode's initial ones, then the joint commands of a joint-space policy, unchanged, beside the
end-effector actions its forward kinematics gave (which the model may draw, as a band). The call, its
checks and the conforming are :mod:`ewmbench.models.invoke`'s, as for the runner and the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ewmbench.data.layout import Episode
from ewmbench.errors import EwmbenchError
from ewmbench.models.adapter import WorldModel
from ewmbench.models.chunking import even_indices
from ewmbench.models.invoke import call_model, check_result, conform_result
from ewmbench.models.request import GenerationRequest


class WorldModelError(EwmbenchError):
    """The world model failed or returned something unusable; the episode is marked failed with it."""


@dataclass
class Step:
    frames: dict[str, np.ndarray]  # view -> (K, H, W, 3) uint8, the chunk's new frames
    state: np.ndarray  # (K, 14) end-effector state after each action
    state_source: str  # "world-model" (returned by the model) or "commanded" (the actions themselves)
    # World state for judges, when the model returns it, over the current frame and the chunk's
    # (K + 1 rows): object_poses (name -> (K + 1, 7)) and held (per frame, arm -> object).
    world_state: dict = field(default_factory=dict)


def build_step_request(
    model: WorldModel,
    episode: Episode,
    trial: str,
    seed: int,
    actions: np.ndarray,
    history: dict[str, np.ndarray],
    chunk: int,
    *,
    fps: float | None,
    height: int,
    width: int,
    instruction: str,
    substeps: list[str],
    joints: np.ndarray | None = None,
) -> GenerationRequest:
    """The request for the chunk whose actions are the last ``chunk`` rows of ``actions``;
    ``joints`` ((N, J), one row per action row) go to a joint-conditioned model as they are."""
    caps = model.capabilities_now()
    conditioning = caps.conditioning
    start = len(actions) - chunk - 1  # the current frame: the last one the policy saw
    views = tuple(history)
    request = GenerationRequest(
        task=episode.task,
        episode=episode.episode,
        trial=trial,
        seed=seed,
        num_frames=chunk + 1,
        fps=fps,
        height=height,
        width=width,
        views=views,
        start_frame=start,
        actions=np.asarray(actions, dtype=np.float64),
        action_space="eef14-euler",
    )
    if "text" in conditioning:
        request.instruction, request.substeps = instruction, list(substeps)
    if "image" in conditioning and views:
        known = len(next(iter(history.values())))
        picks = even_indices(known, max(1, caps.memory_frames))
        request.memory_frames = {v: f[picks] for v, f in history.items()}
        request.memory_indices = picks
    sidecar = episode.sidecar
    if "joints" in conditioning and joints is not None:
        request.joint_positions = np.asarray(joints, dtype=np.float64)
        if sidecar is not None and "joint_names" in sidecar.meta:
            request.extra["joint_names"] = list(sidecar.meta["joint_names"])
    if sidecar is not None:
        if "calibration" in conditioning:
            # Only what is known before the rollout: each camera's first pose. Wrist cameras move
            # with the hands; an adapter propagates them from the actions.
            request.intrinsics = {v: np.asarray(k) for v, k in sidecar.intrinsics.items() if v in views}
            request.extrinsics = {v: np.asarray(e)[:1] for v, e in sidecar.extrinsics.items() if v in views}
        if "scene" in conditioning and "scene" in sidecar.meta:
            request.scene = {k: sidecar.meta[k] for k in ("scene", "subject") if k in sidecar.meta}
    return request


def step_world(model: WorldModel, episode: Episode, request: GenerationRequest) -> Step:
    """Run a chunk's request (:func:`build_step_request`) and return the new frames and state."""
    fps, height, width = request.fps, request.height, request.width
    chunk = request.num_frames - 1
    try:
        if request.views:  # a request with no views is the simulator's state-only mode (the reference)
            request.validate()
    except EwmbenchError as exc:
        raise WorldModelError(f"the request for world model {model.name!r} is not valid: {exc}") from None
    try:
        (result,) = call_model(model, [request], [episode])
        native_fps = model.capabilities_now().fps
        retimed = bool(native_fps and fps and not np.isclose(native_fps, fps))
        check_result(model, request, result, exact_frames=not retimed)
    except EwmbenchError as exc:
        raise WorldModelError(f"world model {model.name!r} failed: {exc}") from None
    sizes = {view: (height, width) for view in request.views}
    conformed, _, _ = conform_result(
        request, result, sizes, native_fps if retimed else None, fps if retimed else None
    )
    # frame 0 is the current frame, already in the history: the loop keeps the chunk's new frames
    frames = {view: clip[1:] for view, clip in conformed.items()}
    eef = result.state.get("eef_pose")
    if eef is not None and np.shape(eef) == (request.num_frames, 14) and np.isfinite(eef).all():
        state, source = np.asarray(eef, dtype=np.float64)[1:], "world-model"
    else:
        state, source = np.asarray(request.actions, dtype=np.float64)[-chunk:], "commanded"
    world_state = {}
    poses = {
        k.removeprefix("object_pose/"): np.asarray(v)
        for k, v in result.state.items()
        if k.startswith("object_pose/")
    }
    if poses:
        world_state["object_poses"] = poses
    held = result.info.get("held")
    if isinstance(held, list) and len(held) == request.num_frames:
        world_state["held"] = list(held)
    return Step(frames, state, source, world_state)
