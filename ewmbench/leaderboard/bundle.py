"""Submission bundles: one ``.tar.gz`` in WorldArena 2.0's Track 1 shape, for one of two targets.

``ewmbench`` (our board; the default)::

    model_readme.md                          YAML front matter (model_name, version, ...) + free text
    videos/<task>__<episode>__<trial>.mp4    one video per generated trial (ids joined by "__")
    ewmbench/record.json                     the run record (ewmbench-run/1)
    ewmbench/rows.csv                        one row per trial, as the record holds them

``worldarena`` (WorldArena 2.0 Track 1)::

    model_readme.md                          the front matter (WorldArena's fields only) + free
                                             text + a section saying how the videos were chosen
    videos/<task>_episode<N>.mp4             one video per episode, named as WorldArena's code
                                             reads them (below), at 24 fps unless --fps

WorldArena's documents disagree on names (``episode_000001.mp4`` in the guideline,
``{taskname}_episode_{xx}.mp4`` in its README); its code is what counts: ``preprocess_datasets.py``
looks for ``<gen_video_dir>/{id1}_{id2}.mp4`` with ``id1`` the ground truth's task folder and
``id2`` its video's stem (``episode40``), and ``JEDi/batch.py`` pairs generated and ground-truth
videos by identical stems. So a video is named ``{task}_{stem}.mp4`` where ``stem`` is the episode
id when it already starts with ``episode`` and ``episode{id}`` otherwise (WorldArena's episodes are
``episode<N>`` files). WorldArena scores one video per episode; the bundle holds each episode's
*first* trial (lowest trial id), never a trial chosen by a score: choosing by a metric that reads
the ground truth would be selection on the test set.

A board can take an ``ewmbench`` bundle as self-reported from the record and rows, or score the
videos again (``--rescore``) to make the entry verified. Archives are written reproducibly: sorted
names, zero times and owners, so the same run and readme give the same bytes.
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

from ewmbench.data.video import read_video, video_source, write_mp4
from ewmbench.errors import ConfigError, DataError
from ewmbench.leaderboard.entries import OPTIONAL_FIELDS, REQUIRED_FIELDS, MetadataError, check_metadata
from ewmbench.results.record import load_run

README = "model_readme.md"
VIDEOS = "videos"
RECORD = "ewmbench/record.json"
ROWS = "ewmbench/rows.csv"
SEPARATOR = "__"
TARGETS = ("ewmbench", "worldarena")
DEFAULT_FPS = {"ewmbench": 10.0, "worldarena": 24.0}  # WorldArena's guideline recommends 24 fps
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


def worldarena_stem(task: str, episode: str) -> str:
    """The stem WorldArena's evaluation code looks for: ``{task}_{episode stem}`` (see above)."""
    for part in (task, episode):
        if not re.fullmatch(r"[A-Za-z0-9._\-]+", part):
            raise ConfigError(
                f"id {part!r} cannot be written in a WorldArena video name (letters, digits, '.', '_', '-')"
            )
    stem = episode if episode.lower().startswith("episode") else f"episode{episode}"
    return f"{task}_{stem}"


def first_trials(keys) -> dict[tuple[str, str], tuple[str, str, str]]:
    """Each episode's first trial (lowest trial id, numbers compared as numbers)."""
    chosen: dict[tuple[str, str], tuple[str, str, str]] = {}
    for key in sorted(keys, key=lambda k: (k[0], k[1], _trial_order(k[2]))):
        chosen.setdefault((key[0], key[1]), key)
    return chosen


def _trial_order(trial: str) -> tuple[int, int | str]:
    return (0, int(trial)) if trial.isdigit() else (1, trial)


def parse_video_name(name: str) -> tuple[str, str, str] | None:
    match = VIDEO_NAME.match(name)
    return (match["task"], match["episode"], match["trial"]) if match else None


FRONT_MATTER_LIMIT = 16 * 1024  # characters; the fields it holds need a few hundred


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases: a front matter has no use for them, and an alias bomb (a few
    hundred bytes that expand to gigabytes) is refused before it is expanded."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted in a front matter", event.start_mark
            )
        return super().compose_node(parent, index)


def parse_front_matter_yaml(text: str) -> object:
    if len(text) > FRONT_MATTER_LIMIT:
        raise ValueError(f"the front matter is longer than {FRONT_MATTER_LIMIT} characters")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader without aliases)
    except yaml.YAMLError as exc:
        raise ValueError(f"the front matter is not valid YAML ({exc})") from None


def split_front_matter(text: str) -> tuple[object, str]:
    """(front matter as parsed YAML, body); raises ValueError when there is no front matter, when
    it is longer than :data:`FRONT_MATTER_LIMIT` or uses YAML aliases."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError("the readme must start with a YAML front matter block between '---' lines")
    size = 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            return parse_front_matter_yaml("\n".join(lines[1:end])), "\n".join(lines[end + 1 :])
        size += len(lines[end]) + 1
        if size > FRONT_MATTER_LIMIT:
            raise ValueError(f"the front matter is longer than {FRONT_MATTER_LIMIT} characters")
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
    fps: float | None = None,
    lossless: bool = True,
    progress=None,
    target: str = "ewmbench",
) -> Path:
    """Write a submission bundle from a run folder and a model readme (checked first).

    ``target``: ``ewmbench`` or ``worldarena`` (see the module's description); ``fps`` defaults
    to the target's (10 for ours, WorldArena's recommended 24). Videos are lossless by default
    (RGB H.264, CRF 0), so a board that re-scores them measures the model and not the encoder;
    ``lossless=False`` writes smaller, lossy H.264.
    """
    if target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    fps = DEFAULT_FPS[target] if fps is None else float(fps)
    if not (0 < fps <= 240):
        raise ConfigError(f"--fps must be a frame rate in (0, 240], got {fps}")
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
    if target == "worldarena":
        unknown = sorted(set(front) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        if unknown:
            raise DataError(
                readme,
                f"field(s) WorldArena's guideline does not define: {', '.join(map(str, unknown))} "
                f"(its fields: {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)})",
            )
    if not output.name.endswith((".tar.gz", ".tgz")):
        raise ConfigError(f"{output}: a bundle is a .tar.gz or .tgz file")
    videos = trial_videos(run_folder, record, videos_root)
    names = {key: video_name(*key) for key in videos}
    if target == "worldarena":
        chosen = first_trials(videos)
        videos = {key: videos[key] for key in chosen.values()}
        names = {key: worldarena_stem(key[0], key[1]) + ".mp4" for key in videos}
        if len(set(names.values())) != len(names):
            raise ConfigError("two episodes map to one WorldArena video name; rename their ids")
        text = text.rstrip("\n") + "\n\n" + worldarena_notes(record, videos, fps) + "\n"
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=output.parent) as tmp:
        tmp_path = Path(tmp)
        task = progress.add_task("encode videos", total=len(videos)) if progress else None
        encoded = []
        for key, source in sorted(videos.items()):
            encoded_path = tmp_path / names[key]
            write_mp4(read_video(source), encoded_path, fps=fps, lossless=lossless)
            encoded.append(encoded_path)
            if progress:
                progress.advance(task)
        partial = tmp_path / "bundle.tar.gz"
        with (
            open(partial, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add_bytes(tar, README, text.encode("utf-8"))
            if target == "ewmbench":
                _add_bytes(tar, RECORD, record.to_json().encode("utf-8"))
                _add_bytes(tar, ROWS, rows_csv(record).encode("utf-8"))
            for path in encoded:
                _add_bytes(tar, f"{VIDEOS}/{path.name}", path.read_bytes())
        partial.replace(output)
    return output


def worldarena_notes(record, videos: dict, fps: float) -> str:
    """The section a worldarena bundle's readme gets: which videos, which trial and why."""
    trials = len(record.rows)
    episodes = len(videos)
    return (
        "## Submission notes (written by `ewmbench submit --target worldarena`)\n\n"
        f"- {episodes} videos, one per episode, named `<task>_episode<N>.mp4` as WorldArena's "
        "evaluation code reads them (`preprocess_datasets.py`, `JEDi/batch.py`), at "
        f"{fps:g} fps.\n"
        f"- The run generated {trials} trials; each episode's video is its first trial (lowest "
        "trial id). It is not chosen by a score: a choice by a metric that reads the ground truth "
        "would be selection on the test set.\n"
        f"- Model adapter `{record.model.name}`; scored locally under `{record.protocol.name}` "
        f"{record.protocol.version}.\n"
    )


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
