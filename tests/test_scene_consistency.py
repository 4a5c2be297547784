"""Scene consistency from tokens: hand-worked values, the v1 patch-axis quirk against a naive loop."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ewmbench.errors import DataError
from ewmbench.metrics import scene_consistency_from_tokens
from ewmbench.metrics.scene import PairAccumulator, score_from_similarities

V1 = "ewmbench-v1"
V2 = "ewmbench-v2"


def test_two_frames_by_hand_patch_axis_and_token_axis():
    # A's tokens are [3, 0] and [0, 1]; B's are [1, 0] and [2, 0]. L2-normalised per token:
    # A = [[1, 0], [0, 1]], B = [[1, 0], [1, 0]].
    # v1 (per channel along patches): c0: A[:,0] = (1, 0), B[:,0] = (1, 1) -> 1 / sqrt(2) = 0.70711;
    #   c1: A[:,1] = (0, 1), B[:,1] = (0, 0) -> 0 / (1 * eps) = 0. Mean 0.35355; with T = 2 the score is
    #   (s01 + s01) / 2 = 0.35355.
    # v2 (per token along channels): token 0: 1; token 1: cos((0, 1), (1, 0)) = 0. Mean 0.5.
    tokens = np.array([[[3.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [2.0, 0.0]]])
    assert scene_consistency_from_tokens(tokens, V1) == pytest.approx(1 / (2 * math.sqrt(2)), abs=1e-7)
    assert scene_consistency_from_tokens(tokens, V2) == pytest.approx(0.5, abs=1e-7)


def test_tokens_are_normalised_before_the_patch_axis_cosine():
    # Without per-token normalisation channel 0 would be cos((3, 0), (1, 2)) = 3 / (3 sqrt 5) = 0.4472
    # and the score 0.2236; normalising first gives 0.35355 (previous test).
    tokens = np.array([[[3.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [2.0, 0.0]]])
    assert scene_consistency_from_tokens(tokens, V1) != pytest.approx(3 / (3 * math.sqrt(5)) / 2, abs=1e-3)


def test_negative_similarities_are_clamped_to_zero():
    frame = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    tokens = np.stack([frame, -frame])  # every cosine is -1 on both axes -> max(0, -1) = 0
    assert scene_consistency_from_tokens(tokens, V1) == 0.0
    assert scene_consistency_from_tokens(tokens, V2) == 0.0


def test_identical_frames_score_one():
    frame = np.random.default_rng(0).normal(size=(5, 4))
    assert scene_consistency_from_tokens(np.stack([frame] * 4), V1) == pytest.approx(1.0, abs=1e-6)
    assert scene_consistency_from_tokens(np.stack([frame] * 4), V2) == pytest.approx(1.0, abs=1e-6)


def test_three_frames_use_previous_and_first_frame_pairs():
    # Token axis, one token per frame: f0 = (1, 0), f1 = (0, 1), f2 = (1, 1)/sqrt2.
    # i = 1: s(f0, f1) = 0 and s(f0, f1) = 0 -> 0.
    # i = 2: s(f1, f2) = 0.70711, s(f0, f2) = 0.70711 -> 0.70711.  Score (0 + 0.70711) / 2 = 0.35355.
    tokens = np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]])
    assert scene_consistency_from_tokens(tokens, V2) == pytest.approx(math.sqrt(0.5) / 2, abs=1e-7)


def test_score_from_similarities_by_hand():
    sims = np.array([[0.5, -0.2, 0.9], [0.1, 0.3, -0.4]])
    # clamped: [[0.5, 0, 0.9], [0.1, 0.3, 0]] -> pair means 0.3, 0.15, 0.45 -> 0.3
    assert score_from_similarities(sims, 0.0) == pytest.approx(0.3)
    # unclamped: 0.3, 0.05, 0.25 -> 0.2
    assert score_from_similarities(sims, None) == pytest.approx(0.2)


def naive_v1(tokens: np.ndarray) -> float:
    """The v1 definition written as plain loops: per channel, cosine along the patch axis."""
    unit = tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)

    def s(a, b):
        cosines = []
        for c in range(a.shape[1]):
            x, y = a[:, c], b[:, c]
            cosines.append(
                float(x @ y) / (max(float(np.linalg.norm(x)), 1e-8) * max(float(np.linalg.norm(y)), 1e-8))
            )
        return max(0.0, sum(cosines) / len(cosines))

    terms = [(s(unit[i - 1], unit[i]) + s(unit[0], unit[i])) / 2 for i in range(1, len(unit))]
    return sum(terms) / len(terms)


def naive_v2(tokens: np.ndarray) -> float:
    unit = tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)

    def s(a, b):
        return max(0.0, float(np.mean([a[n] @ b[n] for n in range(a.shape[0])])))

    terms = [(s(unit[i - 1], unit[i]) + s(unit[0], unit[i])) / 2 for i in range(1, len(unit))]
    return sum(terms) / len(terms)


token_arrays = st.tuples(st.integers(2, 11), st.integers(1, 6), st.integers(1, 5)).flatmap(
    lambda shape: arrays(
        np.float64, shape, elements=st.floats(-3, 3, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
    )
)


@hsettings(max_examples=60, deadline=None)
@given(token_arrays)
def test_vectorised_matches_naive_loops(tokens):
    assert scene_consistency_from_tokens(tokens, V1) == pytest.approx(naive_v1(tokens), abs=1e-5)
    assert scene_consistency_from_tokens(tokens, V2) == pytest.approx(naive_v2(tokens), abs=1e-5)


def test_streaming_in_uneven_batches_equals_one_pass():
    tokens = torch.from_numpy(np.random.default_rng(3).normal(size=(23, 7, 6))).float()
    whole = PairAccumulator("patch", 1e-8)
    whole.add(tokens)
    parts = PairAccumulator("patch", 1e-8)
    for start, stop in ((0, 1), (1, 4), (4, 17), (17, 23)):
        parts.add(tokens[start:stop])
    assert np.allclose(whole.result(), parts.result(), atol=1e-6)
    assert whole.result().shape == (2, 22)


def test_torch_and_numpy_inputs_agree():
    tokens = np.random.default_rng(1).normal(size=(4, 9, 8)).astype(np.float32)
    assert scene_consistency_from_tokens(torch.from_numpy(tokens), V1) == pytest.approx(
        scene_consistency_from_tokens(tokens, V1)
    )


def test_bad_tokens_are_reported():
    with pytest.raises(DataError, match="at least 2 frames"):
        scene_consistency_from_tokens(np.ones((1, 3, 2)))
    with pytest.raises(DataError, match=r"\(T, N, C\)"):
        scene_consistency_from_tokens(np.ones((3, 2)))
    bad = np.ones((2, 3, 2))
    bad[1, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        scene_consistency_from_tokens(bad)


def test_patch_axis_cosine_matches_torch_cosine_similarity_per_channel():
    # The official tool's cosine is torch's; check ours against it channel by channel, including a
    # channel whose spatial vector is tiny (the eps clamp is per vector).
    from ewmbench.metrics.scene import pair_similarity

    a = torch.from_numpy(np.random.default_rng(4).normal(size=(1, 6, 3)))
    b = torch.from_numpy(np.random.default_rng(5).normal(size=(1, 6, 3)))
    a[0, :, 2] = 1e-10
    b[0, :, 2] = 1e-10
    expected = torch.nn.functional.cosine_similarity(a[0], b[0], dim=0, eps=1e-8).mean()
    assert float(pair_similarity(a, b, "patch", 1e-8)[0]) == pytest.approx(float(expected), abs=1e-6)
