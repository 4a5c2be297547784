"""Replay fidelity against ground truth: PSNR, SSIM, LPIPS (per trial), FID and FVD (per run).

PSNR/SSIM, v1 (official): each generated frame is resized to the GT size (bicubic) when shapes
differ; scores are summed over zipped frame pairs and divided by the number of GT frames, so a
shorter prediction is diluted; one identical frame makes PSNR infinite. v2: the mean over frames
matched by index (``mean_over_matched``), per-frame PSNR capped at ``max_db``.

LPIPS, FID and FVD are GE-Sim 2.0's replay metrics; the official EWMBench tool computes none of
them, so both protocols share one definition. FID and FVD compare distributions: they are
``level = "dataset"`` metrics, scored once per run from per-video features cached by content.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ewmbench.errors import ConfigError, DataError, Unavailable
from ewmbench.metrics.base import Metric, TrialInputs, register_metric
from ewmbench.metrics.features import feature_stage_key, weights_path
from ewmbench.metrics.frames import match_size, sequential_sum


def psnr_frame(
    pred: np.ndarray, gt: np.ndarray, data_range: float = 255, max_db: float | None = None
) -> float:
    """PSNR in dB of one frame pair: infinite when identical, unless capped at ``max_db``.

    For 8-bit frames of one shape the squared error is summed exactly in integers (the absolute
    difference squared fits 16 bits); the float64 mean of the official code sums the same
    integers exactly (every partial sum is below 2**53), so the mean squared error is the same
    float64 number, bit for bit, at a twentieth of the cost.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.dtype == gt.dtype == np.uint8 and pred.shape == gt.shape and pred.size < 2**37:
        import cv2  # imported when a frame is scored: listing metrics imports no OpenCV

        difference = cv2.absdiff(np.ravel(pred), np.ravel(gt)).astype(np.uint16)
        np.multiply(difference, difference, out=difference)
        mse = int(difference.sum(dtype=np.uint64)) / difference.size
    else:
        pred, gt = pred.astype(np.float64), gt.astype(np.float64)
        mse = float(np.mean((pred - gt) ** 2))
    value = math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)
    return value if max_db is None else min(value, max_db)


def ssim_frame(
    pred: np.ndarray,
    gt: np.ndarray,
    data_range: float = 255,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """SSIM of one RGB frame pair exactly as scikit-image's ``structural_similarity`` with a
    uniform window, sample covariance and ``channel_axis=-1`` (the official call).

    The mean runs over the interior crop only (``(win_size - 1) // 2`` from each border), where
    every window lies inside the image, so border handling cannot change the result. The formula
    is rearranged to work on the window sums of x, y, x*x + y*y and x*y:

        s = (2 Sx Sy + C1) (2 (n Sxy - Sx Sy) + C2) / ((Sx^2 + Sy^2 + C1) (n (Sxx + Syy) - Sx^2 - Sy^2 + C2))

    with C1 = (k1 L)^2 n^2 and C2 = (k2 L)^2 n (n - 1): scikit-image's value to float64 round-off
    (tested within 1e-12). For 8-bit frames every term before a constant is added is an integer
    below 2**31, so OpenCV's box filter and the four integer products run exactly in int32; the
    constants, the two products and the division then follow in float64. Frames that are not
    8-bit integers (or windows too large for int32) take the same steps in float64.

    Speed comes from memory, not arithmetic: every array lives in a per-thread workspace reused
    from frame to frame (a fresh 640x480x3 array costs more in page faults than the filter that
    fills it), and the formula runs over strips of rows small enough to stay in cache.
    """
    import cv2  # imported when a frame is scored: listing metrics imports no OpenCV

    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"frame shapes differ: {pred.shape} and {gt.shape}")
    if gt.ndim == 3 and gt.shape[-1] == 1:  # OpenCV treats (H, W, 1) as (H, W)
        gt, pred = gt[..., 0], pred[..., 0]
    if win_size % 2 == 0 or win_size > min(gt.shape[:2]):
        raise ValueError(
            f"win_size must be odd and at most the frame's smaller side, got {win_size} for {gt.shape[:2]}"
        )
    n = win_size * win_size
    exact = gt.dtype == pred.dtype == np.uint8 and n * n * 2 * 255 * 255 < 2**31
    space = _workspace(gt.shape, np.int32 if exact else np.float64, win_size)
    kernel = (win_size, win_size)

    depth = cv2.CV_32S if exact else cv2.CV_64F

    def window_sum(image: np.ndarray, name: str) -> np.ndarray:
        return cv2.boxFilter(
            image, depth, kernel, dst=space[name], normalize=False, borderType=cv2.BORDER_REFLECT
        )

    if exact:
        x, y = np.ascontiguousarray(gt), np.ascontiguousarray(pred)
        squares, product = space["squares"], space["product"]
        np.multiply(x, x, out=squares, dtype=np.int32)
        squares += np.multiply(y, y, out=product, dtype=np.int32)
        sxx_syy = window_sum(squares, "sxx_syy")
        sxy = window_sum(np.multiply(x, y, out=product, dtype=np.int32), "sxy")
    else:
        x, y, product = space["x"], space["y"], space["product"]
        np.copyto(x, gt, casting="unsafe")
        np.copyto(y, pred, casting="unsafe")
        sxx_syy = window_sum(np.multiply(x, x, out=product), "sxx_syy")
        sxx_syy += window_sum(np.multiply(y, y, out=product), "sxy")  # Sxx + Syy, as two float64 sums
        sxy = window_sum(np.multiply(x, y, out=product), "sxy")
    sx, sy = window_sum(x, "sx"), window_sum(y, "sy")
    pad = (win_size - 1) // 2
    height, width = gt.shape[:2]
    c1, c2 = (k1 * data_range) ** 2 * n * n, (k2 * data_range) ** 2 * n * (n - 1)
    ratio = space["ratio"]
    interior = slice(pad, width - pad)
    for top in range(pad, height - pad, _STRIP_ROWS):
        rows = slice(top, min(top + _STRIP_ROWS, height - pad))
        count = rows.stop - rows.start
        a, b, cov, var, sy2 = (space[name][:count] for name in ("a", "b", "cov", "var", "sy2"))
        numerator, denominator = space["numerator"][:count], space["denominator"][:count]
        strip_x, strip_y = sx[rows, interior], sy[rows, interior]
        # The integer terms (exact in int32 for 8-bit frames), in the order of the formula above.
        np.multiply(strip_x, strip_y, out=b)  # Sx Sy
        np.multiply(strip_x, strip_x, out=a)  # Sx^2
        np.multiply(strip_y, strip_y, out=sy2)  # Sy^2
        np.multiply(sxy[rows, interior], n, out=cov)
        cov -= b
        cov *= 2  # 2 (n Sxy - Sx Sy)
        np.multiply(sxx_syy[rows, interior], n, out=var)
        var -= a
        var -= sy2  # n (Sxx + Syy) - Sx^2 - Sy^2
        b *= 2  # 2 Sx Sy
        a += sy2  # Sx^2 + Sy^2
        # float64 from here: the constants, the two products, the ratio.
        np.add(b, c1, out=numerator)
        numerator *= np.add(cov, c2, out=space["term"][:count])
        np.add(a, c1, out=denominator)
        denominator *= np.add(var, c2, out=space["term"][:count])
        np.divide(numerator, denominator, out=ratio[top - pad : top - pad + count])
    # Reduced as before the strips, channel by channel, so a score keeps its every bit.
    if ratio.ndim == 2:
        return float(ratio.mean())
    return float(np.mean([ratio[..., c].mean() for c in range(ratio.shape[-1])]))


_STRIP_ROWS = 16
_workspaces = threading.local()


def _workspace(shape: tuple[int, ...], dtype, win_size: int) -> dict[str, np.ndarray]:
    """This thread's arrays for SSIM of frames of ``shape``: the products and window sums in
    ``dtype`` (int32 for 8-bit frames), strips of ``_STRIP_ROWS`` interior rows for the integer
    terms (``dtype``) and the float64 terms, and the float64 interior map of the ratio; kept for
    the next frame."""
    key = (tuple(shape), np.dtype(dtype), win_size)
    cached = getattr(_workspaces, "arrays", None)
    if cached is None or cached[0] != key:
        pad = (win_size - 1) // 2
        strip = (_STRIP_ROWS, shape[1] - 2 * pad, *shape[2:])
        arrays = {
            name: np.empty(shape, dtype)
            for name in ("x", "y", "squares", "product", "sx", "sy", "sxx_syy", "sxy")
        }
        arrays |= {name: np.empty(strip, dtype) for name in ("a", "b", "cov", "var", "sy2")}
        arrays |= {name: np.empty(strip, np.float64) for name in ("numerator", "denominator", "term")}
        arrays["ratio"] = np.empty((shape[0] - 2 * pad, *strip[1:]), np.float64)
        _workspaces.arrays = cached = (key, arrays)
    return cached[1]


def video_score(
    pred: np.ndarray, gt: np.ndarray, frame_score, frame_matching: str, threads: int | None = None
) -> float:
    """Combine per-frame scores over a video pair as the protocol says. Frames are scored on
    ``threads`` threads (default: the CPU count, at most 8; OpenCV and numpy release the GIL);
    the scores are combined in frame order, so the value does not depend on the thread count."""
    pairs = list(zip(pred, gt))
    if not pairs:
        raise ValueError("empty video")
    threads = threads or min(8, os.cpu_count() or 1)

    def one(pair) -> float:
        return frame_score(match_size(pair[0], pair[1].shape), pair[1])

    if threads > 1 and len(pairs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            scores = list(pool.map(one, pairs))
    else:
        scores = [one(p) for p in pairs]
    if frame_matching == "zip_divide_by_gt":
        return float(sequential_sum(scores) / len(gt))
    if frame_matching == "mean_over_matched":
        return float(np.mean(scores))
    raise ConfigError(f"unknown frame_matching {frame_matching!r} (zip_divide_by_gt or mean_over_matched)")


def psnr(
    pred: np.ndarray,
    gt: np.ndarray,
    frame_matching: str = "zip_divide_by_gt",
    data_range: float = 255,
    max_db: float | None = None,
) -> float:
    """Video PSNR of (T, H, W, 3) uint8 frames against ground truth.

    Without ``max_db`` (v1) a single identical frame makes the video's PSNR infinite.
    """
    return video_score(pred, gt, lambda p, g: psnr_frame(p, g, data_range, max_db), frame_matching)


def ssim(
    pred: np.ndarray,
    gt: np.ndarray,
    frame_matching: str = "zip_divide_by_gt",
    data_range: float = 255,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Video SSIM of (T, H, W, 3) uint8 frames against ground truth."""
    return video_score(pred, gt, lambda p, g: ssim_frame(p, g, data_range, win_size, k1, k2), frame_matching)


@register_metric
class PSNR(Metric):
    name = "psnr"
    device_free = True
    group = "fidelity"
    columns = ("psnr",)
    description = "Peak signal-to-noise ratio against the GT video (dB; higher is better)."

    @classmethod
    def best_value(cls, column: str, settings: Mapping) -> float | None:
        """The protocol's ``max_db`` cap; without one, identical frames score infinity."""
        cap = settings.get("max_db")
        return float(cap) if cap is not None else None

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        if _on_gpu(inputs.device):
            return {"psnr": _device_scores(inputs, settings)[0]}
        value = psnr(
            inputs.frames(),
            inputs.gt_frames(),
            settings["frame_matching"],
            settings["data_range"],
            settings.get("max_db"),
        )
        return {"psnr": value}


@register_metric
class SSIM(Metric):
    name = "ssim"
    device_free = True
    group = "fidelity"
    columns = ("ssim",)
    best_values = {"ssim": 1.0}
    description = "Structural similarity against the GT video (7x7 uniform window; higher is better)."

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        if _on_gpu(inputs.device):
            return {"ssim": _device_scores(inputs, settings)[1]}
        value = ssim(
            inputs.frames(),
            inputs.gt_frames(),
            settings["frame_matching"],
            settings["data_range"],
            settings["win_size"],
            settings["k1"],
            settings["k2"],
        )
        return {"ssim": value}


def _on_gpu(device: str) -> bool:
    return str(device).startswith("cuda")


def _device_scores(inputs: TrialInputs, settings: dict) -> tuple[float, float]:
    """PSNR and SSIM on the GPU (:mod:`ewmbench.metrics.pixels_torch`): the CPU values to float64
    round-off, so the metrics stay ``device_free`` and their stored scores are shared."""
    from ewmbench.metrics.pixels_torch import psnr_ssim

    return psnr_ssim(
        inputs.frames(),
        inputs.gt_frames(),
        inputs.device,
        settings["frame_matching"],
        settings["data_range"],
        settings.get("max_db"),
        settings.get("win_size", 7),
        settings.get("k1", 0.01),
        settings.get("k2", 0.03),
    )


# ---------------------------------------------------------------- Frechet distance


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features; N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need an (N, D) feature array with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance of two Gaussians: |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

    When S1 S2 is singular (fewer samples than dimensions), ``eps`` is added to both diagonals
    before the square root, as pytorch-fid does; a negligible imaginary part from round-off is
    dropped.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shapes do not match: mu {mu1.shape} {mu2.shape}, sigma {sigma1.shape} {sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"matrix square root has a large imaginary part ({np.max(np.abs(covmean.imag)):.3g})"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@dataclass
class FeatureMoments:
    """Mergeable statistics of a set of (N, D) feature vectors: count, sum and sum of outer
    products (float64). Shards of a run (workers, machines, videos) each keep their own and are
    combined by ``+``; the mean and the unbiased covariance follow from the merged sums, so a
    sharded FID/FVD equals the whole-run one."""

    count: int
    total: np.ndarray  # (D,)
    outer: np.ndarray  # (D, D)

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureMoments:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"need an (N, D) feature array, got shape {features.shape}")
        return cls(len(features), features.sum(axis=0), features.T @ features)

    def __add__(self, other: FeatureMoments) -> FeatureMoments:
        if self.count == 0:
            return other
        if other.count == 0:
            return self
        if self.total.shape != other.total.shape:
            raise ValueError(f"feature sizes differ: {self.total.shape[0]} and {other.total.shape[0]}")
        return FeatureMoments(self.count + other.count, self.total + other.total, self.outer + other.outer)

    @classmethod
    def merged(cls, parts) -> FeatureMoments:
        result = cls(0, np.zeros(0), np.zeros((0, 0)))
        for part in parts:
            result = result + part
        return result

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (D,) and unbiased covariance (D, D), as :func:`feature_statistics` of the pooled set."""
        if self.count < 2:
            raise ValueError(f"need at least 2 feature vectors, got {self.count}")
        mean = self.total / self.count
        cov = (self.outer - self.count * np.outer(mean, mean)) / (self.count - 1)
        return mean, (cov + cov.T) / 2  # symmetric to the last bit, as np.cov's is


def frechet_distance_of_moments(generated: FeatureMoments, reference: FeatureMoments) -> float:
    """Frechet distance between the Gaussians of two (merged) feature sets."""
    return frechet_distance(*generated.statistics(), *reference.statistics())


def frechet_distance_of_features(generated: np.ndarray, reference: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two (N, D) feature sets."""
    return frechet_distance(*feature_statistics(generated), *feature_statistics(reference))


# ---------------------------------------------------------------- LPIPS


def lpips(
    model, pred: np.ndarray, gt: np.ndarray, frame_matching: str = "mean_over_matched", batch_size: int = 16
) -> float:
    """Video LPIPS (lower is more similar) of (T, H, W, 3) uint8 frames against ground truth,
    with a loaded LPIPS network; generated frames are resized to the GT size (bicubic)."""
    from ewmbench.perception.replay_networks import lpips_frames

    count = min(len(pred), len(gt))
    if count == 0:
        raise ValueError("empty video")
    matched = np.stack([match_size(p, g.shape) for p, g in zip(pred[:count], gt[:count])])
    distances = lpips_frames(model, matched, np.asarray(gt[:count]), batch_size)
    if frame_matching == "zip_divide_by_gt":
        return float(distances.sum() / len(gt))
    if frame_matching == "mean_over_matched":
        return float(distances.mean())
    raise ConfigError(f"unknown frame_matching {frame_matching!r} (zip_divide_by_gt or mean_over_matched)")


@register_metric
class LPIPS(Metric):
    name = "lpips"
    modules, extra = ("torch", "torchvision", "lpips"), "neural"
    group = "fidelity"
    columns = ("lpips",)
    lower_is_better = frozenset(columns)
    best_values = {"lpips": 0.0}
    description = "Learned perceptual distance (LPIPS v0.1, AlexNet) to the GT video, mean over frames (lower is better)."

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        from ewmbench.perception.replay_networks import load_lpips

        model = load_lpips(weights_path(settings), inputs.device)
        return {
            "lpips": lpips(
                model, inputs.frames(), inputs.gt_frames(), settings["frame_matching"], settings["batch_size"]
            )
        }


# ---------------------------------------------------------------- FID and FVD (per run)


def distinct_gt_videos(inputs: Sequence[TrialInputs]) -> list:
    """GT video paths of the episodes the trials belong to, each once, in first-seen order."""
    return list(dict.fromkeys(item.episode.video_path() for item in inputs))


def _pooled(features: Sequence[np.ndarray], side: str, minimum: int) -> FeatureMoments:
    """The merged moments of each video's features (one part per video, in order)."""
    moments = FeatureMoments.merged(FeatureMoments.of(f) for f in features if f.size)
    if moments.count < minimum:
        raise Unavailable(
            f"{side} side has {moments.count} feature vectors; a covariance needs at least {minimum}",
            "score more (or longer) videos",
        )
    return moments


class FrechetMetric(Metric):
    """A Frechet distance between the features of all generated and all GT videos of a run.

    The run splits into shards of whole episodes (``shard_trials``): each shard is a work item
    that computes its videos' features into the feature store, so executors run the networks on
    shards apart; the run's item then pools every video's features in the run's order, exactly
    as one pass over the whole run does (the same sums in the same order, so the same value)."""

    level = "dataset"
    group = "fidelity"
    shard_trials = 256

    def video_features(self, video, inputs: TrialInputs, settings: dict) -> np.ndarray:
        """(n, D) features of one video, cached by its content."""
        raise NotImplementedError

    def score_shard(self, inputs: Sequence[TrialInputs], settings: dict) -> None:
        if not inputs:
            raise ConfigError(f"{self.name}: no trials to score")
        for video in [item.trial.video_path() for item in inputs] + distinct_gt_videos(inputs):
            self.video_features(video, inputs[0], settings)

    def score_dataset(self, inputs: Sequence[TrialInputs], settings: dict) -> dict[str, float]:
        if not inputs:
            raise ConfigError(f"{self.name}: no trials to score")
        generated = [self.video_features(item.trial.video_path(), inputs[0], settings) for item in inputs]
        reference = [self.video_features(video, inputs[0], settings) for video in distinct_gt_videos(inputs)]
        return {
            self.columns[0]: frechet_distance_of_moments(
                _pooled(generated, "generated", 2), _pooled(reference, "ground-truth", 2)
            )
        }


@register_metric
class FID(FrechetMetric):
    name = "fid"
    modules, extra = ("torch", "torchvision", "pytorch_fid"), "neural"
    columns = ("fid",)
    lower_is_better = frozenset(columns)
    best_values = {"fid": 0.0}
    description = (
        "Frechet Inception distance between all generated and all GT frames of a run (lower is better)."
    )

    def video_features(self, video, inputs: TrialInputs, settings: dict) -> np.ndarray:
        from ewmbench.perception.replay_networks import fid_frame_features, load_fid_inception

        videos, device = inputs.videos, inputs.device
        stage_key = feature_stage_key("fid-inception-pool3", settings)  # keyed by the weights' content

        def compute() -> np.ndarray:
            model = load_fid_inception(weights_path(settings), device)
            return fid_frame_features(
                model, videos.frames(video)[:: settings["frame_stride"]], settings["batch_size"]
            )

        return videos.derived.array(stage_key, video, compute)


@register_metric
class FVD(FrechetMetric):
    name = "fvd"
    modules, extra = ("torch",), "neural"
    columns = ("fvd",)
    lower_is_better = frozenset(columns)
    best_values = {"fvd": 0.0}
    description = "Frechet video distance (Kinetics-400 I3D) between the clips of all generated and all GT videos (lower is better)."

    def video_features(self, video, inputs: TrialInputs, settings: dict) -> np.ndarray:
        from ewmbench.perception.replay_networks import i3d_clip_features, load_i3d

        videos, device = inputs.videos, inputs.device
        clip_frames = settings["clip_frames"]
        stage_key = feature_stage_key("fvd-i3d", settings)  # keyed by the weights' content

        def compute() -> np.ndarray:
            frames = videos.frames(video)
            if len(frames) < clip_frames:
                raise DataError(video, f"{len(frames)} frames: FVD clips need {clip_frames}")
            model = load_i3d(weights_path(settings), device)
            return i3d_clip_features(
                model, frames, clip_frames, settings["clips"], settings["resolution"], settings["batch_size"]
            )

        return videos.derived.array(stage_key, video, compute)
