"""``ewmbench run`` and ``ewmbench evaluate``: pre-flight -> generate -> score -> record -> write.

A run folder::

    OUTPUT/config.json             the resolved configuration
    OUTPUT/provenance.json         package version, git commit, seeds, device, protocol file hash
    OUTPUT/<model>_dataset/...     generated trials in the official layout (``ewmbench run`` only)
    OUTPUT/scores/<metric>/...     the stored record of every work item: the resumable state
    OUTPUT/record.json             the run record (ewmbench-run/1): every file below is written from it
    OUTPUT/rows.csv, rows.parquet  one row per trial, one column per metric output
    OUTPUT/summary.json            overall and per-task results, skipped metrics with the fix
    OUTPUT/ewmbm_final_table.csv   the table: the official tool's (``output_format: official``,
    OUTPUT/<name>_results.json     ewmbench/results/official.py) or ours (``ewmbench``)

The steps read only the :class:`~ewmbench.run.plan.Plan` that pre-flight built: the protocol is
read once, the dataset found once, the split applied once and the model built once. Every stage
is idempotent: a finished item is recognised by its stored input hashes and not redone, so a
killed run resumes and a finished run does no work when started again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ewmbench.data.split import provenance as split_provenance
from ewmbench.files import write_json
from ewmbench.results.record import RunRecord
from ewmbench.results.writers import write_run
from ewmbench.run.generate import generate, load_plan_model
from ewmbench.run.plan import Plan, RunConfig
from ewmbench.run.preflight import preflight, run_ground_truth
from ewmbench.run.recording import build_record, provenance, run_notes
from ewmbench.run.score import Pairing, pair, score


@dataclass
class RunResult:
    output: Path
    rows: pd.DataFrame
    summary: dict
    record: RunRecord


def run(config: RunConfig, show_progress: bool = True, plan: Plan | None = None) -> RunResult:
    """``ewmbench run``: generate with the plan's model on its ground truth, then score.

    Every check runs before anything is written (:func:`ewmbench.run.preflight.preflight`)."""
    plan = plan or preflight(config, "run")
    gt = run_ground_truth(plan)
    loaded = load_plan_model(plan)
    write_config(plan)
    prov = provenance(plan, loaded.device)
    write_json(plan.output / "provenance.json", {**prov, "model": loaded.record()})
    with _progress(show_progress) as progress:
        generated = generate(plan, gt, loaded, progress)
        return score_and_record(plan, pair(plan, gt, generated), prov, progress, loaded.model.config())


def evaluate(config: RunConfig, show_progress: bool = True, plan: Plan | None = None) -> RunResult:
    """``ewmbench evaluate``: score a generated dataset against its ground truth."""
    plan = plan or preflight(config, "evaluate")
    write_config(plan)
    pairing = pair(plan, plan.gt, plan.generated)
    prov = provenance(plan, pairing.device)
    write_json(plan.output / "provenance.json", prov)
    with _progress(show_progress) as progress:
        return score_and_record(plan, pairing, prov, progress, None)


def score_and_record(
    plan: Plan, pairing: Pairing, prov: dict, progress: Progress | None, model_config: dict | None
) -> RunResult:
    """Score, build the record from the plan and the scores, and write every file from it."""
    scores = score(plan, pairing, progress)
    record = build_record(plan, scores, prov, model_config)
    summary = write_run(plan.output, record, run_notes(scores), plan.protocol, pairing.generated.root)
    return RunResult(plan.output, scores.rows, summary, record)


def write_config(plan: Plan) -> None:
    """Write the run's configuration; pre-flight has checked the folder."""
    output = plan.output
    output.mkdir(parents=True, exist_ok=True)
    written = {"identity": plan.config.identity(), "config": plan.config.recorded()}
    written["config"]["metrics_resolved"] = plan.metric_names
    if plan.split:
        written["split"] = split_provenance(plan.split)
    write_json(output / "config.json", written)


def _progress(show: bool) -> Progress | _NoProgress:
    if not show:
        return _NoProgress()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
