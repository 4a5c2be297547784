"""Pixel fidelity against ground truth: PSNR and SSIM (replay metrics of GE-Sim, and EWMBench's).

v1 (official): each generated frame is resized to the GT size (bicubic) when shapes differ;
scores are summed over zipped frame pairs and divided by the number of GT frames, so a shorter
prediction is diluted; one identical frame makes PSNR infinite. v2: the mean over frames matched
by index (``mean_over_matched``), per-frame PSNR capped at ``max_db``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from ewmbench.errors import ConfigError
from ewmbench.metrics.base import Metric, TrialInputs, register_metric


def match_size(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize ``frame`` to ``shape`` (H, W, C) with bicubic interpolation, as the official tool."""
    if frame.shape == tuple(shape):
        return frame
    return cv2.resize(frame, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def psnr_frame(pred: np.ndarray, gt: np.ndarray, data_range: float = 255, max_db: float | None = None) -> float:
    """PSNR in dB of one frame pair: infinite when identical, unless capped at ``max_db``."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    mse = float(np.mean((pred - gt) ** 2))
    value = math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)
    return value if max_db is None else min(value, max_db)


def ssim_frame(pred: np.ndarray, gt: np.ndarray, data_range: float = 255, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> float:
    """SSIM of one RGB frame pair: uniform window, per-channel, averaged (scikit-image)."""
    return float(
        structural_similarity(gt, pred, data_range=data_range, win_size=win_size, K1=k1, K2=k2, channel_axis=-1, gaussian_weights=False)
    )


def video_score(pred: np.ndarray, gt: np.ndarray, frame_score, frame_matching: str) -> float:
    """Combine per-frame scores over a video pair as the protocol says."""
    pairs = list(zip(pred, gt))
    if not pairs:
        raise ValueError("empty video")
    scores = [frame_score(match_size(p, g.shape), g) for p, g in pairs]
    if frame_matching == "zip_divide_by_gt":
        return float(np.sum(scores) / len(gt))
    if frame_matching == "mean_over_matched":
        return float(np.mean(scores))
    raise ConfigError(f"unknown frame_matching {frame_matching!r} (zip_divide_by_gt or mean_over_matched)")


def psnr(pred: np.ndarray, gt: np.ndarray, frame_matching: str = "zip_divide_by_gt", data_range: float = 255, max_db: float | None = None) -> float:
    """Video PSNR of (T, H, W, 3) uint8 frames against ground truth.

    Without ``max_db`` (v1) a single identical frame makes the video's PSNR infinite.
    """
    return video_score(pred, gt, lambda p, g: psnr_frame(p, g, data_range, max_db), frame_matching)


def ssim(pred: np.ndarray, gt: np.ndarray, frame_matching: str = "zip_divide_by_gt", data_range: float = 255, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> float:
    """Video SSIM of (T, H, W, 3) uint8 frames against ground truth."""
    return video_score(pred, gt, lambda p, g: ssim_frame(p, g, data_range, win_size, k1, k2), frame_matching)


@register_metric
class PSNR(Metric):
    name = "psnr"
    group = "fidelity"
    columns = ("psnr",)
    description = "Peak signal-to-noise ratio against the GT video (dB; higher is better)."

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        value = psnr(inputs.frames(), inputs.gt_frames(), settings["frame_matching"], settings["data_range"], settings.get("max_db"))
        return {"psnr": value}


@register_metric
class SSIM(Metric):
    name = "ssim"
    group = "fidelity"
    columns = ("ssim",)
    description = "Structural similarity against the GT video (7x7 uniform window; higher is better)."

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        value = ssim(
            inputs.frames(), inputs.gt_frames(), settings["frame_matching"], settings["data_range"],
            settings["win_size"], settings["k1"], settings["k2"],
        )
        return {"ssim": value}
