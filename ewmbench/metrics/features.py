"""What the metrics that run a pretrained network share: their weights and the keys of their
cached per-video features (scene consistency, diversity, FID, FVD).

A feature stage key (:func:`ewmbench.store.stage_key`) names the metric, the weights' content
hash (from the weights manager; or the random-init config of a test model), every setting that
changes a feature and the compute dtype, so features computed with other weights or settings are
never reused, and a copy of the same weights elsewhere reuses them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ewmbench.errors import ConfigError, DataError
from ewmbench.store import StageKey, stage_key

if TYPE_CHECKING:  # torch is imported where tensors are handled
    import torch

_log = logging.getLogger(__name__)

# Bump when the way frames become features changes, so cached features are not reused.
FEATURE_VERSION = 1
# Settings that change how fast features are computed, their values only by float round-off
# (which frames share a forward pass).
_SPEED_ONLY = ("batch_size", "batch_across_videos")


def as_float_tensor(values, what: str):
    """numpy array or tensor -> float32 tensor (on its own device), finite-checked."""
    import torch

    tensor = values.detach() if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values))
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
        raise DataError(f"<{what}>", f"expected numbers, got dtype {tensor.dtype}")
    tensor = tensor.float()
    if not bool(torch.isfinite(tensor).all()):
        raise DataError(f"<{what}>", "contains NaN or infinite values")
    return tensor


def weights_path(settings: Mapping) -> Path:
    """The resolved local weights of a metric (raises Unavailable with the fetch command)."""
    from ewmbench.perception.weights import resolve

    if "weights" not in settings:
        raise ConfigError("metric settings lack 'weights' (a weight id from `ewmbench weights list`)")
    return resolve(settings["weights"])


def uses_random_weights(settings: Mapping) -> bool:
    """``random_init`` (a model config) builds a random-weight encoder: tests and benchmarks only."""
    if settings.get("random_init"):
        _log.warning("random_init is set: the encoder has random weights and its scores mean nothing")
        return True
    return False


def weights_identity(settings: Mapping) -> str:
    """Which weights features come from: the resolved weights' content hash (the weights
    manager's), so ``EWMBENCH_WEIGHTS_<ID>`` pointing at other bytes gives other features; or the
    random-init config of a test model."""
    from ewmbench.perception.weights import content_hash

    if uses_random_weights(settings):
        return "random:" + json.dumps(settings["random_init"], sort_keys=True, default=str)
    return "sha256:" + content_hash(weights_path(settings))


def feature_stage_key(metric: str, settings: Mapping, dtype: str = "torch.float32") -> StageKey:
    """Feature-store key of a metric's per-video features: the metric, the weights' content hash,
    every setting that changes a feature and the compute ``dtype``, so a change to any computes afresh."""
    relevant = {k: v for k, v in settings.items() if k not in _SPEED_ONLY}
    return stage_key(metric, {**relevant, "dtype": str(dtype)}, weights_identity(settings), FEATURE_VERSION)


def encoder_stage_key(metric: str, settings: Mapping, device: str) -> StageKey:
    """:func:`feature_stage_key` of an image encoder, whose precision follows ``gpu_dtype`` on a GPU."""
    from ewmbench.perception.encoders import compute_precision

    return feature_stage_key(metric, settings, compute_precision(device, settings["gpu_dtype"]))


def encode_across_videos(
    videos: Iterable[tuple[Path, Callable[[], np.ndarray]]],
    encode: Callable[[list[np.ndarray]], torch.Tensor],
    batch_size: int,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Encode the frames of several videos in passes of ``batch_size`` frames that run across
    video boundaries (the tail of one video shares a pass with the head of the next).

    ``videos`` gives (path, loader) per video; a loader returns the video's frames and is called
    only when its first frame is needed. ``encode`` maps a list of (n_i, H_i, W_i, 3) uint8
    frame arrays (videos may differ in size) to the (sum n_i, ...) outputs of one forward pass.
    Yields (video index, outputs) for each video's frames in segments of ``batch_size`` ([0, b),
    [b, 2b), ...), in order: the same pieces that encoding each video on its own in batches of
    ``batch_size`` gives, so what consumes them sees the same segmentation either way; only which
    frames share a forward pass changes.
    """
    import torch

    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    sources = enumerate(videos)
    # Frames waiting for a pass: (video index, segment index, frames, segment length).
    waiting: list[tuple[int, int, np.ndarray, int]] = []
    pieces: dict[tuple[int, int], list[torch.Tensor]] = {}  # outputs of a segment, piece by piece
    exhausted = False

    def fill() -> None:
        nonlocal exhausted
        while not exhausted and sum(len(w[2]) for w in waiting) < batch_size:
            try:
                index, (path, load) = next(sources)
            except StopIteration:
                exhausted = True
                return
            frames = load()
            if len(frames) == 0:
                raise DataError(path, "video has no frames")
            for segment, start in enumerate(range(0, len(frames), batch_size)):
                part = frames[start : start + batch_size]
                waiting.append((index, segment, part, len(part)))

    while True:
        fill()
        if not waiting:
            return
        batch: list[tuple[int, int, np.ndarray, int]] = []
        taken = 0
        while waiting and taken < batch_size:
            index, segment, frames, length = waiting.pop(0)
            room = batch_size - taken
            if len(frames) > room:  # split: the rest waits for the next pass
                waiting.insert(0, (index, segment, frames[room:], length))
                frames = frames[:room]
            batch.append((index, segment, frames, length))
            taken += len(frames)
        outputs = encode([frames for _, _, frames, _ in batch])
        start = 0
        for index, segment, frames, length in batch:
            done = pieces.setdefault((index, segment), [])
            done.append(outputs[start : start + len(frames)])
            start += len(frames)
            if sum(len(p) for p in done) == length:
                del pieces[(index, segment)]
                yield index, torch.cat(done) if len(done) > 1 else done[0]
