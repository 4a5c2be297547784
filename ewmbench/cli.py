"""The ``ewmbench`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ewmbench.errors import EwmbenchError

app = typer.Typer(help="Benchmark and evaluation toolkit for embodied world models (EWMBench).", no_args_is_help=True)
data_app = typer.Typer(help="Inspect, generate and curate datasets.", no_args_is_help=True)
detector_app = typer.Typer(help="End-effector detection and tracking.", no_args_is_help=True)
weights_app = typer.Typer(help="Model weights: list, download, verify.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(detector_app, name="detector")
app.add_typer(weights_app, name="weights")

console = Console()


def fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
    raise typer.Exit(2)


# ---------------------------------------------------------------- run, evaluate


def _parse_options(pairs: list[str]) -> dict:
    import yaml

    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--model-option")
        key, value = pair.split("=", 1)
        options[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return options


def _print_result(result) -> None:
    summary = result.summary
    table = Table(title=f"{summary['model']} under {summary['protocol']['name']} ({summary['counts']['trials']} trials)")
    table.add_column("metric")
    table.add_column("overall", justify="right")
    for task in sorted({t for per in summary["per_task"].values() for t in per}):
        table.add_column(f"task {task}", justify="right")
    tasks = sorted({t for per in summary["per_task"].values() for t in per})
    for column, value in summary["overall"].items():
        per_task = summary["per_task"].get(column, {})
        table.add_row(column, _fmt(value), *(_fmt(per_task.get(t)) for t in tasks))
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


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.4g}" if abs(value) >= 1000 else f"{value:.3f}"


MetricsOption = typer.Option(None, "--metrics", help="Comma-separated metric names (default: every metric of the protocol).")
ProtocolOption = typer.Option("ewmbench-v1", "--protocol", help="ewmbench-v1 (official numbers), ewmbench-v2 (corrected), or a protocol .yaml.")


def _metric_list(metrics: Optional[str]) -> Optional[list[str]]:
    return [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None


@app.command("run")
def run_command(
    model: str = typer.Option(..., "--model", help="World-model adapter (see `ewmbench models`)."),
    dataset: str = typer.Option("sample", "--dataset", help="'sample' or a ground-truth dataset folder."),
    output: Path = typer.Option(Path("runs/latest"), "--output", help="Run folder (created; an existing run folder resumes)."),
    trials: int = typer.Option(3, "--trials", help="Generated trials per episode."),
    seed: int = typer.Option(0, "--seed", help="Base seed; each trial's seed derives from it and the trial's ids."),
    model_option: list[str] = typer.Option([], "--model-option", help="Adapter option key=value (repeatable)."),
    metrics: Optional[str] = MetricsOption,
    protocol: str = ProtocolOption,
    detector_weights: Optional[Path] = typer.Option(None, "--detector-weights", help="Gripper detector weights for trajectory extraction."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
) -> None:
    """Generate trials with a world model on a dataset, score them and write the run folder."""
    from ewmbench.runner import RunConfig, run

    config = RunConfig(
        output=output, protocol=protocol, metrics=_metric_list(metrics), model=model, model_options=_parse_options(model_option),
        dataset=dataset, trials=trials, seed=seed, detector_weights=detector_weights, device=device,
    )
    try:
        result = run(config)
    except EwmbenchError as exc:
        fail(exc)
    _print_result(result)


@app.command("evaluate")
def evaluate_command(
    gt: Path = typer.Option(..., "--gt", help="Ground-truth dataset folder."),
    generated: Path = typer.Option(..., "--generated", help="Generated dataset folder (<name>_dataset)."),
    output: Path = typer.Option(..., "--output", help="Run folder (created; an existing run folder resumes)."),
    metrics: Optional[str] = MetricsOption,
    protocol: str = ProtocolOption,
    detector_weights: Optional[Path] = typer.Option(None, "--detector-weights", help="Gripper detector weights for trajectory extraction."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
) -> None:
    """Score videos generated elsewhere against their ground truth."""
    from ewmbench.runner import RunConfig, evaluate

    config = RunConfig(
        output=output, protocol=protocol, metrics=_metric_list(metrics), gt=gt, generated=generated,
        detector_weights=detector_weights, device=device,
    )
    try:
        result = evaluate(config)
    except EwmbenchError as exc:
        fail(exc)
    _print_result(result)


# ---------------------------------------------------------------- models


@app.command("models")
def models_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List world-model adapters, what each is conditioned on and what it needs."""
    from ewmbench.models import model_registry

    rows = [
        {
            "name": name,
            "conditioning": sorted(cls.conditioning),
            "needs_weights": cls.needs_weights,
            "needs_gpu": cls.needs_gpu,
            "description": cls.description,
        }
        for name, cls in sorted(model_registry().items())
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="World models")
    for column in ("name", "conditioned on", "weights", "GPU", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], ", ".join(row["conditioning"]) or "-", "yes" if row["needs_weights"] else "no",
            "yes" if row["needs_gpu"] else "no", row["description"],
        )
    console.print(table)


@app.command("metrics")
def metrics_command(
    protocol: str = ProtocolOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List metrics: group, level, the columns they write under a protocol, and whether they can run here."""
    from ewmbench.metrics import metric_registry
    from ewmbench.preprocess import Preprocessor
    from ewmbench.protocols import load_protocol

    try:
        loaded = load_protocol(protocol)
    except EwmbenchError as exc:
        fail(exc)
    preprocessor = Preprocessor()
    rows = []
    for name, cls in metric_registry().items():
        if name not in loaded.metrics:
            continue
        metric, settings = cls(), loaded.settings(name)
        try:
            metric.check_available(preprocessor, settings)
            status = "ready"
        except EwmbenchError as exc:
            status = getattr(exc, "fix", "") or str(exc)
        rows.append({
            "name": name, "group": cls.group, "level": cls.level, "columns": list(metric.columns_for(settings)),
            "lower_is_better": sorted(cls.lower_is_better), "status": status, "description": cls.description,
        })
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Metrics under {loaded.name}")
    for column in ("name", "group", "level", "columns", "available here (or the fix)"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["group"], row["level"], ", ".join(row["columns"]), row["status"])
    console.print(table)


# ---------------------------------------------------------------- data


@data_app.command("info")
def data_info_command(
    path: Path = typer.Argument(..., help="A ground-truth dataset or a <name>_dataset folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Summarise a dataset and list layout problems with their paths (exit 1 if any error)."""
    from ewmbench.data.summary import summarise

    try:
        summary = summarise(path)
    except EwmbenchError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        table = Table(title=f"{summary['kind']} dataset {path}")
        table.add_column("field")
        table.add_column("value")
        for key, value in summary.items():
            if key != "problems":
                table.add_row(key, json.dumps(value, default=str) if not isinstance(value, str) else value)
        console.print(table)
        for problem in summary["problems"]:
            style = "red" if problem["severity"] == "error" else "yellow"
            console.print(f"[{style}]{problem['severity']}[/] {problem['path']}: {problem['message']}", soft_wrap=True)
        if not summary["problems"]:
            console.print("[green]no problems found[/]")
    if any(p["severity"] == "error" for p in summary["problems"]):
        raise typer.Exit(1)


@data_app.command("sample")
def data_sample_command(
    output: Path = typer.Option(..., "--output", "-o", help="Folder to create (must be absent, empty, or a sample folder)."),
    seed: int = typer.Option(0, "--seed", help="0 <= seed < 2**31; the same seed gives identical files."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated task names (default: all): pick_place,push,stack,handover."),
    episodes_per_task: int = typer.Option(2, "--episodes-per-task", help="Episodes per task (>= 1)."),
    frames: int = typer.Option(24, "--frames", help="Frames per episode (at 10 fps)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Parallel processes (default: one per core, at most 4); files do not depend on it."),
) -> None:
    """Generate a physics-simulated sample dataset with exact ground truth (offline, CPU)."""
    from ewmbench.data.sample import generate_sample, parse_tasks

    try:
        path = generate_sample(output, seed=seed, tasks=parse_tasks(tasks), episodes_per_task=episodes_per_task, num_frames=frames, workers=workers)
    except EwmbenchError as exc:
        fail(exc)
    console.print(f"[green]sample dataset ready:[/] {path}")


# ---------------------------------------------------------------- data curate


@data_app.command("curate")
def data_curate_command(
    source: Path = typer.Option(..., "--source", help="Ground-truth dataset (official layout, sidecars with eef_pose)."),
    per_task: int = typer.Option(..., "--per-task", help="Episodes to keep per task (100 in the official benchmark)."),
    output: Path = typer.Option(..., "--output", help="Split file to write (JSON), e.g. datasets/splits/mine.json."),
    voxel_size: Optional[float] = typer.Option(None, "--voxel-size", help="Voxel edge in metres for the 3-D IoU (default 0.02)."),
) -> None:
    """Pick IoU-diverse episodes per task from 3-D end-effector trajectories; write a split file."""
    from ewmbench.data.curate import DEFAULT_VOXEL_SIZE, curate_split, write_split

    try:
        split = curate_split(source, per_task, DEFAULT_VOXEL_SIZE if voxel_size is None else voxel_size)
        write_split(split, output)
    except EwmbenchError as exc:
        fail(exc)
    for task, entry in sorted(split["tasks"].items()):
        console.print(
            f"task {task}: kept {len(entry['episodes'])} of {entry['available']} episodes "
            f"(mean pairwise IoU {entry['mean_pairwise_iou']:.3f}, all episodes {entry['mean_pairwise_iou_all']:.3f})"
        )
    console.print(f"[green]wrote[/] {output}")


# ---------------------------------------------------------------- detector


def _detector_preprocessor(cache_dir: Optional[Path], protocol: str, embodiment: Optional[str], device: Optional[str]):
    from ewmbench.preprocess import Preprocessor

    preprocessor = Preprocessor(cache_dir=cache_dir, device=device)
    preprocessor.options["protocol"] = protocol
    if embodiment:
        preprocessor.options["embodiment"] = embodiment
    return preprocessor


@detector_app.command("track")
def detector_track_command(
    dataset: Path = typer.Option(..., "--dataset", help="A GT dataset, a <name>_dataset folder, or a folder holding both."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector checkpoint (.pt); default: chosen by embodiment."),
    protocol: str = typer.Option("ewmbench-v1", "--protocol", help="Tracking settings of this protocol."),
    embodiment: Optional[str] = typer.Option(None, "--embodiment", help="Embodiment name (default: from the GT sidecar meta)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Preprocessing cache folder."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:0 ... (default: cuda when available)."),
) -> None:
    """Write traj/traj.npy and gripper_detection/video.mp4 for every episode and trial lacking them."""
    from rich.progress import Progress

    from ewmbench.perception.track_dataset import find_datasets, track_dataset

    try:
        preprocessor = _detector_preprocessor(cache_dir, protocol, embodiment, device)
        gts, gens = find_datasets(dataset)
        total = sum(len(gt.episodes) for gt in gts) + sum(len(gen.trials) for gen in gens)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("tracking grippers", total=total)
            report = track_dataset(dataset, preprocessor, weights, progress=lambda: progress.advance(task))
    except EwmbenchError as exc:
        fail(exc)
    console.print(f"wrote tracks for {len(report.written)} videos; {len(report.skipped)} already had them")


@detector_app.command("train")
def detector_train_command(
    datasets: list[Path] = typer.Option(..., "--dataset", help="GT dataset with sidecar poses and head-camera calibration (repeatable)."),
    output: Path = typer.Option(..., "--output", help="Where to write the trained checkpoint (.pt); must not exist."),
    epochs: int = typer.Option(30, "--epochs"),
    imgsz: int = typer.Option(416, "--imgsz", help="Training image size."),
    batch: int = typer.Option(16, "--batch"),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Fraction of episodes held out for validation."),
    seed: int = typer.Option(0, "--seed"),
    frame_stride: int = typer.Option(1, "--frame-stride", help="Use every n-th frame of each episode."),
    workers: int = typer.Option(2, "--workers", help="Data-loading workers."),
    device: str = typer.Option("cpu", "--device"),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Labels and training runs (default: next to --output)."),
    time_hours: Optional[float] = typer.Option(None, "--time-hours", help="Training time budget; re-plans the number of epochs to fit."),
) -> None:
    """Auto-label grippers from poses and calibration, train a detector, report held-out mAP50 and centre error."""
    from ewmbench.data.layout import GroundTruth
    from ewmbench.perception.training import TrainSettings, train_detector
    from ewmbench.perception.track_dataset import find_datasets

    settings = TrainSettings(
        epochs=epochs, imgsz=imgsz, batch=batch, val_fraction=val_fraction, seed=seed,
        frame_stride=frame_stride, workers=workers, device=device, time_hours=time_hours,
    )  # fmt: skip
    try:
        episodes = []
        for dataset in datasets:
            gts, _ = find_datasets(dataset)
            episodes += [e for gt in gts for e in gt.episodes] if gts else GroundTruth(dataset).episodes
        report = train_detector(episodes, output, settings, work_dir)
    except EwmbenchError as exc:
        fail(exc)
    summary = {key: report[key] for key in ("weights", "val_episodes", "val_map50", "val_recall", "val_median_error_frac")}
    print(json.dumps(summary, indent=2))


@detector_app.command("validate")
def detector_validate_command(
    dataset: Path = typer.Option(..., "--dataset", help="GT dataset with sidecar poses and head-camera calibration."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector checkpoint (.pt); default: chosen by embodiment."),
    protocol: str = typer.Option("ewmbench-v1", "--protocol", help="Tracking settings of this protocol."),
    embodiment: Optional[str] = typer.Option(None, "--embodiment"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir"),
    device: Optional[str] = typer.Option(None, "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print the full JSON report."),
) -> None:
    """Recall and centre error of tracked grippers against projected GT end-effector positions."""
    from ewmbench.errors import DataError
    from ewmbench.perception.track_dataset import find_datasets
    from ewmbench.perception.validation import validate_episodes

    try:
        preprocessor = _detector_preprocessor(cache_dir, protocol, embodiment, device)
        gts, _ = find_datasets(dataset)
        episodes = [e for gt in gts for e in gt.episodes]
        if not episodes:
            raise DataError(dataset, "no GT episodes to validate on (validation needs GT poses and calibration)")
        report = validate_episodes(episodes, preprocessor, weights)
    except EwmbenchError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        console.print(
            f"recall {report['recall']} | median centre error {report['median_error_frac']} of the image width "
            f"over {report['episodes']} episodes"
        )


# ---------------------------------------------------------------- weights


@weights_app.command("list")
def weights_list_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
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
            row["id"], f"{row['repo']}@{row['revision']}", row["file"],
            "[green]yes[/]" if row["cached"] else "[yellow]no[/]", row["path"] or "-", ", ".join(row["used_by"]),
        )
    console.print(table)
    if not all(row["cached"] for row in rows):
        console.print("Fetch missing weights with [bold]ewmbench weights download ID[/] (or --all) on a connected machine.")


@weights_app.command("download")
def weights_download_command(
    weight_id: Optional[str] = typer.Argument(None, help="Weight id (see `ewmbench weights list`)."),
    all_weights: bool = typer.Option(False, "--all", help="Download every weight."),
) -> None:
    """Fetch weights into the Hugging Face cache (copy that cache to an offline machine)."""
    from ewmbench.perception.weights import download_weight, weight_specs

    if bool(weight_id) == all_weights:
        fail(EwmbenchError("give one weight id or --all"))
    try:
        ids = sorted(weight_specs()) if all_weights else [weight_id]
        failures = 0
        for item in ids:
            outcome = download_weight(item)
            if outcome.ok:
                console.print(f"[green]ok[/] {item}: {outcome.path}")
            else:
                failures += 1
                console.print(f"[red]failed[/] {item}: {outcome.problem}")
    except EwmbenchError as exc:
        fail(exc)
    if failures:
        raise typer.Exit(1)


@weights_app.command("verify")
def weights_verify_command(
    weight_id: Optional[str] = typer.Argument(None, help="Weight id; all weights when omitted."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check weights are present, match their published SHA-256 and load (exit 1 if any fails)."""
    from ewmbench.perception.weights import verify, weight_specs

    try:
        results = [verify(item) for item in ([weight_id] if weight_id else sorted(weight_specs()))]
    except EwmbenchError as exc:
        fail(exc)
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for result in results:
            console.print(f"{'[green]ok[/]' if result.ok else '[red]not ok[/]'} {result.id}")
            for line in result.checks:
                console.print(f"    {line}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover
    app()
