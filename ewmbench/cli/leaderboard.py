"""`ewmbench submit` and `ewmbench leaderboard validate | add | build`."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import typer

from ewmbench.cli.common import app, console, fail
from ewmbench.errors import EwmbenchError

board_app = typer.Typer(
    help="Check submission bundles, add them to a board, build the board's static site.", no_args_is_help=True
)
app.add_typer(board_app, name="leaderboard")

BoardOption = typer.Option(
    Path("leaderboards/ewmbench"), "--board", help="Board folder (rule.yaml + entries/)."
)


@app.command("submit")
def submit_command(
    run: Path = typer.Argument(..., help="Run folder (from `ewmbench run` or `ewmbench evaluate`)."),
    readme: Path = typer.Option(
        ..., "--readme", help="model_readme.md with YAML front matter (model_name, version, ...)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Bundle to write (.tar.gz)."),
    videos: Path | None = typer.Option(
        None, "--videos", help="Folder of the generated trials, if not found from the run."
    ),
    fps: float = typer.Option(10.0, "--fps", help="Frame rate written into the mp4 files."),
    lossy: bool = typer.Option(
        False,
        "--lossy",
        help="Smaller, lossy H.264 videos (a re-scoring board then measures the encoder too).",
    ),
) -> None:
    """Write a submission bundle: model_readme.md, videos/*.mp4, the run record and its rows."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ewmbench.leaderboard.bundle import write_bundle

    try:
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as progress:
            path = write_bundle(
                run, readme, output, videos_root=videos, fps=fps, lossless=not lossy, progress=progress
            )
    except EwmbenchError as exc:
        fail(exc)
    console.print(f"[green]bundle written:[/] {path}")


def _refuse(exc: EwmbenchError) -> None:
    code = getattr(exc, "code", None)
    if code:
        console.print(f"[bold red]refused[/] [bold]{code}[/]: {exc.message}", soft_wrap=True)
        raise typer.Exit(1)
    fail(exc)


@board_app.command("validate")
def validate_command(
    bundle: Path = typer.Argument(..., help="Bundle (.tar.gz), or a folder holding exactly one."),
) -> None:
    """Check a bundle without adding it (exit 1 with an error code when it would be refused)."""
    from ewmbench.leaderboard.intake import open_bundle

    with tempfile.TemporaryDirectory(prefix="ewmbench-intake-") as tmp:
        try:
            checked = open_bundle(bundle, Path(tmp))
        except EwmbenchError as exc:
            _refuse(exc)
        record = (
            "with a run record"
            if checked.record is not None
            else "without a run record (needs --rescore to be added)"
        )
        console.print(
            f"[green]valid[/]: {checked.metadata['model_name']} {checked.metadata['version']}, "
            f"{len(checked.videos)} videos, {record}",
            soft_wrap=True,
        )


@board_app.command("add")
def add_command(
    bundle: Path = typer.Argument(..., help="Bundle (.tar.gz), or a folder holding exactly one."),
    board: Path = BoardOption,
    rescore: bool = typer.Option(
        False, "--rescore", help="Score the bundle's videos here: the entry becomes verified."
    ),
    gt: Path | None = typer.Option(
        None, "--gt", help="Ground truth of the benchmark (needed with --rescore); 'sample' for the sample."
    ),
    detector_weights: Path | None = typer.Option(
        None, "--detector-weights", help="Gripper detector weights for re-scoring."
    ),
    device: str | None = typer.Option(None, "--device", help="Device for re-scoring."),
) -> None:
    """Check a bundle and add it to a board: self-reported from its record, or verified with --rescore."""
    from ewmbench.leaderboard.intake import admit, check_admissible, open_bundle

    if rescore and gt is None:
        fail(EwmbenchError("--rescore needs --gt (the benchmark's ground truth)"))
    with tempfile.TemporaryDirectory(prefix="ewmbench-intake-") as tmp:
        workdir = Path(tmp) / "bundle"
        workdir.mkdir()
        try:
            checked = open_bundle(bundle, workdir, need_record=not rescore)
            check_admissible(checked, board, "verified" if rescore else "self-reported")  # before any scoring
            rescored = _rescore(checked, board, gt, Path(tmp), detector_weights, device) if rescore else None
            command = f"ewmbench leaderboard add {shlex.quote(str(bundle))} --board {shlex.quote(str(board))} --rescore --gt {shlex.quote(str(gt))}"
            entry = admit(checked, board, rescored=rescored, command=command if rescore else None)
        except EwmbenchError as exc:
            _refuse(exc)
    console.print(f"[green]added[/] {entry.id} ({entry.kind}) to {board}")


def _rescore(bundle, board: Path, gt: Path, tmp: Path, detector_weights, device):
    """Score the bundle's videos under the board's protocol, in the private folder; returns the record."""
    import shutil

    from ewmbench.data.datasets import resolve_dataset
    from ewmbench.leaderboard.entries import slug
    from ewmbench.leaderboard.rule import load_rule
    from ewmbench.record import load_run
    from ewmbench.runner import RunConfig, evaluate

    rule = load_rule(board)
    generated = tmp / f"{slug(bundle.metadata['model_name'])}_dataset"
    for (task, episode, trial), video in bundle.videos.items():
        target = generated / task / episode / trial / "video.mp4"
        target.parent.mkdir(parents=True)
        shutil.copyfile(video, target)
    config = RunConfig(
        output=tmp / "run",
        protocol=rule.protocol,
        gt=resolve_dataset(str(gt)),
        generated=generated,
        detector_weights=detector_weights,
        device=device,
    )
    evaluate(config, show_progress=False)
    return load_run(tmp / "run")


@board_app.command("build")
def build_command(
    board: Path = BoardOption,
    output: Path = typer.Option(Path("site"), "--output", "-o", help="Folder for the static site."),
) -> None:
    """Build the board's static site (index.html, a page per entry, leaderboard.csv/.json)."""
    from ewmbench.leaderboard.site import build_site

    try:
        index = build_site(board, output)
    except EwmbenchError as exc:
        fail(exc)
    console.print(f"[green]site written:[/] {index}")
