"""The one place the loop calls a world model: execute an action chunk, get frames and state back.

Each call is stateless and carries its history, as the adapter interface asks: the request holds
every action so far (row 0 the initial pose) and every frame so far as memory, and the model
returns the whole clip, of which the loop keeps the new frames. An adapter may keep a live
session to avoid re-simulating the history (the ``sim`` model does); the answer is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ewmbench.data.layout import Episode
from ewmbench.errors import EwmbenchError
from ewmbench.models.base import GenerationRequest, WorldModel


class WorldModelError(EwmbenchError):
    """The world model failed or returned something unusable; the episode is marked failed with it."""


@dataclass
class Step:
    frames: dict[str, np.ndarray]  # view -> (K, H, W, 3) uint8, the chunk's new frames
    state: np.ndarray  # (K, 14) end-effector state after each action
    state_source: str  # "world-model" (returned by the model) or "commanded" (the actions themselves)
    # Per-frame world state for judges, when the model returns it: object poses, what each hand holds.
    world_state: dict = field(default_factory=dict)


def step_world(
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
) -> Step:
    """Run ``actions`` ((N, 14), the last ``chunk`` rows new) and return the new frames and state."""
    views = tuple(history)
    request = GenerationRequest(
        episode=episode, trial=trial, seed=seed, num_frames=len(actions), fps=fps, height=height, width=width,
        views=views, instruction=instruction, substeps=list(substeps), memory_frames=dict(history), actions=actions,
    )
    sidecar = episode.sidecar
    if sidecar is not None:
        request.intrinsics = dict(sidecar.intrinsics)
    try:
        result = model.generate(request)
    except EwmbenchError as exc:
        raise WorldModelError(f"world model {model.name!r} failed: {exc}") from None
    frames = {}
    for view in views:
        clip = result.frames.get(view)
        if clip is None:
            raise WorldModelError(f"world model {model.name!r} returned no frames for view {view!r}")
        clip = np.asarray(clip)
        if clip.ndim != 4 or clip.shape[0] != len(actions) or clip.shape[1:] != (height, width, 3):
            raise WorldModelError(
                f"world model {model.name!r} returned frames of shape {clip.shape} for view {view!r}; "
                f"expected ({len(actions)}, {height}, {width}, 3) (one frame per action row)"
            )
        frames[view] = clip[-chunk:].astype(np.uint8, copy=False)
    state_info = result.info.get("state") or {}
    eef = state_info.get("eef_pose")
    if eef is not None and np.shape(eef) == (len(actions), 14) and np.isfinite(eef).all():
        state, source = np.asarray(eef, dtype=np.float64)[-chunk:], "world-model"
    else:
        state, source = np.asarray(actions, dtype=np.float64)[-chunk:], "commanded"
    world_state = {k: v for k, v in state_info.items() if k != "eef_pose"}
    return Step(frames, state, source, world_state)
