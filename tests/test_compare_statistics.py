"""Statistics of the comparison report, checked against hand-worked values and seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from ewmbench.compare.statistics import (
    bootstrap_ci,
    common_episodes,
    estimate,
    holm,
    holm_adjust,
    kendall_agreement,
    paired_comparison,
    sign_flip_test,
    wilcoxon_test,
)


# ---------------------------------------------------------------- the estimate


def test_estimate_is_mean_of_episode_means():
    # episode means 2 and 5; a mean over rows would give 3
    assert estimate({"a": [1, 3], "b": [5]}) == 3.5


def test_estimate_with_strata_is_mean_of_stratum_means():
    values = {"a": [1], "b": [3], "c": [8]}
    assert estimate(values) == 4.0
    assert estimate(values, strata={"a": "t1", "b": "t1", "c": "t2"}) == 5.0  # (2 + 8) / 2


def test_estimate_drops_non_finite_trials_and_empty_episodes():
    assert estimate({"a": [1, np.nan, 3], "b": [np.nan], "c": [float("inf"), 6]}) == 4.0  # (2 + 6) / 2
    assert math.isnan(estimate({}))
    assert math.isnan(bootstrap_ci({"a": [np.nan]}).estimate)


# ---------------------------------------------------------------- bootstrap CI, worked by hand


def test_single_value_gives_a_point_interval():
    ci = bootstrap_ci({"a": [0.7]}, seed=1)
    assert (ci.estimate, ci.low, ci.high, ci.n_episodes, ci.n_trials) == (0.7, 0.7, 0.7, 1, 1)


def test_two_episodes_zero_and_one():
    # Resampled means are 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4: the 2.5% and 97.5% quantiles
    # fall inside the masses at 0 and 1; a 40% interval (30%..70%) inside the mass at 1/2.
    values = {"a": [0.0], "b": [1.0]}
    ci = bootstrap_ci(values, n_resamples=4000, seed=3)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.0, 1.0)
    narrow = bootstrap_ci(values, confidence=0.4, n_resamples=4000, seed=3)
    assert (narrow.low, narrow.high) == (0.5, 0.5)


def test_trials_travel_with_their_episode_or_are_redrawn():
    # By default an episode's trials travel together: one episode is one point.
    kept = bootstrap_ci({"a": [0.0, 1.0]}, n_resamples=4000, seed=5)
    assert (kept.estimate, kept.low, kept.high, kept.n_trials) == (0.5, 0.5, 0.5, 2)
    # Redrawn, two draws of a trial give the 0, 1/2, 1 distribution of the two-episode case.
    ci = bootstrap_ci({"a": [0.0, 1.0]}, n_resamples=4000, seed=5, resample_trials=True)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.0, 1.0)
    narrow = bootstrap_ci({"a": [0.0, 1.0]}, confidence=0.4, n_resamples=4000, seed=5, resample_trials=True)
    assert (narrow.low, narrow.high) == (0.5, 0.5)
    # Episodes of unequal trial counts: only the first k uniforms of a k-trial episode are used.
    mixed = bootstrap_ci({"a": [0.0, 1.0, 2.0], "b": [4.0]}, n_resamples=500, seed=1, resample_trials=True)
    assert mixed.estimate == 2.5 and 0.0 <= mixed.low < 2.5 < mixed.high <= 4.0


def test_bootstrap_spread_matches_the_plug_in_variance():
    # Episodes 0..3, one trial each: the bootstrap mean has variance var_pop / n = 1.25 / 4.
    from ewmbench.compare.statistics import _clusters, _resample_episodes, _resampled_estimates

    clusters = _clusters({str(i): [float(i)] for i in range(4)}, None)
    rng = np.random.default_rng(0)
    picks = _resample_episodes(clusters.strata, 40000, rng)
    means = _resampled_estimates(clusters, picks, rng.random((40000, 4, 1)))
    assert means.mean() == pytest.approx(1.5, abs=0.01)
    assert means.var() == pytest.approx(0.3125, rel=0.03)


def test_strata_keep_their_sizes_in_every_resample():
    # Two strata with one episode each: every resample draws each stratum's only episode, so the
    # mean of stratum means never moves.
    ci = bootstrap_ci({"a": [2.0], "b": [10.0]}, strata={"a": "x", "b": "y"}, seed=0)
    assert (ci.estimate, ci.low, ci.high) == (6.0, 6.0, 6.0)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(11)
    values = {str(i): rng.normal(size=3) for i in range(12)}
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci({"a": [1.0]}, confidence=95)
    with pytest.raises(ValueError, match="direction"):
        paired_comparison({"a": [1.0]}, {"a": [1.0]}, direction="up")
    with pytest.raises(ValueError, match="unknown test"):
        paired_comparison({"a": [1.0]}, {"a": [2.0]}, direction="higher", test="t")


# ---------------------------------------------------------------- paired tests, worked by hand


def test_sign_flip_exact_by_hand():
    # d = (1, 2, 3): the 8 sign patterns give |sum| = 6, 0, 2, 4, 4, 2, 0, 6; two reach 6.
    assert sign_flip_test([1, 2, 3]) == 0.25
    # d = (1, -2, 3): observed |2|; six of the eight patterns reach 2.
    assert sign_flip_test([1, -2, 3]) == 0.75
    # every episode moved the same way: only the observed pattern and its mirror reach it
    assert sign_flip_test([0.5] * 8) == 2 / 256


def test_sign_flip_sampled_beyond_the_exact_size():
    p = sign_flip_test([1.0] * 20, n_permutations=5000, seed=0)
    # exact value 2 / 2**20; the sampled p-value counts the observed pattern: (1 + hits) / 5001
    assert p == pytest.approx(1 / 5001, abs=2 / 5001)
    assert sign_flip_test([0.0] * 20, n_permutations=500) == 1.0


def test_wilcoxon_by_hand_and_zero():
    # five positive differences, no ties: exact two-sided p = 2 / 2**5
    assert wilcoxon_test([1, 2, 3, 4, 5]) == pytest.approx(0.0625)
    assert wilcoxon_test([0, 0, 0]) == 1.0
    d = [0.3, -0.1, 0.4, 0.25, -0.05, 0.6]
    assert wilcoxon_test(d) == pytest.approx(wilcoxon(d).pvalue)


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, 2 * 0.03, max(0.06, 1 * 0.04); NaN not counted
    assert holm([0.01, 0.04, 0.03, math.nan])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([0.01, 0.04, 0.03, math.nan])[3])
    # 2 * 0.5 caps at 1; the running maximum keeps the larger p-value at 1 too (never below a smaller one's)
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([0.2, 0.01]) == [pytest.approx(0.2), pytest.approx(0.02)]
    assert holm([]) == []


# ---------------------------------------------------------------- paired comparison


def _values(seed: int, n: int = 8, trials: int = 3) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {f"{i:02d}": list(rng.normal(loc=i * 0.1, size=trials)) for i in range(n)}


@pytest.mark.parametrize("test", ["permutation", "wilcoxon"])
@pytest.mark.parametrize("resample_trials", [False, True])
def test_identical_runs_give_exactly_zero_and_p_one(test, resample_trials):
    a = _values(0)
    copy = {k: list(v) for k, v in a.items()}
    result = paired_comparison(a, copy, direction="higher", test=test, resample_trials=resample_trials)
    assert (result.difference, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.verdict() == "n.s."


def test_planted_shift_is_found_with_its_sign():
    a = _values(1)
    b = {k: [x + 1.0 for x in v] for k, v in a.items()}
    up = paired_comparison(a, b, direction="higher", resample_trials=True)
    assert up.difference == pytest.approx(1.0)
    assert (up.low, up.high) == (pytest.approx(1.0), pytest.approx(1.0))
    assert up.p_value == 2 / 256
    assert up.verdict() == "better" and up.improvement == pytest.approx(1.0)
    # the same shift on a lower-is-better metric is a loss
    down = paired_comparison(a, b, direction="lower")
    assert down.verdict() == "worse" and down.improvement == pytest.approx(-1.0)


def test_paired_comparison_by_hand():
    # per-episode differences 1, 2, 3 (trial means): estimate 2, exact sign-flip p = 0.25
    a = {"x": [0.0, 2.0], "y": [5.0], "z": [1.0]}
    b = {"x": [2.0, 2.0], "y": [7.0], "z": [4.0]}
    result = paired_comparison(a, b, direction="higher", n_resamples=4000)
    assert result.difference == pytest.approx(2.0)
    assert result.p_value == 0.25 and result.n_episodes == 3
    assert 0.5 <= result.low < 2.0 < result.high <= 3.5


def test_paired_comparison_uses_common_episodes_only():
    a = {"x": [1.0], "y": [2.0], "only_a": [100.0]}
    b = {"x": [2.0], "y": [3.0], "only_b": [-100.0], "unscored": [math.nan]}
    assert common_episodes(a, b) == ["x", "y"]
    result = paired_comparison(a, b, direction="higher")
    assert result.n_episodes == 2 and result.difference == 1.0
    empty = paired_comparison({"x": [1.0]}, {"y": [1.0]}, direction="higher")
    assert empty.n_episodes == 0 and math.isnan(empty.p_value) and empty.verdict() == "n.s."


def test_holm_adjust_marks_what_survives():
    a = _values(2)
    shifted = paired_comparison(a, {k: [x + 1 for x in v] for k, v in a.items()}, direction="higher")
    same = paired_comparison(a, a, direction="higher")
    adjusted = holm_adjust([shifted, same, shifted])
    assert [c.p_adjusted for c in adjusted] == [pytest.approx(3 * 2 / 256), 1.0, pytest.approx(3 * 2 / 256)]
    assert adjusted[0].p_value == 2 / 256  # the raw p-value is kept


# ---------------------------------------------------------------- seeded simulations


def _synthetic_run(rng: np.random.Generator, n_episodes: int, trials: int, mean: float) -> dict[str, np.ndarray]:
    episode_means = mean + rng.normal(scale=1.0, size=n_episodes)
    return {f"{e:03d}": episode_means[e] + rng.normal(scale=0.5, size=trials) for e in range(n_episodes)}


@pytest.mark.slow
def test_bootstrap_ci_covers_the_true_mean_near_the_nominal_rate():
    rng = np.random.default_rng(2024)
    hits = 0
    repeats = 400
    for r in range(repeats):
        ci = bootstrap_ci(_synthetic_run(rng, 40, 3, mean=2.0), n_resamples=1000, seed=r)
        hits += ci.low <= 2.0 <= ci.high
    # nominal 0.95; percentile intervals run a little short at 40 episodes; binomial SE ~ 0.011
    assert 0.91 <= hits / repeats <= 0.98


@pytest.mark.slow
def test_paired_ci_coverage_and_test_size_on_synthetic_data():
    rng = np.random.default_rng(7)
    covered = covered_two_stage = rejected_null = 0
    repeats = 300
    for r in range(repeats):
        # a shared episode effect, then each run's own trial noise; true difference B - A = 0.3
        effect = rng.normal(size=30)
        a = {f"{e:02d}": effect[e] + rng.normal(scale=0.5, size=2) for e in range(30)}
        b = {f"{e:02d}": effect[e] + 0.3 + rng.normal(scale=0.5, size=2) for e in range(30)}
        null = {f"{e:02d}": effect[e] + rng.normal(scale=0.5, size=2) for e in range(30)}
        result = paired_comparison(a, b, direction="higher", n_resamples=800, n_permutations=2000, seed=r)
        covered += result.low <= 0.3 <= result.high
        two_stage = paired_comparison(a, b, direction="higher", n_resamples=800, n_permutations=10, seed=r, resample_trials=True)
        covered_two_stage += two_stage.low <= 0.3 <= two_stage.high
        rejected_null += paired_comparison(a, null, direction="higher", n_resamples=10, n_permutations=2000, seed=r).p_value < 0.05
    assert 0.90 <= covered / repeats <= 0.975
    # redrawing trials counts their spread twice: wider intervals, over-coverage
    assert covered_two_stage > covered and covered_two_stage / repeats >= 0.97
    assert rejected_null / repeats <= 0.085  # nominal 5%


# ---------------------------------------------------------------- metric agreement


def test_kendall_agreement_is_direction_aware():
    quality = [1.0, 2.0, 3.0, 4.0, 5.0]
    columns = {"psnr": quality, "lpips": [-q for q in quality], "noise": [3.0, 1.0, 4.0, 1.5, 5.0], "flat": [1.0] * 5}
    matrix = kendall_agreement(columns, {"psnr": "higher", "lpips": "lower", "noise": "higher", "flat": "higher"})
    assert matrix["psnr"]["lpips"] == pytest.approx(1.0)  # lower lpips where psnr is higher: agreement
    assert matrix["psnr"]["psnr"] == pytest.approx(1.0)
    # concordant pairs among the 10: 7, discordant 3 -> tau = 0.4
    assert matrix["psnr"]["noise"] == pytest.approx(0.4)
    assert matrix["noise"]["psnr"] == matrix["psnr"]["noise"]
    assert math.isnan(matrix["psnr"]["flat"])
