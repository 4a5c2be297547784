"""ewmbench-v2.1 motion: the jitter floor, DYN's epsilon and the time-aware NDTW, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ewmbench.metrics import trajectory_scores
from ewmbench.metrics.dtw import time_aware_dtw_batch
from ewmbench.metrics.motion import time_aware_ndtw
from ewmbench.protocols import load_protocol

SETTINGS = load_protocol("ewmbench-v2").settings("trajectory_consistency")
FLOOR = 3 / 640  # 3 px of the 640-px width
PENALTY = 0.01992
EPSILON = 4.4406e-4
NDTW_BOUND, DYN_BOUND = 50.202, 22.519


def test_the_protocol_holds_the_documented_constants():
    protocol = load_protocol("ewmbench-v2")
    assert protocol.version == "2.1"
    assert SETTINGS["dtw"] == "time_aware"
    assert (SETTINGS["jitter_floor"], SETTINGS["ndtw_step_penalty"]) == (FLOOR, PENALTY)
    assert SETTINGS["dyn"]["wasserstein_epsilon"] == EPSILON
    # a perfect match of both distributions reaches the cap: 0.01 / (epsilon * bound) >= 1
    assert 0.01 / (EPSILON * DYN_BOUND) == pytest.approx(1.00002, abs=1e-5)
    # v1 has neither: its YAML holds no such key, so the defaults (0) keep the official numbers
    v1 = load_protocol("ewmbench-v1").settings("trajectory_consistency")
    assert "jitter_floor" not in v1 and v1["dtw"] == "fastdtw"


def _track(points: np.ndarray) -> np.ndarray:
    """(T, 2) points as the right gripper of a (T, 2, 2) track; the left one is lost (invalid)."""
    track = np.full((len(points), 2, 2), -1.0, dtype=np.float32)
    track[:, 1] = points
    return track


def _line(xs) -> np.ndarray:
    xs = np.asarray(xs, dtype=np.float64)
    return np.stack([xs, np.full_like(xs, 0.5)], axis=1)


# ---------------------------------------------------------------- the time-aware DTW


def test_time_aware_dtw_by_hand():
    gt = _line([0.0, 0.1, 0.2, 0.3, 0.4])
    lagged = _line([0.0, 0.0, 0.1, 0.2, 0.3])  # one frame late
    # Lock-step: 0 + 4 * (0.1 - floor). Warped: hold gt[0] one more frame (+penalty), then the
    # diagonal costs 0 until pred[4] = 0.3 meets gt[4] = 0.4 after a held pred frame
    # (+penalty, 0.1 - floor). The warped path is cheaper.
    warped = 2 * PENALTY + (0.1 - FLOOR)
    assert warped < 4 * (0.1 - FLOOR)
    (cost,) = time_aware_dtw_batch([(lagged, gt)], PENALTY, FLOOR)
    assert cost == pytest.approx(warped, abs=1e-15)
    # identical and within-the-floor series cost exactly 0
    assert time_aware_dtw_batch([(gt, gt), (gt + 0.001, gt)], PENALTY, FLOOR) == [0.0, 0.0]
    # without the penalty the lag is free up to the last frame (plain DTW)
    (free,) = time_aware_dtw_batch([(lagged, gt)], 0.0, FLOOR)
    assert free == pytest.approx(0.1 - FLOOR, abs=1e-15)
    # a longer series must warp: 3 vs 1 frame of the same point costs 2 held frames
    (held,) = time_aware_dtw_batch([(_line([0.2] * 3), _line([0.2]))], PENALTY, FLOOR)
    assert held == pytest.approx(2 * PENALTY)


def test_time_aware_ndtw_by_hand():
    assert time_aware_ndtw(0.0, 24, NDTW_BOUND) == 1.0
    # 1 / (1 + 50.202 * 0.1382775 / 5)
    cost = 2 * PENALTY + (0.1 - FLOOR)
    assert time_aware_ndtw(cost, 5, NDTW_BOUND) == pytest.approx(1 / (1 + NDTW_BOUND * cost / 5))
    # large errors meet the official form 1 / (D / L) / bound
    assert time_aware_ndtw(100.0, 10, NDTW_BOUND) == pytest.approx(10 / 100.0 / NDTW_BOUND, rel=0.003)


def test_ndtw_sees_lag_and_frozen_frames_and_stays_one_for_a_replay():
    t = np.arange(24)
    xs = 0.2 + 0.5 * (1 - np.cos(np.pi * t / 23)) / 2  # a smooth reach, 0.2 -> 0.7
    gt = _track(_line(xs))
    lag = _track(_line(np.concatenate([[xs[0]] * 3, xs[:-3]])))
    frozen = _line(xs).copy()
    for k in (3, 4, 9, 13, 14, 18, 21):  # 7 of 24 frames (30%) repeat their predecessor
        frozen[k] = frozen[k - 1]
    scores = {
        name: trajectory_scores(track, gt, "ewmbench-v2")
        for name, track in (("replay", gt), ("lag", lag), ("frozen", _track(frozen)))
    }
    assert scores["replay"] == {"hsd": 1.0, "ndtw": 1.0, "dyn": 1.0}
    assert scores["replay"]["ndtw"] - scores["lag"]["ndtw"] >= 0.02
    assert scores["replay"]["ndtw"] - scores["frozen"]["ndtw"] >= 0.02
    # 2.0's plain exact DTW, normalised by the path length and capped, could see neither
    v20 = {**SETTINGS, "dtw": "exact", "jitter_floor": 0.0, "ndtw_step_penalty": 0.0}
    for track in (lag, _track(frozen)):
        assert trajectory_scores(track, gt, v20)["ndtw"] == 1.0


# ---------------------------------------------------------------- DYN with the floor


def test_dyn_perfect_match_reaches_the_cap():
    gt = _track(_line(np.linspace(0.1, 0.5, 10) ** 1.5))
    assert trajectory_scores(gt, gt, "ewmbench-v2")["dyn"] == 1.0


def _steps(pattern, count: int = 11) -> np.ndarray:
    """Positions 0.1 + cumulative steps (in 1/1024ths: exact in float32) cycling through ``pattern``."""
    steps = np.array([pattern[k % len(pattern)] for k in range(count)]) / 1024
    return _track(_line(0.1 + np.concatenate([[0.0], np.cumsum(steps)])))


def test_dyn_by_hand_below_and_above_the_floor():
    gt = _steps((10, 30))  # speeds 10, 30, 10, ... (6 x 10, 5 x 30); accelerations +-20 (5 each)
    # Below the floor: steps 11, 30. Speeds 6 x 11, 5 x 30: W_v = 6 * 1 / 11 / 1024 = 0.00053;
    # accelerations +-19: W_a = 1 / 1024 = 0.00098; both under the floor (0.0047), so W' = 0.
    # Ranges 19 vs 20 and 38 vs 40: r_v = r_a = 0.95. dyn = 0.95 * 0.01 / epsilon / 22.519.
    jitter = _steps((11, 30))
    expected = 0.95 * 0.01 / EPSILON / DYN_BOUND
    assert expected == pytest.approx(0.95002, abs=1e-5)
    assert trajectory_scores(jitter, gt, "ewmbench-v2")["dyn"] == pytest.approx(expected, rel=1e-6)
    # 2.0 (no floor, epsilon 1e-6) divided by that jitter: 0.007 * 0.95 / (0.00053 + 1e-6) +
    # 0.003 * 0.95 / (0.00098 + 1e-6), over 22.519: 0.68
    v20 = {
        **SETTINGS,
        "dtw": "exact",
        "jitter_floor": 0.0,
        "dyn": {**SETTINGS["dyn"], "wasserstein_epsilon": 1e-6},
    }
    w_v, w_a = 6 / 11 / 1024, 1 / 1024
    old = (0.007 * 0.95 / (w_v + 1e-6) + 0.003 * 0.95 / (w_a + 1e-6)) / DYN_BOUND
    assert trajectory_scores(jitter, gt, v20)["dyn"] == pytest.approx(old, rel=1e-6)
    assert old == pytest.approx(0.68, abs=0.01)
    # Above the floor: steps 20, 60. Speeds 6 x 20, 5 x 60: W_v = (6 * 10 + 5 * 30) / 11 / 1024,
    # accelerations +-40: W_a = 20 / 1024; ranges double: r_v = r_a = 1/2.
    double = _steps((20, 60))
    w_v, w_a = (6 * 10 + 5 * 30) / 11 / 1024, 20 / 1024
    expected = (0.007 * 0.5 / (w_v - FLOOR + EPSILON) + 0.003 * 0.5 / (w_a - FLOOR + EPSILON)) / DYN_BOUND
    assert trajectory_scores(double, gt, "ewmbench-v2")["dyn"] == pytest.approx(expected, rel=1e-6)


def test_the_noise_ladder_is_strictly_ordered_on_a_synthetic_track():
    t = np.arange(24)
    xs = 0.2 + 0.5 * (1 - np.cos(np.pi * t / 23)) / 2
    ys = 0.3 + 0.2 * np.sin(np.pi * t / 23)
    gt = np.stack([xs, ys], axis=1)
    rng = np.random.default_rng(0)
    unit = rng.standard_normal((24, 2))
    unit[0] = 0.0
    scores = [
        trajectory_scores(_track(np.clip(gt + sigma * unit, 0, 1)), _track(gt), "ewmbench-v2")
        for sigma in (0.0, 0.04, 0.08, 0.16)
    ]
    for key in ("hsd", "ndtw", "dyn"):
        series = [s[key] for s in scores]
        assert all(a > b for a, b in zip(series, series[1:])), (key, series)
