"""The one way to open and call a world model: build it from its name and options
(:func:`open_model`), load it on a device (:func:`load_model`), dispatch (oracle, batched or one
at a time), check the answer, and bring it to the caller's frames.

The runner, the closed loop (:mod:`ewmbench.loop.rollout`, :mod:`ewmbench.loop.world`) and the
Track 2 service (:mod:`ewmbench.serve.app`) all open a model through :func:`open_model` and
:func:`load_model` and call it through :func:`call_model`, :func:`check_result` and
:func:`conform_result`.

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
from ewmbench.models.adapter import WorldModel
from ewmbench.models.checks import check_device
from ewmbench.models.registry import load_model_class
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.perception.device import default_device


class ResultError(ConfigError):
    """The model answered, but not with usable frames (a fault of the adapter, not of the request)."""


# The optional per-prediction field of our service's answer carrying the model's own frame 0.
FRAME_0_FIELD = "ewmbench_frame_0"


def open_model(name: str | None, options: dict | None = None, flag: str = "--model") -> WorldModel:
    """The adapter ``name`` (a registered name or ``package.module:Class``) built with ``options``:
    options validated against its typed declarations, nothing loaded (see :func:`load_model`).

    A ConfigError names the command-line option at fault: ``flag`` for an unknown model,
    ``flag-option`` for an option it does not take or a value of the wrong type.
    """
    if not name:
        raise ConfigError(f"{flag}: no model named (see `ewmbench models`)")
    try:
        cls = load_model_class(name)
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
    try:
        return cls(**(options or {}))
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{flag}-option: {exc}") from None


def model_device(model: WorldModel, device: str | None) -> str:
    """The device ``model`` loads on (:func:`ewmbench.models.checks.check_device`). Probes CUDA
    (imports torch) unless ``device`` names cpu or mps: call it after the lighter checks."""
    if device in ("cpu", "mps"):
        return check_device(model, device, False)  # asked for: no CUDA probe (no torch import)
    return check_device(model, device, default_device().startswith("cuda"))


def load_model(model: WorldModel, device: str | None) -> str:
    """Check the adapter's extra is installed, choose its device (:func:`model_device`) and load
    its weights there; returns the device."""
    model.check_available()  # its extra installed (Unavailable names the pip command)
    chosen = model_device(model, device)
    model.load(chosen)
    return chosen


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
    if not isinstance(result, GenerationResult):
        raise ResultError(f"model {model.name!r} returned {type(result).__name__}, not a GenerationResult")
    for view in request.views:
        frames = result.frames.get(view)
        if frames is None:
            raise ResultError(f"model {model.name!r} returned no {view!r} frames for {'/'.join(request.ids)}")
        if (
            not isinstance(frames, np.ndarray)
            or frames.dtype != np.uint8
            or frames.ndim != 4
            or frames.shape[-1] != 3
            or len(frames) == 0
        ):
            shape = getattr(frames, "shape", None)
            raise ResultError(
                f"model {model.name!r} returned {view!r} frames of shape {shape} and dtype {getattr(frames, 'dtype', None)}; expected (T, H, W, 3) uint8"
            )
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
