"""`ewmbench import`: videos generated elsewhere into the generated layout."""

from __future__ import annotations

from pathlib import Path

import typer

from ewmbench.cli.common import EXIT_PROBLEMS, app, console, escape
from ewmbench.data.datasets import resolve_dataset


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

    report = import_videos(videos, resolve_dataset(gt), name, output, manifest, fit)
    console.print(f"[green]imported[/] {len(report.imported)} trial(s) into {escape(report.dataset)}")
    for item in report.unmatched:
        console.print(
            f"[yellow]unmatched[/] {escape(item['source'])}: {escape(item['reason'])}",
            soft_wrap=True,
            highlight=False,
        )
    for item in report.duplicates:
        console.print(
            f"[yellow]duplicate[/] {escape(item['task'])}/{escape(item['episode'])}/{escape(item['trial'])}: {escape(', '.join(item['sources']))} (none imported)",
            soft_wrap=True,
            highlight=False,
        )
    for item in report.unreadable:
        console.print(
            f"[red]unreadable[/] {escape(item['source'])}: {escape(item['reason'])}",
            soft_wrap=True,
            highlight=False,
        )
    if report.missing:
        console.print(
            f"[yellow]{len(report.missing)} GT episode(s) received no video[/]: {escape(', '.join(report.missing[:10]))}{' ...' if len(report.missing) > 10 else ''}"
        )
    console.print(
        f"report: {escape(output / 'import_report.json')}; score with: ewmbench evaluate --gt {escape(gt)} --generated {escape(report.dataset)}"
    )
    if report.unreadable or report.duplicates:
        raise typer.Exit(EXIT_PROBLEMS)  # what could be imported was; the rest is listed above
