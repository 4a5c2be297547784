"""``ewmbench detector train``: a gripper detector for a new embodiment, from poses and calibration.

Boxes come from projecting each frame's end-effector grasp points (autolabel); the YOLO dataset is
split into train and val BY EPISODE (frames of one episode are near-duplicates, so a frame split
would leak); ultralytics fine-tunes a ``yolov8n.yaml`` network from scratch, entirely offline
(no pretrained checkpoint, no AMP check, no plots, so no downloads).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ewmbench.data.layout import Episode
from ewmbench.data.video import read_video, save_image
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, DataError
from ewmbench.files import write_json
from ewmbench.perception.autolabel import episode_grippers
from ewmbench.perception.detector import TrackingSettings, yolo_class
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.validation import validate_episodes

CLASS_NAMES = {0: "left_gripper", 1: "right_gripper"}


@dataclass(frozen=True)
class YoloDataset:
    data_yaml: Path
    train_episodes: list[str]
    val_episodes: list[str]
    train_images: int
    val_images: int


def episode_label(episode: Episode) -> str:
    """``<dataset folder>/<task>/<episode>``: unique across the datasets of one training run."""
    return f"{episode.path.parent.parent.name}/{episode.task}/{episode.episode}"


def split_by_episode(
    episodes: list[Episode], val_fraction: float, seed: int
) -> tuple[list[Episode], list[Episode]]:
    """A seeded split of whole episodes; at least one episode on each side when there are two or more."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if len(episodes) < 2:
        raise ConfigError(f"need at least 2 episodes to split into train and val, got {len(episodes)}")
    if len({episode_label(e) for e in episodes}) != len(episodes):
        raise ConfigError("the same episode is listed twice")
    ordered = sorted(episodes, key=episode_label)
    random.Random(seed).shuffle(ordered)
    n_val = min(max(1, math.ceil(val_fraction * len(ordered))), len(ordered) - 1)
    val = sorted(ordered[:n_val], key=episode_label)
    train = sorted(ordered[n_val:], key=episode_label)
    return train, val


def label_lines(boxes: np.ndarray, visible: np.ndarray, width: int, height: int) -> list[str]:
    """YOLO label lines ``class cx cy w h`` (normalised) of one frame's visible grippers."""
    lines = []
    for cls in (0, 1):
        if not visible[cls]:
            continue
        x1, y1, x2, y2 = boxes[cls]
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            continue
        lines.append(
            f"{cls} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
        )
    return lines


def write_yolo_dataset(
    episodes: list[Episode], out: Path, val_fraction: float = 0.2, seed: int = 0, frame_stride: int = 1
) -> YoloDataset:
    """Auto-labelled YOLO dataset (images/, labels/, data.yaml) from GT episodes, split by episode.

    Frames without a visible gripper are kept as background images (empty label files).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(out, "YOLO dataset folder exists and is not empty; choose a new folder")
    if frame_stride < 1:
        raise ConfigError(f"frame_stride must be >= 1, got {frame_stride}")
    train, val = split_by_episode(episodes, val_fraction, seed)
    counts = {}
    for split, members in (("train", train), ("val", val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        count = 0
        for episode in members:
            frames = read_video(episode.video_path())
            height, width = frames.shape[1:3]
            gt = episode_grippers(episode, len(frames), width, height)
            for index in range(0, len(frames), frame_stride):
                stem = f"{episode_label(episode).replace('/', '_')}_{index:05d}"
                save_image(frames[index], out / "images" / split / f"{stem}.jpg")
                lines = label_lines(gt.boxes[index], gt.visible[index], width, height)
                (out / "labels" / split / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
                count += 1
        counts[split] = count
    data_yaml = out / "data.yaml"
    data_yaml.write_text(
        json.dumps(
            {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "names": CLASS_NAMES},
            indent=2,
        )
        + "\n"
    )
    return YoloDataset(
        data_yaml,
        [episode_label(e) for e in train],
        [episode_label(e) for e in val],
        counts["train"],
        counts["val"],
    )


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 30
    imgsz: int = 416
    batch: int = 16
    val_fraction: float = 0.2
    seed: int = 0
    frame_stride: int = 1
    workers: int = 2
    device: str = "cpu"
    # Probability of swapping red and blue per training image: the official tracking passes RGB
    # where ultralytics expects BGR, so a detector meant for both protocols must see both orders.
    bgr: float = 0.5
    model_config: str = "yolov8n.yaml"
    # Wall-clock budget in hours; when set, ultralytics re-plans the epoch count to fit it.
    time_hours: float | None = None


def fit_detector(dataset: YoloDataset, work_dir: Path, settings: TrainSettings) -> tuple[Path, float]:
    """Train from scratch with ultralytics; the best checkpoint and its val mAP50."""

    YOLO = yolo_class()
    model = YOLO(settings.model_config, task="detect")
    model.train(
        data=str(dataset.data_yaml),
        epochs=settings.epochs,
        imgsz=settings.imgsz,
        batch=settings.batch,
        workers=settings.workers,
        device=settings.device,
        seed=settings.seed,
        deterministic=True,
        pretrained=False,
        amp=False,
        plots=False,
        project=str(Path(work_dir).resolve()),
        name="run",
        exist_ok=True,
        bgr=settings.bgr,
        fliplr=0.0,  # a flipped left gripper looks like a right one: flips would teach wrong classes
        time=settings.time_hours,
        verbose=False,
    )
    best = Path(work_dir).resolve() / "run" / "weights" / "best.pt"
    if not best.is_file():
        raise DataError(best, "training finished without a checkpoint")
    metrics = YOLO(str(best)).val(
        data=str(dataset.data_yaml),
        imgsz=settings.imgsz,
        batch=settings.batch,
        device=settings.device,
        plots=False,
        verbose=False,
        workers=settings.workers,
    )
    return best, float(metrics.box.map50)


def train_detector(
    episodes: list[Episode],
    output: Path,
    settings: TrainSettings,
    tracking: TrackingSettings,
    work_dir: Path | None = None,
) -> dict:
    """Auto-label, train, validate on the held-out episodes (tracked with ``tracking``); write the
    checkpoint to ``output``.

    Returns the report (also written next to the checkpoint as ``<output>.json``).
    """

    output = Path(output)
    if output.exists():
        raise DataError(output, "output weights already exist; refusing to overwrite them")
    work_dir = Path(work_dir) if work_dir else output.with_name(output.stem + "-training")
    dataset = write_yolo_dataset(
        episodes, work_dir / "yolo-dataset", settings.val_fraction, settings.seed, settings.frame_stride
    )
    best, map50 = fit_detector(dataset, work_dir, settings)
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, output)
    val_episodes = [e for e in episodes if episode_label(e) in set(dataset.val_episodes)]
    validation = validate_episodes(
        val_episodes,
        VideoCache(work_dir / "cache"),
        tracking,
        DetectorChoice(weights=output),
        settings.device,
    )
    report = {
        "weights": str(output),
        "train_episodes": dataset.train_episodes,
        "val_episodes": dataset.val_episodes,
        "train_images": dataset.train_images,
        "val_images": dataset.val_images,
        "settings": settings.__dict__,
        "val_map50": map50,
        "val_recall": validation["recall"],
        "val_median_error_frac": validation["median_error_frac"],
        "val_tracking": validation,
    }
    write_json(output.with_suffix(output.suffix + ".json"), report)
    return report
