"""`ewmbench validity`: does each metric measure what it claims, on a dataset, with a protocol."""

from __future__ import annotations

from pathlib import Path

import typer

from ewmbench.cli.common import MetricsOption, ProtocolOption, app, console, fmt, metric_list


@app.command("validity")
def validity_command(
    output: Path = typer.Option(
        Path("reports/validity"), "--output", help="Folder: validity.json, validity.html, runs/, inputs/."
    ),
    dataset: str = typer.Option(
        "sample", "--dataset", help="'sample' or a ground-truth folder (the sim part needs a simulated one)."
    ),
    metrics: str | None = MetricsOption,
    protocol: str = ProtocolOption,
    episodes_per_task: int | None = typer.Option(
        None, "--episodes-per-task", help="Score only the first N episodes of each task (default: all)."
    ),
    jpeg_quality: list[int] = typer.Option(
        [90, 50], "--jpeg-quality", help="JPEG re-encodings of the ground truth (repeatable)."
    ),
    crf: list[int] = typer.Option([23, 35], "--crf", help="H.264 re-encodings at this CRF (repeatable)."),
    fps_divisor: list[int] = typer.Option(
        [2], "--fps-divisor", help="Frame rate divided by N, each kept frame held (repeatable)."
    ),
    scale: list[float] = typer.Option(
        [0.5], "--scale", help="Resolution scaled down by this factor and back up (repeatable)."
    ),
    perturbations: str | None = typer.Option(
        None,
        "--perturbations",
        help="Comma-separated sim perturbations (default: all; 'none' for no sim runs). "
        "See `ewmbench validity --list`.",
    ),
    list_perturbations: bool = typer.Option(False, "--list", help="List the sim perturbations and exit."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples (CIs, rank stability)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and of sampled sign-flip tests."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache of gripper tracks and features."),
) -> None:
    """Score the ground truth against itself and its re-encodings, and the sim oracle under each
    perturbation: sensitivity, ladder order, rank stability and metric agreement (JSON + HTML)."""
    from ewmbench.compare.validity import PERTURBATIONS, ValiditySettings, run_validity

    if list_perturbations:
        for name, options in PERTURBATIONS.items():
            console.print(f"{name}: {', '.join(f'{k}={v}' for k, v in options.items())}")
        return
    chosen = tuple(PERTURBATIONS) if perturbations is None else ()
    if perturbations and perturbations.strip().lower() != "none":
        chosen = tuple(p.strip() for p in perturbations.split(",") if p.strip())
    settings = ValiditySettings(
        dataset=dataset,
        protocol=protocol,
        metrics=tuple(metric_list(metrics)) if metrics else None,
        episodes_per_task=episodes_per_task,
        jpeg_qualities=tuple(jpeg_quality),
        h264_crfs=tuple(crf),
        frame_rate_divisors=tuple(fps_divisor),
        resolution_scales=tuple(scale),
        perturbations=chosen,
        resamples=resamples,
        seed=seed,
        cache_dir=cache_dir,
    )
    report = run_validity(output, settings)
    print_validity(report)
    console.print(f"validity report in [bold]{output / 'validity.html'}[/] and validity.json")


def print_validity(report: dict) -> None:
    from rich.table import Table

    columns = list(report["directions"])
    table = Table(title=f"validity: {report['settings']['dataset']} under {report['settings']['protocol']}")
    table.add_column("condition")
    for column in columns:
        table.add_column(
            f"{column} {'↑' if report['directions'][column] == 'higher' else '↓'}", justify="right"
        )
    for condition in report["conditions"]:
        table.add_row(condition["name"], *(fmt(condition["overall"].get(c)) for c in columns))
    if report["ladder_in_order"]:
        table.add_row(
            "noise ladder strictly in order",
            *("yes" if report["ladder_in_order"].get(c) else "NO" for c in columns),
        )
    console.print(table)
