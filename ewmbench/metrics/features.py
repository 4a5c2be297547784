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
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ewmbench.errors import ConfigError, DataError
from ewmbench.store import StageKey, stage_key

_log = logging.getLogger(__name__)

# Bump when the way frames become features changes, so cached features are not reused.
FEATURE_VERSION = 1
# Settings that change how fast features are computed, never their values.
_SPEED_ONLY = ("batch_size",)


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
    """:func:`feature_stage_key` of an image encoder, whose dtype follows ``gpu_dtype`` on a GPU."""
    from ewmbench.perception.encoders import torch_dtype

    return feature_stage_key(metric, settings, str(torch_dtype(device, settings["gpu_dtype"])))
