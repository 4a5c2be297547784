"""Executors: run a plan's work items, each writing its record. None returns numbers: collect
reads the stored records, so every executor gives the same rows.

- ``serial``: in this process, item after item (the default);
- ``processes``: a pool of spawned processes on this machine (``--workers N``);
- ``ray``: Ray tasks on the cluster at ``RAY_ADDRESS``, or on a local Ray started for the run and
  stopped after it; ``--num-gpus`` GPUs per task. Ray retries a task whose worker died; the
  records already written are kept, so the retry redoes only what was missing.

Workers keep their scorer (decoded frames, loaded models) from chunk to chunk: one model per
worker process, loaded on the first chunk that needs it. When a worker moves on to another stage
(another metric, or out of the one pass of frame metrics), the last stage's networks are freed,
so a GPU holds one stage's models at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, require
from ewmbench.perception.model_cache import free_models
from ewmbench.run.items import Job, WorkItem, chunk_size, chunked
from ewmbench.run.plan import EXECUTORS
from ewmbench.run.scoring import Scorer

# Set in each worker process of the ``processes`` executor: its index, for the device per rank.
_RANK: int | None = None
_CURRENT: list[tuple[Job, Scorer]] = []  # this process's scorer and the job it was built for
_STAGE: list[str] = []  # the stage of the last chunk this process scored


def device_for_rank(device: str, rank: int | None) -> str:
    """``cuda`` on a machine with several GPUs: worker ``rank`` uses ``cuda:<rank mod count>``
    (``LOCAL_RANK`` of a torchrun launch wins). Other devices are used as given."""
    if device != "cuda":
        return device
    local = os.environ.get("LOCAL_RANK")
    rank = int(local) if local is not None else rank
    if rank is None:
        return device
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{rank % count}" if count > 1 else device


def scorer_for(job: Job) -> Scorer:
    """This process's scorer for ``job`` (built once per process)."""
    if not _CURRENT or _CURRENT[0][0] != job:
        _CURRENT.clear()  # one job at a time per process: free the last one's frames
        _CURRENT.append(
            (
                job,
                Scorer(
                    job.output,
                    job.protocol,
                    VideoCache(job.cache_dir),
                    device_for_rank(job.device, _RANK),
                    job.detector,
                ),
            )
        )
    return _CURRENT[0][1]


def collect_scorer(job: Job) -> Scorer:
    """The scorer that collect reads the records with (its ``stored_*`` methods): this process's scorer for
    ``job`` when the serial executor left one (its keys, track identities and read records are
    reused, so each key is built once per run), else a new one. The process lets go of it and of
    its decoded frames."""
    if _CURRENT and _CURRENT[0][0] == job:
        scorer = _CURRENT[0][1]
        scorer.videos.decoded.clear()
    else:
        scorer = Scorer(job.output, job.protocol, VideoCache(job.cache_dir), job.device, job.detector)
    _CURRENT.clear()
    return scorer


def run_chunk(job: Job, chunk: list[WorkItem]) -> int:
    """Score a chunk of work items, writing each record; returns how many were computed (not reused)."""
    stage = "one pass" if chunk[0].one_pass else chunk[0].metric_name
    if _STAGE and _STAGE[0] != stage:
        free_models()  # the last stage's networks (encoder, captioner, ...) before this one loads its own
    _STAGE[:] = [stage]
    scorer = scorer_for(job)
    before = scorer.computed
    if chunk[0].level == "trial":  # one metric, or one pass of metrics trial by trial (items.chunked)
        start = 0
        for end in range(1, len(chunk) + 1):
            if end == len(chunk) or chunk[end].metric is not chunk[start].metric:
                scorer.score_trials(chunk[start].metric, [item.pairs[0] for item in chunk[start:end]])
                start = end
    for item in chunk:
        if item.level == "episode":
            scorer.score_episode(item.metric, item.episode, [t for _, t in item.pairs])
        elif item.level == "shard":
            scorer.score_shard(item.metric, list(item.pairs))
        elif item.level == "dataset":
            scorer.score_dataset(item.metric, list(item.pairs))
    return scorer.computed - before


def _phases(chunks: list[list[WorkItem]]) -> list[list[list[WorkItem]]]:
    """Every other chunk, then the dataset items of sharded metrics (FID, FVD), so that their
    shards' features are stored before they pool them and no worker computes a video's twice."""

    def merging(chunk: list[WorkItem]) -> bool:
        return chunk[0].level == "dataset" and bool(chunk[0].metric.shard_trials)

    return [[chunk for chunk in chunks if not merging(chunk)], [chunk for chunk in chunks if merging(chunk)]]


def _init_worker(counter) -> None:
    global _RANK
    with counter.get_lock():
        _RANK = counter.value
        counter.value += 1


def _chunks(items: list[WorkItem], workers: int | None) -> list[list[WorkItem]]:
    """Chunks sized per metric (:func:`ewmbench.run.items.chunk_size`), spread over ``workers``
    workers (None: one process, the largest chunks)."""
    trials: dict[str, int] = {}
    for item in items:
        if item.level == "trial" and workers:
            trials[item.metric_name] = trials.get(item.metric_name, 0) + 1
    return chunked(items, lambda metric: chunk_size(metric, trials.get(metric.name, 0), workers or 1))


def run_serial(job: Job, items: list[WorkItem], advance: Callable[[int], None], **_) -> int:
    computed = 0
    try:
        for chunk in _chunks(items, None):
            computed += run_chunk(job, chunk)
            advance(len(chunk))
    except BaseException:
        _CURRENT.clear()  # the run's decoded frames are not kept past it
        raise
    finally:
        _STAGE.clear()
        free_models()  # the last stage's networks
    if _CURRENT:
        _CURRENT[0][1].videos.decoded.clear()  # the scorer stays for collect (collect_scorer)
    return computed


def run_processes(
    job: Job, items: list[WorkItem], advance: Callable[[int], None], workers: int | None = None, **_
) -> int:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = workers or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")  # no fork: torch and threads are not fork-safe
    counter = context.Value("i", 0)
    computed = 0
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(counter,)
    ) as pool:
        for phase in _phases(_chunks(items, workers)):
            futures = {pool.submit(run_chunk, job, chunk): len(chunk) for chunk in phase}
            for future in as_completed(futures):
                computed += future.result()
                advance(futures[future])
    return computed


def run_ray(
    job: Job,
    items: list[WorkItem],
    advance: Callable[[int], None],
    workers: int | None = None,
    num_gpus: float = 0.0,
    task: Callable[[Job, list[WorkItem]], int] = run_chunk,
    **_,
) -> int:
    """Ray tasks of ``task`` (a chunk each) on the cluster at ``RAY_ADDRESS``, or on a local Ray
    started here and stopped after the run; a Ray already initialised in this process is used as is."""
    ray = require("ray", "scale", "--executor ray")
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
            started = True
    try:
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # A task whose worker died is retried (max_retries); records written before are kept.
        remote = ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=3)(task)
        job_ref = ray.put(job)
        computed = 0
        for phase in _phases(_chunks(items, workers)):
            pending = {remote.remote(job_ref, chunk): len(chunk) for chunk in phase}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    computed += ray.get(ref)
                    advance(pending.pop(ref))
        return computed
    finally:
        if started:
            ray.shutdown()


def execute(
    executor: str,
    job: Job,
    items: list[WorkItem],
    advance: Callable[[int], None] = lambda n: None,
    workers: int | None = None,
    num_gpus: float = 0.0,
) -> int:
    """Run every item with ``executor``; returns how many records were computed (not reused)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if not items:
        return 0
    return EXECUTORS.load(executor)(job, items, advance, workers=workers, num_gpus=num_gpus)
