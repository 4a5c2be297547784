"""Submission bundles: one ``.tar.gz`` in WorldArena 2.0's Track 1 shape, plus our run record.

::

    model_readme.md                          YAML front matter (model_name, version, ...) + free text
    videos/<task>__<episode>__<trial>.mp4    one video per generated trial (ids joined by "__")
    ewmbench/record.json                     the run record (ewmbench-run/1)
    ewmbench/rows.csv                        one row per trial, as the record holds them

A board can take the bundle as self-reported from the record and rows, or score the videos again
(``--rescore``) to make the entry verified. Archives are written reproducibly: sorted names, zero
times and owners, so the same run and readme give the same bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tarfile
import tempfile
from pathlib import Path

import yaml

from ewmbench.errors import ConfigError, DataError

README = "model_readme.md"
VIDEOS = "videos"
RECORD = "ewmbench/record.json"
ROWS = "ewmbench/rows.csv"
SEPARATOR = "__"
VIDEO_NAME = re.compile(
    r"^(?P<task>[A-Za-z0-9.\-]+(?:_[A-Za-z0-9.\-]+)*)__(?P<episode>[A-Za-z0-9.\-]+(?:_[A-Za-z0-9.\-]+)*)__(?P<trial>[A-Za-z0-9.\-]+(?:_[A-Za-z0-9.\-]+)*)\.mp4$"
)


def video_name(task: str, episode: str, trial: str) -> str:
    for part in (task, episode, trial):
        if SEPARATOR in part or not re.fullmatch(r"[A-Za-z0-9._\-]+", part):
            raise ConfigError(
                f"id {part!r} cannot be written in a bundle video name (letters, digits, '.', '_', '-'; no '__')"
            )
    return f"{task}{SEPARATOR}{episode}{SEPARATOR}{trial}.mp4"


def parse_video_name(name: str) -> tuple[str, str, str] | None:
    match = VIDEO_NAME.match(name)
    return (match["task"], match["episode"], match["trial"]) if match else None


def split_front_matter(text: str) -> tuple[object, str]:
    """(front matter as parsed YAML, body); raises ValueError when there is no front matter."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError("the readme must start with a YAML front matter block between '---' lines")
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            try:
                data = yaml.safe_load("\n".join(lines[1:end]))
            except yaml.YAMLError as exc:
                raise ValueError(f"the front matter is not valid YAML ({exc})") from None
            return data, "\n".join(lines[end + 1 :])
    raise ValueError("the front matter block is not closed by a '---' line")


def rows_csv(record) -> str:
    buffer = io.StringIO()
    frame_columns = ["task_id", "episode_id", "trial_id"] + [
        c for c in record.columns if any(c in r for r in record.rows)
    ]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(frame_columns)
    for row in record.rows:
        writer.writerow([row.get(c, "") for c in frame_columns])
    return buffer.getvalue()


def trial_videos(
    run_folder: Path, record, videos_root: Path | None = None
) -> dict[tuple[str, str, str], Path]:
    """Each record row's generated video: ``<run>/<model>_dataset/<task>/<episode>/<trial>``
    (``ewmbench run``), the ``generated`` folder of ``ewmbench evaluate``, or ``videos_root``."""
    from ewmbench.data.video import video_source

    candidates = [videos_root] if videos_root else []
    candidates.append(run_folder / f"{record.model.name}_dataset")
    config = run_folder / "config.json"
    if config.is_file():
        generated = json.loads(config.read_text(encoding="utf-8")).get("identity", {}).get("generated")
        if generated:
            candidates.append(Path(generated))
    root = next((c for c in candidates if c and Path(c).is_dir()), None)
    if root is None:
        raise DataError(
            run_folder, "cannot find the generated videos of this run; give their folder with --videos"
        )
    found = {}
    for row in record.rows:
        key = (row["task_id"], row["episode_id"], row["trial_id"])
        trial = Path(root) / key[0] / key[1] / key[2]
        try:
            found[key] = video_source(trial / "video") if (trial / "video").exists() else video_source(trial)
        except DataError:
            raise DataError(trial, "the generated trial of this row has no video") from None
    return found


def write_bundle(
    run_folder: Path | str,
    readme: Path | str,
    output: Path | str,
    videos_root: Path | None = None,
    fps: float = 10.0,
    lossless: bool = True,
    progress=None,
) -> Path:
    """Write a submission bundle from a run folder and a model readme (checked first).

    Videos are lossless by default (RGB H.264, CRF 0), so a board that re-scores them measures
    the model and not the encoder; ``lossless=False`` writes smaller, lossy H.264.
    """
    from ewmbench.data.video import read_video, write_mp4
    from ewmbench.leaderboard.entries import MetadataError, check_metadata
    from ewmbench.record import load_run

    run_folder, readme, output = Path(run_folder), Path(readme), Path(output)
    record = load_run(run_folder)
    if record.legacy:
        raise DataError(
            run_folder,
            "this run folder predates run records (ewmbench-run/1); score it again with `ewmbench evaluate` to submit it",
        )
    if not readme.is_file():
        raise DataError(readme, "no such model readme")
    text = readme.read_text(encoding="utf-8")
    try:
        front, _ = split_front_matter(text)
        check_metadata(front)
    except (ValueError, MetadataError) as exc:
        raise DataError(readme, str(exc)) from None
    if not output.name.endswith(".tar.gz"):
        raise ConfigError(f"{output}: a bundle is a .tar.gz file")
    videos = trial_videos(run_folder, record, videos_root)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=output.parent) as tmp:
        tmp_path = Path(tmp)
        task = progress.add_task("encode videos", total=len(videos)) if progress else None
        encoded = []
        for (t, e, r), source in sorted(videos.items()):
            target = tmp_path / video_name(t, e, r)
            write_mp4(read_video(source), target, fps=fps, lossless=lossless)
            encoded.append(target)
            if progress:
                progress.advance(task)
        partial = tmp_path / "bundle.tar.gz"
        with (
            open(partial, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add_bytes(tar, README, text.encode("utf-8"))
            _add_bytes(tar, RECORD, record.to_json().encode("utf-8"))
            _add_bytes(tar, ROWS, rows_csv(record).encode("utf-8"))
            for path in encoded:
                _add_bytes(tar, f"{VIDEOS}/{path.name}", path.read_bytes())
        partial.replace(output)
    return output


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = (
        len(data),
        0,
        0o644,
        0,
        0,
        "",
        "",
    )
    tar.addfile(info, io.BytesIO(data))
