"""The one place loaded networks live, so they are loaded once per process and can be freed.

Every loader (image encoders, replay-fidelity networks, the captioner, the CLIP text encoder)
goes through :func:`loaded`, keyed by what identifies the network (kind, weights path, device,
dtype). :func:`free_models` drops them all, so that generation and scoring can take turns on one
GPU.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_MODELS: dict[Hashable, Any] = {}
_LOCK = threading.Lock()


def loaded(key: Hashable, build: Callable[[], T]) -> T:
    """The network cached under ``key``, built by ``build()`` the first time."""
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = build()
        return _MODELS[key]


def loaded_keys() -> list[Hashable]:
    with _LOCK:
        return list(_MODELS)


def free_models() -> int:
    """Forget every loaded network, collect what only cycles kept alive, and empty the CUDA cache
    when torch is loaded, so the memory is free for the next network; returns how many."""
    import gc
    import sys

    with _LOCK:
        count = len(_MODELS)
        _MODELS.clear()
    if count:
        gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return count
