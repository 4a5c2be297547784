"""Statistics for comparing runs: bootstrap confidence intervals, paired tests, Holm correction.

The unit of resampling is the **episode**: the trials of one episode share a ground truth and a
prompt, so they are not independent draws. Every function here takes a run's values grouped by
episode (``{episode key: [trial values]}``) and resamples episodes with replacement, each drawn
episode bringing its trials along (trials nested in episodes: the cluster bootstrap). The spread of
an episode's trials is already inside the spread of the episode means, so this covers at the
nominal rate. ``resample_trials=True`` also redraws the trials inside each drawn episode (the
two-stage bootstrap); that counts the within-episode spread twice, and its intervals are
conservative (about 98% real coverage for a nominal 95% with 2 trials per episode, see the tests).

The estimate is the mean over episodes of each episode's trial mean. With ``strata`` (one label per
episode, e.g. its task) episodes are resampled within their stratum and the estimate is the mean of
the stratum means, which is the "mean of task means" overall of ``ewmbench-v2``.

Everything is seeded (``numpy.random.default_rng(seed)``): the same values and seed give the same
numbers on every machine. Only numpy and scipy are used, so this module installs without torch.

A metric's direction (``"higher"`` or ``"lower"`` is better) only changes how a difference is read
(:attr:`PairedComparison.verdict`), never the numbers: a difference is always ``B - A``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

Direction = Literal["higher", "lower"]
EpisodeValues = Mapping[str, Sequence[float]]

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
# Sign-flip tests enumerate every flip up to this many episodes (2**16 = 65,536 flips), then sample.
EXACT_MAX_EPISODES = 16
DEFAULT_PERMUTATIONS = 20000


@dataclass(frozen=True)
class Interval:
    """A run's value of one metric with its percentile bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_episodes: int
    n_trials: int


@dataclass(frozen=True)
class PairedComparison:
    """``B - A`` on the episodes both runs scored, with a paired bootstrap CI and a paired test.

    ``p_value`` is the test's raw two-sided p-value; ``p_adjusted`` is filled in by :func:`holm`
    across a family of comparisons (equal to ``p_value`` until then).
    """

    difference: float
    low: float
    high: float
    confidence: float
    p_value: float
    p_adjusted: float
    test: str
    n_episodes: int
    direction: Direction

    @property
    def improvement(self) -> float:
        """The difference signed so that positive means B is better than A."""
        return self.difference if self.direction == "higher" else -self.difference

    def verdict(self, alpha: float = 0.05) -> str:
        """``better``, ``worse`` (B relative to A) or ``n.s.``, from the adjusted p-value."""
        if not (self.p_adjusted < alpha) or self.difference == 0:
            return "n.s."
        return "better" if self.improvement > 0 else "worse"


# ------------------------------------------------------------------ grouping the values


@dataclass(frozen=True)
class _Clusters:
    """Trial values padded to a matrix: row e holds episode e's ``counts[e]`` trials, NaN after."""

    keys: tuple[str, ...]
    values: np.ndarray  # (episodes, max trials)
    counts: np.ndarray  # (episodes,)
    strata: np.ndarray  # (episodes,) stratum index

    @property
    def episode_means(self) -> np.ndarray:
        return np.nansum(self.values, axis=1) / self.counts


def _clusters(by_episode: EpisodeValues, strata: Mapping[str, str] | None, keys: Sequence[str] | None = None) -> _Clusters:
    """Drop non-finite trial values and episodes left with none; order episodes by key."""
    chosen = sorted(by_episode) if keys is None else list(keys)
    kept: list[tuple[str, np.ndarray]] = []
    for key in chosen:
        trials = np.asarray(by_episode[key], dtype=float).ravel()
        trials = trials[np.isfinite(trials)]
        if trials.size:
            kept.append((key, trials))
    width = max((t.size for _, t in kept), default=0)
    values = np.full((len(kept), max(width, 1)), np.nan)
    for row, (_, trials) in enumerate(kept):
        values[row, : trials.size] = trials
    labels = [strata[key] if strata is not None else "" for key, _ in kept]
    order = {label: i for i, label in enumerate(sorted(set(labels)))}
    return _Clusters(
        keys=tuple(k for k, _ in kept),
        values=values,
        counts=np.array([t.size for _, t in kept], dtype=int),
        strata=np.array([order[label] for label in labels], dtype=int),
    )


def _weights(strata: np.ndarray) -> np.ndarray:
    """Per-episode weights of the estimate: mean within each stratum, then mean of strata."""
    n_strata = int(strata.max()) + 1 if strata.size else 0
    sizes = np.bincount(strata, minlength=n_strata)
    return 1.0 / (n_strata * sizes[strata])


# ------------------------------------------------------------------ resampling


def _resample_episodes(strata: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, episodes) indices: each position draws, with replacement, from its own stratum.

    Position e keeps stratum ``strata[e]``, so every resample has the same stratum sizes and the
    estimate's weights stay valid.
    """
    picks = np.empty((n_resamples, strata.size), dtype=int)
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        picks[:, members] = members[rng.integers(0, members.size, size=(n_resamples, members.size))]
    return picks


def _resampled_estimates(clusters: _Clusters, picks: np.ndarray, uniforms: np.ndarray | None) -> np.ndarray:
    """The estimate on each resample: episodes ``picks``; trials kept, or drawn from ``uniforms``.

    With ``uniforms`` (in [0, 1)) a drawn episode with k trials takes trial ``floor(u * k)`` for each
    of its first k uniforms, so two runs given the same uniforms draw the same trial ids wherever
    their trial counts match.
    """
    weights = _weights(clusters.strata)
    if uniforms is None:
        return clusters.episode_means[picks] @ weights
    counts = clusters.counts[picks]  # (B, E)
    trial_index = np.minimum((uniforms * counts[..., None]).astype(int), counts[..., None] - 1)  # (B, E, K)
    valid = np.arange(uniforms.shape[-1]) < counts[..., None]
    drawn = clusters.values[picks[..., None], trial_index]
    episode_means = np.where(valid, drawn, 0.0).sum(axis=-1) / counts
    return episode_means @ weights


def _percentile_interval(estimates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [tail, 1.0 - tail])
    return float(low), float(high)


def _check(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")


# ------------------------------------------------------------------ public functions


def estimate(by_episode: EpisodeValues, strata: Mapping[str, str] | None = None) -> float:
    """Mean over episodes of the trial means (mean of stratum means with ``strata``); NaN if empty."""
    clusters = _clusters(by_episode, strata)
    if not clusters.keys:
        return math.nan
    return float(clusters.episode_means @ _weights(clusters.strata))


def bootstrap_ci(
    by_episode: EpisodeValues,
    *,
    strata: Mapping[str, str] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    resample_trials: bool = False,
) -> Interval:
    """Percentile bootstrap CI of :func:`estimate`: episodes resampled (within strata), trials nested.

    ``resample_trials`` also redraws trials inside each drawn episode (conservative; module docstring).

    Non-finite trial values are left out; an episode with none is left out. With no episode left the
    interval is all NaN.
    """
    _check(confidence, n_resamples)
    clusters = _clusters(by_episode, strata)
    n_trials = int(clusters.counts.sum())
    if not clusters.keys:
        return Interval(math.nan, math.nan, math.nan, confidence, 0, 0)
    rng = np.random.default_rng(seed)
    picks = _resample_episodes(clusters.strata, n_resamples, rng)
    uniforms = rng.random((n_resamples, len(clusters.keys), clusters.values.shape[1])) if resample_trials else None
    low, high = _percentile_interval(_resampled_estimates(clusters, picks, uniforms), confidence)
    point = float(clusters.episode_means @ _weights(clusters.strata))
    return Interval(point, low, high, confidence, len(clusters.keys), n_trials)


def common_episodes(a: EpisodeValues, b: EpisodeValues) -> list[str]:
    """Episodes with at least one finite value in both runs, sorted."""

    def scored(values: EpisodeValues) -> set[str]:
        return {k for k, v in values.items() if np.isfinite(np.asarray(v, dtype=float)).any()}

    return sorted(scored(a) & scored(b))


def paired_comparison(
    a: EpisodeValues,
    b: EpisodeValues,
    *,
    direction: Direction,
    strata: Mapping[str, str] | None = None,
    test: Literal["permutation", "wilcoxon"] = "permutation",
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    resample_trials: bool = False,
) -> PairedComparison:
    """``B - A`` over the episodes both runs scored: paired bootstrap CI and a paired test.

    The bootstrap draws the same episodes for both runs (the pairing). With ``resample_trials`` the
    trials inside each are drawn with the same random numbers in both runs: trials of the same id in
    two runs of ``ewmbench run`` share a seed, and identical runs still give a difference of exactly
    0 on every resample. The test works on per-episode differences of trial means (see
    :func:`sign_flip_test`, :func:`wilcoxon_test`).
    """
    _check(confidence, n_resamples)
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    keys = common_episodes(a, b)
    if not keys:
        return PairedComparison(math.nan, math.nan, math.nan, confidence, math.nan, math.nan, test, 0, direction)
    ca, cb = _clusters(a, strata, keys), _clusters(b, strata, keys)
    weights = _weights(ca.strata)
    differences = cb.episode_means - ca.episode_means
    rng = np.random.default_rng(seed)
    picks = _resample_episodes(ca.strata, n_resamples, rng)
    ua = ub = None
    if resample_trials:
        uniforms = rng.random((n_resamples, len(keys), max(ca.values.shape[1], cb.values.shape[1])))
        ua, ub = uniforms[..., : ca.values.shape[1]], uniforms[..., : cb.values.shape[1]]
    resampled = _resampled_estimates(cb, picks, ub) - _resampled_estimates(ca, picks, ua)
    low, high = _percentile_interval(resampled, confidence)
    if test == "permutation":
        p = sign_flip_test(differences, weights=weights, n_permutations=n_permutations, seed=seed)
    elif test == "wilcoxon":
        p = wilcoxon_test(differences)
    else:
        raise ValueError(f"unknown test {test!r}: use 'permutation' or 'wilcoxon'")
    return PairedComparison(float(differences @ weights), low, high, confidence, p, p, test, len(keys), direction)


def sign_flip_test(
    differences: Sequence[float],
    *,
    weights: Sequence[float] | None = None,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> float:
    """Two-sided p-value of "the per-episode differences are symmetric about 0" (paired permutation).

    The statistic is ``|sum(w * d)|``; under the null each difference's sign is a fair coin. With at
    most :data:`EXACT_MAX_EPISODES` differences every sign pattern is enumerated (exact p-value);
    otherwise ``n_permutations`` seeded patterns are drawn and p = (1 + hits) / (1 + draws), which
    counts the observed pattern so p is never 0. All-zero differences give p = 1.
    """
    d = np.asarray(differences, dtype=float)
    w = np.full(d.size, 1.0 / max(d.size, 1)) if weights is None else np.asarray(weights, dtype=float)
    if d.size == 0:
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
    for start in range(0, n_permutations, 4096):
        size = min(4096, n_permutations - start)
        signs = rng.choice((1.0, -1.0), size=(size, d.size))
        hits += int(np.sum(np.abs(signs @ contributions) >= observed - tolerance))
    return (1 + hits) / (1 + n_permutations)


def wilcoxon_test(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the per-episode differences (scipy; zeros dropped).

    All-zero differences give p = 1 (scipy would warn and return NaN).
    """
    from scipy.stats import wilcoxon

    d = np.asarray(differences, dtype=float)
    if d.size == 0:
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
    from dataclasses import replace

    adjusted = holm([c.p_value for c in comparisons])
    return [replace(c, p_adjusted=p) for c, p in zip(comparisons, adjusted)]


def kendall_agreement(columns: Mapping[str, Sequence[float]], directions: Mapping[str, Direction]) -> dict[str, dict[str, float]]:
    """Kendall's tau-b between every pair of metric columns over the items scored by both.

    Lower-is-better columns are negated first, so a positive tau always means the two metrics agree
    on which items are better. NaN where fewer than 3 items are shared or a column is constant there.
    """
    from scipy.stats import kendalltau

    names = list(columns)
    signed = {n: np.asarray(columns[n], dtype=float) * (-1.0 if directions.get(n) == "lower" else 1.0) for n in names}
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
