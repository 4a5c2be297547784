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

Differences between two runs use one paired scheme, the sign-flip test and the confidence interval
inverted from it (:func:`sign_flip`): the interval is every shift ``delta`` that the same test, run
on ``d - delta``, does not reject at ``1 - level``. So an interval excludes 0 exactly when the test's
p-value is below ``1 - level``: the two cannot contradict each other. Episodes whose difference is
exactly 0 (ties, e.g. both runs at a metric's cap) stay in the test: flipping their sign changes
nothing, which makes the test conservative instead of discarding them.

A metric's direction (``"higher"`` or ``"lower"`` is better) only changes how a difference is read
(:meth:`PairedComparison.verdict`), never the numbers: a difference is always ``B - A``.
"""

from __future__ import annotations

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
    """``B - A`` on the episodes both runs scored, with the paired sign-flip test and its interval.

    ``low``/``high`` and ``p_value`` come from the same test (:func:`sign_flip`): the interval
    excludes 0 exactly when ``p_value < 1 - level``. ``p_adjusted`` is set by :func:`holm_adjust`
    across a family of comparisons (equal to ``p_value`` until then). ``ties``: episodes whose
    difference is exactly 0.
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
    ties: int = 0

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
    level: float = DEFAULT_LEVEL,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> PairedComparison | None:
    """``B - A`` on the episodes both runs scored: the paired sign-flip test and its interval.

    The difference is the overall rule on B's rows minus the rule on A's, both restricted to the
    common episodes; None when there are none. The test and the interval work on the per-episode
    differences of trial means, weighted as the rule weighs episodes (:func:`sign_flip`).
    """
    _check(overall, level, 1)
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    values_a, values_b = _episode_values(rows_a, column), _episode_values(rows_b, column)
    keys = sorted(set(values_a) & set(values_b))
    if not keys:
        return None
    ca, cb = _clusters(values_a, keys), _clusters(values_b, keys)
    with np.errstate(invalid="ignore"):
        point = float(
            _statistic(cb.sums, cb.counts, cb.strata, overall)
            - _statistic(ca.sums, ca.counts, ca.strata, overall)
        )
        differences = cb.episode_means - ca.episode_means
    weights = _episode_weights((ca.counts + cb.counts) / 2.0, ca.strata, overall)
    result = sign_flip(differences, weights=weights, level=level, permutations=permutations, seed=seed)
    return PairedComparison(
        point,
        result.low,
        result.high,
        level,
        result.p_value,
        result.p_value,
        "sign-flip",
        len(keys),
        direction,
        result.ties,
    )


@dataclass(frozen=True)
class SignFlip:
    """The sign-flip test of paired differences and the interval inverted from it."""

    p_value: float
    low: float
    high: float
    level: float
    ties: int  # differences exactly 0
    patterns: int  # sign patterns counted (2**n when enumerated, 1 + permutations when sampled)


def _flip_sets(count: int, permutations: int, seed: int) -> np.ndarray:
    """Boolean (patterns, count): which differences each sign pattern flips. Every pattern when
    ``count <= EXACT_MAX_EPISODES``; otherwise the observed one (no flip) and ``permutations``
    seeded random patterns."""
    if count <= EXACT_MAX_EPISODES:
        codes = np.arange(2**count)[:, None]
        return ((codes >> np.arange(count)) & 1).astype(bool)
    rng = np.random.default_rng(seed)
    drawn = rng.random((permutations, count)) < 0.5
    return np.concatenate([np.zeros((1, count), dtype=bool), drawn])


def sign_flip(
    differences: Sequence[float],
    *,
    weights: Sequence[float] | None = None,
    level: float = DEFAULT_LEVEL,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> SignFlip:
    """Paired sign-flip test of "the differences are symmetric about 0", and its inverted interval.

    The statistic is ``T(delta) = sum(w * (d - delta))``; under the null each difference's sign is a
    fair coin. A sign pattern that flips the set F moves the statistic by ``-2 sum_F w (d - delta)``,
    so it reaches at least the observed value exactly when ``delta >= m_F``, the weighted mean of
    the differences in F (Hartigan, 1969). With ``N`` patterns (every one of the ``2**n`` up to
    :data:`EXACT_MAX_EPISODES` differences; otherwise the observed one and ``permutations`` seeded
    draws) and the subset means ``m_F`` (F empty: the observed pattern, which always counts):

    * ``count_low(delta) = #{F: m_F <= delta}``, ``count_high(delta) = #{F: m_F >= delta}``;
    * two-sided ``p = min(1, 2 min(count_low(0), count_high(0)) / N)``;
    * the interval: every ``delta`` with ``2 count_low(delta) / N >= 1 - level`` and
      ``2 count_high(delta) / N >= 1 - level``, which is ``[m_(r), m_(N - r)]`` for the r-th
      smallest subset mean, or unbounded when even the most extreme pattern is not rare enough
      (fewer than 6 episodes at the 95% level: 2 / 2**5 > 0.05).

    Hence the interval excludes 0 exactly when ``p < 1 - level``. A difference of exactly 0 (a
    tie) is a subset mean of 0 that counts on both sides: conservative. All-zero differences give
    p = 1 and the interval [0, 0]; a non-finite difference gives NaN everywhere.
    """
    d = np.asarray(differences, dtype=float)
    w = np.full(d.size, 1.0) if weights is None else np.asarray(weights, dtype=float)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if d.size == 0 or not np.all(np.isfinite(d)):
        return SignFlip(math.nan, math.nan, math.nan, level, 0, 0)
    if w.shape != d.shape or not np.all(w > 0):
        raise ValueError("weights must be positive, one per difference")
    ties = int(np.count_nonzero(d == 0))
    means = []
    patterns = 0
    sets = _flip_sets(d.size, permutations, seed)
    for start in range(0, len(sets), 8192):
        chunk = sets[start : start + 8192].astype(float)
        total = chunk @ w
        flipped = chunk @ (w * d)
        nonempty = total > 0
        means.append(flipped[nonempty] / total[nonempty])
        patterns += len(chunk)
    subset_means = np.sort(np.concatenate(means))
    # The empty set (no flip) reaches the observed value for every delta: 1 + the subset means.
    count_low = 1 + int(np.searchsorted(subset_means, 0.0, side="right"))
    count_high = 1 + subset_means.size - int(np.searchsorted(subset_means, 0.0, side="left"))
    p_value = min(1.0, 2.0 * min(count_low, count_high) / patterns)
    alpha = 1.0 - level
    # The smallest count that is not rejected, by the very comparison the p-value is judged with.
    needed = max(1, math.ceil(alpha * patterns / 2.0) - 1)
    while 2.0 * needed / patterns < alpha:
        needed += 1
    while needed > 1 and 2.0 * (needed - 1) / patterns >= alpha:
        needed -= 1
    rank = needed - 1  # subset means that must lie at or beyond delta, besides the empty set
    if rank <= 0:
        low, high = -math.inf, math.inf
    else:
        low, high = float(subset_means[rank - 1]), float(subset_means[subset_means.size - rank])
    return SignFlip(p_value, low, high, level, ties, patterns)


def order_flip_rate(
    rows_a: Any,
    rows_b: Any,
    column: str,
    *,
    overall: str = "mean_of_rows",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> float | None:
    """How often the bootstrap flips the order of two runs on ``column``: the share of resamples
    (episodes redrawn within tasks, the same draw for both runs, on the episodes both scored) in
    which ``sign(B - A)`` differs from its sign on the full data. A resample where the two tie
    counts as a flip; if the runs tie on the full data every resample that separates them is one.
    None when the runs share no episode.
    """
    _check(overall, DEFAULT_LEVEL, resamples)
    values_a, values_b = _episode_values(rows_a, column), _episode_values(rows_b, column)
    keys = sorted(set(values_a) & set(values_b))
    if not keys:
        return None
    ca, cb = _clusters(values_a, keys), _clusters(values_b, keys)
    picks = _resample_episodes(ca.strata, resamples, np.random.default_rng(seed))
    with np.errstate(invalid="ignore"):
        full = np.sign(
            _statistic(cb.sums, cb.counts, cb.strata, overall)
            - _statistic(ca.sums, ca.counts, ca.strata, overall)
        )
        resampled = np.sign(
            _resampled_statistic(cb, picks, None, overall) - _resampled_statistic(ca, picks, None, overall)
        )
    flipped = (resampled != full) | (resampled == 0)
    return float(np.mean(flipped))


def sign_flip_test(
    differences: Sequence[float],
    *,
    weights: Sequence[float] | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> float:
    """The two-sided p-value of :func:`sign_flip`."""
    return sign_flip(differences, weights=weights, permutations=permutations, seed=seed).p_value


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
