"""`ewmbench data render-conditions`: the action-conditioning images a world model is given."""

from __future__ import annotations

from pathlib import Path

import typer

from ewmbench.cli.common import console, escape, fail
from ewmbench.cli.data import data_app
from ewmbench.errors import EwmbenchError


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
    try:
        report = render_dataset_conditions(dataset, output, tool_offset)
    except EwmbenchError as exc:
        fail(exc)
    for item in report["skipped"]:
        console.print(
            f"[yellow]skipped[/] {item['episode']}{' ' + item['view'] if 'view' in item else ''}: {item['reason']}",
            soft_wrap=True,
        )
    console.print(
        f"[green]wrote[/] {len(report['written'])} view(s) of pose and ray maps to {escape(output)}"
    )
