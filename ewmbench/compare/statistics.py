"""Statistics for comparing runs: bootstrap confidence intervals, paired tests, Holm correction.

The unit of resampling is the **episode**: the trials of one episode share a ground truth and a
prompt, so they are not independent draws. Functions take a run's rows (dicts or a pandas table
with ``task_id``, ``episode_id``, ``trial_id`` and metric columns: the rows the protocol counts)
and resample, within each task, as many episodes as the task has, with replacement; each drawn
episode brings its trials along (trials nested in episodes: the cluster bootstrap). Tasks are
fixed by the benchmark's design and never resampled.

The statistic is the protocol's overall rule on the resampled rows: ``mean_of_rows`` (every
counted row weighs the same, ``ewmbench-v1``) or ``mean_of_task_means`` (``ewmbench-v2``), so a
run's estimate is exactly its summary value.

The spread of an episode's trials is already inside the spread of the episodes, so the cluster
bootstrap covers at the nominal rate. ``resample_trials=True`` also redraws the trials inside each
drawn episode (the two-stage bootstrap); that counts the within-episode spread twice, and its
intervals are conservative (about 98% real coverage for a nominal 95% with 2 trials per episode,
see the tests).

Missing values (None, NaN) are left out; infinite values are kept, as the summary keeps them, so an
interval may be infinite. Everything is seeded (``numpy.random.default_rng(seed)``): the same rows
and seed give the same numbers on every machine. Only numpy and scipy are used, so this module
installs without torch.

A metric's direction (``"higher"`` or ``"lower"`` is better) only changes how a difference is read
(:meth:`PairedComparison.verdict`), never the numbers: a difference is always ``B - A``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

Direction = Literal["higher", "lower"]
OVERALL_RULES = ("mean_of_rows", "mean_of_task_means")

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
# Sign-flip tests enumerate every flip up to this many episodes (2**16 = 65,536 flips), then sample.
EXACT_MAX_EPISODES = 16
DEFAULT_PERMUTATIONS = 20000


@dataclass(frozen=True)
class Interval:
    """A run's value of one column with its percentile bootstrap confidence interval."""

    estimate: float  # the statistic on the rows as they are
    low: float
    high: float
    level: float
    resamples: int
    seed: int
    episodes: int  # episodes that had a value
    trials: int = 0  # rows that had a value

    def as_list(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True)
class PairedComparison:
    """``B - A`` on the episodes both runs scored, with a paired bootstrap CI and a paired test.

    ``p_value`` is the test's raw two-sided p-value; ``p_adjusted`` is set by :func:`holm_adjust`
    across a family of comparisons (equal to ``p_value`` until then).
    """

    difference: float
    low: float
    high: float
    level: float
    p_value: float
    p_adjusted: float
    test: str
    episodes: int
    direction: Direction

    @property
    def improvement(self) -> float:
        """The difference signed so that positive means B is better than A."""
        return self.difference if self.direction == "higher" else -self.difference

    def verdict(self, alpha: float = 0.05) -> str:
        """``better``, ``worse`` (B relative to A) or ``n.s.``, from the adjusted p-value."""
        if not (self.p_adjusted < alpha) or self.difference == 0 or math.isnan(self.difference):
            return "n.s."
        return "better" if self.improvement > 0 else "worse"


# ------------------------------------------------------------------ grouping the rows


@dataclass(frozen=True)
class _Clusters:
    """Trial values padded to a matrix: row e holds episode e's ``counts[e]`` trials, NaN after."""

    keys: tuple[tuple[str, str], ...]  # (task, episode)
    values: np.ndarray  # (episodes, max trials)
    counts: np.ndarray  # (episodes,)
    strata: np.ndarray  # (episodes,) task index

    @property
    def sums(self) -> np.ndarray:
        return np.where(np.arange(self.values.shape[1]) < self.counts[:, None], self.values, 0.0).sum(axis=1)

    @property
    def episode_means(self) -> np.ndarray:
        return self.sums / self.counts


def _episode_values(rows: Any, column: str) -> dict[tuple[str, str], list[float]]:
    """(task, episode) -> the column's non-missing trial values, from dicts or a pandas table."""
    if hasattr(rows, "columns"):  # a pandas DataFrame
        if column not in rows.columns:
            return {}
        triples = zip(rows["task_id"].astype(str), rows["episode_id"].astype(str), rows[column])
    else:
        triples = ((str(r["task_id"]), str(r["episode_id"]), r.get(column)) for r in rows)
    grouped: dict[tuple[str, str], list[float]] = {}
    for task, episode, value in triples:
        if value is None:
            continue
        value = float(value)
        if math.isnan(value):
            continue
        grouped.setdefault((task, episode), []).append(value)
    return grouped


def _clusters(
    grouped: Mapping[tuple[str, str], Sequence[float]], keys: Sequence[tuple[str, str]] | None = None
) -> _Clusters:
    chosen = sorted(grouped) if keys is None else list(keys)
    width = max((len(grouped[k]) for k in chosen), default=0)
    values = np.full((len(chosen), max(width, 1)), np.nan)
    for row, key in enumerate(chosen):
        values[row, : len(grouped[key])] = grouped[key]
    tasks = sorted({task for task, _ in chosen})
    index = {task: i for i, task in enumerate(tasks)}
    return _Clusters(
        keys=tuple(chosen),
        values=values,
        counts=np.array([len(grouped[k]) for k in chosen], dtype=int),
        strata=np.array([index[task] for task, _ in chosen], dtype=int),
    )


def _statistic(sums: np.ndarray, counts: np.ndarray, strata: np.ndarray, overall: str) -> np.ndarray:
    """The overall rule over the last axis: episodes' value sums and row counts."""
    with np.errstate(invalid="ignore"):  # inf - inf inside a mean is a legitimate NaN here
        if overall == "mean_of_rows":
            return sums.sum(axis=-1) / counts.sum(axis=-1)
        task_means = [
            sums[..., strata == s].sum(axis=-1) / counts[..., strata == s].sum(axis=-1)
            for s in np.unique(strata)
        ]
        return np.mean(task_means, axis=0)


def _episode_weights(counts: np.ndarray, strata: np.ndarray, overall: str) -> np.ndarray:
    """How much each episode's mean weighs in the statistic (rows weigh alike within the rule)."""
    counts = counts.astype(float)
    if overall == "mean_of_rows":
        return counts / counts.sum()
    weights = np.empty_like(counts)
    labels = np.unique(strata)
    for s in labels:
        members = strata == s
        weights[members] = counts[members] / counts[members].sum() / labels.size
    return weights


# ------------------------------------------------------------------ resampling


def _resample_episodes(strata: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, episodes) indices: each position draws, with replacement, from its own task."""
    picks = np.empty((resamples, strata.size), dtype=int)
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        picks[:, members] = members[rng.integers(0, members.size, size=(resamples, members.size))]
    return picks


def _resampled_statistic(
    clusters: _Clusters, picks: np.ndarray, uniforms: np.ndarray | None, overall: str
) -> np.ndarray:
    """The statistic on each resample: episodes ``picks``; their trials kept, or drawn from ``uniforms``.

    With ``uniforms`` (in [0, 1)) a drawn episode with k trials takes trial ``floor(u * k)`` for each
    of its first k uniforms, so two runs given the same uniforms draw the same trial ids wherever
    their trial counts match.
    """
    counts = clusters.counts[picks]  # (B, E)
    if uniforms is None:
        sums = clusters.sums[picks]
    else:
        trial_index = np.minimum(
            (uniforms * counts[..., None]).astype(int), counts[..., None] - 1
        )  # (B, E, K)
        valid = np.arange(uniforms.shape[-1]) < counts[..., None]
        drawn = clusters.values[picks[..., None], trial_index]
        sums = np.where(valid, drawn, 0.0).sum(axis=-1)
    return _statistic(sums, counts, clusters.strata, overall)


def _percentile_interval(estimates: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        low, high = np.quantile(estimates, [tail, 1.0 - tail], method="linear")
        if np.isnan(low) or np.isnan(high):
            # Interpolating between two infinite neighbours gives inf - inf = NaN; the bound is
            # then the neighbour itself (no interpolation), so an infinite interval stays infinite.
            plain = np.quantile(estimates, [tail, 1.0 - tail], method="inverted_cdf")
            low, high = (plain[0] if np.isnan(low) else low), (plain[1] if np.isnan(high) else high)
    return float(low), float(high)


def _check(overall: str, level: float, resamples: int) -> None:
    if overall not in OVERALL_RULES:
        raise ValueError(f"unknown overall rule {overall!r}; expected one of {', '.join(OVERALL_RULES)}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")


# ------------------------------------------------------------------ public functions


def estimate(rows: Any, column: str, overall: str = "mean_of_rows") -> float:
    """The overall rule on the rows' non-missing values of ``column``; NaN when there are none."""
    _check(overall, DEFAULT_LEVEL, 1)
    clusters = _clusters(_episode_values(rows, column))
    if not clusters.keys:
        return math.nan
    return float(_statistic(clusters.sums, clusters.counts, clusters.strata, overall))


def bootstrap_ci(
    rows: Any,
    column: str,
    overall: str = "mean_of_rows",
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    resample_trials: bool = False,
) -> Interval | None:
    """Percentile bootstrap CI of a column's overall value; None when no row has a value.

    ``rows`` are the rows the protocol counts (dicts or a pandas table). Episodes are resampled
    within their task; ``resample_trials`` also redraws trials inside each (conservative).
    """
    _check(overall, level, resamples)
    clusters = _clusters(_episode_values(rows, column))
    if not clusters.keys:
        return None
    rng = np.random.default_rng(seed)
    picks = _resample_episodes(clusters.strata, resamples, rng)
    uniforms = (
        rng.random((resamples, len(clusters.keys), clusters.values.shape[1])) if resample_trials else None
    )
    low, high = _percentile_interval(_resampled_statistic(clusters, picks, uniforms, overall), level)
    point = float(_statistic(clusters.sums, clusters.counts, clusters.strata, overall))
    return Interval(point, low, high, level, resamples, seed, len(clusters.keys), int(clusters.counts.sum()))


def common_episodes(rows_a: Any, rows_b: Any, column: str) -> list[tuple[str, str]]:
    """(task, episode) pairs with at least one value of ``column`` in both runs, sorted."""
    return sorted(set(_episode_values(rows_a, column)) & set(_episode_values(rows_b, column)))


def paired_comparison(
    rows_a: Any,
    rows_b: Any,
    column: str,
    *,
    direction: Direction,
    overall: str = "mean_of_rows",
    test: Literal["permutation", "wilcoxon"] = "permutation",
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    resample_trials: bool = False,
) -> PairedComparison | None:
    """``B - A`` on the episodes both runs scored: paired bootstrap CI and a paired test.

    The difference is the overall rule on B's rows minus the rule on A's, both restricted to the
    common episodes; None when there are none. The bootstrap draws the same episodes for both runs
    (the pairing). With ``resample_trials`` the trials inside each are drawn with the same random
    numbers in both runs: trials of the same id in two runs of ``ewmbench run`` share a seed, and
    identical runs still differ by exactly 0 on every resample. The test works on the per-episode
    differences of trial means, weighted as the rule weighs episodes (see :func:`sign_flip_test`,
    :func:`wilcoxon_test`).
    """
    _check(overall, level, resamples)
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    values_a, values_b = _episode_values(rows_a, column), _episode_values(rows_b, column)
    keys = sorted(set(values_a) & set(values_b))
    if not keys:
        return None
    ca, cb = _clusters(values_a, keys), _clusters(values_b, keys)
    rng = np.random.default_rng(seed)
    picks = _resample_episodes(ca.strata, resamples, rng)
    ua = ub = None
    if resample_trials:
        uniforms = rng.random((resamples, len(keys), max(ca.values.shape[1], cb.values.shape[1])))
        ua, ub = uniforms[..., : ca.values.shape[1]], uniforms[..., : cb.values.shape[1]]
    with np.errstate(invalid="ignore"):
        resampled = _resampled_statistic(cb, picks, ub, overall) - _resampled_statistic(
            ca, picks, ua, overall
        )
        point = float(
            _statistic(cb.sums, cb.counts, cb.strata, overall)
            - _statistic(ca.sums, ca.counts, ca.strata, overall)
        )
        differences = cb.episode_means - ca.episode_means
    low, high = _percentile_interval(resampled, level)
    weights = _episode_weights((ca.counts + cb.counts) / 2.0, ca.strata, overall)
    if test == "permutation":
        p = sign_flip_test(differences, weights=weights, permutations=permutations, seed=seed)
    elif test == "wilcoxon":
        p = wilcoxon_test(differences)
    else:
        raise ValueError(f"unknown test {test!r}: use 'permutation' or 'wilcoxon'")
    return PairedComparison(point, low, high, level, p, p, test, len(keys), direction)


def sign_flip_test(
    differences: Sequence[float],
    *,
    weights: Sequence[float] | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> float:
    """Two-sided p-value of "the per-episode differences are symmetric about 0" (paired permutation).

    The statistic is ``|sum(w * d)|``; under the null each difference's sign is a fair coin. With at
    most :data:`EXACT_MAX_EPISODES` differences every sign pattern is enumerated (exact p-value);
    otherwise ``permutations`` seeded patterns are drawn and p = (1 + hits) / (1 + draws), which
    counts the observed pattern so p is never 0. All-zero differences give p = 1.
    """
    d = np.asarray(differences, dtype=float)
    w = np.full(d.size, 1.0 / max(d.size, 1)) if weights is None else np.asarray(weights, dtype=float)
    if d.size == 0 or not np.all(np.isfinite(d)):
        return math.nan
    contributions = w * d
    observed = abs(contributions.sum())
    # Flips that only reorder the same terms can differ in the last bits; count them as ties.
    tolerance = 1e-12 * np.abs(contributions).sum()
    if d.size <= EXACT_MAX_EPISODES:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        flipped = np.abs(signs @ contributions)
        return float(np.mean(flipped >= observed - tolerance))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, permutations, 4096):
        size = min(4096, permutations - start)
        signs = rng.choice((1.0, -1.0), size=(size, d.size))
        hits += int(np.sum(np.abs(signs @ contributions) >= observed - tolerance))
    return (1 + hits) / (1 + permutations)


def wilcoxon_test(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the per-episode differences (scipy; zeros dropped).

    All-zero differences give p = 1 (scipy would warn and return NaN).
    """
    from scipy.stats import wilcoxon

    d = np.asarray(differences, dtype=float)
    if d.size == 0 or not np.all(np.isfinite(d)):
        return math.nan
    if not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order; NaN stays NaN and is not counted.

    Sorted ascending, the i-th (from 0) of m p-values is multiplied by (m - i); each adjusted value is
    the running maximum of those products, capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = present.size
    running = 0.0
    for rank, index in enumerate(present[np.argsort(p[present], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return [float(x) for x in adjusted]


def holm_adjust(comparisons: Sequence[PairedComparison]) -> list[PairedComparison]:
    """The comparisons of one family with ``p_adjusted`` set by :func:`holm`."""
    adjusted = holm([c.p_value for c in comparisons])
    return [replace(c, p_adjusted=p) for c, p in zip(comparisons, adjusted)]


def kendall_agreement(
    columns: Mapping[str, Sequence[float]], directions: Mapping[str, Direction]
) -> dict[str, dict[str, float]]:
    """Kendall's tau-b between every pair of metric columns over the items scored by both.

    Lower-is-better columns are negated first, so a positive tau always means the two metrics agree
    on which items are better. NaN where fewer than 3 items are shared or a column is constant there.
    """
    from scipy.stats import kendalltau

    names = list(columns)
    signed = {
        n: np.asarray(columns[n], dtype=float) * (-1.0 if directions.get(n) == "lower" else 1.0)
        for n in names
    }
    matrix: dict[str, dict[str, float]] = {n: {} for n in names}
    for i, first in enumerate(names):
        for second in names[i:]:
            x, y = signed[first], signed[second]
            both = np.isfinite(x) & np.isfinite(y)
            tau = math.nan
            if both.sum() >= 3 and np.ptp(x[both]) > 0 and np.ptp(y[both]) > 0:
                tau = float(kendalltau(x[both], y[both]).statistic)
            matrix[first][second] = matrix[second][first] = tau
    return matrix
