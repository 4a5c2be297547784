"""Work items: every unit of a scoring run, as plain picklable data.

A work item is one (metric, video or videos) unit whose result is one stored record: a trial
(trial-level metrics), the trials of an episode (episode-level metrics) or every scored trial
(dataset-level metrics: FID, FVD); a sharded dataset metric (FID, FVD) also has one item per
shard of whole episodes, which computes its videos' features for the dataset item to pool.
Executors run items in chunks; trial items of one metric are
chunked together so a metric with a batched path (the motion metrics) scores a chunk at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ewmbench.data.layout import Episode, Trial
from ewmbench.metrics.base import Metric, dataset_shards
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
    level: str  # trial, episode, shard or dataset
    pairs: tuple[tuple[Episode, Trial], ...]
    one_pass: bool = False  # a trial item scored in the one pass of frame metrics (see same_pass)

    @property
    def metric_name(self) -> str:
        return self.metric.name

    @property
    def episode(self) -> Episode:
        return self.pairs[0][0]


def pairs_for(metric: Metric, pairs: list[tuple[Episode, Trial]]) -> list[tuple[Episode, Trial]]:
    """The pairs ``metric`` scores: a metric on frames skips trials that hold only a track
    (``traj/traj.npy``, no video); a metric on tracks scores every pair."""
    if not metric.uses_frames:
        return list(pairs)
    return [(e, t) for e, t in pairs if t.video_path().exists()]


def build_plan(
    metrics: list[Metric],
    pairs: list[tuple[Episode, Trial]],
    settings: Callable[[str], dict] = lambda name: {},
) -> list[WorkItem]:
    """Work items of ``metrics`` (checked available) over the scored (episode, trial) pairs:
    metric by metric, trials (or episodes) in the pairs' order; except that the trial metrics
    that read frames one trial at a time (PSNR, SSIM, ...) go trial by trial, all of them for a
    trial before the next, so each video is decoded once for all of them (the last few decoded
    videos stay in memory, and a GT video serves its trials one after another). ``settings``
    gives a metric's protocol settings by name (they say whether it batches, see :func:`same_pass`)."""
    items: list[WorkItem] = []
    one_pass = [m for m in metrics if same_pass(m, settings(m.name))]
    for metric in metrics:
        if metric in one_pass:
            if metric is one_pass[0]:
                per_metric = {m.name: set(pairs_for(m, pairs)) for m in one_pass}
                items.extend(
                    WorkItem(m, "trial", (pair,), one_pass=True)
                    for pair in pairs
                    for m in one_pass
                    if pair in per_metric[m.name]
                )
            continue
        metric_pairs = pairs_for(metric, pairs)
        if metric.level == "dataset":
            if metric.shard_trials and metric_pairs:  # shards apart, then the item that pools them
                shards = dataset_shards(metric_pairs, lambda pair: pair[0].key, metric.shard_trials)
                if len(shards) > 1:
                    items.extend(WorkItem(metric, "shard", tuple(shard)) for shard in shards)
            if metric_pairs:
                items.append(WorkItem(metric, "dataset", tuple(metric_pairs)))
        elif metric.level == "trial":
            items.extend(WorkItem(metric, "trial", (pair,)) for pair in metric_pairs)
        else:
            episodes: dict[tuple[str, str], list[tuple[Episode, Trial]]] = {}
            for episode, trial in metric_pairs:
                episodes.setdefault(episode.key, []).append((episode, trial))
            items.extend(WorkItem(metric, "episode", tuple(group)) for group in episodes.values())
    return items


def same_pass(metric: Metric, settings: dict) -> bool:
    """A trial metric on frames that does not batch trials under ``settings``: scored in one pass
    with the others, so each video is decoded once for all of them."""
    return metric.level == "trial" and metric.uses_frames and not metric.batches(settings)


# Trials per chunk: a metric with a batched path (the motion metrics) scores a chunk at once, so
# its chunks are large; a metric that scores trial by trial (frames, networks) keeps them small,
# since a chunk is also what a killed run loses and what one worker takes at a time.
BATCHED_CHUNK = 1024
MIN_BATCHED_CHUNK = 256
UNBATCHED_CHUNK = 16


def chunk_size(metric: Metric, trials: int = 0, workers: int = 1) -> int:
    """Trials per chunk of ``metric``'s items, for ``trials`` trials over ``workers`` workers
    (enough chunks to keep every worker busy, 4 each, within the bounds above)."""
    spread = math.ceil(trials / (4 * workers)) if trials else BATCHED_CHUNK
    if metric.has_batched_path():
        if metric.chunk_trials:  # a network's passes: chunks as small as a worker's share allows
            return max(1, min(metric.chunk_trials, spread))
        return max(MIN_BATCHED_CHUNK, min(BATCHED_CHUNK, spread))
    return max(1, min(UNBATCHED_CHUNK, spread))


def chunked(items: list[WorkItem], size: int | Callable[[Metric], int]) -> list[list[WorkItem]]:
    """Consecutive trial items of one metric (or of the metrics scored in one pass, see
    :func:`same_pass`), at most ``size`` per chunk (a number, or a number per metric); an
    episode and a dataset item are chunks of their own size (one record each)."""
    chunks: list[list[WorkItem]] = []
    for item in items:
        last = chunks[-1] if chunks else None
        if (
            last
            and item.level == "trial"
            and last[0].level == "trial"
            and (last[0].metric is item.metric or (last[0].one_pass and item.one_pass))
            and len(last) < (size if isinstance(size, int) else size(item.metric))
        ):
            last.append(item)
        else:
            chunks.append([item])
    return chunks
