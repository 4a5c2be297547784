"""The Python face of the toolkit, in the style of lm-evaluation-harness's ``simple_evaluate``.

``ewmbench.evaluate(...)`` scores videos generated elsewhere and returns the typed run record;
``ewmbench.compare(...)`` compares run folders and returns the typed comparison (and writes the
report when given an output folder). The command line calls these same functions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ewmbench.compare.api import compare
from ewmbench.protocols import DEFAULT_PROTOCOL
from ewmbench.results.record import RunRecord
from ewmbench.run.plan import RunConfig
from ewmbench.run.runner import evaluate as run_evaluate

__all__ = ["compare", "evaluate"]


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
    return run_evaluate(config, show_progress=progress).record
