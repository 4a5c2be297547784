"""`ewmbench models` and `ewmbench metrics`: what can be run, and whether it can run here."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ewmbench.cli.common import ProtocolOption, app, fail, print_table
from ewmbench.errors import EwmbenchError


@app.command("models")
def models_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List world-model adapters: conditioning, views, needs, options, and how each has been tested."""
    from ewmbench.models import model_sources
    from ewmbench.models.base import load_model_class

    rows = []
    try:
        for name, source in sorted(model_sources().items()):
            cls = load_model_class(name)
            rows.append(
                {
                    "name": name,
                    "source": source,
                    "description": cls.description,
                    **cls.capabilities.describe(),
                    "needs_weights": cls.needs_weights,
                    "needs_gpu": cls.needs_gpu,
                    "oracle": cls.oracle,
                    "needs_also": list(cls.needs_also),
                    "options": [o.describe() for o in cls.options],
                    "status": cls.status,
                }
            )
    except EwmbenchError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="World models")
    for column in ("name", "conditioned on", "views", "frames", "needs", "options", "status"):
        table.add_column(column)
    for row in rows:
        needs = [n for n, flag in (("weights", row["needs_weights"]), ("GPU", row["needs_gpu"])) if flag]
        frames = row["frame_rule"] + (f", chunks of {row['chunk_frames']}" if row["chunk_frames"] else "")
        views = ", ".join(row["views"]) if isinstance(row["views"], list) else row["views"]
        needs += row["needs_also"]
        if row["oracle"]:
            needs.append("the GT episode (oracle)")
        options = ", ".join(o["name"] for o in row["options"]) or "-"
        table.add_row(
            row["name"],
            ", ".join(row["conditioning"]) or "-",
            views,
            frames,
            ", ".join(needs) or "-",
            options,
            row["status"],
        )
    print_table(table)


@app.command("metrics")
def metrics_command(
    protocol: str = ProtocolOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List metrics: group, level, the columns they write under a protocol, and whether they can run here."""
    from ewmbench.metrics import metric_registry
    from ewmbench.protocols import resolve_protocol

    try:
        loaded = resolve_protocol(protocol)
    except EwmbenchError as exc:
        fail(exc)
    rows = []
    for name, cls in metric_registry().items():
        if name not in loaded.metrics:
            continue
        metric, settings = cls(), loaded.settings(name)
        try:
            metric.check_available(settings)
            status = "ready"
        except EwmbenchError as exc:
            status = getattr(exc, "fix", "") or str(exc)
        rows.append(
            {
                "name": name,
                "group": cls.group,
                "level": cls.level,
                "columns": list(metric.columns_for(settings)),
                "lower_is_better": sorted(cls.lower_is_better),
                "status": status,
                "description": cls.description,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Metrics under {loaded.name}")
    for column in ("name", "group", "level", "columns", "available here (or the fix)"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["group"], row["level"], ", ".join(row["columns"]), row["status"])
    print_table(table)
