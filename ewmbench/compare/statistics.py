"""Bootstrap confidence intervals over episodes, trials nested (seeded, percentile method).

The benchmark's unit of independent evidence is the episode: trials of one episode share their
ground truth and initial frame, so they are not independent. One bootstrap resample therefore
draws, within each task, as many episodes as the task has, with replacement; and within each drawn
episode, as many trials as it has, with replacement. Tasks are fixed by the benchmark's design and
are never resampled. The statistic is the protocol's overall rule applied to the resampled rows:
``mean_of_rows`` (every counted row weighs the same) or ``mean_of_task_means``.

The interval is the percentile interval of the resampled statistics (the inverted empirical
distribution function, without interpolation). The same inputs and seed give
the same interval on every machine (numpy's PCG64 generator).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

OVERALL_RULES = ("mean_of_rows", "mean_of_task_means")


@dataclass(frozen=True)
class Interval:
    estimate: float  # the statistic on the rows as they are
    low: float
    high: float
    level: float
    resamples: int
    seed: int
    episodes: int  # episodes that had a value

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def _grouped(rows: Sequence[Mapping], column: str) -> dict[str, list[np.ndarray]]:
    """task -> [per-episode array of trial values], rows without a finite value dropped."""
    episodes: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        value = row.get(column)
        if value is None:
            continue
        value = float(value)
        if math.isnan(value):
            continue
        episodes.setdefault((str(row["task_id"]), str(row["episode_id"])), []).append(value)
    tasks: dict[str, list[np.ndarray]] = {}
    for (task, _), values in sorted(episodes.items()):
        tasks.setdefault(task, []).append(np.asarray(values, dtype=float))
    return tasks


def _statistic(tasks: dict[str, list[np.ndarray]], rule: str) -> float:
    if rule == "mean_of_rows":
        values = np.concatenate([v for episodes in tasks.values() for v in episodes])
        return float(values.mean())
    return float(np.mean([np.concatenate(episodes).mean() for episodes in tasks.values()]))


def bootstrap_ci(
    rows: Sequence[Mapping],
    column: str,
    overall: str = "mean_of_rows",
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """Percentile bootstrap CI of a column's overall value; None when no row has a value.

    ``rows`` are the rows the protocol counts (dicts with ``task_id``, ``episode_id`` and the
    column); infinite values are kept, so an interval may be infinite.
    """
    if overall not in OVERALL_RULES:
        raise ValueError(f"unknown overall rule {overall!r}; expected one of {', '.join(OVERALL_RULES)}")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError("level must be in (0, 1) and resamples >= 1")
    tasks = _grouped(rows, column)
    if not tasks:
        return None
    rng = np.random.default_rng(seed)
    estimates = np.empty(resamples)
    with np.errstate(invalid="ignore"):  # inf - inf inside a mean is a legitimate nan here
        for b in range(resamples):
            resampled = {}
            for task, episodes in tasks.items():
                picks = rng.integers(0, len(episodes), size=len(episodes))
                resampled[task] = [episodes[i][rng.integers(0, len(episodes[i]), size=len(episodes[i]))] for i in picks]
            estimates[b] = _statistic(resampled, overall)
    alpha = (1 - level) / 2
    # No interpolation between resampled values: each bound is a statistic some resample produced,
    # which also keeps infinite values (PSNR of identical frames under v1) well defined.
    low, high = np.quantile(estimates, [alpha, 1 - alpha], method="inverted_cdf")
    return Interval(
        estimate=_statistic(tasks, overall), low=float(low), high=float(high), level=level, resamples=resamples, seed=seed,
        episodes=sum(len(e) for e in tasks.values()),
    )
