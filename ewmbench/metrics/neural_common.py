"""Helpers shared by the encoder-based metrics (scene consistency, diversity)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ewmbench.errors import ConfigError, DataError

_log = logging.getLogger(__name__)

# Bump when the way frames become features changes, so cached features are not reused.
FEATURE_VERSION = 1


def settings_of(protocol: str | Mapping, metric: str) -> dict:
    """A metric's settings from a protocol name, a protocol file path, or a settings mapping."""
    if isinstance(protocol, Mapping):
        return dict(protocol)
    if hasattr(protocol, "settings"):
        return dict(protocol.settings(metric))
    from ewmbench.protocols import load_protocol

    return dict(load_protocol(str(protocol)).settings(metric))


def as_float_tensor(values, what: str) -> torch.Tensor:
    """numpy array or tensor -> float32 tensor (on its own device), finite-checked."""
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


def cache_kind(metric: str, settings: Mapping, device: str) -> str:
    """Cache folder name of per-video features: names the metric, the weights (file identity), every
    setting and the compute dtype on ``device``, so a change to any of them computes afresh."""
    from ewmbench.perception.encoders import torch_dtype

    dtype = torch_dtype(device, settings["gpu_dtype"])
    if uses_random_weights(settings):
        identity = "random:" + json.dumps(settings["random_init"], sort_keys=True, default=str)
    else:
        path = weights_path(settings)
        stat = path.stat()
        identity = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    relevant = {k: v for k, v in settings.items() if k not in ("batch_size",)}
    blob = json.dumps([identity, relevant, str(dtype), FEATURE_VERSION], sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    name = settings.get("weights", "random") if not uses_random_weights(settings) else "random"
    return f"{metric}/{name}-v{FEATURE_VERSION}-{digest}"


