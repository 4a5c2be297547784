"""The ``ewmbench`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ewmbench.errors import EwmbenchError

app = typer.Typer(help="Benchmark and evaluation toolkit for embodied world models (EWMBench).", no_args_is_help=True)
data_app = typer.Typer(help="Inspect, generate and curate datasets.", no_args_is_help=True)
detector_app = typer.Typer(help="End-effector detection and tracking.", no_args_is_help=True)
weights_app = typer.Typer(help="Model weights: list, download, verify.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(detector_app, name="detector")
app.add_typer(weights_app, name="weights")

console = Console()


def fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


# ---------------------------------------------------------------- models


@app.command("models")
def models_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List world-model adapters, what each is conditioned on and what it needs."""
    from ewmbench.models import model_registry

    rows = [
        {
            "name": name,
            "conditioning": sorted(cls.conditioning),
            "needs_weights": cls.needs_weights,
            "needs_gpu": cls.needs_gpu,
            "description": cls.description,
        }
        for name, cls in sorted(model_registry().items())
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="World models")
    for column in ("name", "conditioned on", "weights", "GPU", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], ", ".join(row["conditioning"]) or "-", "yes" if row["needs_weights"] else "no",
            "yes" if row["needs_gpu"] else "no", row["description"],
        )
    console.print(table)


# ---------------------------------------------------------------- data


@data_app.command("info")
def data_info_command(
    path: Path = typer.Argument(..., help="A ground-truth dataset or a <name>_dataset folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Summarise a dataset and list layout problems with their paths (exit 1 if any error)."""
    from ewmbench.data.summary import summarise

    try:
        summary = summarise(path)
    except EwmbenchError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        table = Table(title=f"{summary['kind']} dataset {path}")
        table.add_column("field")
        table.add_column("value")
        for key, value in summary.items():
            if key != "problems":
                table.add_row(key, json.dumps(value, default=str) if not isinstance(value, str) else value)
        console.print(table)
        for problem in summary["problems"]:
            style = "red" if problem["severity"] == "error" else "yellow"
            console.print(f"[{style}]{problem['severity']}[/] {problem['path']}: {problem['message']}")
        if not summary["problems"]:
            console.print("[green]no problems found[/]")
    if any(p["severity"] == "error" for p in summary["problems"]):
        raise typer.Exit(1)


@data_app.command("sample")
def data_sample_command(
    output: Path = typer.Option(..., "--output", "-o", help="Folder to create (must be absent, empty, or a sample folder)."),
    seed: int = typer.Option(0, "--seed", help="0 <= seed < 2**31; the same seed gives identical files."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated task names (default: all): pick_place,push,stack,handover."),
    episodes_per_task: int = typer.Option(2, "--episodes-per-task", help="Episodes per task (>= 1)."),
    frames: int = typer.Option(24, "--frames", help="Frames per episode (at 10 fps)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Parallel processes (default: one per core, at most 4); files do not depend on it."),
) -> None:
    """Generate a physics-simulated sample dataset with exact ground truth (offline, CPU)."""
    from ewmbench.data.sample import generate_sample, parse_tasks

    try:
        path = generate_sample(output, seed=seed, tasks=parse_tasks(tasks), episodes_per_task=episodes_per_task, num_frames=frames, workers=workers)
    except EwmbenchError as exc:
        fail(exc)
    console.print(f"[green]sample dataset ready:[/] {path}")


# ---------------------------------------------------------------- detector


# ---------------------------------------------------------------- weights


def main() -> None:  # pragma: no cover
    app()
