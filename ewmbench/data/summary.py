"""``ewmbench data info``: what a dataset holds and what is wrong with its layout."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ewmbench.data.layout import Generated, GroundTruth, looks_generated
from ewmbench.data.video import video_size
from ewmbench.errors import DataError


def summarise(path: Path) -> dict:
    root = Path(path)
    if not root.is_dir():
        raise DataError(root, "dataset folder does not exist")
    if looks_generated(root):
        dataset = Generated(root)
        videos = [t.video_path() for t in dataset.trials]
        summary = {
            "kind": "generated",
            "name": dataset.name,
            "tasks": len({t.task for t in dataset.trials}),
            "episodes": len({(t.task, t.episode) for t in dataset.trials}),
            "trials": len(dataset.trials),
        }
    else:
        dataset = GroundTruth(root)
        videos = [e.video_path() for e in dataset.episodes]
        views: Counter = Counter()
        extensions: Counter = Counter()
        for episode in dataset.episodes:
            try:
                sidecar = episode.sidecar
            except DataError:
                continue
            views.update(episode.views)
            if sidecar is None:
                continue
            extensions["sidecar"] += 1
            for field in ("eef_pose", "joint_positions", "actions"):
                if getattr(sidecar, field) is not None:
                    extensions[field] += 1
            if sidecar.intrinsics:
                extensions["intrinsics"] += 1
            if sidecar.extrinsics:
                extensions["extrinsics"] += 1
            if sidecar.substeps:
                extensions["substeps"] += 1
        summary = {
            "kind": "ground-truth",
            "tasks": len({e.task for e in dataset.episodes}),
            "episodes": len(dataset.episodes),
            "with_traj": sum(e.traj_path.is_file() for e in dataset.episodes),
            "views": dict(views),
            "extensions": dict(extensions),
        }
    frames, resolutions = [], Counter()
    for video in videos:
        try:
            count, height, width = video_size(video)
        except DataError:
            continue  # listed among the problems
        frames.append(count)
        resolutions[f"{width}x{height}"] += 1
    summary["frames"] = {"min": min(frames), "max": max(frames), "total": sum(frames)} if frames else {}
    summary["resolutions"] = dict(resolutions)
    summary["problems"] = [
        {"path": str(p.path), "message": p.message, "severity": p.severity} for p in dataset.problems()
    ]
    return summary
