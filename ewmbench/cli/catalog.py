"""`ewmbench models` and `ewmbench metrics`: what can be run, and whether it can run here."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ewmbench.cli.common import ProtocolOption, app, console, execute, fail, parse_options, print_table
from ewmbench.errors import ConfigError, EwmbenchError
from ewmbench.files import cache_root
from ewmbench.models import model_sources
from ewmbench.models.registry import load_model_class
from ewmbench.protocols import resolve_protocol

models_app = typer.Typer(
    help="List world-model adapters: conditioning, views, needs, options, and how each has been tested.",
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")


@models_app.callback()
def models_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List world-model adapters: conditioning, views, needs, options, and how each has been tested.
    `ewmbench models try NAME` checks that one runs here."""
    if ctx.invoked_subcommand is not None:
        return

    rows = []
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


@models_app.command("try")
def try_command(
    name: str = typer.Argument(
        ..., help="An adapter: ltx-video, cosmos-predict2, or one that needs no weights."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Run folder (default: a fresh folder under the cache, replaced each time)."
    ),
) -> None:
    """Check an install: run NAME on the sample on the CPU (one trial per episode; PSNR, SSIM).

    The diffusers adapters (ltx-video, cosmos-predict2) run a tiny random-weight pipeline built here: their videos are noise, but every stage runs as it will with the real weights."""  # noqa: E501
    import shutil

    from ewmbench.models.tiny import TRIABLE, tiny_pipeline
    from ewmbench.run import RunConfig

    cls = load_model_class(name)
    if name not in TRIABLE and not _runs_as_is(name):
        fail(
            ConfigError(
                f"models try {name}: needs {', '.join(cls.needs_also) or 'weights or options'}; `models try` builds "
                f"tiny random-weight pipelines for {' and '.join(sorted(TRIABLE))}, and runs the adapters that "
                f"need nothing as they are ({', '.join(n for n in sorted(model_sources()) if _runs_as_is(n))})"
            )
        )
    options: dict = {}
    if name in TRIABLE:
        console.print(f"building a tiny random-weight {name} pipeline (once) ...")
        folder = tiny_pipeline(name, cache_root() / "tiny-pipelines")
        options = {"pretrained": str(folder), **parse_options(list(TRIABLE[name][1]))}
    run_folder = output or cache_root() / "tiny-runs" / name
    if output is None and run_folder.exists():
        shutil.rmtree(run_folder)
    config = RunConfig(
        output=run_folder,
        metrics=["psnr", "ssim"],
        model=name,
        model_options=options,
        dataset="sample",
        trials=1,
        device="cpu",
    )
    result = execute(config, "run")
    console.print(
        f"[green]{name} runs here[/]: {result.summary['counts']['trials_scored']} trial(s) generated and scored"
        + (
            " (tiny random weights: the frames are noise, the numbers mean nothing)"
            if name in TRIABLE
            else ""
        )
    )


def _runs_as_is(name: str) -> bool:
    """The adapter needs no weights, no other code and no option."""

    cls = load_model_class(name)
    if cls.needs_weights or cls.needs_also:
        return False
    try:
        cls()
    except (EwmbenchError, TypeError):
        return False
    return True


@app.command("metrics")
def metrics_command(
    protocol: str = ProtocolOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List metrics: group, level, the columns they write under a protocol, and whether they can run here."""
    from ewmbench.metrics import metric_registry
    from ewmbench.metrics.base import unavailable

    loaded = resolve_protocol(protocol)
    rows = []
    for name, cls in metric_registry().items():
        if name not in loaded.metrics:
            continue
        metric, settings = cls(), loaded.settings(name)
        missing = unavailable([metric], loaded.settings).get(name)
        status = "ready" if missing is None else missing["fix"] or missing["reason"]
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
