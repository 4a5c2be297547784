"""The plan: every work item of a scoring run, as plain picklable data.

A work item is one (metric, video or videos) unit whose result is one stored record: a trial
(trial-level metrics), the trials of an episode (episode-level metrics) or every scored trial
(dataset-level metrics: FID, FVD). Executors run items in chunks; trial items of one metric are
chunked together so a metric with a batched path (the motion metrics) scores a chunk at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ewmbench.data.layout import Episode, Trial
from ewmbench.metrics.base import Metric
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.protocols import Protocol


@dataclass(frozen=True)
class Job:
    """What a worker needs to rebuild the scorer: where records go and how to compute them."""

    output: Path
    protocol: Protocol
    cache_dir: Path | None
    device: str
    detector: DetectorChoice


@dataclass(frozen=True, eq=False)
class WorkItem:
    metric: Metric  # the metric object itself: what the run resolved is what every worker runs
    level: str  # trial, episode or dataset
    pairs: tuple[tuple[Episode, Trial], ...]

    @property
    def metric_name(self) -> str:
        return self.metric.name

    @property
    def episode(self) -> Episode:
        return self.pairs[0][0]


def build_plan(metrics: list[Metric], pairs: list[tuple[Episode, Trial]]) -> list[WorkItem]:
    """Work items of ``metrics`` (checked available) over the scored (episode, trial) pairs, in the
    order the rows are built: metric by metric, trials (or episodes) in the pairs' order."""
    items: list[WorkItem] = []
    for metric in metrics:
        if metric.level == "dataset":
            if pairs:
                items.append(WorkItem(metric, "dataset", tuple(pairs)))
        elif metric.level == "trial":
            items.extend(WorkItem(metric, "trial", (pair,)) for pair in pairs)
        else:
            episodes: dict[tuple[str, str], list[tuple[Episode, Trial]]] = {}
            for episode, trial in pairs:
                episodes.setdefault(episode.key, []).append((episode, trial))
            items.extend(WorkItem(metric, "episode", tuple(group)) for group in episodes.values())
    return items


def chunked(items: list[WorkItem], chunk_size: int) -> list[list[WorkItem]]:
    """Consecutive items of one metric and level, at most ``chunk_size`` per chunk; an episode
    and a dataset item are chunks of their own size (one record each)."""
    chunks: list[list[WorkItem]] = []
    for item in items:
        last = chunks[-1] if chunks else None
        if (
            last
            and item.level == "trial"
            and last[0].level == "trial"
            and last[0].metric is item.metric
            and len(last) < chunk_size
        ):
            last.append(item)
        else:
            chunks.append([item])
    return chunks
