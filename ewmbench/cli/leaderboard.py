"""`ewmbench submit` and `ewmbench leaderboard validate | add | build`."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import typer

from ewmbench.cli.common import app, console, fail
from ewmbench.data.datasets import resolve_dataset
from ewmbench.errors import EwmbenchError
from ewmbench.text import for_rich

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
    fps: float | None = typer.Option(
        None, "--fps", help="Frame rate written into the mp4 files (default: 10; 24 for --target worldarena)."
    ),
    target: str = typer.Option(
        "ewmbench",
        "--target",
        help="ewmbench: our board's bundle (every trial, the run record); worldarena: WorldArena 2.0 "
        "Track 1 (one video per episode, named as its evaluation code reads them).",
    ),
    lossy: bool = typer.Option(
        False,
        "--lossy",
        help="Smaller, lossy H.264 videos (a re-scoring board then measures the encoder too).",
    ),
) -> None:
    """Write a submission bundle: model_readme.md and videos/*.mp4 (+ the run record for ewmbench)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ewmbench.leaderboard.bundle import write_bundle

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as progress:
        path = write_bundle(
            run,
            readme,
            output,
            videos_root=videos,
            fps=fps,
            lossless=not lossy,
            progress=progress,
            target=target,
        )
    console.print(f"[green]bundle written:[/] {for_rich(path)}")


def _refuse(exc: EwmbenchError) -> None:
    code = getattr(exc, "code", None)
    if code:
        console.print(f"[bold red]refused[/] [bold]{for_rich(code)}[/]: {exc.message}", soft_wrap=True)
        raise typer.Exit(1)
    fail(exc)


@board_app.command("validate")
def validate_command(
    bundle: Path = typer.Argument(..., help="Bundle (.tar.gz/.tgz), or a folder holding exactly one."),
    target: str = typer.Option(
        "ewmbench",
        "--target",
        help="ewmbench: our bundle, its record checked against --board; worldarena: WorldArena 2.0's "
        "Track 1 guideline (any videos/*.mp4, no record).",
    ),
    board: Path = BoardOption,
) -> None:
    """Check a bundle without adding it (exit 1 with an error code when it would be refused)."""
    from ewmbench.leaderboard.intake import check_record, open_bundle
    from ewmbench.leaderboard.rule import load_rule

    with tempfile.TemporaryDirectory(prefix="ewmbench-intake-") as tmp:
        against_board = (board / "rule.yaml").is_file()
        try:
            checked = open_bundle(bundle, Path(tmp), target=target)
            if checked.record is not None and against_board:
                check_record(checked.record, load_rule(board))
        except EwmbenchError as exc:
            _refuse(exc)
        if target == "worldarena":
            record = "for WorldArena 2.0 Track 1"
        elif checked.record is not None and against_board:
            record = f"with a run record that follows from its rows under {for_rich(board)}'s rule"
        elif checked.record is not None:
            record = f"with a run record (not checked against a board: no {for_rich(board / 'rule.yaml')}; give --board)"
        else:
            record = "without a run record (needs --rescore to be added)"
        name = for_rich(f"{checked.metadata['model_name']} {checked.metadata['version']}")
        console.print(f"[green]valid[/]: {name}, {len(checked.videos)} videos, {record}", soft_wrap=True)
        for note in checked.notes:
            console.print(f"  note: {for_rich(note)}", soft_wrap=True)


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
    published_at: str | None = typer.Option(
        None, "--published-at", help="Where the bundle is published (an https address), for the site."
    ),
) -> None:
    """Check a bundle and add it to a board: self-reported from its record, or verified with --rescore
    (which upgrades the self-reported entry of the same bundle in place)."""
    from ewmbench.leaderboard.intake import admit, check_admissible, open_bundle

    if rescore and gt is None:
        fail(EwmbenchError("--rescore needs --gt (the benchmark's ground truth)"))
    if published_at is not None and not published_at.startswith("https://"):
        fail(EwmbenchError(f"--published-at must be an https address, got {published_at!r}"))
    with tempfile.TemporaryDirectory(prefix="ewmbench-intake-") as tmp:
        workdir = Path(tmp) / "bundle"
        workdir.mkdir()
        try:
            checked = open_bundle(bundle, workdir, need_record=not rescore)
            check_admissible(checked, board, "verified" if rescore else "self-reported")  # before any scoring
            rescored = _rescore(checked, board, gt, Path(tmp), detector_weights, device) if rescore else None
            # portable: the bundle by its file name (its sha256 and address are in the entry), the
            # benchmark's data by name when it has one
            gt_name = str(gt) if gt is not None and str(gt) in ("sample", "ewmbench") else "GT"
            command = shlex.join(
                ["ewmbench", "leaderboard", "add", checked.archive.name, "--rescore", "--gt", gt_name]
            )
            entry = admit(
                checked,
                board,
                rescored=rescored,
                command=command if rescore else None,
                published_at=published_at,
            )
        except EwmbenchError as exc:
            _refuse(exc)
    replaced = entry.provenance.get("replaces")
    console.print(
        f"[green]added[/] {entry.id} ({entry.kind}) to {for_rich(board)}"
        + (f"; it replaces {for_rich(replaced)}" if replaced else ""),
        soft_wrap=True,
    )


def _rescore(bundle, board: Path, gt: Path, tmp: Path, detector_weights, device):
    """Score the bundle's videos under the board's protocol, in the private folder; returns the record."""
    import shutil

    from ewmbench.leaderboard.entries import slug
    from ewmbench.leaderboard.rule import load_rule
    from ewmbench.run import RunConfig, evaluate

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
    console.print(
        f"rescoring {len(bundle.videos)} video(s) under {for_rich(rule.protocol)} against {for_rich(gt)} "
        "(tracking, then every metric the protocol defines; this takes a while)"
    )
    return evaluate(config, show_progress=True).record


@board_app.command("build")
def build_command(
    board: Path = BoardOption,
    output: Path = typer.Option(Path("site"), "--output", "-o", help="Folder for the static site."),
    rule: str | None = typer.Option(
        None, "--rule", help="Rank by another of the board's rules (rules/<name>.yaml), e.g. ewmscore."
    ),
) -> None:
    """Build the board's static site (index.html, a page per entry, leaderboard.csv/.json)."""
    from ewmbench.leaderboard.site import build_site

    index = build_site(board, output, rule_name=rule)
    console.print(f"[green]site written:[/] {for_rich(index)}")


@app.command("export")
def export_command(
    run: Path = typer.Argument(..., help="Run folder (from `ewmbench run` or `ewmbench evaluate`)."),
    fmt: str = typer.Option(
        ...,
        "--format",
        help="vbench: <model>_eval_results.json, every video; worldarena: output/generated_results.json, "
        "one video per episode, as WorldArena's aggregate_results.py reads it.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write into."),
) -> None:
    """Write a run's per-video results in VBench's or WorldArena's results format."""
    from ewmbench.leaderboard.export import export_run

    path = export_run(run, output, fmt)
    console.print(f"[green]written:[/] {for_rich(path)}")
