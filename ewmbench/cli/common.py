"""What every command module shares: the application, the console, option parsing and printing."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ewmbench.protocols import DEFAULT_PROTOCOL

app = typer.Typer(help="Benchmark and evaluation toolkit for embodied world models (EWMBench).", no_args_is_help=True)
console = Console()


def fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
    raise typer.Exit(2)


# ---------------------------------------------------------------- run, evaluate


def parse_options(pairs: list[str]) -> dict:
    import yaml

    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--model-option")
        key, value = pair.split("=", 1)
        options[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return options


def print_result(result) -> None:
    summary = result.summary
    table = Table(title=f"{summary['model']} under {summary['protocol']['name']} ({summary['counts']['trials']} trials)")
    table.add_column("metric")
    table.add_column("overall", justify="right")
    for task in sorted({t for per in summary["per_task"].values() for t in per}):
        table.add_column(f"task {task}", justify="right")
    tasks = sorted({t for per in summary["per_task"].values() for t in per})
    for column, value in summary["overall"].items():
        per_task = summary["per_task"].get(column, {})
        table.add_row(column, fmt(value), *(fmt(per_task.get(t)) for t in tasks))
    console.print(table)
    for name, why in summary["skipped_metrics"].items():
        fix = f" -> run: [bold]{why['fix']}[/]" if why["fix"] else ""
        console.print(f"[yellow]skipped[/] {name}: {why['reason']}{fix}", soft_wrap=True)
    failed = [n for n in summary["notes"] if n["status"] != "ok"]
    if failed:
        console.print(f"[yellow]{len(failed)} item(s) not scored[/]; see {result.output / 'summary.json'} (notes)")
    for problem in summary["problems"]:
        style = "red" if problem["severity"] == "error" else "yellow"
        console.print(f"[{style}]{problem['severity']}[/] {problem['path']}: {problem['message']}", soft_wrap=True)
    console.print(f"results in [bold]{result.output}[/]")


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.4g}" if abs(value) >= 1000 else f"{value:.3f}"


MetricsOption = typer.Option(None, "--metrics", help="Comma-separated metric names (default: every metric of the protocol).")
ProtocolOption = typer.Option(DEFAULT_PROTOCOL, "--protocol", help="ewmbench-v1 (official numbers), ewmbench-v2 (corrected), or a protocol .yaml.")


def metric_list(metrics: Optional[str]) -> Optional[list[str]]:
    return [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
