"""The Python face of the toolkit, in the style of lm-evaluation-harness's ``simple_evaluate``.

``ewmbench.evaluate(...)`` scores videos generated elsewhere and returns the typed run record;
``ewmbench.compare(...)`` compares run folders and returns the typed comparison (and writes the
report when given an output folder). The command line calls these same functions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ewmbench.protocols import DEFAULT_PROTOCOL

if TYPE_CHECKING:
    from ewmbench.compare.report import Comparison
    from ewmbench.compare.runs import RunData
    from ewmbench.record import RunRecord


def evaluate(
    gt: str | Path,
    generated: str | Path,
    metrics: list[str] | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    output: str | Path | None = None,
    detector_weights: str | Path | None = None,
    device: str | None = None,
    progress: bool = False,
) -> RunRecord:
    """Score ``generated`` (``<name>_dataset``) against the ground truth ``gt``; return the run record.

    The run folder is ``output`` (resumable: the same call again redoes nothing), or a new temporary
    folder, named by ``record.path``. ``metrics`` defaults to every metric of the protocol.
    """
    from ewmbench.record import load_run
    from ewmbench.runner import RunConfig
    from ewmbench.runner import evaluate as run_evaluate

    folder = Path(output) if output is not None else Path(tempfile.mkdtemp(prefix="ewmbench-evaluate-"))
    config = RunConfig(
        output=folder,
        protocol=protocol,
        metrics=list(metrics) if metrics else None,
        gt=Path(gt),
        generated=Path(generated),
        detector_weights=Path(detector_weights) if detector_weights else None,
        device=device,
    )
    run_evaluate(config, show_progress=progress)
    return load_run(folder)


def compare(
    runs: list[str | Path | RunRecord | RunData],
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
    from ewmbench.compare.report import Settings, compare_runs
    from ewmbench.compare.runs import RunData, read_run
    from ewmbench.compare.writer import write_report

    loaded = []
    for run in runs:
        if isinstance(run, RunData):
            loaded.append(run)
        elif isinstance(run, (str, Path)):
            loaded.append(read_run(run))
        elif getattr(run, "path", None) is not None:  # a RunRecord loaded from disk
            loaded.append(read_run(run.path))
        else:
            raise TypeError(
                f"compare takes run folders, record files or loaded records, not {type(run).__name__}"
            )
    settings = Settings(level=level, resamples=resamples, seed=seed, alpha=alpha, worst=worst, frames=frames)
    comparison = compare_runs(loaded, baseline, allow_mismatch=allow_mismatch, settings=settings)
    if output is not None:
        write_report(comparison, output, figures=figures)
    return comparison
