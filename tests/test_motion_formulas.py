"""Hand-worked values for every formula of the motion metrics (arithmetic in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ewmbench.metrics.dtw import dtw_batch, expand_window, fastdtw_batch, reduce_by_half
from ewmbench.metrics.motion import (
    MotionSettings,
    choose_gripper,
    diameter,
    dynamics_raw,
    fill_gaps,
    normalise,
    official_hull_spread,
    symmetric_hausdorff,
    wasserstein_1d,
)
from ewmbench.protocols import load_protocol

V1 = MotionSettings.from_dict(load_protocol("ewmbench-v1").settings("trajectory_consistency"))
V2 = MotionSettings.from_dict(load_protocol("ewmbench-v2").settings("trajectory_consistency"))


def test_v1_constants_are_the_official_ones():
    assert V1.bounds == {"hsd": 24.979, "ndtw": 50.202, "dyn": 22.519}
    assert (V1.dyn_speed_weight, V1.dyn_acceleration_weight, V1.dyn_range_epsilon) == (0.007, 0.003, 1e-8)
    assert (V1.invalid_missing_fraction, V1.dtw, V1.dtw_radius) == (0.8, "fastdtw", 1)
    assert (V1.hsd_epsilon, V1.ndtw_epsilon, V1.dyn_wasserstein_epsilon) == (0.0, 0.0, 0.0)
    assert (V1.spread, V1.gripper_choice) == ("official_hull_edges", "official_position")
    assert V2.dtw == "time_aware" and V2.spread == "hull_diameter" and V2.gripper_choice == "gripper_index"
    assert (V1.jitter_floor, V1.ndtw_step_penalty) == (0.0, 0.0)


# ---------------------------------------------------------------- gap filling


def test_fill_gaps_interpolates_by_frame_index_and_copies_ends():
    x = [-1, 0.2, -1, -1, 0.8, -1]
    track = np.array([[v, v / 2] if v != -1 else [-1, -1] for v in x], dtype=np.float32)
    filled, valid = fill_gaps(track)
    # 3 of 6 missing (50% <= 80%): valid. Frame 0 copies frame 1 (0.2); frames 2, 3 lie at 1/3
    # and 2/3 between frame 1 (0.2) and frame 4 (0.8): 0.2 + 0.6/3 = 0.4, 0.2 + 1.2/3 = 0.6;
    # frame 5 copies frame 4 (0.8). y is half of x throughout.
    assert valid
    expected_x = np.float32([0.2, 0.2, 0.4, 0.6, 0.8, 0.8])
    np.testing.assert_allclose(filled[:, 0], expected_x, rtol=1e-6)
    np.testing.assert_allclose(filled[:, 1], expected_x / 2, rtol=1e-6)
    assert filled.dtype == np.float32
    assert track[0, 0] == -1  # the input is not modified


def test_invalid_threshold_is_more_than_80_percent():
    track = np.full((5, 2), -1, dtype=np.float32)
    track[2] = (0.3, 0.4)  # 4 of 5 missing: exactly 80%, not more: still valid
    filled, valid = fill_gaps(track)
    assert valid and np.all(filled == np.float32([0.3, 0.4]))
    track = np.full((10, 2), -1, dtype=np.float32)
    track[0] = (0.3, 0.4)  # 9 of 10 missing: 90% > 80%: invalid and left unfilled
    filled, valid = fill_gaps(track)
    assert not valid and np.array_equal(filled, track)


def test_only_the_exact_pair_marks_a_missing_point():
    track = np.array([[-1, 0.5], [0.5, 0.5]], dtype=np.float32)
    filled, valid = fill_gaps(track)
    assert valid and np.array_equal(filled, track)


# ---------------------------------------------------------------- spread and gripper choice


def test_official_spread_of_a_triangle_is_its_longest_edge():
    # Right triangle with legs 4 and 3: edges 4, 3, 5; |v0 - v2| is an edge too; spread 5.
    assert official_hull_spread(np.array([[0, 0], [4, 0], [0, 3], [1, 1]])) == pytest.approx(5.0)


def test_official_spread_of_a_hexagon_misses_the_diameter():
    # Regular hexagon of radius 1: edges 1, |v0 - v2| spans two edges = sqrt(3); the diameter
    # (opposite vertices) is 2. The official loop reports sqrt(3).
    angles = np.arange(6) * np.pi / 3
    hexagon = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert official_hull_spread(hexagon) == pytest.approx(math.sqrt(3))
    assert diameter(hexagon) == pytest.approx(2.0)


def test_diameter_of_degenerate_sets():
    assert diameter(np.array([[0.5, 0.5]] * 4)) == 0.0
    # Collinear: the two end points, |(0.1, 0.1) - (0.4, 0.5)| = sqrt(0.09 + 0.16) = 0.5.
    assert diameter(np.array([[0.1, 0.1], [0.25, 0.3], [0.4, 0.5]])) == pytest.approx(0.5)


def test_gripper_choice_official_position_quirk():
    # Only the right GT gripper (1) is valid: spreads = [s1]; argmax position 0.
    assert choose_gripper([0.3], [1], V1) == 0  # official: the position is used as the index
    assert choose_gripper([0.3], [1], V2) == 1  # v2: the gripper itself
    assert choose_gripper([0.2, 0.5], [0, 1], V1) == 1
    assert choose_gripper([0.5, 0.5], [0, 1], V1) == 0  # ties: the first


# ---------------------------------------------------------------- HSD, DYN, normalisation


def test_symmetric_hausdorff_hand_worked():
    p = np.array([[0, 0], [1, 0]])
    g = np.array([[0, 0], [0, 2]])
    # P -> G: (0,0) at 0, (1,0) at min(1, sqrt(5)) = 1 -> 1.  G -> P: (0,2) at min(2, sqrt(5)) = 2 -> 2.
    assert symmetric_hausdorff(p, g) == 2.0
    assert symmetric_hausdorff(g, p) == 2.0


def test_wasserstein_hand_worked():
    # Equal sizes: mean |sorted differences| = (|0 - 0| + |1 - 3|) / 2 = 1.
    assert wasserstein_1d([1, 0], [3, 0]) == 1.0
    # Mass 1 at 0 against 1/2 at 1 and 1/2 at 3: 1/2 * 1 + 1/2 * 3 = 2.
    assert wasserstein_1d([0], [1, 3]) == 2.0
    assert wasserstein_1d([0.25, 0.5], [0.5, 0.25]) == 0.0


def _line(xs):
    return np.stack([np.asarray(xs, np.float64), np.zeros(len(xs))], axis=1).astype(np.float32)


def test_dynamics_hand_worked():
    # Exactly representable positions along x (sixteenths).
    gt = _line(np.array([0, 1, 3, 6]) / 16)  # speeds 1/16, 2/16, 3/16; accelerations 1/16, 1/16
    pred = _line(np.array([0, 1, 4, 8]) / 16)  # speeds 1/16, 3/16, 4/16; accelerations 2/16, 1/16
    eps = 1e-8
    r_v = (2 / 16 + eps) / (3 / 16 + eps)  # speed ranges 2/16 (GT) and 3/16 (pred)
    w_v = (0 + 1 / 16 + 1 / 16) / 3  # sorted speeds paired: |1-1|, |3-2|, |4-3| sixteenths
    r_a = (0 + eps) / (1 / 16 + eps)  # acceleration ranges 0 (GT) and 1/16 (pred)
    w_a = (0 + 1 / 16) / 2  # sorted accelerations (1, 2) vs (1, 1) sixteenths
    expected = 0.007 * r_v / w_v + 0.003 * r_a / w_a  # = 0.007 * 16.0000003 + 0.003 * 5.12e-6
    assert dynamics_raw(pred, gt, V1) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.112, rel=1e-6)


def test_dynamics_zero_wasserstein_term_is_zero_in_v1_and_capped_in_v2():
    track = _line(np.array([0, 1, 3, 6]) / 16)
    shifted = track + np.float32([0, 0.5])  # same speeds and accelerations, elsewhere
    assert dynamics_raw(shifted, track, V1) == 0.0  # W = 0 -> both terms 0 (official)
    # v2 (2.1): r = 1 and W = 0 + 4.4406e-4: 0.01 / 4.4406e-4 = 22.5195, capped at 1 when normalised.
    assert dynamics_raw(shifted, track, V2) == pytest.approx(0.01 / 4.4406e-4)


def test_normalisation_divides_by_bounds_and_caps():
    scores = normalise({"hsd": 20.0, "ndtw": 100.0, "dyn": 11.2595}, V1)
    assert scores["hsd"] == pytest.approx(20 / 24.979)  # 0.80067...
    assert scores["ndtw"] == 1.0  # 100 / 50.202 > 1: capped
    assert scores["dyn"] == pytest.approx(0.5)  # 11.2595 / 22.519


# ---------------------------------------------------------------- DTW


def test_dtw_hand_worked():
    x = np.array([[0, 0], [1, 0], [2, 0]], dtype=float)
    y = np.array([[0, 0], [2, 0]], dtype=float)
    # Costs d(i, j): row x0: 0, 2; x1: 1, 1; x2: 2, 0. Accumulated: D(x0,y0)=0, D(x1,y0)=1,
    # D(x2,y0)=3, D(x0,y1)=2, D(x1,y1)=1+min(2,1,0)=1, D(x2,y1)=0+min(up 1, left 3, diag 1)=1,
    # up wins the tie: path (0,0),(1,1),(2,1): L = 3, D = 1.
    assert dtw_batch([(x, y)]) == [(1.0, 3)]
    # y is shorter than radius + 2 = 3, so FastDTW solves this level exactly too.
    assert fastdtw_batch([(x, y)]) == [(1.0, 3)]


def test_reduce_by_half_and_window_expansion():
    x = np.array([[0, 0], [2, 2], [4, 0], [6, 2], [9, 9]], dtype=float)
    np.testing.assert_array_equal(reduce_by_half(x), [[1, 1], [5, 1]])  # the odd last point is dropped
    # Coarse 2x2 grid, diagonal path (0,0),(1,1): row extents [0,0] and [1,1]. Dilated by 1:
    # coarse rows 0 and 1 both span columns -1..2 -> fine columns -2..5, clipped to 0..4 (m = 5).
    lo, hi = expand_window(np.array([0, 1]), np.array([0, 1]), 5, 5, 1)
    np.testing.assert_array_equal(lo, [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(hi, [4, 4, 4, 4, 4])
    # A longer diagonal: coarse rows 0..3 with j = i. Row a spans [a-1-1, a+1+1] clipped to the coarse path.
    lo, hi = expand_window(np.arange(4), np.arange(4), 8, 8, 1)
    np.testing.assert_array_equal(lo, [0, 0, 0, 0, 0, 0, 2, 2])
    np.testing.assert_array_equal(hi, [5, 5, 7, 7, 7, 7, 7, 7])
