"""Bootstrap over episodes, trials nested: hand-worked cases, determinism, coverage."""

import numpy as np
import pytest

from ewmbench.compare.statistics import bootstrap_ci


def rows(values_by_episode, task="1"):
    return [
        {"task_id": task, "episode_id": str(e), "trial_id": str(t + 1), "x": v}
        for e, values in enumerate(values_by_episode)
        for t, v in enumerate(values)
    ]


def test_constant_values_give_a_zero_width_interval():
    ci = bootstrap_ci(rows([[0.5, 0.5], [0.5], [0.5, 0.5, 0.5]]), "x", resamples=200)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.5, 0.5)
    assert ci.episodes == 3


def test_two_episodes_hand_worked():
    # Episodes 0 and 1 with one trial each: the resampled mean is 0, 0.5 or 1 with probability
    # 1/4, 1/2, 1/4. The 2.5% and 97.5% percentiles are therefore 0 and 1.
    ci = bootstrap_ci(rows([[0.0], [1.0]]), "x", resamples=4000, seed=3)
    assert ci.estimate == 0.5 and (ci.low, ci.high) == (0.0, 1.0)
    # with a 40% level the interval sits inside the middle mass: [0.5, 0.5]
    narrow = bootstrap_ci(rows([[0.0], [1.0]]), "x", resamples=4000, seed=3, level=0.4)
    assert (narrow.low, narrow.high) == (0.5, 0.5)


def test_trials_are_resampled_inside_their_episode():
    # One episode whose trials differ: only trial resampling can move the mean. By default trials
    # travel with their episode (the cluster bootstrap); redrawing them is asked for.
    ci = bootstrap_ci(rows([[0.0, 1.0]]), "x", resamples=4000, seed=1, resample_trials=True)
    assert ci.low == 0.0 and ci.high == 1.0
    kept = bootstrap_ci(rows([[0.0, 1.0]]), "x", resamples=4000, seed=1)
    assert kept.low == kept.high == 0.5
    # Episodes never mix: two episodes of constant trials keep their per-episode values.
    tight = bootstrap_ci(rows([[0.2, 0.2, 0.2], [0.2, 0.2]]), "x", resamples=500)
    assert (tight.low, tight.high) == pytest.approx((0.2, 0.2))


def test_tasks_are_fixed_and_the_overall_rule_is_applied():
    data = rows([[0.0], [0.0], [0.0]], task="a") + rows([[1.0]], task="b")
    rows_rule = bootstrap_ci(data, "x", overall="mean_of_rows", resamples=300)
    task_rule = bootstrap_ci(data, "x", overall="mean_of_task_means", resamples=300)
    assert rows_rule.estimate == pytest.approx(0.25) and task_rule.estimate == pytest.approx(0.5)
    # each task's episodes are constant, so no resample can move either statistic
    assert (rows_rule.low, rows_rule.high) == pytest.approx((0.25, 0.25))
    assert (task_rule.low, task_rule.high) == pytest.approx((0.5, 0.5))


def test_missing_values_are_left_out_and_no_values_give_none():
    data = rows([[1.0, float("nan")], [None]])
    assert bootstrap_ci(data, "x").episodes == 1
    assert bootstrap_ci(rows([[None]]), "x") is None


def test_seeded_and_reproducible():
    rng = np.random.default_rng(0)
    data = rows([list(rng.normal(size=3)) for _ in range(10)])
    assert bootstrap_ci(data, "x", seed=7) == bootstrap_ci(data, "x", seed=7)
    assert bootstrap_ci(data, "x", seed=7) != bootstrap_ci(data, "x", seed=8)


def test_coverage_near_nominal_on_synthetic_data():
    # 120 synthetic benchmarks of 30 episodes x 3 trials with a known mean of 0: the 90% interval
    # should cover 0 about 90% of the time (percentile bootstrap runs a little narrow at n = 30;
    # the band allows for the binomial spread of 120 draws).
    rng = np.random.default_rng(11)
    covered = 0
    for trial in range(120):
        episode_effects = rng.normal(size=30)
        data = rows([list(effect + 0.5 * rng.normal(size=3)) for effect in episode_effects])
        ci = bootstrap_ci(data, "x", resamples=200, level=0.9, seed=trial)
        covered += ci.low <= 0.0 <= ci.high
    assert 0.80 <= covered / 120 <= 0.97


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown overall rule"):
        bootstrap_ci(rows([[1.0]]), "x", overall="median")
    with pytest.raises(ValueError):
        bootstrap_ci(rows([[1.0]]), "x", level=1.5)


def test_infinite_values_give_an_infinite_interval_not_nan():
    # PSNR of identical frames is infinite under ewmbench-v1: the interval must say so.
    ci = bootstrap_ci(rows([[float("inf")], [float("inf")], [float("inf")]]), "x", resamples=200)
    assert (ci.estimate, ci.low, ci.high) == (float("inf"), float("inf"), float("inf"))
