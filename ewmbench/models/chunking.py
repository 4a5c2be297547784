"""Chunked generation: episodes longer than a model's window, one stateless request per chunk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ewmbench.errors import ConfigError
from ewmbench.models.request import GenerationRequest, GenerationResult, fit_length


def even_indices(length: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``0 .. length - 1``, the last one included."""
    if length < 1 or count < 1:
        raise ValueError("even_indices needs length >= 1 and count >= 1")
    if count == 1:
        return [length - 1]  # the current frame
    return [int(round(i)) for i in np.linspace(0, length - 1, count)]


def chunk_seed(seed: int, start_frame: int) -> int:
    """The seed of the chunk starting at ``start_frame`` (the request's own seed for the first)."""
    return int(seed) if start_frame == 0 else (int(seed) * 1_000_003 + int(start_frame)) % (2**31)


def generate_chunked(
    step: Callable[[GenerationRequest], GenerationResult],
    request: GenerationRequest,
    chunk_frames: int,
    memory_frames: int,
) -> GenerationResult:
    """Produce ``request.num_frames`` frames with a model whose window is ``chunk_frames``.

    Chunk k is a stateless request: frame 0 is the last frame produced so far (so each chunk adds
    ``chunk_frames - 1`` frames), its memory is ``memory_frames`` frames re-sampled evenly over
    everything produced so far (the caller's memory for the first chunk), its actions and
    extrinsics are the history plus the chunk's frames, and its seed is derived from the
    request's seed and its start frame (:func:`chunk_seed`), so chunks do not share their noise. States are joined like frames; the info
    of each chunk is kept under ``info["chunks"]``.
    """
    if chunk_frames < 2:
        raise ConfigError(f"a chunk must hold at least 2 frames, got {chunk_frames}")
    total = request.num_frames
    if total <= chunk_frames:
        return step(replace(request, num_frames=chunk_frames)) if total < chunk_frames else step(request)
    produced: dict[str, np.ndarray] = {}
    states: dict[str, np.ndarray] = {}
    infos: list[dict] = []
    start = request.start_frame
    while True:
        if not produced:
            chunk = replace(request, num_frames=chunk_frames)
        else:
            length = len(next(iter(produced.values())))
            picks = even_indices(length, memory_frames)
            chunk = replace(
                request,
                num_frames=chunk_frames,
                start_frame=start,
                seed=chunk_seed(request.seed, start),
                memory_frames={v: f[picks] for v, f in produced.items()},
                memory_indices=[request.start_frame + i for i in picks],
            )
        end = chunk.start_frame + chunk_frames
        if request.actions is not None:
            chunk.actions = fit_length(request.actions, end)
        chunk.extrinsics = {v: fit_length(e, end) for v, e in request.extrinsics.items()}
        result = step(chunk)
        first = not produced
        for view, frames in result.frames.items():
            part = frames if first else frames[1:]
            produced[view] = part if first else np.concatenate([produced[view], part])
        for key, value in result.state.items():
            part = value if first else value[1:]
            states[key] = part if first else np.concatenate([states[key], part])
        infos.append(result.info)
        length = len(next(iter(produced.values())))
        if length >= total:
            break
        start = request.start_frame + length - 1
    return GenerationResult(
        {v: f[:total] for v, f in produced.items()},
        {k: s[:total] for k, s in states.items()},
        {"chunks": infos, "chunk_frames": chunk_frames, "memory_frames": memory_frames},
    )
