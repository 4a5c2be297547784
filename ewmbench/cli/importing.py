"""`ewmbench import`: videos generated elsewhere into the generated layout."""

from __future__ import annotations

from pathlib import Path

import typer

from ewmbench.cli.common import app, console, fail
from ewmbench.errors import EwmbenchError


@app.command("import")
def import_command(
    videos: Path = typer.Option(..., "--videos", help="Folder of generated videos (mp4 ...), only read."),
    gt: str = typer.Option(
        ..., "--gt", help="Ground-truth dataset the videos were generated for: 'sample' or a folder."
    ),
    name: str = typer.Option(..., "--name", help="Model name: the output is <output>/<name>_dataset."),
    output: Path = typer.Option(
        ..., "--output", help="Folder receiving <name>_dataset/ and import_report.json."
    ),
    manifest: Path | None = typer.Option(
        None,
        "--manifest",
        help="CSV with task_id, episode_id, trial_id, path (default: WorldArena names {task}_episode_{xx}[_k].mp4).",
    ),
    fit: str = typer.Option(
        "stretch",
        "--fit",
        help="stretch (scale the whole frame) or crop (centred crop to the GT's aspect first).",
    ),
) -> None:
    """Bring videos from closed models or other scripts into the generated layout, resampled to the GT."""
    from ewmbench.data.video_import import import_videos
    from ewmbench.preflight import resolve_dataset_argument

    try:
        report = import_videos(videos, resolve_dataset_argument(gt), name, output, manifest, fit)
    except EwmbenchError as exc:
        fail(exc)
    console.print(f"[green]imported[/] {len(report.imported)} trial(s) into {report.dataset}")
    for item in report.unmatched:
        console.print(
            f"[yellow]unmatched[/] {item['source']}: {item['reason']}", soft_wrap=True, highlight=False
        )
    for item in report.duplicates:
        console.print(
            f"[yellow]duplicate[/] {item['task']}/{item['episode']}/{item['trial']}: {', '.join(item['sources'])} (none imported)",
            soft_wrap=True,
            highlight=False,
        )
    for item in report.unreadable:
        console.print(
            f"[red]unreadable[/] {item['source']}: {item['reason']}", soft_wrap=True, highlight=False
        )
    if report.missing:
        console.print(
            f"[yellow]{len(report.missing)} GT episode(s) received no video[/]: {', '.join(report.missing[:10])}{' ...' if len(report.missing) > 10 else ''}"
        )
    console.print(
        f"report: {output / 'import_report.json'}; score with: ewmbench evaluate --gt {gt} --generated {report.dataset}"
    )
