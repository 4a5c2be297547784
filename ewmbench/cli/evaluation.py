"""`ewmbench run` and `ewmbench evaluate`."""

from __future__ import annotations

from pathlib import Path

import typer

from ewmbench.cli.common import (
    DeviceOption,
    DryRunOption,
    ExecutorOption,
    MetricsOption,
    NumGpusOption,
    ProtocolOption,
    SplitOption,
    WorkersOption,
    app,
    execute,
    metric_list,
    parse_options,
)


@app.command("run")
def run_command(
    model: str = typer.Option(
        ..., "--model", help="World-model adapter (see `ewmbench models`), or package.module:Class."
    ),
    dataset: str = typer.Option(
        "sample",
        "--dataset",
        help="'sample', a downloaded dataset ('ewmbench'), or a ground-truth dataset folder.",
    ),
    output: Path = typer.Option(
        Path("runs/latest"), "--output", help="Run folder (created; an existing run folder resumes)."
    ),
    trials: int = typer.Option(3, "--trials", help="Generated trials per episode (1 to 1000)."),
    seed: int = typer.Option(
        0, "--seed", help="Base seed; each trial's seed derives from it and the trial's ids."
    ),
    model_option: list[str] = typer.Option(
        [], "--model-option", help="Adapter option key=value (repeatable)."
    ),
    metrics: str | None = MetricsOption,
    protocol: str = ProtocolOption,
    detector_weights: Path | None = typer.Option(
        None, "--detector-weights", help="Gripper detector weights for trajectory extraction."
    ),
    device: str | None = DeviceOption,
    split: Path | None = SplitOption,
    executor: str = ExecutorOption,
    workers: int | None = WorkersOption,
    num_gpus: float = NumGpusOption,
    dry_run: bool = DryRunOption,
) -> None:
    """Generate trials with a world model on a dataset, score them and write the run folder."""
    from ewmbench.run import RunConfig

    config = RunConfig(
        output=output,
        protocol=protocol,
        metrics=metric_list(metrics),
        model=model,
        model_options=parse_options(model_option),
        dataset=dataset,
        trials=trials,
        seed=seed,
        detector_weights=detector_weights,
        device=device,
        split=split,
        executor=executor,
        workers=workers,
        num_gpus=num_gpus,
    )
    execute(config, "run", dry_run)


@app.command("evaluate")
def evaluate_command(
    gt: Path = typer.Option(..., "--gt", help="Ground-truth dataset folder (or 'sample')."),
    generated: Path = typer.Option(..., "--generated", help="Generated dataset folder (<name>_dataset)."),
    output: Path = typer.Option(
        ..., "--output", help="Run folder (created; an existing run folder resumes)."
    ),
    metrics: str | None = MetricsOption,
    protocol: str = ProtocolOption,
    detector_weights: Path | None = typer.Option(
        None, "--detector-weights", help="Gripper detector weights for trajectory extraction."
    ),
    device: str | None = DeviceOption,
    split: Path | None = SplitOption,
    executor: str = ExecutorOption,
    workers: int | None = WorkersOption,
    num_gpus: float = NumGpusOption,
    dry_run: bool = DryRunOption,
) -> None:
    """Score videos generated elsewhere against their ground truth."""
    from ewmbench.run import RunConfig

    config = RunConfig(
        output=output,
        protocol=protocol,
        metrics=metric_list(metrics),
        gt=gt,
        generated=generated,
        detector_weights=detector_weights,
        device=device,
        split=split,
        executor=executor,
        workers=workers,
        num_gpus=num_gpus,
    )
    execute(config, "evaluate", dry_run)
