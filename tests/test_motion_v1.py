"""ewmbench-v1 against the official-style reference, every official crash case, and the metric."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from fastdtw import fastdtw
from scipy.spatial.distance import euclidean

from ewmbench.data.layout import Episode, Trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, DataError
from ewmbench.metrics import OfficialCrashWarning, metric_registry, trajectory_scores, trajectory_scores_batch
from ewmbench.metrics.base import TrialInputs
from ewmbench.metrics.dtw import expand_window, fastdtw_batch
from ewmbench.metrics.motion import (
    DegenerateTrajectoryWarning,
    GripperNotDetectedWarning,
    scores_with_settings,
)
from ewmbench.protocols import load_protocol
from tests.helpers import official_motion as reference
from tests.helpers.motion_trials import make_trials


def test_v1_equals_official_style_reference_on_realistic_trials():
    pairs = make_trials(25, seed=7)  # 75 trials with dropouts, warps, failures
    ours = trajectory_scores_batch(pairs, "ewmbench-v1")
    for (pred, gt), got in zip(pairs, ours):
        want = reference.score_trial(pred, gt)
        assert set(got) == {"hsd", "ndtw", "dyn"}
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15)
            assert round(got[key], 3) == round(want[key], 3)
        # HSD and NDTW are computed with the same float operations: bit-identical.
        assert got["hsd"] == want["hsd"] and got["ndtw"] == want["ndtw"]


def test_v1_equals_reference_when_lengths_differ():
    rng = np.random.default_rng(8)
    pairs = []
    for pred, gt in make_trials(10, seed=9):
        keep = np.sort(rng.choice(len(pred), int(rng.integers(3, len(pred))), replace=False))
        pairs.append((pred[keep], gt))  # a generated video with fewer frames than its GT
    for (pred, gt), got in zip(pairs, trajectory_scores_batch(pairs)):
        want = reference.score_trial(pred, gt)
        assert got["hsd"] == want["hsd"] and got["ndtw"] == want["ndtw"]
        assert got["dyn"] == pytest.approx(want["dyn"], rel=1e-12, abs=1e-15)


def test_single_and_batched_scores_agree():
    pairs = make_trials(4, seed=3)
    batched = trajectory_scores_batch(pairs)
    for (p, g), together in zip(pairs, batched):
        alone = trajectory_scores(p, g)
        assert alone["hsd"] == together["hsd"] and alone["ndtw"] == together["ndtw"]
        # DYN sums a padded row in the batch: the same terms, summed in another order.
        assert alone["dyn"] == pytest.approx(together["dyn"], rel=1e-12)


def test_fastdtw_is_bit_identical_to_the_package():
    rng = np.random.default_rng(11)
    pairs = []
    for k in range(60):
        n, m = int(rng.integers(1, 70)), int(rng.integers(1, 70))
        x, y = rng.random((n, 2)), rng.random((m, 2))
        if k % 5 == 0:
            y = np.repeat(y[:1], m, axis=0)  # a static series: long horizontal path segments
        pairs.append((x.astype(np.float32), y.astype(np.float32)))
    for k, ((x, y), (cost, length)) in enumerate(zip(pairs, fastdtw_batch(pairs))):
        want_cost, want_path = fastdtw(x, y, dist=euclidean)
        assert (cost, length) == (want_cost, len(want_path))
        if k < 20:  # one pair alone takes the plain-Python path
            assert fastdtw_batch([(x, y)]) == [(want_cost, len(want_path))]


def test_window_expansion_matches_the_package():
    package_expand = getattr(importlib.import_module("fastdtw.fastdtw"), "__expand_window")
    rng = np.random.default_rng(5)
    for _ in range(40):
        rows, cols = int(rng.integers(1, 20)), int(rng.integers(1, 20))
        path, i, j = [(0, 0)], 0, 0
        while (i, j) != (rows - 1, cols - 1):  # a random monotone warping path
            step = [(1, 0), (0, 1), (1, 1)][rng.integers(3)]
            i, j = min(i + step[0], rows - 1), min(j + step[1], cols - 1)
            if path[-1] != (i, j):
                path.append((i, j))
        n, m = 2 * rows + int(rng.integers(0, 2)), 2 * cols + int(rng.integers(0, 2))
        row_min = np.array([min(b for a, b in path if a == r) for r in range(rows)])
        row_max = np.array([max(b for a, b in path if a == r) for r in range(rows)])
        lo, hi = expand_window(row_min, row_max, n, m, 1)
        ours = [(r, c) for r in range(n) for c in range(lo[r], hi[r] + 1)]
        assert ours == package_expand(path, n, m, 1)


# ---------------------------------------------------------------- official crash cases


def _arc(frames, centre=(0.5, 0.5), radius=0.2, phase=0.0):
    t = np.linspace(0, np.pi, frames) + phase
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def _track(left, right):
    return np.stack([left, right], axis=1).astype(np.float32)


def _scores_and_warnings(pred, gt, protocol="ewmbench-v1"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = trajectory_scores(pred, gt, protocol)
    return scores, [w for w in caught if issubclass(w.category, DegenerateTrajectoryWarning)]


def test_identical_tracks():
    gt = _track(_arc(20), _arc(20, centre=(0.3, 0.6), radius=0.1))
    with pytest.raises(ZeroDivisionError):
        reference.score_trial(gt, gt)  # the official tool divides by H = 0
    scores, caught = _scores_and_warnings(gt, gt)
    # H = 0 and D = 0: the reciprocals are infinite, capped at 1. DYN: W = 0 -> terms 0 (official).
    assert scores == {"hsd": 1.0, "ndtw": 1.0, "dyn": 0.0}
    assert {w.category for w in caught} == {OfficialCrashWarning}
    assert len(caught) == 2
    scores, caught = _scores_and_warnings(gt, gt, "ewmbench-v2")
    assert scores == {"hsd": 1.0, "ndtw": 1.0, "dyn": 1.0} and not caught


@pytest.mark.parametrize("shape", ["static", "collinear"])
def test_static_or_collinear_gt_gripper(shape):
    frames = 15
    line = np.stack([np.linspace(0.2, 0.6, frames), np.full(frames, 0.4)], axis=1)  # exactly collinear
    degenerate = np.full((frames, 2), 0.4) if shape == "static" else line
    gt = _track(degenerate, _arc(frames, radius=0.05))
    pred = _track(degenerate + 0.01, _arc(frames, radius=0.06))
    with pytest.raises(Exception, match="QH"):
        reference.score_trial(pred, gt)  # qhull refuses a flat GT track
    scores, caught = _scores_and_warnings(pred, gt)
    assert caught and all(w.category is OfficialCrashWarning for w in caught)
    assert "convex hull" in str(caught[0].message)
    # v1 spread of the degenerate gripper = its diameter (0 static; 0.6 - 0.2 = 0.4 collinear);
    # the arc of radius 0.05 spans 0.1: the static case scores the arc, the collinear case the line.
    expected_gripper = 1 if shape == "static" else 0
    direct = scores_with_settings(
        [(pred[:, [expected_gripper] * 2], gt[:, [expected_gripper] * 2])], _v1_with_diameter_spread()
    )
    assert scores["hsd"] == pytest.approx(direct[0]["hsd"])
    assert all(0 <= v <= 1 for v in scores.values())


def _v1_with_diameter_spread():
    """v1 settings whose spread cannot fail (both grippers identical, so the choice is moot)."""
    settings = dict(load_protocol("ewmbench-v1").settings("trajectory_consistency"))
    settings["spread"] = "hull_diameter"
    return settings


@pytest.mark.parametrize("frames", [1, 2])
def test_fewer_than_three_frames(frames):
    gt = _track(_arc(frames), _arc(frames, centre=(0.3, 0.3), radius=0.1))
    pred = _track(_arc(frames) + 0.05, _arc(frames, centre=(0.3, 0.3), radius=0.1) + 0.02)
    with pytest.raises(RuntimeError):  # the official tool's scipy QhullError
        reference.score_trial(pred, gt)
    scores, caught = _scores_and_warnings(pred, gt)
    assert caught and all(w.category is OfficialCrashWarning for w in caught)
    messages = " ".join(str(w.message) for w in caught)
    assert "acceleration series" in messages
    assert ("speed series" in messages) == (frames == 1)
    assert all(np.isfinite(v) and 0 <= v <= 1 for v in scores.values())


def test_two_frames_hand_worked():
    gt = _track([[0.25, 0.5], [0.5, 0.5]], [[0.75, 0.25], [0.75, 0.5]])
    pred = _track([[0.25, 0.5], [0.75, 0.5]], [[0.75, 0.25], [0.75, 0.5]])
    scores, caught = _scores_and_warnings(pred, gt)
    # Both GT grippers have 2 points (no hull): spreads are diameters 0.25 and 0.25: tie -> left.
    # H: pred (0.75, 0.5) is 0.25 from GT (0.5, 0.5) -> HSD = 1 / 0.25 = 4 -> 4 / 24.979.
    assert scores["hsd"] == pytest.approx(4 / 24.979)
    # One speed each: 0.5 (pred), 0.25 (GT); ranges 0 -> r_v = 1e-8 / 1e-8 = 1; W_v = 0.25;
    # term_v = 4; no accelerations: term_a = 0 (warning). DYN = 0.007 * 4 = 0.028 -> / 22.519.
    assert scores["dyn"] == pytest.approx(0.028 / 22.519)
    # FastDTW: both length 2 (< 3): exact. Costs (0,0): 0, (1,1): 0.25, (0,1): 0.25, (1,0): 0.5:
    # diagonal path, D = 0.25, L = 2 -> NDTW = 1 / 0.125 = 8 -> 8 / 50.202.
    assert scores["ndtw"] == pytest.approx(8 / 50.202)
    assert sum("acceleration" in str(w.message) for w in caught) == 1


def test_all_gt_grippers_invalid():
    gt = np.full((10, 2, 2), -1, dtype=np.float32)
    gt[0] = 0.5  # 9 of 10 missing for both grippers: both invalid
    pred = _track(_arc(10), _arc(10))
    with pytest.raises(ValueError):
        reference.score_trial(pred, gt)  # argmax of an empty list
    scores, caught = _scores_and_warnings(pred, gt)
    assert scores == {"hsd": 0.0, "ndtw": 0.0, "dyn": 0.0}
    assert [w.category for w in caught] == [OfficialCrashWarning]
    scores, caught = _scores_and_warnings(pred, gt, "ewmbench-v2")
    assert all(np.isnan(v) for v in scores.values())
    assert [w.category for w in caught] == [DegenerateTrajectoryWarning]


def test_invalid_predicted_gripper_scores_the_official_zero_and_says_why():
    gt = _track(_arc(10), _arc(10, centre=(0.3, 0.3), radius=0.05))
    pred = gt.copy()
    pred[1:, 0] = -1  # the scored (wider) left gripper is lost in 9 of 10 frames
    scores, caught = _scores_and_warnings(pred, gt)
    assert scores == {"hsd": 0.0, "ndtw": 0.0, "dyn": 0.0} == reference.score_trial(pred, gt)
    # the number is the official one; the note is ours (not an official crash)
    assert [w.category for w in caught] == [GripperNotDetectedWarning]


def test_official_position_quirk_scores_the_wrong_gripper():
    gt = _track(np.full((12, 2), -1.0), _arc(12))  # only the right GT gripper is valid
    pred = _track(_arc(12, radius=0.1), _arc(12) + 0.01)
    # v1 scores gripper 0 (the position of the right gripper in the list of valid ones) against
    # the unfilled left GT track of (-1, -1) points, as the official tool does.
    v1 = trajectory_scores(pred, gt)
    assert v1 == reference.score_trial(pred, gt)
    # H: every pred point is far from (-1, -1); v2 scores the right gripper instead.
    v2 = trajectory_scores(pred, gt, "ewmbench-v2")
    assert v2["hsd"] > v1["hsd"]


# ---------------------------------------------------------------- inputs, settings, metric


def test_bad_inputs_raise_data_errors():
    good = _track(_arc(5), _arc(5))
    with pytest.raises(DataError, match="pred"):
        trajectory_scores(good[:, :, :1], good)
    bad = good.copy()
    bad[2, 0, 0] = np.nan
    with pytest.raises(DataError, match="gt"):
        trajectory_scores(good, bad)
    with pytest.raises(DataError, match="empty"):
        trajectory_scores(good[:0], good)


def test_unknown_or_incomplete_settings_are_config_errors():
    settings = dict(load_protocol("ewmbench-v1").settings("trajectory_consistency"))
    pair = [(_track(_arc(5), _arc(5)), _track(_arc(5), _arc(5)))]
    with pytest.raises(ConfigError, match="dtw"):
        scores_with_settings(pair, {**settings, "dtw": "soft"})
    with pytest.raises(ConfigError, match="normalisation"):
        scores_with_settings(pair, {k: v for k, v in settings.items() if k != "normalisation"})


def test_metric_scores_official_traj_files(tmp_path):
    gt = _track(_arc(20), _arc(20, centre=(0.3, 0.6), radius=0.1))
    pred = gt + np.float32(0.02)
    episode = Episode("1", "7", tmp_path / "gt" / "1" / "7")
    trial = Trial("1", "7", "2", tmp_path / "gen_dataset" / "1" / "7" / "2")
    for path, track in ((episode.traj_path, gt), (trial.traj_path, pred)):
        path.parent.mkdir(parents=True)
        np.save(path, track)
    metric = metric_registry()["trajectory_consistency"]()
    assert (metric.group, metric.columns, metric.level) == ("motion", ("dyn", "hsd", "ndtw"), "trial")
    settings = load_protocol("ewmbench-v1").settings("trajectory_consistency")
    scores = metric.score_trial(TrialInputs(episode, trial, VideoCache(tmp_path / "cache")), settings)
    assert scores == reference.score_trial(pred, gt)


@pytest.mark.skipif(
    np.finfo(np.longdouble).nmant < 63, reason="bit-exactness with BLAS dnrm2 needs x87 extended precision"
)
def test_point_distance_is_scipy_euclidean_bit_for_bit():
    from ewmbench.metrics.dtw import euclidean_distances

    rng = np.random.default_rng(2)
    a = rng.random((5000, 2)).astype(np.float32).astype(np.float64)
    b = (rng.random((5000, 2)) + a) / 2  # averaged points, as on FastDTW's coarse levels
    assert np.array_equal(euclidean_distances(a, b), [euclidean(x, y) for x, y in zip(a, b)])
