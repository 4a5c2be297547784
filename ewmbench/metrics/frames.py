"""Frame pairing shared by the pixel metrics on the CPU (fidelity) and on a device (pixels_torch)."""

from __future__ import annotations

import numpy as np


def match_size(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize ``frame`` to ``shape`` (H, W, C) with bicubic interpolation, as the official tool."""
    if frame.shape == tuple(shape):
        return frame
    import cv2  # imported when a frame is resized: listing metrics imports no OpenCV

    return cv2.resize(frame, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def sequential_sum(values) -> float:
    """Left-to-right float64 sum, as the official loop accumulates (``total += value``); numpy's
    pairwise ``np.sum`` differs in the last bits from 9 values on."""
    total = 0.0
    for value in values:
        total += float(value)
    return total
