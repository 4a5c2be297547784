"""What every command module shares: the application, the console, option parsing and printing.

Exit statuses (README, "When something is wrong"): 0 everything asked for was done; 1 the command
ran but found problems in the input (items not scored, listed with their paths); 2 refused before
any work: an option, a configuration or an input is invalid, nothing was written; 3 the machine
stopped it (disk full, read-only, permission): what was written is kept and a rerun resumes;
130 interrupted (Ctrl-C): a rerun of the same command resumes.
"""

from __future__ import annotations

import errno
import math
from typing import Any

import click
import typer
from rich.console import Console
from rich.table import Table

from ewmbench import registry
from ewmbench.data.layout import id_sort_key
from ewmbench.errors import ConfigError, EwmbenchError
from ewmbench.protocols import DEFAULT_PROTOCOL
from ewmbench.text import for_rich


def escape(text: str) -> str:
    """User text (paths, names, messages) made safe to print through the console: control
    characters and rich markup escaped (``ewmbench.text.for_rich``); a message's own line breaks kept."""
    return for_rich(text, keep_newlines=True)


EXIT_PROBLEMS, EXIT_REFUSED, EXIT_MACHINE, EXIT_INTERRUPTED = 1, 2, 3, 130


class GuardedGroup(typer.core.TyperGroup):
    """Turns what reaches the top of any command into a one-line message and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]; rerun the same command to resume")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except EwmbenchError as exc:
            fail(exc)
        except OSError as exc:
            machine_failure(exc)
        except MemoryError:
            err_console.print(
                "[bold red]error:[/] out of memory; use fewer or smaller inputs (--trials, frame sizes)"
            )
            raise typer.Exit(EXIT_MACHINE) from None


def machine_failure(exc: OSError) -> None:
    """Disk full, read-only or forbidden: say where, keep what was written, exit 3."""
    where = escape(str(exc.filename or "the output folder"))
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        message = f"no space left on {where}; what was written is kept: free space and rerun the same command to resume"
    elif exc.errno == errno.EROFS:
        message = f"{where} is on a read-only file system; give --output a writable folder (or work on a writable copy)"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        message = (
            f"permission denied: {where}; give --output a folder you can write (or work on a writable copy)"
        )
    else:
        raise exc
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(EXIT_MACHINE) from None


app = typer.Typer(
    help="Benchmark and evaluation toolkit for embodied world models (EWMBench).",
    no_args_is_help=True,
    cls=GuardedGroup,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        import ewmbench

        print(f"ewmbench {ewmbench.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Benchmark and evaluation toolkit for embodied world models (EWMBench)."""


def fail(exc: Exception) -> None:
    """A refusal: one ``error:`` line per problem (pre-flight lists every problem it found)."""
    for problem in getattr(exc, "problems", None) or [exc]:
        err_console.print(f"[bold red]error:[/] {escape(str(problem))}", soft_wrap=True)
    raise typer.Exit(EXIT_REFUSED)


# ---------------------------------------------------------------- run, evaluate


def parse_options(pairs: list[str]) -> dict:
    try:
        return registry.parse_options(pairs)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model-option") from None


def parse_size(text: str | None, minimum: int = 8) -> tuple[int, int] | None:
    """``--size WIDTHxHEIGHT`` (as every command takes it, e.g. ``640x480``) -> (width, height)."""
    if not text:
        return None
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(
            f"expected WIDTHxHEIGHT such as 640x480, got {text!r}", param_hint="--size"
        ) from None
    if width < minimum or height < minimum:
        raise typer.BadParameter(
            f"size must be at least {minimum}x{minimum}, got {text!r}", param_hint="--size"
        )
    return width, height


def task_label(task: str, names: dict[str, str]) -> str:
    """``1 pick_place`` where the dataset names its tasks, ``task 1`` where it does not."""
    return f"{task} {names[task]}" if task in names else f"task {task}"


def print_result(result) -> None:
    summary = result.summary
    table = Table(
        title=escape(
            f"{summary['model']} under {summary['protocol']['name']} ({summary['counts']['trials']} trials)"
        )
    )
    names = summary.get("task_names", {})
    tasks = sorted({t for per in summary["per_task"].values() for t in per}, key=id_sort_key)
    table.add_column("metric")
    table.add_column("overall", justify="right")
    for task in tasks:
        table.add_column(escape(task_label(task, names)), justify="right")
    undetected = undetected_gripper_notes(summary)
    for column, value in summary["overall"].items():
        per_task = summary["per_task"].get(column, {})
        name = f"{column} †" if undetected and column in TRACK_COLUMNS else column
        table.add_row(name, fmt(value), *(fmt(per_task.get(t)) for t in tasks))
    print_table(table)
    if undetected:
        first = undetected[0]
        console.print(
            f"† {len(undetected)} trial(s) scored 0 because no gripper was detected in the generated video "
            f"(e.g. {escape(str(first['task_id']))}/{escape(str(first['episode_id']))}/{escape(str(first['trial_id']))}); "
            "listed in summary.json (notes)",
            soft_wrap=True,
        )
    print_special_values(summary)
    print_skipped(summary["skipped_metrics"])
    failed = [n for n in summary["notes"] if n["status"] != "ok"]
    if failed:
        console.print(
            f"[yellow]{len(failed)} item(s) not scored[/]; see {escape(str(result.output / 'summary.json'))} (notes)"
        )
        for note in failed[:5]:
            console.print(
                f"  {note['metric']}: {escape(str(note.get('reason') or note['status']))}", soft_wrap=True
            )
    print_problems(summary["problems"])
    mismatched = summary.get("trial_warnings", [])
    if mismatched:
        first = mismatched[0]
        console.print(
            f"[yellow]warning[/] {len(mismatched)} generated trial(s) differ from their ground truth in length or size "
            f"(e.g. {escape(first['task_id'])}/{escape(first['episode_id'])}/{escape(first['trial_id'])}: {escape(first['message'])}); "
            "listed in summary.json (trial_warnings)",
            soft_wrap=True,
        )
    console.print(f"scored {escape(summary.get('scored', ''))}")
    console.print(f"results in [bold]{escape(str(result.output))}[/]")


TRACK_COLUMNS = ("dyn", "hsd", "ndtw")


def undetected_gripper_notes(summary: dict) -> list[dict]:
    """The notes of trials whose motion scores are 0 because no gripper was found in the video."""
    from ewmbench.metrics import GRIPPER_NOT_DETECTED

    return [
        note
        for note in summary.get("notes", [])
        if any(GRIPPER_NOT_DETECTED in warning for warning in note.get("warnings") or [])
    ]


def print_table(table: Table) -> None:
    """A table as it is where it fits the terminal; otherwise (a narrow terminal, or piped output at
    its 80 columns) one record per block, so that no name is cut or wrapped into fragments:
    the first column's value as the block's heading, then one ``column: value`` line per cell."""
    from rich.measure import Measurement

    unbounded = console.options.update(max_width=1_000_000)
    if Measurement.get(console, unbounded, table).maximum <= console.width:
        console.print(table)
        return
    if table.title:
        console.print(table.title, style="bold", soft_wrap=True)
    headers = [str(c.header) for c in table.columns]
    columns = [list(c.cells) for c in table.columns]
    for row in range(table.row_count):
        cells = [str(column[row]) if row < len(column) else "" for column in columns]
        console.print(cells[0], style="bold", soft_wrap=True)
        for header, cell in zip(headers[1:], cells[1:]):
            if cell:
                console.print(f"  {header}: {cell}", soft_wrap=True)


def print_special_values(summary: dict) -> None:
    """Say what an ``inf`` or ``nan`` in the table means, where the table shows one."""
    values = [summary["overall"].get(c) for c in summary["overall"]]
    values += [v for per in summary["per_task"].values() for v in per.values()]
    numbers = [v for v in values if isinstance(v, float)]
    if any(math.isinf(v) for v in numbers):
        console.print(
            "[dim]inf: PSNR of identical frames. Under ewmbench-v1 (the official tool's rule) one frame "
            "equal to its ground truth, such as a copied context frame, makes a trial's PSNR infinite; "
            "ewmbench-v2 caps it at 100 dB per frame (README: Protocols).[/]",
            soft_wrap=True,
        )
    if any(math.isnan(v) for v in numbers):
        console.print("[dim]nan: no value could be computed; summary.json (notes) says why per item.[/]")


def print_skipped(skipped: dict[str, dict], ahead: bool = False) -> None:
    """Skipped metrics in one line, each reason once; `ewmbench metrics` lists the fetch commands.
    ``ahead``: said by a dry run, of metrics the run will skip."""
    if not skipped:
        return
    by_reason: dict[str, list[str]] = {}
    for name, why in skipped.items():
        by_reason.setdefault(_reason_kind(why["reason"]), []).append(name)
    parts = [f"{', '.join(names)} ({escape(reason)})" for reason, names in by_reason.items()]
    console.print(
        f"[yellow]{'will skip' if ahead else 'skipped'}[/] {len(skipped)} metric(s): {'; '.join(parts)}; "
        "[bold]ewmbench metrics[/] shows what each needs and the command that fetches it",
        soft_wrap=True,
    )


def _reason_kind(reason: str) -> str:
    """A skip reason in short, so that metrics missing different weights share one entry."""
    if reason.startswith("weight ") and (" is not in " in reason or " does not exist" in reason):
        return "weights not downloaded"
    first = reason.split("; ")[0]
    return first if len(first) <= 80 else first[:77] + "..."


def print_problems(problems: list[dict]) -> None:
    for problem in problems:
        style = "red" if problem["severity"] == "error" else "yellow"
        console.print(
            f"[{style}]{problem['severity']}[/] {escape(problem['path'])}: {escape(problem['message'])}",
            soft_wrap=True,
        )


def result_exit_status(result) -> int:
    """0 when everything paired was scored; 1 when nothing was, or an input had an error."""
    summary = result.summary
    counts = summary["counts"]
    if counts.get("trials_scored", 0) == 0:
        err_console.print(
            f"[bold red]error:[/] nothing was scored ({escape(summary.get('scored', ''))}); see the problems and skipped metrics above"
        )
        return EXIT_PROBLEMS
    errors = any(p["severity"] == "error" for p in summary["problems"])
    failed = any(n["status"] == "failed" for n in summary["notes"])
    return EXIT_PROBLEMS if errors or failed else 0


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.4g}" if abs(value) >= 1000 else f"{value:.3f}"


MetricsOption = typer.Option(
    None, "--metrics", help="Comma-separated metric names (default: every metric of the protocol)."
)
ProtocolOption = typer.Option(
    DEFAULT_PROTOCOL,
    "--protocol",
    help="ewmbench-v1 (official numbers), ewmbench-v2 (corrected), or a protocol .yaml.",
)


def metric_list(metrics: str | None) -> list[str] | None:
    """``None`` (the protocol's metrics) when the option is absent; ``[]`` (refused later, naming
    --metrics) when it is given but names nothing, e.g. ``--metrics ,``."""
    return None if metrics is None else [m.strip() for m in metrics.split(",") if m.strip()]


SplitOption = typer.Option(
    None, "--split", help="Split file (`ewmbench data curate`): only its episodes are run and scored."
)
DryRunOption = typer.Option(
    False,
    "--dry-run",
    help="Check everything (options, protocol, metrics, device, datasets, output) and stop; writes nothing.",
)
DeviceOption = typer.Option(None, "--device", help="cpu, cuda, cuda:1, mps (default: cuda when available).")
ExecutorOption = typer.Option(
    "serial",
    "--executor",
    help="How scoring runs: serial, processes (--workers N) or ray (RAY_ADDRESS, else a local Ray). Same rows from each.",
)
WorkersOption = typer.Option(
    None,
    "--workers",
    help="Worker processes for --executor processes or a local Ray (default: the CPU count).",
)
NumGpusOption = typer.Option(0.0, "--num-gpus", help="GPUs per Ray worker (--executor ray).")


def execute(config, kind: str, dry_run: bool = False):
    """Pre-flight, then (unless a dry run) the run (``kind="run"``) or evaluation itself, its table
    printed; exits 1 when items were not scored. Errors reach the group's handler."""
    from ewmbench.run.preflight import preflight

    plan = preflight(config, kind)
    if dry_run:
        print_plan(plan)
        return None
    from ewmbench.run import runner

    result = runner.run(config, plan=plan) if kind == "run" else runner.evaluate(config, plan=plan)
    print_result(result)
    status = result_exit_status(result)
    if status:
        raise typer.Exit(status)
    return result


def print_plan(plan) -> None:
    console.print("[green]all checks passed[/]; the command would:")
    for line in plan.describe():
        console.print(f"  {escape(line)}", soft_wrap=True)
    print_skipped(plan.unavailable, ahead=True)
    for warning in plan.warnings:
        console.print(f"[yellow]warning[/] {escape(warning)}", soft_wrap=True)
