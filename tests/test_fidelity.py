import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ewmbench.errors import ConfigError
from ewmbench.metrics.fidelity import match_size, psnr, psnr_frame, ssim, ssim_frame


def test_psnr_frame_hand_worked():
    gt = np.zeros((2, 2, 3), np.uint8)
    pred = gt.copy()
    pred[0, 0, 0] = 10  # one of 12 values off by 10: MSE = 100 / 12
    expected = 10 * math.log10(255**2 / (100 / 12))  # = 58.9290...
    assert psnr_frame(pred, gt) == pytest.approx(expected, abs=1e-12)
    assert psnr_frame(pred, gt) == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=255), abs=1e-12)


def test_psnr_identical_is_infinite_in_v1_and_capped_in_v2():
    frame = np.full((4, 4, 3), 7, np.uint8)
    assert psnr_frame(frame, frame) == math.inf
    assert psnr_frame(frame, frame, max_db=100) == 100


def test_video_psnr_v1_dilutes_by_gt_length_v2_does_not():
    gt = np.zeros((4, 2, 2, 3), np.uint8)
    pred = gt[:2].copy()
    pred[:, 0, 0, 0] = 10  # each of the 2 predicted frames: MSE = 100/12
    per_frame = 10 * math.log10(255**2 / (100 / 12))
    assert psnr(pred, gt, "zip_divide_by_gt") == pytest.approx(2 * per_frame / 4)
    assert psnr(pred, gt, "mean_over_matched") == pytest.approx(per_frame)


@pytest.mark.parametrize("shape", [(16, 16, 3), (48, 64, 3), (11, 9, 3)])
def test_ssim_matches_scikit_image_uniform_window(shape):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, shape, dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-20, 20, gt.shape), 0, 255).astype(np.uint8)
    expected = structural_similarity(gt, pred, data_range=255, win_size=7, channel_axis=-1)
    assert ssim_frame(pred, gt) == pytest.approx(expected, rel=1e-12)
    assert ssim_frame(gt, gt) == pytest.approx(1.0)
    assert ssim(np.stack([pred, gt]), np.stack([gt, gt]), "mean_over_matched") == pytest.approx(
        (expected + 1) / 2
    )


def test_ssim_of_a_constant_pair_is_hand_worked():
    # Constant images: every local variance is 0, so SSIM = (2*ux*uy + C1) / (ux^2 + uy^2 + C1)
    # with C1 = (0.01 * 255)^2 = 6.5025; for ux = 100, uy = 110: (22000 + 6.5025) / (22100 + 6.5025).
    a, b = np.full((9, 9, 3), 100, np.uint8), np.full((9, 9, 3), 110, np.uint8)
    assert ssim_frame(b, a) == pytest.approx((22000 + 6.5025) / (22100 + 6.5025), rel=1e-12)


def test_prediction_is_resized_to_gt_size():
    small = np.full((8, 8, 3), 100, np.uint8)
    assert match_size(small, (16, 12, 3)).shape == (16, 12, 3)
    gt = np.full((1, 16, 12, 3), 100, np.uint8)
    assert psnr(small[None], gt) == math.inf  # a constant image stays constant under bicubic resize


def test_unknown_frame_matching_is_a_config_error():
    frames = np.zeros((1, 2, 2, 3), np.uint8)
    with pytest.raises(ConfigError, match="frame_matching"):
        psnr(frames, frames, "average")
