"""`ewmbench weights ...`: list, download and verify pretrained weights."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ewmbench.cli.common import app, console, escape, fail, print_table
from ewmbench.errors import EwmbenchError

weights_app = typer.Typer(help="Model weights: list, download, verify.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
def weights_list_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List every weight the toolkit uses: source, file, whether it is cached here and where."""
    from ewmbench.perception.weights import weight_specs, weight_status

    rows = [weight_status(weight_id).as_dict() for weight_id in sorted(weight_specs())]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Weights")
    for column in ("id", "repo@revision", "file", "cached", "local path", "used by"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["id"],
            f"{row['repo']}@{row['revision']}",
            row["file"],
            "[green]yes[/]" if row["cached"] else "[yellow]no[/]",
            row["path"] or "-",
            ", ".join(row["used_by"]),
        )
    print_table(table)
    if not all(row["cached"] for row in rows):
        console.print(
            "Fetch missing weights with [bold]ewmbench weights download ID[/] (or --all) on a connected machine."
        )


@weights_app.command("download")
def weights_download_command(
    weight_id: str | None = typer.Argument(None, help="Weight id (see `ewmbench weights list`)."),
    all_weights: bool = typer.Option(False, "--all", help="Download every weight."),
) -> None:
    """Fetch weights into the Hugging Face cache (copy that cache to an offline machine)."""
    from ewmbench.perception.weights import download_weight, weight_specs

    if bool(weight_id) == all_weights:
        fail(EwmbenchError("give one weight id or --all"))
    ids = sorted(weight_specs()) if all_weights else [weight_id]
    failures = 0
    for item in ids:
        outcome = download_weight(item)
        if outcome.ok:
            console.print(f"[green]ok[/] {escape(item)}: {escape(outcome.path)}")
        else:
            failures += 1
            console.print(f"[red]failed[/] {escape(item)}: {escape(outcome.problem)}")
    if failures:
        raise typer.Exit(1)


@weights_app.command("verify")
def weights_verify_command(
    weight_id: str | None = typer.Argument(None, help="Weight id; all weights when omitted."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check weights are present, match their published SHA-256 and load (exit 1 if any fails)."""
    from ewmbench.perception.verify import verify
    from ewmbench.perception.weights import weight_specs

    results = [verify(item) for item in ([weight_id] if weight_id else sorted(weight_specs()))]
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for result in results:
            console.print(f"{'[green]ok[/]' if result.ok else '[red]not ok[/]'} {escape(result.id)}")
            for line in result.checks:
                console.print(f"    {escape(line)}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)
