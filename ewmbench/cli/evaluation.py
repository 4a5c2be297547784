"""`ewmbench run` and `ewmbench evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ewmbench.cli.common import (
    MetricsOption,
    ProtocolOption,
    app,
    fail,
    metric_list,
    parse_options,
    print_result,
)
from ewmbench.errors import EwmbenchError


@app.command("run")
def run_command(
    model: str = typer.Option(..., "--model", help="World-model adapter (see `ewmbench models`), or package.module:Class."),
    dataset: str = typer.Option("sample", "--dataset", help="'sample', a downloaded dataset ('ewmbench'), or a ground-truth dataset folder."),
    output: Path = typer.Option(Path("runs/latest"), "--output", help="Run folder (created; an existing run folder resumes)."),
    trials: int = typer.Option(3, "--trials", help="Generated trials per episode."),
    seed: int = typer.Option(0, "--seed", help="Base seed; each trial's seed derives from it and the trial's ids."),
    model_option: list[str] = typer.Option([], "--model-option", help="Adapter option key=value (repeatable)."),
    metrics: Optional[str] = MetricsOption,
    protocol: str = ProtocolOption,
    detector_weights: Optional[Path] = typer.Option(None, "--detector-weights", help="Gripper detector weights for trajectory extraction."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
) -> None:
    """Generate trials with a world model on a dataset, score them and write the run folder."""
    from ewmbench.runner import RunConfig, run

    config = RunConfig(
        output=output, protocol=protocol, metrics=metric_list(metrics), model=model, model_options=parse_options(model_option),
        dataset=dataset, trials=trials, seed=seed, detector_weights=detector_weights, device=device,
    )
    try:
        result = run(config)
    except EwmbenchError as exc:
        fail(exc)
    print_result(result)


@app.command("evaluate")
def evaluate_command(
    gt: Path = typer.Option(..., "--gt", help="Ground-truth dataset folder."),
    generated: Path = typer.Option(..., "--generated", help="Generated dataset folder (<name>_dataset)."),
    output: Path = typer.Option(..., "--output", help="Run folder (created; an existing run folder resumes)."),
    metrics: Optional[str] = MetricsOption,
    protocol: str = ProtocolOption,
    detector_weights: Optional[Path] = typer.Option(None, "--detector-weights", help="Gripper detector weights for trajectory extraction."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
) -> None:
    """Score videos generated elsewhere against their ground truth."""
    from ewmbench.runner import RunConfig, evaluate

    config = RunConfig(
        output=output, protocol=protocol, metrics=metric_list(metrics), gt=gt, generated=generated,
        detector_weights=detector_weights, device=device,
    )
    try:
        result = evaluate(config)
    except EwmbenchError as exc:
        fail(exc)
    print_result(result)
