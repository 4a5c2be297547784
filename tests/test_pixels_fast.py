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
