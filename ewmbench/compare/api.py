"""``ewmbench.compare(runs, baseline=...)``: compare run records and optionally write the report.
The package :mod:`ewmbench.compare` is callable and forwards here; :mod:`ewmbench.api` re-exports it."""

from __future__ import annotations

from pathlib import Path

from ewmbench.compare.report import Comparison, Settings, compare_runs
from ewmbench.compare.runs import ComparedRun, compared_run
from ewmbench.compare.writer import write_report
from ewmbench.results.record import RunRecord


def compare(
    runs: list[str | Path | RunRecord | ComparedRun],
    baseline: str | Path | None = None,
    *,
    allow_mismatch: bool = False,
    output: str | Path | None = None,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    figures: bool = True,
    worst: int = 2,
    frames: int = 6,
) -> Comparison:
    """Compare runs (folders, ``record.json`` files or loaded records) against ``baseline`` (a label
    or path; default the first run). With ``output`` the report is written there; ``worst`` episodes
    per metric and run are drawn as strips of ``frames`` frames."""
    loaded = []
    for run in runs:
        if isinstance(run, ComparedRun):
            loaded.append(run)
        elif isinstance(run, (str, Path, RunRecord)):
            loaded.append(compared_run(run))
        else:
            raise TypeError(
                f"compare takes run folders, record files or loaded records, not {type(run).__name__}"
            )
    settings = Settings(level=level, resamples=resamples, seed=seed, alpha=alpha, worst=worst, frames=frames)
    comparison = compare_runs(loaded, baseline, allow_mismatch=allow_mismatch, settings=settings)
    if output is not None:
        write_report(comparison, output, figures=figures)
    return comparison
