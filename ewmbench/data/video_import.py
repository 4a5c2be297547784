"""``ewmbench import``: videos generated elsewhere (closed models, anyone's scripts) brought into the
generated layout ``<output>/<name>_dataset/<task>/<episode>/<trial>/``, ready for ``ewmbench evaluate``.

Videos are matched to ground-truth episodes either by a manifest CSV with the columns
``task_id, episode_id, trial_id, path`` (``path`` relative to the videos folder, or absolute), or
by the WorldArena naming ``{task}_episode_{xx}.mp4`` for trial 1 and ``{task}_episode_{xx}_{k}.mp4``
for trial ``k + 1`` (so ``_1`` is the second trial, ``_2`` the third). The episode number matches
the GT's episode id as written or as a number (``episode_03`` matches episode ``3``).

Each video is brought to its episode's frame count and size (and frame rate, when both are
known) by :func:`ewmbench.data.conform.conform_stream` (the streaming form of `conform_video`, which generation uses), and each
trial's sidecar records its provenance: the source file's name and sha256, its original size,
frame rate and frame count, and what the resampling did. Source videos are only read. Videos
that match no episode, two videos for one trial (neither is imported), and unreadable videos are
listed in the report, never silently dropped; so are GT episodes that received no video.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from ewmbench.data.conform import FITS, conform_stream
from ewmbench.data.layout import GroundTruth, write_trial
from ewmbench.data.video import iter_video, probe_video, video_size
from ewmbench.errors import ConfigError, DataError, EwmbenchError
from ewmbench.files import sha256_file, write_json

WORLDARENA_NAME = re.compile(r"^(?P<task>.+)_episode_(?P<episode>\d+)(?:_(?P<extra>\d+))?$")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
MANIFEST_COLUMNS = ("task_id", "episode_id", "trial_id", "path")


@dataclass
class ImportReport:
    dataset: Path
    imported: list[dict] = field(default_factory=list)  # {task, episode, trial, source}
    unmatched: list[dict] = field(default_factory=list)  # {source, reason}
    duplicates: list[dict] = field(default_factory=list)  # {task, episode, trial, sources}
    unreadable: list[dict] = field(default_factory=list)  # {source, reason}
    missing: list[str] = field(default_factory=list)  # GT episodes "<task>/<episode>" with no video

    def to_json(self) -> dict:
        return {
            "dataset": str(self.dataset),
            "imported": self.imported,
            "unmatched": self.unmatched,
            "duplicates": self.duplicates,
            "unreadable": self.unreadable,
            "missing": self.missing,
        }


def _episode_index(gt: GroundTruth) -> dict[tuple[str, str], tuple[str, str]]:
    """(task, episode as written or as a number) -> the GT's (task, episode)."""
    index: dict[tuple[str, str], tuple[str, str]] = {}
    for episode in gt.episodes:
        index[episode.key] = episode.key
        if episode.episode.isdigit():
            index.setdefault((episode.task, str(int(episode.episode))), episode.key)
    return index


def _lookup(index: dict, task: str, episode: str) -> tuple[str, str] | None:
    found = index.get((task, episode))
    if found is None and episode.isdigit():
        found = index.get((task, str(int(episode))))
    return found


def match_by_name(
    videos: Path, gt: GroundTruth, report: ImportReport
) -> dict[tuple[str, str, str], list[Path]]:
    index = _episode_index(gt)
    matches: dict[tuple[str, str, str], list[Path]] = {}
    for path in sorted(p for p in videos.rglob("*") if p.is_file()):
        name = path.relative_to(videos).as_posix()
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            report.unmatched.append(
                {"source": name, "reason": f"not a video file ({', '.join(VIDEO_SUFFIXES)})"}
            )
            continue
        parsed = WORLDARENA_NAME.match(path.stem)
        if parsed is None:
            report.unmatched.append({"source": name, "reason": "name is not {task}_episode_{xx}[_{k}]"})
            continue
        key = _lookup(index, parsed["task"], parsed["episode"])
        if key is None:
            report.unmatched.append(
                {
                    "source": name,
                    "reason": f"no episode {parsed['task']}/{parsed['episode']} in the ground truth",
                }
            )
            continue
        trial = str(int(parsed["extra"]) + 1) if parsed["extra"] is not None else "1"
        matches.setdefault((*key, trial), []).append(path)
    return matches


def match_by_manifest(
    videos: Path, manifest: Path, gt: GroundTruth, report: ImportReport
) -> dict[tuple[str, str, str], list[Path]]:
    index = _episode_index(gt)
    matches: dict[tuple[str, str, str], list[Path]] = {}
    try:
        with open(manifest, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in MANIFEST_COLUMNS if c not in columns]
            if missing:
                raise DataError(
                    manifest, f"manifest lacks column(s) {missing}; it needs {list(MANIFEST_COLUMNS)}"
                )
            for line, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                source = Path(row["path"])
                source = source if source.is_absolute() else videos / source
                if not all(row[c] for c in MANIFEST_COLUMNS):
                    report.unmatched.append(
                        {"source": row.get("path", ""), "reason": f"manifest line {line} has an empty field"}
                    )
                    continue
                if "/" in row["trial_id"] or row["trial_id"] in (".", ".."):
                    report.unmatched.append(
                        {
                            "source": row["path"],
                            "reason": f"manifest line {line}: trial_id {row['trial_id']!r} is not a folder name",
                        }
                    )
                    continue
                key = _lookup(index, row["task_id"], row["episode_id"])
                if key is None:
                    report.unmatched.append(
                        {
                            "source": row["path"],
                            "reason": f"manifest line {line}: no episode {row['task_id']}/{row['episode_id']} in the ground truth",
                        }
                    )
                    continue
                matches.setdefault((*key, row["trial_id"]), []).append(source)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(manifest, f"cannot read the manifest ({exc})") from None
    return matches


def import_videos(
    videos: Path, gt_root: Path, name: str, output: Path, manifest: Path | None = None, fit: str = "stretch"
) -> ImportReport:
    """Import the videos under ``videos`` as ``<output>/<name>_dataset`` and write ``import_report.json`` beside it."""
    videos, output = Path(videos), Path(output)
    if not videos.is_dir():
        raise DataError(videos, "videos folder does not exist")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}", name):
        raise ConfigError(f"--name {name!r}: use letters, digits, '.', '_' or '-'")
    if fit not in FITS:
        raise ConfigError(f"unknown fit {fit!r}; use one of {', '.join(FITS)}")
    gt = GroundTruth(gt_root)
    dataset = output / f"{name}_dataset"
    if dataset.exists() and any(dataset.iterdir()):
        raise ConfigError(f"{dataset} exists and is not empty; choose a new --output folder or --name")
    report = ImportReport(dataset)
    matches = (
        match_by_manifest(videos, manifest, gt, report) if manifest else match_by_name(videos, gt, report)
    )
    covered = set()
    for (task, episode_id, trial), sources in sorted(matches.items()):
        labels = [_label(s, videos) for s in sources]
        if len(sources) > 1:
            report.duplicates.append({"task": task, "episode": episode_id, "trial": trial, "sources": labels})
            continue
        source, label = sources[0], labels[0]
        episode = gt.episode(task, episode_id)
        num_frames, height, width = video_size(episode.video_path())
        sidecar = episode.sidecar
        try:
            if not source.is_file():
                raise DataError(source, "no such file")
            fps = probe_video(source).fps  # the budgets checked from the header, before any decoding
            # decoded as a stream: memory holds the conformed trial and one source frame
            conformed, what = conform_stream(
                iter_video(source), num_frames, height, width, fps, sidecar.fps if sidecar else None, fit
            )
        except EwmbenchError as exc:
            report.unreadable.append({"source": label, "reason": getattr(exc, "problem", str(exc))})
            continue
        meta = {
            "model": name,
            "imported": True,
            "seed": None,
            "views": ["head"],
            "source": {
                "file": label,
                "sha256": sha256_file(source),
                "frames": what["source"]["frames"],
                "height": what["source"]["height"],
                "width": what["source"]["width"],
                "fps": fps,
            },
            "conform": {"head": what},
        }
        write_trial(dataset, task, episode_id, trial, conformed, meta=meta)
        report.imported.append({"task": task, "episode": episode_id, "trial": trial, "source": label})
        covered.add((task, episode_id))
    report.missing = [f"{e.task}/{e.episode}" for e in gt.episodes if e.key not in covered]
    dataset.mkdir(parents=True, exist_ok=True)
    write_json(output / "import_report.json", report.to_json())
    return report


def _label(path: Path, videos: Path) -> str:
    try:
        return path.resolve().relative_to(videos.resolve()).as_posix()
    except ValueError:
        return str(path)
