"""`ewmbench policy-eval`: run a policy in a world model; `policy-eval agreement`: trust in its verdicts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ewmbench.cli.common import app, console, escape, fmt, parse_options, parse_size, print_table
from ewmbench.loop.policies import LADDER, POLICIES, parse_policies, parse_policy_spec

policy_app = typer.Typer(
    help="Closed-loop policy evaluation in a world model.", invoke_without_command=True, no_args_is_help=False
)
app.add_typer(policy_app, name="policy-eval")


def _views(views: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in views.split(",") if v.strip()) if views else None


@policy_app.callback()
def policy_eval(
    ctx: typer.Context,
    policy: str | None = typer.Option(
        None, "--policy", help="Policy: scripted, openpi, http, with options as name:k=v,k=v."
    ),
    world_model: str = typer.Option(
        "sim", "--world-model", help="Action-conditioned world model (see `ewmbench models`)."
    ),
    dataset: str = typer.Option("sample", "--dataset", help="'sample' or a dataset folder with sidecars."),
    episodes: int | None = typer.Option(
        None, "--episodes", help="Episodes to run, taken round-robin over tasks (default: all)."
    ),
    horizon: int | None = typer.Option(
        None,
        "--horizon",
        help="Frames per rollout, the initial one included (default: the episode's length).",
    ),
    output: Path = typer.Option(
        Path("runs/policy-eval"),
        "--output",
        help="Output folder (an existing one with the same settings resumes).",
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="state or vlm (default: state where the world model returns state, else vlm)."
    ),
    policy_option: list[str] = typer.Option(
        [], "--policy-option", help="Policy option key=value (repeatable)."
    ),
    world_model_option: list[str] = typer.Option(
        [], "--world-model-option", help="World-model option key=value (repeatable)."
    ),
    judge_option: list[str] = typer.Option([], "--judge-option", help="Judge option key=value (repeatable)."),
    views: str | None = typer.Option(
        None, "--views", help="Comma-separated views to render (default: the episode's)."
    ),
    size: str | None = typer.Option(
        None, "--size", help="Rendered size WIDTHxHEIGHT (default: the dataset's)."
    ),
    seed: int = typer.Option(0, "--seed", help="Base seed of the world model's randomness."),
    device: str | None = typer.Option(
        None,
        "--device",
        help="Where the world model loads: cpu, cuda, cuda:1 ... (default: cuda when available).",
    ),
) -> None:
    """Run a policy in a world model over a dataset's episodes, judge each rollout, write the rollouts."""
    if ctx.invoked_subcommand is not None:
        return
    if policy is None:
        console.print(ctx.get_help())
        raise typer.Exit(2)
    from ewmbench.loop.rollout import LoopConfig, evaluate_policy

    width, height = parse_size(size) or (None, None)
    spec = parse_policy_spec(policy, extra_options=parse_options(policy_option))
    config = LoopConfig(
        spec,
        world_model,
        output,
        dataset=dataset,
        world_model_options=parse_options(world_model_option),
        judge=judge,
        judge_options=parse_options(judge_option),
        episodes=episodes,
        horizon=horizon,
        views=_views(views),
        height=height,
        width=width,
        seed=seed,
        device=device,
    )
    summary = evaluate_policy(config)
    table = Table(title=f"{summary['policy']} in {summary['world_model']} (judge: {summary['judge']})")
    for column in ("task", "episode", "outcome", "score", "state from", "seconds"):
        table.add_column(column)
    for r in summary["episodes"]:
        ok = r["status"] == "ok"
        outcome = (
            ("success" if r["verdict"]["success"] else "no success")
            if ok
            else f"[red]failed[/]: {r['reason']}"
        )
        table.add_row(
            r["task"],
            r["episode"],
            outcome,
            fmt(r["verdict"]["score"]) if ok else "-",
            r.get("state_source", "-"),
            f"{r['seconds']:.1f}",
        )
    print_table(table)
    counts = summary["counts"]
    console.print(
        f"success rate [bold]{fmt(summary['success_rate'])}[/] over {counts['judged']} judged episodes; "
        f"{counts['failed']} failed; rollouts in [bold]{output}[/]"
    )


@policy_app.command("agreement")
def agreement_command(
    policies: str = typer.Option(
        ..., "--policies", help="Comma-separated policies (name:k=v,...), or scripted-ladder."
    ),
    world_model: str = typer.Option(..., "--world-model", help="Action-conditioned world model to measure."),
    reference: str = typer.Option(
        "sim", "--reference", help="Reference environment whose outcome is exact (sim)."
    ),
    dataset: str = typer.Option("sample", "--dataset", help="'sample' or a simulated dataset folder."),
    output: Path = typer.Option(Path("runs/agreement"), "--output", help="Output folder (resumable)."),
    judge: str | None = typer.Option(None, "--judge", help="Judge in the world model: state or vlm."),
    episodes: int | None = typer.Option(
        None, "--episodes", help="Episodes per policy, round-robin over tasks (default: all)."
    ),
    horizon: int | None = typer.Option(
        None, "--horizon", help="Frames per rollout (default: the episode's length)."
    ),
    world_model_option: list[str] = typer.Option(
        [], "--world-model-option", help="World-model option key=value (repeatable)."
    ),
    policy_option: list[str] = typer.Option(
        [], "--policy-option", help="Option key=value given to every policy (repeatable)."
    ),
    judge_option: list[str] = typer.Option([], "--judge-option", help="Judge option key=value (repeatable)."),
    views: str | None = typer.Option(
        None, "--views", help="Comma-separated views the world model renders (default: the episode's)."
    ),
    size: str | None = typer.Option(
        None, "--size", help="Rendered size WIDTHxHEIGHT (default: the dataset's)."
    ),
    seed: int = typer.Option(0, "--seed", help="Base seed of the world model's randomness."),
    device: str | None = typer.Option(
        None, "--device", help="Where the world model loads (default: cuda when available)."
    ),
) -> None:
    """Run each policy in the world model and in the reference simulator; report how well the verdicts agree."""
    from ewmbench.loop.agreement import run_agreement
    from ewmbench.loop.rollout import LoopConfig

    width, height = parse_size(size) or (None, None)
    specs = parse_policies(policies, extra_options=parse_options(policy_option))
    config = LoopConfig(
        specs[0],
        world_model,
        output,
        dataset=dataset,
        world_model_options=parse_options(world_model_option),
        judge=judge,
        judge_options=parse_options(judge_option),
        episodes=episodes,
        horizon=horizon,
        views=_views(views),
        height=height,
        width=width,
        seed=seed,
        device=device,
    )
    result = run_agreement(specs, config, reference=reference)
    table = Table(
        title=f"{world_model} vs {reference}: success rate per policy (judge: {result['world_model']['judge']})"
    )
    for column in ("policy", "world model", "reference", "failed episodes"):
        table.add_column(column, justify="right" if column != "policy" else "left")
    for label, p in result["policies"].items():
        failed = p["world_model_counts"]["failed"] + p["reference_counts"]["failed"]
        table.add_row(label, fmt(p["world_model_success"]), fmt(p["reference_success"]), str(failed))
    print_table(table)
    console.print(
        f"pearson {fmt(result['pearson'])}  spearman {fmt(result['spearman'])}  accuracy {fmt(result['accuracy'])}  "
        f"kappa {fmt(result['kappa'])}  brier {fmt(result['calibration']['brier'])}  over {result['episodes_compared']} episodes; "
        f"{len(result['disagreements'])} disagreements, {len(result['excluded'])} excluded"
    )
    console.print(f"results in [bold]{escape(output / 'agreement.json')}[/]")


@policy_app.command("list")
def list_command() -> None:
    """Policies, the scripted ladder and the judges."""
    from ewmbench.loop.judges import JUDGES

    table = Table(title="policies (--policy NAME:key=value,...)")
    table.add_column("name")
    table.add_column("what it is")
    for name, entry in POLICIES.entries().items():
        table.add_row(name, entry.description)
    print_table(table)
    ladder = Table(title="scripted-ladder (--policies scripted-ladder)")
    ladder.add_column("label")
    ladder.add_column("policy")
    for label, spec in LADDER.items():
        ladder.add_row(label, spec)
    console.print(ladder)
    judges = Table(title="judges (--judge NAME)")
    judges.add_column("name")
    judges.add_column("what it checks")
    for name, entry in JUDGES.entries().items():
        judges.add_row(name, entry.description)
    console.print(judges)
