"""Diversity from CLIP frame embeddings against hand-worked values."""

import math

import numpy as np
import pytest
import torch

from ewmbench.errors import DataError
from ewmbench.metrics import diversity_from_embeddings


def test_three_trials_by_hand():
    # a: rows (1, 0), (1, 0) -> u_a = (1, 0)
    # b: row (0, 2) -> u_b = (0, 1)
    # c: rows (3, 0), (0, 4) -> normalised (1, 0), (0, 1) -> u_c = (0.5, 0.5)
    # 1 - cos: (a, b) = 1; (a, c) = 1 - 0.5 / 0.70711 = 0.29289; (b, c) = 0.29289
    # mean = (1 + 2 * 0.29289) / 3 = 0.52860
    a = np.array([[1.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 2.0]])
    c = np.array([[3.0, 0.0], [0.0, 4.0]])
    expected = (1 + 2 * (1 - 0.5 / math.sqrt(0.5))) / 3
    assert diversity_from_embeddings([a, b, c]) == pytest.approx(expected, abs=1e-7)


def test_frames_are_normalised_before_averaging():
    # Normalised first: (10, 0) and (0, 1) -> (1, 0), (0, 1) -> mean (0.5, 0.5), at 45 degrees to
    # (1, 0): distance 0.29289. Averaging raw rows would give (5, 0.5): distance 1 - 5/sqrt(25.25) = 0.00496.
    trial = np.array([[10.0, 0.0], [0.0, 1.0]])
    reference = np.array([[1.0, 0.0]])
    assert diversity_from_embeddings([trial, reference]) == pytest.approx(1 - math.sqrt(0.5), abs=1e-7)


def test_identical_trials_have_no_diversity_and_fewer_than_two_trials_score_zero():
    trial = np.random.default_rng(0).normal(size=(5, 8))
    assert diversity_from_embeddings([trial, trial * 3.0]) == pytest.approx(0.0, abs=1e-6)
    assert diversity_from_embeddings([trial]) == 0.0
    assert diversity_from_embeddings([]) == 0.0


def test_opposite_trials_score_two_and_v2_agrees():
    trial = np.array([[1.0, 2.0, 3.0]])
    assert diversity_from_embeddings([trial, -trial]) == pytest.approx(2.0)
    assert diversity_from_embeddings([trial, -trial], "ewmbench-v2") == pytest.approx(2.0)


def test_torch_tensors_and_numpy_agree():
    rng = np.random.default_rng(2)
    trials = [rng.normal(size=(n, 16)).astype(np.float32) for n in (3, 5, 4)]
    assert diversity_from_embeddings([torch.from_numpy(t) for t in trials]) == pytest.approx(
        diversity_from_embeddings(trials)
    )


def test_bad_embeddings_are_reported():
    with pytest.raises(DataError, match=r"\(T, D\)"):
        diversity_from_embeddings([np.ones(4), np.ones((2, 4))])
    with pytest.raises(DataError, match="different embedding sizes"):
        diversity_from_embeddings([np.ones((2, 4)), np.ones((2, 5))])
    with pytest.raises(DataError, match="NaN"):
        diversity_from_embeddings([np.full((2, 4), np.nan), np.ones((2, 4))])


def test_order_of_trials_and_scale_of_frames_do_not_matter():
    rng = np.random.default_rng(5)
    trials = [rng.normal(size=(n, 6)) for n in (2, 3, 4, 5)]
    scaled = [t * rng.uniform(0.1, 10, size=(len(t), 1)) for t in trials]
    value = diversity_from_embeddings(trials)
    assert diversity_from_embeddings(trials[::-1]) == pytest.approx(value, abs=1e-6)
    assert diversity_from_embeddings(scaled) == pytest.approx(value, abs=1e-6)
    assert 0.0 <= value <= 2.0


def test_registered_metadata():
    from ewmbench.metrics import metric_registry

    registry = metric_registry()
    assert registry["diversity"].group == "diversity" and registry["diversity"].level == "episode"
    assert registry["diversity"].columns == ("diversity",)
    assert registry["scene_consistency"].group == "scene" and registry["scene_consistency"].level == "trial"
    assert registry["scene_consistency"].columns == ("scene_consistency",)
