"""`ewmbench detector ...`: gripper tracks, training a detector, validating it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ewmbench.cli.common import app, console
from ewmbench.data.datasets import resolve_dataset
from ewmbench.data.layout import GroundTruth
from ewmbench.errors import ConfigError, DataError
from ewmbench.perception.device import default_device
from ewmbench.protocols import DEFAULT_PROTOCOL, load_protocol

detector_app = typer.Typer(help="End-effector detection and tracking.", no_args_is_help=True)
app.add_typer(detector_app, name="detector")


def _tracking(
    protocol: str, weights: Path | None, embodiment: str | None, cache_dir: Path | None, device: str | None
):
    """What tracking a dataset needs: the video cache, the protocol's tracking settings, the
    detector choice and the device."""
    from ewmbench.data.video_cache import VideoCache
    from ewmbench.perception.detector_weights import DetectorChoice

    return (
        VideoCache(cache_dir),
        _tracking_settings(protocol),
        DetectorChoice(weights, embodiment),
        device or default_device(),
    )


def _tracking_settings(protocol: str):
    """The tracking settings of a protocol (a built-in name or a protocol file)."""
    from ewmbench.perception.detector import TrackingSettings

    return TrackingSettings.from_protocol(load_protocol(protocol))


def _check_weights(weights: Path | None) -> None:
    if weights is not None and not weights.is_file():
        raise ConfigError(f"--weights {weights}: no such file (a detector checkpoint, .pt)")


def _check_writable(dataset: Path) -> None:
    """``detector track`` writes traj/traj.npy into the dataset it reads: say so before any work."""
    import os

    if not os.access(dataset, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{dataset} is not writable; `detector track` writes traj/traj.npy into the dataset: track a writable copy"
        )


@detector_app.command("track")
def detector_track_command(
    dataset: Path = typer.Option(
        ..., "--dataset", help="A GT dataset, a <name>_dataset folder, or a folder holding both."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="Detector checkpoint (.pt); default: chosen by embodiment."
    ),
    protocol: str = typer.Option(DEFAULT_PROTOCOL, "--protocol", help="Tracking settings of this protocol."),
    embodiment: str | None = typer.Option(
        None, "--embodiment", help="Embodiment name (default: from the GT sidecar meta)."
    ),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Preprocessing cache folder."),
    device: str | None = typer.Option(
        None, "--device", help="cpu, cuda, cuda:0 ... (default: cuda when available)."
    ),
) -> None:
    """Write traj/traj.npy and gripper_detection/video.mp4 for every episode and trial lacking them."""
    from rich.progress import Progress

    from ewmbench.perception.track_dataset import find_datasets, track_dataset
    from ewmbench.run import check_device_name

    check_device_name(device)
    _check_weights(weights)
    dataset = resolve_dataset(dataset)
    _check_writable(dataset)
    videos, tracking, choice, device = _tracking(protocol, weights, embodiment, cache_dir, device)
    gts, gens = find_datasets(dataset)
    total = sum(len(gt.episodes) for gt in gts) + sum(len(gen.trials) for gen in gens)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("tracking grippers", total=total)
        report = track_dataset(
            dataset, videos, tracking, choice, device, progress=lambda: progress.advance(task)
        )
    console.print(f"wrote tracks for {len(report.written)} videos; {len(report.skipped)} already had them")


@detector_app.command("train")
def detector_train_command(
    datasets: list[Path] = typer.Option(
        ..., "--dataset", help="GT dataset with sidecar poses and head-camera calibration (repeatable)."
    ),
    output: Path = typer.Option(
        ..., "--output", help="Where to write the trained checkpoint (.pt); must not exist."
    ),
    epochs: int = typer.Option(30, "--epochs"),
    imgsz: int = typer.Option(416, "--imgsz", help="Training image size."),
    batch: int = typer.Option(16, "--batch"),
    val_fraction: float = typer.Option(
        0.2, "--val-fraction", help="Fraction of episodes held out for validation."
    ),
    seed: int = typer.Option(0, "--seed"),
    frame_stride: int = typer.Option(1, "--frame-stride", help="Use every n-th frame of each episode."),
    workers: int = typer.Option(2, "--workers", help="Data-loading workers."),
    device: str = typer.Option("cpu", "--device"),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="Labels and training runs (default: next to --output)."
    ),
    time_hours: float | None = typer.Option(
        None, "--time-hours", help="Training time budget; re-plans the number of epochs to fit."
    ),
    protocol: str = typer.Option(
        DEFAULT_PROTOCOL,
        "--protocol",
        help="Tracking settings of this protocol, for the held-out validation.",
    ),
) -> None:
    """Auto-label grippers from poses and calibration, train a detector, report held-out mAP50 and centre error."""
    from ewmbench.perception.track_dataset import find_datasets
    from ewmbench.perception.training import TrainSettings, train_detector

    settings = TrainSettings(
        epochs=epochs, imgsz=imgsz, batch=batch, val_fraction=val_fraction, seed=seed,
        frame_stride=frame_stride, workers=workers, device=device, time_hours=time_hours,
    )  # fmt: skip
    tracking = _tracking_settings(protocol)
    episodes = []

    for dataset in datasets:
        dataset = resolve_dataset(dataset)
        gts, _ = find_datasets(dataset)
        episodes += [e for gt in gts for e in gt.episodes] if gts else GroundTruth(dataset).episodes
    report = train_detector(episodes, output, settings, tracking, work_dir)
    summary = {
        key: report[key]
        for key in ("weights", "val_episodes", "val_map50", "val_recall", "val_median_error_frac")
    }
    print(json.dumps(summary, indent=2))


@detector_app.command("validate")
def detector_validate_command(
    dataset: Path = typer.Option(
        ..., "--dataset", help="GT dataset with sidecar poses and head-camera calibration."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="Detector checkpoint (.pt); default: chosen by embodiment."
    ),
    protocol: str = typer.Option(DEFAULT_PROTOCOL, "--protocol", help="Tracking settings of this protocol."),
    embodiment: str | None = typer.Option(None, "--embodiment"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir"),
    device: str | None = typer.Option(None, "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print the full JSON report."),
) -> None:
    """Recall and centre error of tracked grippers against projected GT end-effector positions."""
    from ewmbench.perception.track_dataset import find_datasets
    from ewmbench.perception.validation import validate_episodes
    from ewmbench.run import check_device_name

    check_device_name(device)
    _check_weights(weights)
    dataset = resolve_dataset(dataset)
    videos, tracking, choice, device = _tracking(protocol, weights, embodiment, cache_dir, device)
    gts, _ = find_datasets(dataset)
    episodes = [e for gt in gts for e in gt.episodes]
    if not episodes:
        raise DataError(dataset, "no GT episodes to validate on (validation needs GT poses and calibration)")
    report = validate_episodes(episodes, videos, tracking, choice, device)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        console.print(
            f"recall {report['recall']} | median centre error {report['median_error_frac']} of the image width "
            f"over {report['episodes']} episodes"
        )
