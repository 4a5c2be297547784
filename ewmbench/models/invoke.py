"""The one way to call a world model: dispatch (oracle, batched or one at a time), check the
answer, and bring it to the caller's frames.

The runner (:func:`ewmbench.runner.generate`), the closed loop (:mod:`ewmbench.loop.world`) and the
Track 2 service (:mod:`ewmbench.serve.app`) all call a model through :func:`call_model`,
:func:`check_result` and :func:`conform_result`.

Frame 0 rule: a request's frame 0 is the current frame (episode frame ``start_frame``), and the
frame 0 a trial keeps is **the model's own first frame** (``result.frames[view][0]``), never the
context frame it was given. In process that is simply what the adapter returned. Over the
Track 2 API, which returns only the predicted frames 1..n-1, ``ewmbench serve`` adds the model's
own frame 0 (conformed to the profile, like the others) to each prediction as the optional field
:data:`FRAME_0_FIELD`; the ``remote`` adapter puts it in front when present, and only a service
that does not send it (anyone else's) has its context frame stand in for frame 0. So the same
model, in process or served on loopback at the benchmark's size, gives identical trials.
"""

from __future__ import annotations

import numpy as np

from ewmbench.data.conform import conform_video, time_indices
from ewmbench.errors import ConfigError
from ewmbench.models.base import GenerationRequest, GenerationResult, WorldModel, validate_result


class ResultError(ConfigError):
    """The model answered, but not with usable frames (a fault of the adapter, not of the request)."""


# The optional per-prediction field of our service's answer carrying the model's own frame 0.
FRAME_0_FIELD = "ewmbench_frame_0"


def batch_size(model: WorldModel) -> int:
    """Requests per call: one for an oracle (it reads its episode), else the adapter's max batch."""
    return 1 if model.oracle else max(1, model.capabilities_now().max_batch)


def call_model(
    model: WorldModel, requests: list[GenerationRequest], episodes: list | None = None
) -> list[GenerationResult]:
    """The model's results for ``requests`` (at most :func:`batch_size` of them), each checked.

    An oracle receives each request's ground-truth episode (``episodes``, one per request); other
    models never see it. A model whose batch is larger than one is always called through
    ``generate_batch`` (a last, shorter batch included), others through ``generate``.
    """
    if model.oracle:
        if episodes is None or len(episodes) != len(requests):
            raise ConfigError(f"model {model.name!r} is an oracle and needs each request's episode")
        results = [model.generate_oracle(r, e) for r, e in zip(requests, episodes)]
    elif batch_size(model) > 1:
        results = model.generate_batch(requests)
    else:
        results = [model.generate(r) for r in requests]
    if not isinstance(results, list) or len(results) != len(requests):
        raise ResultError(
            f"model {model.name!r} returned {len(results) if isinstance(results, list) else 'no list of'} "
            f"results for {len(requests)} requests"
        )
    for request, result in zip(requests, results):
        check_result(model, request, result)
    return results


def check_result(
    model: WorldModel, request: GenerationRequest, result: GenerationResult, exact_frames: bool = False
) -> None:
    """Every requested view as (T >= 1, H, W, 3) uint8 frames; with ``exact_frames``, exactly
    ``request.num_frames`` of them (a caller that does not retime). A :class:`ResultError` if not."""
    try:
        validate_result(model, request, result)
    except ConfigError as exc:
        raise ResultError(str(exc)) from None
    if exact_frames:
        for view in request.views:
            shape = result.frames[view].shape
            if shape[0] != request.num_frames:
                raise ResultError(
                    f"model {model.name!r} returned frames of shape {shape} for view {view!r}; "
                    f"expected {request.num_frames} frames (the current one and one per action)"
                )


def conform_result(
    request: GenerationRequest,
    result: GenerationResult,
    sizes: dict[str, tuple[int, int]],
    source_fps: float | None,
    target_fps: float | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, dict]]:
    """(frames, state, reports): each view of ``sizes`` brought to ``request.num_frames`` frames at
    its (height, width) by :func:`ewmbench.data.conform.conform_video`, frame 0 kept as the model
    made it (the rule above); per-frame state resampled in time exactly as the frames were."""
    frames, reports = {}, {}
    for view, (height, width) in sizes.items():
        frames[view], reports[view] = conform_video(
            result.frames[view], request.num_frames, height, width, source_fps, target_fps
        )
    state = {}
    for key, value in result.state.items():
        value = np.asarray(value)
        if value.ndim >= 1 and len(value):
            value = value[
                np.minimum(
                    time_indices(len(value), request.num_frames, source_fps, target_fps), len(value) - 1
                )
            ]
        state[key] = value
    return frames, state, reports
