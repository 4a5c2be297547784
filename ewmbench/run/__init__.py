"""Scoring as plan -> execute -> collect.

``plan``: the work items (metric x trial, episode or run); ``executors``: serial, processes,
Ray, each writing one record per item; collect (the runner) reads only the stored records, so
every executor gives the same rows. ``scoring``: the scorer and its record keys.
"""

from ewmbench.run.executors import EXECUTORS, collect_scorer, device_for_rank, execute, run_chunk
from ewmbench.run.plan import Job, WorkItem, build_plan, chunk_size, chunked, pairs_for
from ewmbench.run.scoring import NotScored, Scorer, hash_settings, store_name

__all__ = [
    "EXECUTORS",
    "Job",
    "NotScored",
    "Scorer",
    "WorkItem",
    "build_plan",
    "chunk_size",
    "chunked",
    "collect_scorer",
    "device_for_rank",
    "execute",
    "hash_settings",
    "pairs_for",
    "run_chunk",
    "store_name",
]
