"""`ewmbench data ...`: inspect, generate, download, curate datasets and render their conditions
(`ewmbench data convert ...` is its own module, `convert.py`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.table import Table

from ewmbench.cli.common import app, console, escape, fail, print_problems, print_table
from ewmbench.data.curate import DEFAULT_VOXEL_SIZE, curate_split, write_split
from ewmbench.data.datasets import resolve_dataset
from ewmbench.errors import ConfigError, EwmbenchError

data_app = typer.Typer(help="Inspect, generate and curate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("info")
def data_info_command(
    path: Path = typer.Argument(..., help="A ground-truth dataset, a <name>_dataset folder, or 'sample'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Summarise a dataset and list layout problems with their paths (exit 1 if any error)."""
    from ewmbench.data.summary import summarise

    path = resolve_dataset(path)
    summary = summarise(path)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        table = Table(title=escape(f"{summary['kind']} dataset {path}"))
        table.add_column("field")
        table.add_column("value")
        for key, value in summary.items():
            if key != "problems":
                table.add_row(
                    key, escape(json.dumps(value, default=str) if not isinstance(value, str) else value)
                )
        print_table(table)
        print_problems(summary["problems"])
        if not summary["problems"]:
            console.print("[green]no problems found[/]")
    if any(p["severity"] == "error" for p in summary["problems"]):
        raise typer.Exit(1)


@data_app.command("sample")
def data_sample_command(
    output: Path = typer.Option(
        ..., "--output", "-o", help="Folder to create (must be absent, empty, or a sample folder)."
    ),
    seed: int = typer.Option(0, "--seed", help="0 <= seed < 2**31; the same seed gives identical files."),
    tasks: str | None = typer.Option(
        None, "--tasks", help="Comma-separated task names (default: all): pick_place,push,stack,handover."
    ),
    episodes_per_task: int = typer.Option(2, "--episodes-per-task", help="Episodes per task (>= 1)."),
    frames: int = typer.Option(24, "--frames", help="Frames per episode (at 10 fps)."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="Parallel processes (default: one per core, at most 4); files do not depend on it.",
    ),
) -> None:
    """Generate a physics-simulated sample dataset with exact ground truth (offline, CPU)."""
    from ewmbench.sim.sample import generate_sample, parse_tasks

    path = generate_sample(
        output,
        seed=seed,
        tasks=parse_tasks(tasks),
        episodes_per_task=episodes_per_task,
        num_frames=frames,
        workers=workers,
    )
    console.print(f"[green]sample dataset ready:[/] {escape(str(path))}")


@data_app.command("curate")
def data_curate_command(
    source: Path = typer.Option(
        ..., "--source", help="Ground-truth dataset (official layout, sidecars with eef_pose), or 'sample'."
    ),
    per_task: int = typer.Option(
        ..., "--per-task", help="Episodes to keep per task (100 in the official benchmark)."
    ),
    output: Path = typer.Option(
        ..., "--output", help="Split file to write (JSON), e.g. datasets/splits/mine.json."
    ),
    voxel_size: float | None = typer.Option(
        None, "--voxel-size", help="Voxel edge in metres for the 3-D IoU (default 0.02)."
    ),
) -> None:
    """Pick IoU-diverse episodes per task from 3-D end-effector trajectories; write a split file."""

    if voxel_size is not None and not (math.isfinite(voxel_size) and voxel_size > 0):
        raise ConfigError(f"--voxel-size must be a positive number of metres, got {voxel_size}")
    if output.is_dir():
        raise ConfigError(
            f"--output {output} is a folder; give the path of the split file to write (e.g. {output / 'split.json'})"
        )
    source = resolve_dataset(source)
    if source.resolve() in output.resolve().parents:
        raise ConfigError(
            f"--output {output} is inside the source dataset {source}; inputs are never written to: write the split elsewhere"
        )
    split = curate_split(source, per_task, DEFAULT_VOXEL_SIZE if voxel_size is None else voxel_size)
    write_split(split, output)
    for task, entry in sorted(split["tasks"].items()):
        console.print(
            escape(f"task {task}: kept {len(entry['episodes'])} of {entry['available']} episodes")
            + f" (mean pairwise IoU {entry['mean_pairwise_iou']:.3f}, all episodes {entry['mean_pairwise_iou_all']:.3f})"
        )
    console.print(f"[green]wrote[/] {escape(str(output))}")


@data_app.command("download")
def data_download_command(
    name: str = typer.Argument(..., help="Dataset to fetch: ewmbench (the official benchmark data)."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to put it (default: the cache; --dataset NAME finds it either way).",
    ),
    from_dir: Path | None = typer.Option(
        None, "--from", help="A copy of the hub snapshot fetched elsewhere, used instead of the network."
    ),
) -> None:
    """Fetch a benchmark dataset (resumable, verified) so that `--dataset NAME` uses it."""
    from ewmbench.data.download import download, read_marker

    root = download(name, output=output, from_dir=from_dir)
    marker = read_marker(root.parent) or {}
    commit = marker.get("commit") or "(local copy)"
    console.print(
        f"[green]dataset {name} ready:[/] {root} ({marker.get('episodes')} episodes, {marker.get('repo')}@{marker.get('revision')}, commit {commit})"
    )
    console.print(f"use it with: ewmbench run --model MODEL --dataset {escape(name)} --output runs/MODEL")


@data_app.command("render-conditions")
def render_conditions_command(
    dataset: Path = typer.Option(
        ..., "--dataset", help="Ground-truth dataset with sidecar poses and calibration."
    ),
    output: Path = typer.Option(
        ..., "--output", help="Folder for <task>/<episode>/{pose_map,ray_map}/<view>/frame_*.png."
    ),
    tool_offset: float | None = typer.Option(
        None,
        "--tool-offset",
        help="Metres along the tool z axis to the grasp point (default: the embodiment's; 0 for the sample, 0.23 for agibot-g1).",
    ),
) -> None:
    """Render end-effector pose maps and ray maps per view and frame, as images to look at."""
    from ewmbench.models.conditioning import render_dataset_conditions

    if output.exists() and any(output.iterdir()):
        fail(EwmbenchError(f"{output} exists and is not empty; choose a new --output folder"))
    report = render_dataset_conditions(dataset, output, tool_offset)
    for item in report["skipped"]:
        console.print(
            f"[yellow]skipped[/] {item['episode']}{' ' + item['view'] if 'view' in item else ''}: {item['reason']}",
            soft_wrap=True,
        )
    console.print(
        f"[green]wrote[/] {len(report['written'])} view(s) of pose and ray maps to {escape(output)}"
    )
