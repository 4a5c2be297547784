"""Statistics of the comparison report, checked against hand-worked values and seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from ewmbench.compare.statistics import (
    bootstrap_ci,
    common_episodes,
    estimate,
    holm,
    holm_adjust,
    kendall_agreement,
    paired_comparison,
    sign_flip,
    sign_flip_test,
)


def rows(by_episode: dict, tasks: dict | None = None, column: str = "x") -> list[dict]:
    """Rows from {episode: [trial values]}; every episode in task "1" unless ``tasks`` says."""
    return [
        {"task_id": (tasks or {}).get(e, "1"), "episode_id": e, "trial_id": str(t + 1), column: v}
        for e, values in by_episode.items()
        for t, v in enumerate(values)
    ]


# ---------------------------------------------------------------- the estimate follows the protocol


def test_estimate_follows_the_overall_rule():
    data = rows({"a": [1, 3], "b": [5]}, tasks={"a": "t1", "b": "t2"})
    assert estimate(data, "x", "mean_of_rows") == 3.0  # (1 + 3 + 5) / 3
    assert estimate(data, "x", "mean_of_task_means") == 3.5  # (2 + 5) / 2
    # a task mean is the mean of its rows, as the summary computes it
    data = rows({"a": [1, 3, 5], "b": [9]}, tasks={"a": "t", "b": "t"})
    assert estimate(data, "x", "mean_of_task_means") == 4.5


def test_estimate_reads_a_pandas_table_and_leaves_missing_values_out():
    frame = pd.DataFrame(rows({"a": [1, np.nan, 3], "b": [np.nan], "c": [6, 6]}))
    assert estimate(frame, "x") == 4.0  # (1 + 3 + 6 + 6) / 4
    assert math.isnan(estimate(frame, "not_a_column"))
    assert bootstrap_ci(rows({"a": [None]}), "x") is None
    # infinite values are kept, as the summary keeps them
    assert estimate(rows({"a": [1.0, math.inf]}), "x") == math.inf


# ---------------------------------------------------------------- bootstrap CI, worked by hand


def test_single_value_gives_a_point_interval():
    ci = bootstrap_ci(rows({"a": [0.7]}), "x", seed=1)
    assert (ci.estimate, ci.low, ci.high, ci.episodes, ci.trials, ci.as_list()) == (
        0.7,
        0.7,
        0.7,
        1,
        1,
        [0.7, 0.7],
    )


def test_two_episodes_zero_and_one():
    # Resampled means are 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4: the 2.5% and 97.5% quantiles
    # fall inside the masses at 0 and 1; a 40% interval (30%..70%) inside the mass at 1/2.
    data = rows({"a": [0.0], "b": [1.0]})
    ci = bootstrap_ci(data, "x", resamples=4000, seed=3)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.0, 1.0)
    narrow = bootstrap_ci(data, "x", level=0.4, resamples=4000, seed=3)
    assert (narrow.low, narrow.high) == (0.5, 0.5)


def test_trials_travel_with_their_episode_or_are_redrawn():
    # By default an episode's trials travel together: one episode is one point.
    kept = bootstrap_ci(rows({"a": [0.0, 1.0]}), "x", resamples=4000, seed=5)
    assert (kept.estimate, kept.low, kept.high, kept.trials) == (0.5, 0.5, 0.5, 2)
    # Redrawn, two draws of a trial give the 0, 1/2, 1 distribution of the two-episode case.
    ci = bootstrap_ci(rows({"a": [0.0, 1.0]}), "x", resamples=4000, seed=5, resample_trials=True)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.0, 1.0)
    narrow = bootstrap_ci(
        rows({"a": [0.0, 1.0]}), "x", level=0.4, resamples=4000, seed=5, resample_trials=True
    )
    assert (narrow.low, narrow.high) == (0.5, 0.5)
    # Episodes of unequal trial counts: only the first k uniforms of a k-trial episode are used.
    mixed = bootstrap_ci(
        rows({"a": [0.0, 1.0, 2.0], "b": [4.0]}), "x", resamples=500, seed=1, resample_trials=True
    )
    assert mixed.estimate == 1.75 and 0.0 <= mixed.low < 1.75 < mixed.high <= 4.0


def test_bootstrap_spread_matches_the_plug_in_variance():
    # Episodes 0..3, one trial each: the bootstrap mean has variance var_pop / n = 1.25 / 4.
    from ewmbench.compare.statistics import (
        _clusters,
        _episode_values,
        _resample_episodes,
        _resampled_statistic,
    )

    clusters = _clusters(_episode_values(rows({str(i): [float(i)] for i in range(4)}), "x"))
    picks = _resample_episodes(clusters.strata, 40000, np.random.default_rng(0))
    means = _resampled_statistic(clusters, picks, None, "mean_of_rows")
    assert means.mean() == pytest.approx(1.5, abs=0.01)
    assert means.var() == pytest.approx(0.3125, rel=0.03)


def test_tasks_are_never_resampled():
    # Two tasks with one episode each: every resample draws each task's only episode.
    data = rows({"a": [2.0], "b": [10.0]}, tasks={"a": "x", "b": "y"})
    for overall in ("mean_of_rows", "mean_of_task_means"):
        ci = bootstrap_ci(data, "x", overall=overall, seed=0)
        assert (ci.estimate, ci.low, ci.high) == (6.0, 6.0, 6.0)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(11)
    data = rows({str(i): list(rng.normal(size=3)) for i in range(12)})
    assert bootstrap_ci(data, "x", seed=7) == bootstrap_ci(data, "x", seed=7)
    assert bootstrap_ci(data, "x", seed=7) != bootstrap_ci(data, "x", seed=8)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(rows({"a": [1.0]}), "x", level=95)
    with pytest.raises(ValueError, match="unknown overall rule"):
        bootstrap_ci(rows({"a": [1.0]}), "x", overall="median")
    with pytest.raises(ValueError, match="direction"):
        paired_comparison(rows({"a": [1.0]}), rows({"a": [1.0]}), "x", direction="up")
    with pytest.raises(ValueError, match="level"):
        paired_comparison(rows({"a": [1.0]}), rows({"a": [2.0]}), "x", direction="higher", level=95)


# ---------------------------------------------------------------- paired tests, worked by hand


def test_sign_flip_exact_by_hand():
    # d = (1, 2, 3): the 8 sign patterns give |sum| = 6, 0, 2, 4, 4, 2, 0, 6; two reach 6.
    assert sign_flip_test([1, 2, 3]) == 0.25
    # d = (1, -2, 3): observed |2|; six of the eight patterns reach 2.
    assert sign_flip_test([1, -2, 3]) == 0.75
    # every episode moved the same way: only the observed pattern and its mirror reach it
    assert sign_flip_test([0.5] * 8) == 2 / 256
    # weights: d = (1, -1) weighted (3/4, 1/4): observed 1/2; patterns give 1/2, 1, 1, 1/2 -> all reach it
    assert sign_flip_test([1, -1], weights=[0.75, 0.25]) == 1.0
    assert math.isnan(sign_flip_test([1.0, math.inf]))


def test_sign_flip_sampled_beyond_the_exact_size():
    p = sign_flip_test([1.0] * 20, permutations=5000, seed=0)
    # exact value 2 / 2**20; the sampled p-value counts the observed pattern: (1 + hits) / 5001
    assert p == pytest.approx(1 / 5001, abs=2 / 5001)
    assert sign_flip_test([0.0] * 20, permutations=500) == 1.0


def test_sign_flip_interval_by_hand():
    # d = 1..6, equal weights: 64 sign patterns. p = 2 * 1 / 64 (only the observed pattern has
    # every subset mean above 0). At 95%, 2c/64 >= 0.05 needs c >= 2 patterns at or beyond delta:
    # the empty set and one subset mean, so the interval runs from the smallest subset mean (1) to
    # the largest (6).
    result = sign_flip([1, 2, 3, 4, 5, 6])
    assert (result.p_value, result.low, result.high, result.patterns, result.ties) == (
        2 / 64,
        1.0,
        6.0,
        64,
        0,
    )
    # At 90%: 2c/64 >= 0.1 needs c >= 4, the third smallest subset mean: 1, 1.5 ({1, 2}), 2 ({2}).
    ninety = sign_flip([1, 2, 3, 4, 5, 6], level=0.9)
    assert (ninety.low, ninety.high) == (2.0, 5.0)
    # Five episodes all one way: p = 2 / 32 > 0.05, so no shift is rejected: an unbounded interval.
    five = sign_flip([1, 2, 3, 4, 5])
    assert (five.p_value, five.low, five.high) == (2 / 32, -math.inf, math.inf)
    # All ties: p = 1; with 8 episodes every shift but 0 is rejected, with 4 none is.
    assert (lambda r: (r.p_value, r.low, r.high, r.ties))(sign_flip([0.0] * 8)) == (1.0, 0.0, 0.0, 8)
    assert (lambda r: (r.low, r.high))(sign_flip([0.0] * 4)) == (-math.inf, math.inf)
    assert math.isnan(sign_flip([1.0, math.nan]).p_value)


def test_ties_at_the_cap_do_not_make_a_narrow_interval_significant():
    # The report's old contradiction: 8 episodes, 5 tie at 0 (both runs at the cap), 3 lower.
    # Subsets of tied episodes have mean 0 and count on both sides: 1 + 31 patterns reach 0 from
    # above, p = 2 * 32 / 256 = 0.25, and the interval reaches 0.
    result = sign_flip([0.0] * 5 + [-0.3, -0.4, -0.38])
    assert result.p_value == 0.25 and result.ties == 5
    assert result.low < 0 and result.high == 0.0


@settings(max_examples=200, deadline=None)
@given(
    hst.lists(
        hst.one_of(hst.just(0.0), hst.floats(-1, 1, allow_nan=False, allow_subnormal=False)),
        min_size=1,
        max_size=12,
    ),
    hst.sampled_from([0.8, 0.9, 0.95, 0.99]),
    hst.lists(hst.floats(0.1, 3.0), min_size=12, max_size=12),
)
def test_interval_excludes_zero_exactly_when_p_is_below_one_minus_level(differences, level, raw_weights):
    weights = raw_weights[: len(differences)]
    result = sign_flip(differences, weights=weights, level=level)
    excludes_zero = result.low > 0 or result.high < 0
    assert excludes_zero == (result.p_value < 1 - level)
    assert result.low <= result.high
    # the weighted mean (the statistic's zero) is always inside
    centre = float(np.dot(weights, differences) / np.sum(weights))
    assert result.low <= centre + 1e-12 and centre - 1e-12 <= result.high


def test_sampled_patterns_keep_interval_and_p_consistent():
    rng = np.random.default_rng(3)
    for seed in range(20):
        d = rng.normal(loc=0.3 * (seed % 3), size=25)
        d[:5] = 0.0
        result = sign_flip(d, permutations=999, seed=seed)
        assert result.patterns == 1000
        assert (result.low > 0 or result.high < 0) == (result.p_value < 0.05)


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, 2 * 0.03, max(0.06, 1 * 0.04); NaN not counted
    assert holm([0.01, 0.04, 0.03, math.nan])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([0.01, 0.04, 0.03, math.nan])[3])
    # 2 * 0.5 caps at 1; the running maximum keeps the larger p-value at 1 too (never below a smaller one's)
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([0.2, 0.01]) == [pytest.approx(0.2), pytest.approx(0.02)]
    assert holm([]) == []


# ---------------------------------------------------------------- paired comparison


def _values(seed: int, n: int = 8, trials: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    return rows(
        {f"{i:02d}": list(rng.normal(loc=i * 0.1, size=trials)) for i in range(n)},
        tasks={f"{i:02d}": str(i % 2) for i in range(n)},
    )


def _shift(data: list[dict], by: float) -> list[dict]:
    return [dict(r, x=r["x"] + by) for r in data]


@pytest.mark.parametrize("overall", ["mean_of_rows", "mean_of_task_means"])
def test_identical_runs_give_exactly_zero_and_p_one(overall):
    a = _values(0)
    result = paired_comparison(a, [dict(r) for r in a], "x", direction="higher", overall=overall)
    assert (result.difference, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.verdict() == "n.s."


def test_planted_shift_is_found_with_its_sign():
    a = _values(1)
    up = paired_comparison(a, _shift(a, 1.0), "x", direction="higher")
    assert up.difference == pytest.approx(1.0)
    assert (up.low, up.high) == (pytest.approx(1.0), pytest.approx(1.0))
    assert up.p_value == 2 / 256
    assert up.verdict() == "better" and up.improvement == pytest.approx(1.0)
    # the same shift on a lower-is-better metric is a loss
    down = paired_comparison(a, _shift(a, 1.0), "x", direction="lower")
    assert down.verdict() == "worse" and down.improvement == pytest.approx(-1.0)


def test_paired_comparison_by_hand():
    # episode trial means: A = (1, 5, 1), B = (2, 7, 4); per-episode differences 1, 2, 3.
    # Over rows: A has 4 rows summing 8 (mean 2), B 4 rows summing 15 (3.75): difference 1.75.
    # The test weighs episodes as the rule does (2/4, 1/4, 1/4): observed |0.5 + 0.5 + 0.75| = 1.75;
    # the 8 sign patterns give |.| = 1.75, 0.25, 0.75, 0.75, 0.75, 0.75, 0.25, 1.75 -> p = 2/8.
    # With 3 episodes even the most extreme pattern has p = 1/4: the interval is unbounded.
    a = rows({"x": [0.0, 2.0], "y": [5.0], "z": [1.0]})
    b = rows({"x": [2.0, 2.0], "y": [7.0], "z": [4.0]})
    result = paired_comparison(a, b, "x", direction="higher")
    assert result.difference == pytest.approx(1.75)
    assert result.p_value == 0.25 and result.episodes == 3 and result.test == "sign-flip"
    assert (result.low, result.high) == (-math.inf, math.inf)


def test_paired_comparison_uses_common_episodes_only():
    a = rows({"x": [1.0], "y": [2.0], "only_a": [100.0]})
    b = rows({"x": [2.0], "y": [3.0], "only_b": [-100.0], "unscored": [math.nan]})
    assert common_episodes(a, b, "x") == [("1", "x"), ("1", "y")]
    result = paired_comparison(a, b, "x", direction="higher")
    assert result.episodes == 2 and result.difference == 1.0
    assert paired_comparison(rows({"x": [1.0]}), rows({"y": [1.0]}), "x", direction="higher") is None


def test_holm_adjust_marks_what_survives():
    a = _values(2)
    shifted = paired_comparison(a, _shift(a, 1.0), "x", direction="higher")
    same = paired_comparison(a, a, "x", direction="higher")
    adjusted = holm_adjust([shifted, same, shifted])
    assert [c.p_adjusted for c in adjusted] == [pytest.approx(3 * 2 / 256), 1.0, pytest.approx(3 * 2 / 256)]
    assert adjusted[0].p_value == 2 / 256  # the raw p-value is kept


# ---------------------------------------------------------------- seeded simulations


@pytest.mark.slow
def test_bootstrap_ci_covers_the_true_mean_near_the_nominal_rate():
    rng = np.random.default_rng(2024)
    hits = 0
    repeats = 400
    for r in range(repeats):
        effect = 2.0 + rng.normal(size=40)
        data = rows({f"{e:03d}": list(effect[e] + rng.normal(scale=0.5, size=3)) for e in range(40)})
        ci = bootstrap_ci(data, "x", resamples=1000, seed=r)
        hits += ci.low <= 2.0 <= ci.high
    # nominal 0.95 (measured 0.945); binomial SE ~ 0.011
    assert 0.91 <= hits / repeats <= 0.98


@pytest.mark.slow
def test_paired_ci_coverage_and_test_size_on_synthetic_data():
    rng = np.random.default_rng(7)
    covered = rejected_null = 0
    repeats = 300
    for r in range(repeats):
        # a shared episode effect, then each run's own trial noise; true difference B - A = 0.3
        effect = rng.normal(size=30)
        a = rows({f"{e:02d}": list(effect[e] + rng.normal(scale=0.5, size=2)) for e in range(30)})
        b = rows({f"{e:02d}": list(effect[e] + 0.3 + rng.normal(scale=0.5, size=2)) for e in range(30)})
        null = rows({f"{e:02d}": list(effect[e] + rng.normal(scale=0.5, size=2)) for e in range(30)})
        result = paired_comparison(a, b, "x", direction="higher", permutations=2000, seed=r)
        covered += result.low <= 0.3 <= result.high
        rejected_null += (
            paired_comparison(a, null, "x", direction="higher", permutations=2000, seed=r).p_value < 0.05
        )
    # nominal 0.95 and 5%; measured 0.960 and 0.047 (benchmarks/statistics_coverage.py); binomial SE ~ 0.012
    assert 0.91 <= covered / repeats <= 0.985
    assert rejected_null / repeats <= 0.085


# ---------------------------------------------------------------- metric agreement


def test_kendall_agreement_is_direction_aware():
    quality = [1.0, 2.0, 3.0, 4.0, 5.0]
    columns = {
        "psnr": quality,
        "lpips": [-q for q in quality],
        "noise": [3.0, 1.0, 4.0, 1.5, 5.0],
        "flat": [1.0] * 5,
    }
    matrix = kendall_agreement(
        columns, {"psnr": "higher", "lpips": "lower", "noise": "higher", "flat": "higher"}
    )
    assert matrix["psnr"]["lpips"] == pytest.approx(1.0)  # lower lpips where psnr is higher: agreement
    assert matrix["psnr"]["psnr"] == pytest.approx(1.0)
    # concordant pairs among the 10: 7, discordant 3 -> tau = 0.4
    assert matrix["psnr"]["noise"] == pytest.approx(0.4)
    assert matrix["noise"]["psnr"] == matrix["psnr"]["noise"]
    assert math.isnan(matrix["psnr"]["flat"])
