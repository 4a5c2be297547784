"""The run: ``ewmbench run`` and ``ewmbench evaluate`` from configuration to record.

Data walks one way::

    RunConfig --preflight--> Plan --generate--> trials --score--> Scores --record--> RunRecord --write--> files

* ``plan.py``: :class:`RunConfig` (what was asked), :class:`Plan` (what pre-flight made of it:
  the typed protocol, the ground truth with the split applied, the model not yet loaded, the
  metric objects), the executor registry;
* ``preflight.py``: every check before anything is written; builds the plan;
* ``generate.py``: the plan's model writes the trials (through ``ewmbench.models.invoke``);
* ``score.py``: pair -> check -> execute -> collect -> rows -> aggregate, as named steps;
* ``items.py``, ``executors.py``, ``scoring.py``: the work items (metric x trial, episode or run),
  the executors that run them (``serial``, ``processes``, ``ray``; one stored record per item) and
  the scorer with its record keys;
* ``recording.py``: provenance (asked once) and the run record built from the plan and scores;
* ``runner.py``: :func:`run` and :func:`evaluate`, the steps in order; the files are written from
  the record by ``ewmbench.results.writers``.

Names are loaded on first use, so ``from ewmbench.run.plan import RunConfig`` imports nothing heavy.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "RunConfig": "plan",
    "Plan": "plan",
    "EXECUTORS": "plan",
    "SCORES_DIR": "plan",
    "Refusals": "preflight",
    "check_model": "preflight",
    "check_device_name": "preflight",
    "sidecar_fields": "preflight",
    "build_request": "generate",
    "trial_seed": "generate",
    "Pairing": "score",
    "Scores": "score",
    "build_record": "recording",
    "provenance": "recording",
    "weights_used": "recording",
    "RunResult": "runner",
    "evaluate": "runner",
    "run": "runner",
    "Job": "items",
    "WorkItem": "items",
    "build_plan": "items",
    "chunk_size": "items",
    "chunked": "items",
    "pairs_for": "items",
    "collect_scorer": "executors",
    "device_for_rank": "executors",
    "execute": "executors",
    "run_chunk": "executors",
    "NotScored": "scoring",
    "Scorer": "scoring",
    "hash_settings": "scoring",
    "store_name": "scoring",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'ewmbench.run' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ewmbench.run.{_NAMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
