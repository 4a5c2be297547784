"""``ewmbench detector track``: write ``traj/traj.npy`` and ``gripper_detection/video.mp4`` into a
dataset, for every GT episode and generated trial that lacks them (the official layout's
preprocessing output). Existing files are never overwritten or modified.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ewmbench.data.layout import GENERATED_SUFFIX, Generated, GroundTruth
from ewmbench.errors import DataError
from ewmbench.perception.detector import (
    annotate,
    detector_config,
    embodiment_of,
    records_to_trajectory,
    track_records,
    tracking_settings,
)
from ewmbench.preprocess import Preprocessor

TRAJ_FILE = Path("traj") / "traj.npy"
ANNOTATED_FILE = Path("gripper_detection") / "video.mp4"


@dataclass
class TrackReport:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already had both files

    def as_dict(self) -> dict:
        return {"written": self.written, "skipped": self.skipped}


def find_datasets(root: Path) -> tuple[list[GroundTruth], list[Generated]]:
    """GT and generated datasets at ``root``: a GT dataset, a ``<name>_dataset`` folder, or a folder
    holding ``gt_dataset`` and ``<name>_dataset`` folders."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "dataset folder does not exist")
    children = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    container = [p for p in children if p.name.endswith(GENERATED_SUFFIX)]
    if container:
        gts = [GroundTruth(p) for p in container if p.name == "gt_dataset"]
        gens = [Generated(p) for p in container if p.name != "gt_dataset"]
        return gts, gens
    from ewmbench.data.summary import _looks_generated

    if _looks_generated(root):
        return [], [Generated(root)]
    return [GroundTruth(root)], []


def _dataset_embodiment(gts: list[GroundTruth]) -> str | None:
    for gt in gts:
        for episode in gt.episodes:
            name = embodiment_of(episode.video_path())
            if name:
                return name
    return None


def _save_npy_new(array: np.ndarray, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".npy")
    with os.fdopen(fd, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
    os.replace(tmp, target)


def track_item(folder: Path, video: Path, preprocessor: Preprocessor, weights: Path | None) -> bool:
    """Write the missing tracking outputs of one episode or trial; False when none was missing."""
    from ewmbench.data.video import write_mp4

    traj_path, video_out = folder / TRAJ_FILE, folder / ANNOTATED_FILE
    if traj_path.exists() and video_out.exists():
        return False
    records = track_records(video, preprocessor, weights)
    if not traj_path.exists():
        _save_npy_new(records_to_trajectory(records), traj_path)
    if not video_out.exists():
        settings = tracking_settings(preprocessor.options.get("protocol"))
        frames = annotate(preprocessor.frames(video), records, settings)
        write_mp4(frames, video_out, fps=float(detector_config()["annotation_fps"]))
    return True


def track_dataset(root: Path, preprocessor: Preprocessor, weights: Path | None = None, progress=None) -> TrackReport:
    """Track every GT episode and generated trial under ``root`` that lacks its outputs."""
    gts, gens = find_datasets(root)
    if "embodiment" not in preprocessor.options:
        embodiment = _dataset_embodiment(gts)
        if embodiment:
            preprocessor.options["embodiment"] = embodiment
    items = [(e.path, e.video_path()) for gt in gts for e in gt.episodes]
    items += [(t.path, t.video_path()) for gen in gens for t in gen.trials]
    report = TrackReport()
    for folder, video in items:
        (report.written if track_item(folder, video, preprocessor, weights) else report.skipped).append(str(folder))
        if progress is not None:
            progress()
    return report
