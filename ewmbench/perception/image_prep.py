"""Frame preprocessing for the image encoders, as the official EWMBench tool does it.

Both encoders see frames the same way up to the size and interpolation: RGB as floats in 0..255,
zero-padded to a centred square (top/left pad ``(S - H) // 2`` and ``(S - W) // 2``, the rest at
the bottom/right), resized to a square without antialiasing, divided by 255, then normalised by
a per-channel mean and standard deviation. All steps run on the encoder's device in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ewmbench.errors import ConfigError, DataError, require

torch = require("torch", "neural", "image preprocessing")
F = torch.nn.functional

INTERPOLATIONS = ("bilinear", "bicubic")


def to_tensor(frames: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB frames -> (T, 3, H, W) float32 in 0..255 on ``device``."""
    if isinstance(frames, np.ndarray):
        # Decoded frames are shared read-only; torch wants a buffer it may write, so copy those.
        frames = np.ascontiguousarray(frames) if frames.flags.writeable else frames.copy()
        frames = torch.from_numpy(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise DataError("<frames>", f"expected (T, H, W, 3) RGB frames, got shape {tuple(frames.shape)}")
    return frames.to(device).permute(0, 3, 1, 2).float()


def pad_to_square(images: torch.Tensor) -> torch.Tensor:
    """Zero-pad (B, C, H, W) images to (B, C, S, S), S = max(H, W), content centred.

    The odd pixel of an odd difference goes to the bottom (or right): 640x480 gets 80 rows on top
    and 80 at the bottom; a 4-wide, 1-high image gets 1 row on top and 2 below.
    """
    height, width = images.shape[-2:]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    # F.pad takes (left, right, top, bottom) for the last two dimensions.
    return F.pad(images, (left, side - width - left, top, side - height - top), value=0.0)


def resize_square(images: torch.Tensor, size: int, interpolation: str) -> torch.Tensor:
    """Resize to (size, size) with half-pixel centres and no antialiasing (and no clamping)."""
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"unknown interpolation {interpolation!r}; use one of {', '.join(INTERPOLATIONS)}")
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode=interpolation, align_corners=False, antialias=False)


def normalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x / 255 - mean) / std per channel."""
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images / 255.0 - mean_t) / std_t


def prepare(
    frames: np.ndarray | torch.Tensor,
    size: int,
    interpolation: str,
    mean: Sequence[float],
    std: Sequence[float],
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The whole chain for a batch of (T, H, W, 3) uint8 frames -> (T, 3, size, size) float32."""
    images = to_tensor(frames, device)
    return normalise(resize_square(pad_to_square(images), size, interpolation), mean, std)
