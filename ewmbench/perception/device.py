"""The compute device a run uses when the user names none."""

from __future__ import annotations


def default_device() -> str:
    """``cuda`` when torch is installed and sees a GPU, else ``cpu``."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
