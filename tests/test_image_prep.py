"""Frame preprocessing of the image encoders against hand-worked small images."""

import numpy as np
import pytest
import torch

from ewmbench.errors import ConfigError, DataError
from ewmbench.perception.image_prep import normalise, pad_to_square, prepare, resize_square, to_tensor


def test_wide_image_gets_one_row_on_top_and_one_below():
    # 4 wide x 2 high -> 4x4; top pad (4 - 2) // 2 = 1, bottom pad 4 - 2 - 1 = 1.
    image = torch.arange(1, 9, dtype=torch.float32).view(1, 1, 2, 4)
    padded = pad_to_square(image)[0, 0]
    expected = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8], [0, 0, 0, 0]], dtype=torch.float32)
    assert torch.equal(padded, expected)


def test_odd_difference_puts_the_extra_row_at_the_bottom():
    # 4 wide x 1 high: top pad (4 - 1) // 2 = 1, bottom pad 2.
    image = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])
    padded = pad_to_square(image)[0, 0]
    assert padded[1].tolist() == [1, 2, 3, 4]
    assert padded[0].abs().sum() == 0 and padded[2:].abs().sum() == 0


def test_tall_image_is_padded_left_and_right():
    # 1 wide x 4 high: left pad 1, right pad 2.
    image = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1)
    padded = pad_to_square(image)[0, 0]
    assert padded[:, 1].tolist() == [1, 2, 3, 4]
    assert padded[:, 0].abs().sum() == 0 and padded[:, 2:].abs().sum() == 0


def test_640x480_pads_80_rows_each_side():
    padded = pad_to_square(torch.ones(1, 3, 480, 640))
    assert padded.shape == (1, 3, 640, 640)
    assert padded[:, :, :80].sum() == 0 and padded[:, :, 560:].sum() == 0 and padded[:, :, 80:560].min() == 1


def test_bilinear_halving_averages_two_by_two_blocks():
    # Half-pixel centres, no antialias: output (0, 0) samples source (0.5, 0.5) = mean of the 2x2 block.
    image = torch.tensor(
        [[0, 2, 4, 6], [2, 4, 6, 8], [10, 10, 0, 0], [10, 10, 0, 4]], dtype=torch.float32
    ).view(1, 1, 4, 4)
    out = resize_square(image, 2, "bilinear")[0, 0]
    # blocks: (0+2+2+4)/4 = 2, (4+6+6+8)/4 = 6, (10*4)/4 = 10, (0+0+0+4)/4 = 1
    assert out.tolist() == [[2.0, 6.0], [10.0, 1.0]]


def test_bicubic_is_not_clamped():
    # A step 0 -> 255 upsampled with the cubic kernel overshoots beyond the input range; v1 keeps it.
    image = torch.tensor([0.0, 0.0, 255.0, 255.0]).repeat(4, 1).view(1, 1, 4, 4)
    out = resize_square(image, 8, "bicubic")
    assert out.max() > 255.0 and out.min() < 0.0


def test_normalise_by_hand():
    image = torch.full((1, 3, 1, 1), 255.0)
    image[0, 1] = 0.0
    out = normalise(image, mean=(0.5, 0.5, 0.25), std=(0.5, 0.25, 0.5))[:, :, 0, 0]
    # (255/255 - 0.5)/0.5 = 1; (0 - 0.5)/0.25 = -2; (1 - 0.25)/0.5 = 1.5
    assert torch.allclose(out, torch.tensor([[1.0, -2.0, 1.5]]))


def test_prepare_chain_on_a_uint8_frame():
    # One 2-high x 4-wide frame of value 51 -> pad to 4x4 -> bilinear to 2x2: every output averages
    # one padded row (0) and one content row (51): 25.5 -> /255 = 0.1 -> (0.1 - 0.1) / 0.5 = 0.
    frames = np.full((1, 2, 4, 3), 51, dtype=np.uint8)
    out = prepare(frames, 2, "bilinear", mean=(0.1, 0.1, 0.1), std=(0.5, 0.5, 0.5))
    assert out.shape == (1, 3, 2, 2)
    assert torch.allclose(out, torch.zeros_like(out), atol=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="RGB"):
        to_tensor(np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(ConfigError, match="interpolation"):
        resize_square(torch.zeros(1, 3, 4, 4), 2, "nearest")
