"""SSIM and PSNR: the fast CPU path and the device path (torch, run here on the CPU) against
scikit-image and the numpy values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from ewmbench.metrics.fidelity import psnr, ssim, ssim_frame


def _pairs():
    rng = np.random.default_rng(7)
    gt = rng.integers(0, 256, (5, 37, 53, 3), dtype=np.uint8)
    yield "noise", np.clip(gt.astype(int) + rng.integers(-40, 41, gt.shape), 0, 255).astype(np.uint8), gt
    yield "inverted", 255 - gt, gt
    yield "flat", np.full_like(gt, 9), np.full_like(gt, 200)
    yield "identical", gt.copy(), gt
    ramp = np.broadcast_to(np.arange(53, dtype=np.uint8)[None, None, :, None] * 4, gt.shape).copy()
    yield "ramp", ramp, np.roll(ramp, 2, axis=2)


@pytest.mark.parametrize("name,pred,gt", list(_pairs()))
def test_ssim_equals_scikit_image(name, pred, gt):
    for p, g in zip(pred, gt):
        expected = structural_similarity(g, p, data_range=255, win_size=7, channel_axis=-1)
        assert abs(ssim_frame(p, g) - expected) < 1e-12, name


def test_threads_do_not_change_the_video_value():
    _, pred, gt = next(_pairs())
    from ewmbench.metrics.fidelity import video_score

    serial = video_score(pred, gt, ssim_frame, "zip_divide_by_gt", threads=1)
    threaded = video_score(pred, gt, ssim_frame, "zip_divide_by_gt", threads=4)
    assert serial == threaded == ssim(pred, gt)


def _whole_frame_ssim(pred: np.ndarray, gt: np.ndarray, data_range: float, win_size: int) -> float:
    """The SSIM formula of ``ssim_frame`` on whole float64 maps, without strips or workspaces."""
    import cv2

    x, y = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    n, pad = win_size * win_size, (win_size - 1) // 2

    def window_sum(image):
        out = cv2.boxFilter(image, -1, (win_size, win_size), normalize=False, borderType=cv2.BORDER_REFLECT)
        return out.reshape(image.shape)[pad:-pad, pad:-pad]

    sx, sy, sxx, syy, sxy = (window_sum(a) for a in (x, y, x * x, y * y, x * y))
    c1, c2 = (0.01 * data_range) ** 2 * n * n, (0.03 * data_range) ** 2 * n * (n - 1)
    s = ((2 * sx * sy + c1) * (2 * (n * sxy - sx * sy) + c2)) / (
        (sx * sx + sy * sy + c1) * (n * (sxx + syy) - sx * sx - sy * sy + c2)
    )
    s = s.reshape(*s.shape[:2], -1)
    return float(np.mean([s[..., c].mean() for c in range(s.shape[-1])]))


def test_strips_and_reused_workspaces_give_the_whole_frame_value_bit_for_bit():
    # Shapes alternate so each call finds the previous frame's workspace of another shape, and
    # strips cover the interior exactly (16 rows: 40 interior rows = 16 + 16 + 8).
    rng = np.random.default_rng(3)
    for shape, win_size in [
        ((46, 53, 3), 7),
        ((9, 9), 3),
        ((46, 53, 3), 7),
        ((21, 30, 1), 5),
        ((40, 17, 4), 7),
        ((46, 53, 3), 3),
    ]:
        gt = rng.integers(0, 256, shape, dtype=np.uint8)
        pred = np.clip(gt.astype(int) + rng.integers(-70, 71, shape), 0, 255).astype(np.uint8)
        assert ssim_frame(pred, gt, win_size=win_size) == _whole_frame_ssim(pred, gt, 255, win_size), shape
        unit = (pred / 255.0, gt / 255.0)  # the float64 path
        assert ssim_frame(*unit, data_range=1, win_size=win_size) == _whole_frame_ssim(*unit, 1, win_size), (
            shape
        )
    with pytest.raises(ValueError, match="win_size"):
        ssim_frame(gt[:5, :5], gt[:5, :5], win_size=7)
    with pytest.raises(ValueError, match="shapes differ"):
        ssim_frame(gt, gt[1:])


@pytest.mark.parametrize("frame_matching", ["zip_divide_by_gt", "mean_over_matched"])
@pytest.mark.parametrize("name,pred,gt", list(_pairs()))
def test_device_path_equals_numpy(name, pred, gt, frame_matching):
    pytest.importorskip("torch")
    from ewmbench.metrics.pixels_torch import psnr_ssim

    short = pred[:3]  # a shorter prediction: zipped pairs, divided by the GT count (v1) or not
    for p in (pred, short):
        got_psnr, got_ssim = psnr_ssim(p, gt, "cpu", frame_matching)
        want_psnr, want_ssim = psnr(p, gt, frame_matching), ssim(p, gt, frame_matching)
        assert abs(got_ssim - want_ssim) < 1e-6, name
        if math.isinf(want_psnr):
            assert got_psnr == want_psnr, name
        else:
            assert abs(got_psnr - want_psnr) < 1e-6, name
    capped = psnr_ssim(gt, gt, "cpu", frame_matching, max_db=100.0)[0]
    assert capped == psnr(gt, gt, frame_matching, max_db=100.0) == 100.0


def test_device_path_resizes_the_prediction_like_the_cpu_path():
    pytest.importorskip("torch")
    from ewmbench.metrics.pixels_torch import psnr_ssim

    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (3, 30, 40, 3), dtype=np.uint8)
    pred = rng.integers(0, 256, (3, 45, 60, 3), dtype=np.uint8)
    got = psnr_ssim(pred, gt, "cpu")
    assert abs(got[0] - psnr(pred, gt)) < 1e-6 and abs(got[1] - ssim(pred, gt)) < 1e-6


def test_psnr_of_8_bit_frames_is_the_float64_mean_bit_for_bit():
    """The integer sum of squared errors gives the official float64 ``np.mean`` value exactly,
    on any shape, the extremes included."""
    from skimage.metrics import peak_signal_noise_ratio

    from ewmbench.metrics.fidelity import psnr_frame

    rng = np.random.default_rng(11)
    cases = [
        (np.zeros((48, 64, 3), np.uint8), np.full((48, 64, 3), 255, np.uint8)),  # largest error
        (np.zeros((48, 64, 3), np.uint8), np.ones((48, 64, 3), np.uint8)),
    ]
    for shape in [(48, 64, 3), (31, 17), (20, 9, 4), (480, 640, 3)]:
        gt = rng.integers(0, 256, shape, dtype=np.uint8)
        cases.append((rng.integers(0, 256, shape, dtype=np.uint8), gt))  # full-range noise
        cases.append((np.clip(gt.astype(int) + rng.integers(-9, 10, shape), 0, 255).astype(np.uint8), gt))
    cases.append((cases[-1][0][:, ::2], cases[-1][1][:, ::2]))  # strided views
    for pred, gt in cases:
        expected = 10 * math.log10(
            255**2 / float(np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2))
        )
        assert psnr_frame(pred, gt) == expected, pred.shape
        assert psnr_frame(pred, gt) == peak_signal_noise_ratio(gt, pred, data_range=255), pred.shape
