"""`ewmbench serve` (a world-model service) and `ewmbench serve check URL` (its conformance report)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from ewmbench.cli.common import app, console, escape, fail, parse_options, parse_size
from ewmbench.errors import ConfigError, EwmbenchError

serve_app = typer.Typer(help="Serve a world model over the WorldArena 2.0 Track 2 API, or check a service.")
app.add_typer(serve_app, name="serve")


@serve_app.callback(invoke_without_command=True)
def serve_command(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None, "--model", help="World-model adapter to serve (see `ewmbench models`)."
    ),
    model_option: list[str] = typer.Option(
        [],
        "--model-option",
        help="Adapter option key=value (repeatable); dataset=NAME_OR_DIR gives oracles (sim, ground-truth) their episodes.",
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; anything but loopback needs a token."
    ),
    port: int = typer.Option(8000, "--port"),
    size: str | None = typer.Option(
        None,
        "--size",
        help="Profile image size WIDTHxHEIGHT (default: the dataset's, the model's native size, or 640x480).",
    ),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        help="File holding the bearer token (default: the EWMBENCH_SERVE_TOKEN variable).",
    ),
    max_batch_size: int = typer.Option(4, "--max-batch-size", min=1, max=256),
    max_request_mb: float = typer.Option(64.0, "--max-request-mb", min=0.01, max=4096),
    max_concurrency: int = typer.Option(
        2, "--max-concurrency", min=1, max=256, help="Requests in flight; more are answered 429 OVERLOADED."
    ),
    timeout_ms: int = typer.Option(120_000, "--recommended-timeout-ms", min=1),
    device: str | None = typer.Option(
        None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda when the model needs one)."
    ),
    profile_id: str = typer.Option(
        "default",
        "--profile-id",
        help="The profile_id served (the organisers' official profile, e.g. official-profile).",
    ),
    model_version: str | None = typer.Option(
        None,
        "--model-version",
        help="The model_version announced and required (default: the adapter's name and a hash of its options).",
    ),
    action_dim: int | None = typer.Option(
        None,
        "--action-dim",
        min=1,
        max=4096,
        help="Action dimension of the profile, for a model that ignores actions (default: the dataset's, else 14); "
        "an action-conditioned adapter declares its own.",
    ),
    action_representation: str | None = typer.Option(
        None,
        "--action-representation",
        help="The profile's action.representation text (default: the adapter's).",
    ),
    oracle_reads_sample_id: bool = typer.Option(
        False,
        "--oracle-reads-sample-id",
        help="Allow an oracle model (sim, ground-truth), which finds its episode from each sample_id: the API "
        "forbids reading ids, so for local tests only.",
    ),
    max_response_mb: float = typer.Option(
        128.0,
        "--max-response-mb",
        min=0.01,
        max=4096,
        help="Largest response; bounds the advertised prediction frames.",
    ),
    body_timeout_s: float = typer.Option(
        10.0,
        "--body-timeout-s",
        min=0.1,
        max=3600,
        help="Seconds of grace for a body, after which it must average 64 KiB/s or more (then 408).",
    ),
    header_timeout_s: float = typer.Option(
        10.0,
        "--header-timeout-s",
        min=0.1,
        max=3600,
        help="Time a client has to send its headers (then 408).",
    ),
    ssl_certfile: Path | None = typer.Option(
        None, "--ssl-certfile", help="Serve HTTPS with this certificate (PEM)."
    ),
    ssl_keyfile: Path | None = typer.Option(
        None, "--ssl-keyfile", help="The certificate's private key (PEM)."
    ),
) -> None:
    """Serve a world-model adapter (health, capabilities, predict) until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None:
        raise typer.BadParameter("give the model to serve, e.g. --model static", param_hint="--model")
    from ewmbench.models.wire import Limits
    from ewmbench.serve.app import ServeConfig, read_token, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = parse_options(model_option)
    dataset = options.pop("dataset", None)
    config = ServeConfig(
        model=model,
        model_options=options,
        dataset=None if dataset is None else str(dataset),
        size=parse_size(size)[::-1] if size else None,  # the profile's (height, width)
        limits=Limits(max_batch_size, int(max_request_mb * 2**20), max_concurrency, timeout_ms),
        device=device,
        token=read_token(token_file),
        profile_id=profile_id,
        model_version=model_version,
        action_dim=action_dim,
        action_representation=action_representation,
        oracle_reads_sample_id=oracle_reads_sample_id,
        max_response_bytes=int(max_response_mb * 2**20),
        header_timeout_s=header_timeout_s,
        body_timeout_s=body_timeout_s,
    )
    serve(config, host, port, ssl_certfile, ssl_keyfile)


@serve_app.command("check")
def check_command(
    url: str = typer.Argument(..., help="Base URL of the service, http(s)://HOST:PORT."),
    token_env: str = typer.Option(
        "EWMBENCH_REMOTE_TOKEN",
        "--token-env",
        help="Environment variable holding the bearer token (unset: none).",
    ),
    requests: int = typer.Option(
        20, "--requests", min=1, max=10_000, help="Predictions timed for the latency percentiles."
    ),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per request."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    manifest: Path | None = typer.Option(
        None,
        "--manifest",
        help="Item 10: the capabilities saved before a restart, compared; saved there when the file does not exist.",
    ),
    log_file: Path | None = typer.Option(
        None,
        "--log-file",
        help="Item 9: the service's log, read for the token, payloads and raw control characters.",
    ),
) -> None:
    """Check a Track 2 service against the API document's section-12 checklist (each check named by
    its item number); exit 1 when any check fails."""
    import os

    from ewmbench.serve.check import run_check

    try:
        report = run_check(
            url, os.environ.get(token_env) or None, requests, timeout, manifest=manifest, log_file=log_file
        )
    except (EwmbenchError, ConfigError) as exc:
        fail(exc)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for check in report.checks:
            mark = "[green]pass[/]" if check.ok else "[bold red]FAIL[/]"
            console.print(
                f"{mark} {escape(check.name)}"
                + (f" [dim]({escape(check.detail)})[/]" if check.detail else ""),
                soft_wrap=True,
                highlight=False,
            )
        if report.latency_ms:
            console.print("latency ms: " + ", ".join(f"{k} {v}" for k, v in report.latency_ms.items()))
        console.print("[green]conforms[/]" if report.ok else "[bold red]does not conform[/]")
    if not report.ok:
        raise typer.Exit(1)
