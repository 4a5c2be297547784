"""``ewmbench detector track``: write ``traj/traj.npy`` and ``gripper_detection/video.mp4`` into a
dataset, for every GT episode and generated trial that lacks them (the official layout's
preprocessing output). Existing files are never overwritten or modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ewmbench.data.layout import GENERATED_SUFFIX, Generated, GroundTruth, looks_generated
from ewmbench.data.video import write_mp4
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError
from ewmbench.files import save_array
from ewmbench.perception.detector import TrackingSettings, annotate, records_to_trajectory
from ewmbench.perception.detector_weights import DetectorChoice, detector_config, embodiment_of
from ewmbench.perception.trajectories import track_records

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
    if looks_generated(root):
        return [], [Generated(root)]
    return [GroundTruth(root)], []


def _dataset_embodiment(gts: list[GroundTruth]) -> str | None:
    for gt in gts:
        for episode in gt.episodes:
            name = embodiment_of(episode.video_path())
            if name:
                return name
    return None


def track_item(
    folder: Path,
    video: Path,
    videos: VideoCache,
    tracking: TrackingSettings,
    choice: DetectorChoice,
    device: str | None = None,
) -> bool:
    """Write the missing tracking outputs of one episode or trial; False when none was missing."""

    traj_path, video_out = folder / TRAJ_FILE, folder / ANNOTATED_FILE
    if traj_path.exists() and video_out.exists():
        return False
    records = track_records(video, videos, tracking, choice, device)
    if not traj_path.exists():
        save_array(traj_path, records_to_trajectory(records))
    if not video_out.exists():
        frames = annotate(videos.frames(video), records, tracking)
        write_mp4(frames, video_out, fps=float(detector_config()["annotation_fps"]))
    return True


def track_dataset(
    root: Path,
    videos: VideoCache,
    tracking: TrackingSettings,
    choice: DetectorChoice = DetectorChoice(),
    device: str | None = None,
    progress=None,
) -> TrackReport:
    """Track every GT episode and generated trial under ``root`` that lacks its outputs.

    Generated trials have no sidecar: without an embodiment in ``choice``, the first GT
    episode's embodiment picks the detector for all.
    """
    gts, gens = find_datasets(root)
    choice = choice.with_embodiment(_dataset_embodiment(gts))
    items = [(e.path, e.video_path()) for gt in gts for e in gt.episodes]
    items += [(t.path, t.video_path()) for gen in gens for t in gen.trials]
    report = TrackReport()
    for folder, video in items:
        (
            report.written if track_item(folder, video, videos, tracking, choice, device) else report.skipped
        ).append(str(folder))
        if progress is not None:
            progress()
    return report
