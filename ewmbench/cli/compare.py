"""`ewmbench compare` and `ewmbench report`: the ablation report of runs, and the report of one run."""

from __future__ import annotations

from pathlib import Path

import typer

from ewmbench.cli.common import app, console, escape, fail, fmt, print_table
from ewmbench.errors import EwmbenchError

LevelOption = typer.Option(0.95, "--level", help="Confidence level of the intervals.")
ResamplesOption = typer.Option(2000, "--resamples", help="Bootstrap resamples.")
SeedOption = typer.Option(0, "--seed", help="Seed of the bootstrap and of sampled permutation tests.")
FiguresOption = typer.Option(
    True, "--figures/--no-figures", help="Draw the figures (radar, per-task bars, agreement, worst episodes)."
)
WorstOption = typer.Option(2, "--worst", min=1, help="Worst episodes shown per metric and run.")
FramesOption = typer.Option(6, "--frames", min=2, help="Evenly spaced frames per strip.")


@app.command("compare")
def compare_command(
    runs: list[Path] = typer.Argument(
        ...,
        help="Run folders (or record.json files) to compare; the first is the baseline unless --baseline.",
    ),
    output: Path = typer.Option(
        ..., "--output", help="Report folder: report.html, report.json, report.csv, figures/."
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", help="The run the others are compared with (its folder or label)."
    ),
    allow_mismatch: bool = typer.Option(
        False,
        "--allow-mismatch",
        help="Compare runs of other protocols, datasets or episode sets on their common episodes (said at the top of the report).",
    ),
    alpha: float = typer.Option(
        0.05, "--alpha", help="Significance level, after Holm correction across the metrics."
    ),
    level: float = LevelOption,
    resamples: int = ResamplesOption,
    seed: int = SeedOption,
    figures: bool = FiguresOption,
    worst: int = WorstOption,
    frames: int = FramesOption,
) -> None:
    """Compare runs: CIs per metric and task, paired differences from the baseline, the report."""
    from ewmbench.api import compare

    if len(runs) < 2:
        fail(typer.BadParameter("compare needs at least two runs; use `ewmbench report RUN` for one"))
    try:
        comparison = compare(
            runs,
            baseline,
            allow_mismatch=allow_mismatch,
            output=output,
            level=level,
            resamples=resamples,
            seed=seed,
            alpha=alpha,
            figures=figures,
            worst=worst,
            frames=frames,
        )
    except (EwmbenchError, ValueError) as exc:
        fail(exc)
    print_comparison(comparison)
    console.print(f"report in [bold]{escape(output / 'report.html')}[/]")


@app.command("report")
def report_command(
    run: Path = typer.Argument(..., help="Run folder (or record.json file)."),
    output: Path = typer.Option(
        ..., "--output", help="Report folder: report.html, report.json, report.csv, figures/."
    ),
    level: float = LevelOption,
    resamples: int = ResamplesOption,
    seed: int = SeedOption,
    figures: bool = FiguresOption,
    worst: int = WorstOption,
    frames: int = FramesOption,
) -> None:
    """The report of one run: values with CIs per metric and task, figures, worst episodes."""
    from ewmbench.api import compare

    try:
        comparison = compare(
            [run],
            output=output,
            level=level,
            resamples=resamples,
            seed=seed,
            figures=figures,
            worst=worst,
            frames=frames,
        )
    except (EwmbenchError, ValueError) as exc:
        fail(exc)
    print_comparison(comparison)
    console.print(f"report in [bold]{escape(output / 'report.html')}[/]")


def print_comparison(comparison) -> None:
    """The overall table: each run's value [CI]; each other run's difference from the baseline
    [CI], green/red and marked where significant after Holm correction."""
    from rich.table import Table

    from ewmbench.compare.report import OVERALL, difference_text

    s = comparison.settings
    title = f"{' vs '.join(comparison.labels)}: {len(comparison.episodes)} episodes, {s.level:.0%} CIs"
    table = Table(title=title)
    table.add_column("metric")
    for label in comparison.labels:
        table.add_column(
            label + (" (baseline)" if label == comparison.baseline and len(comparison.labels) > 1 else ""),
            justify="right",
        )
        if label != comparison.baseline:
            table.add_column(f"{label} - {comparison.baseline}", justify="right")
    for metric in comparison.metrics:
        arrow = "↑" if metric.direction == "higher" else "↓"
        cells = [f"{metric.column} {arrow}"]
        for label in comparison.labels:
            interval = comparison.values.get((OVERALL, metric.column, label))
            run_value = comparison.run_level.get((metric.column, label))
            if interval is not None:
                cells.append(f"{fmt(interval.estimate)} [dim][{fmt(interval.low)}, {fmt(interval.high)}][/]")
            elif run_value is not None:
                cells.append(f"{fmt(run_value)} [dim](run-level)[/]")
            else:
                cells.append("[dim]missing[/]")
            if label == comparison.baseline:
                continue
            diff = comparison.differences.get((OVERALL, metric.column, label))
            if diff is None:
                cells.append("[dim]-[/]")
                continue
            verdict = diff.verdict(s.alpha)
            value, interval, p_text = difference_text(diff)
            text = f"{value} [dim]{interval} {p_text}[/]"
            if verdict == "better":
                text = f"[green]{text} ▲[/]"
            elif verdict == "worse":
                text = f"[red]{text} ▼[/]"
            cells.append(text)
        table.add_row(*cells)
    for note in comparison.notes:
        console.print(f"[yellow]note[/] {escape(note)}", soft_wrap=True)
    print_table(table)
    if len(comparison.labels) > 1:
        console.print(
            f"▲/▼: significantly better/worse than {comparison.baseline} (paired sign-flip test over episodes, "
            f"Holm-corrected across metrics, p < {s.alpha}); a difference's interval is inverted from the same "
            f"test, so it excludes 0 exactly when p < {1 - s.level:.2g}; ↑/↓: higher/lower is better.",
            soft_wrap=True,
        )
