"""PSNR and SSIM of whole videos on any torch device (a GPU when there is one), equal to the
CPU/scikit-image values (:mod:`ewmbench.metrics.fidelity`) to float64 round-off.

Both work on exact integers first: squared differences summed in int64 (PSNR); window sums of
x, y, x*x, y*y and x*y by ``avg_pool2d`` with ``divisor_override=1`` in float32, exact for 8-bit
frames (every partial sum < 2**24), over the interior windows only (SSIM). The ratio then
follows in float64, so the device changes the speed, never the value. Frames are uploaded as
uint8 (a quarter of float32's transfer) in chunks of ``batch_frames``.
"""

from __future__ import annotations

import math

import numpy as np

from ewmbench.errors import ConfigError
from ewmbench.metrics.frames import match_size, sequential_sum


def _frames(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = min(len(pred), len(gt))
    if count == 0:
        raise ValueError("empty video")
    matched = np.stack([match_size(p, g.shape) for p, g in zip(pred[:count], gt[:count])])
    if matched.dtype != np.uint8 or np.asarray(gt).dtype != np.uint8:
        raise ValueError("the device path takes uint8 frames")
    return matched, np.asarray(gt[:count])


def frame_scores(
    pred: np.ndarray,
    gt: np.ndarray,
    device: str = "cpu",
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 255,
    batch_frames: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (squared-error sum, SSIM) of the zipped frame pairs, as float64 arrays."""
    import torch
    import torch.nn.functional as F

    pred, gt = _frames(pred, gt)
    n = win_size * win_size
    c1, c2 = (k1 * data_range) ** 2 * n * n, (k2 * data_range) ** 2 * n * (n - 1)
    errors, ssims = [], []
    for start in range(0, len(gt), batch_frames):
        x = torch.from_numpy(gt[start : start + batch_frames]).to(device).permute(0, 3, 1, 2)
        y = torch.from_numpy(pred[start : start + batch_frames]).to(device).permute(0, 3, 1, 2)
        diff = x.to(torch.int32) - y.to(torch.int32)
        errors.append((diff * diff).flatten(1).sum(1, dtype=torch.int64).cpu())
        xf, yf = x.float(), y.float()

        def window_sum(image):
            return F.avg_pool2d(image, win_size, stride=1, divisor_override=1).double()

        sx, sy = window_sum(xf), window_sum(yf)
        sxx, syy, sxy = window_sum(xf * xf), window_sum(yf * yf), window_sum(xf * yf)
        sx_sy, sx2, sy2 = sx * sy, sx * sx, sy * sy
        s = ((2 * sx_sy + c1) * (2 * (n * sxy - sx_sy) + c2)) / (
            (sx2 + sy2 + c1) * (n * (sxx + syy) - sx2 - sy2 + c2)
        )
        ssims.append(s.mean(dim=(2, 3)).mean(dim=1).cpu())  # per channel, then over channels (scikit-image)
    return torch.cat(errors).numpy().astype(np.float64), torch.cat(ssims).numpy()


def _combine(scores: np.ndarray, gt_frames: int, frame_matching: str) -> float:
    if frame_matching == "zip_divide_by_gt":
        return float(sequential_sum(scores) / gt_frames)
    if frame_matching == "mean_over_matched":
        return float(np.mean(scores))
    raise ConfigError(f"unknown frame_matching {frame_matching!r} (zip_divide_by_gt or mean_over_matched)")


def psnr_ssim(
    pred: np.ndarray,
    gt: np.ndarray,
    device: str = "cpu",
    frame_matching: str = "zip_divide_by_gt",
    data_range: float = 255,
    max_db: float | None = None,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tuple[float, float]:
    """Video PSNR and SSIM of (T, H, W, 3) uint8 frames against ground truth on ``device``: the
    values of :func:`ewmbench.metrics.fidelity.psnr` and :func:`~ewmbench.metrics.fidelity.ssim`."""
    errors, ssims = frame_scores(pred, gt, device, win_size, k1, k2, data_range)
    pixels = np.asarray(gt[0]).size
    psnrs = []
    for error in errors:
        mse = float(error / pixels)
        value = math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)
        psnrs.append(value if max_db is None else min(value, max_db))
    return _combine(np.asarray(psnrs), len(gt), frame_matching), _combine(ssims, len(gt), frame_matching)
