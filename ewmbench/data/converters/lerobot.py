"""LeRobot datasets (layouts v2.1 and v3.0) into the EWMBench ground-truth layout.

Read with pyarrow, not the ``lerobot`` package: lerobot 0.4 pins ``torch<2.11``,
``huggingface-hub<0.36`` and ``opencv<4.13``, which cannot install beside this toolkit's torch
2.14.1. The layouts, as LeRobot documents them:

v2.1 (``codebase_version`` "v2.0"/"v2.1")::

    meta/info.json        fps, features (cameras: dtype "video", or "image" stored in the rows), chunks_size, data_path, video_path
    meta/episodes.jsonl   {"episode_index", "tasks": [...], "length"} per line
    meta/tasks.jsonl      {"task_index", "task"} per line
    data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet
    videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4

v3.0::

    meta/info.json
    meta/tasks.parquet                               task strings (the index) -> task_index
    meta/episodes/chunk-XXX/file-YYY.parquet         per episode: episode_index, tasks, length,
        data/chunk_index, data/file_index, videos/{key}/chunk_index, videos/{key}/file_index,
        videos/{key}/from_timestamp, videos/{key}/to_timestamp
    data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet     many episodes per file
    videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4  many episodes per file

An episode becomes ``OUTPUT/<task_index>/<episode_index>/``. Every numeric column of its parquet
rows is kept exactly, under its own name, as ``source/<name>`` in the sidecar's arrays.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ewmbench.data.converters.common import (
    ConvertReport,
    ConvertSettings,
    SourceEpisode,
    bind_output,
    convert_episodes,
)
from ewmbench.data.converters.frames import SegmentReader
from ewmbench.data.converters.mapping import (
    ColumnSelection,
    ForwardKinematics,
    apply_forward_kinematics,
)
from ewmbench.data.layout import HEAD_VIEW
from ewmbench.data.video import read_image
from ewmbench.errors import ConfigError, DataError, Unavailable

SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")
LEGACY_VERSIONS = ("v2.0", "v2.1")


@dataclass(frozen=True)
class LeRobotMapping:
    """What goes where: cameras to views, features to the 14-D arrays and calibration."""

    views: dict[str, str] | None = None  # our view -> video feature key; None: the only video feature is head
    eef_pose: ColumnSelection | None = None
    actions: ColumnSelection | None = None
    joints: str | None = None  # feature holding joint positions (sidecar joint_positions, FK input)
    fk: ForwardKinematics | None = None
    fk_name: str | None = None
    intrinsics: dict[str, str] | None = None  # our view -> feature with 9 values per frame (row-major 3x3)
    extrinsics: dict[str, str] | None = (
        None  # our view -> feature with 16 values per frame (row-major 4x4, camera-to-base)
    )

    def describe(self) -> dict:
        return {
            "views": self.views,
            "eef_pose": self.eef_pose.text if self.eef_pose else None,
            "actions": self.actions.text if self.actions else None,
            "joints": self.joints,
            "fk": self.fk_name,
            "intrinsics": self.intrinsics,
            "extrinsics": self.extrinsics,
        }


class LeRobotDataset:
    """A LeRobot dataset on disk (v2.1 or v3.0), read episode by episode."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser()
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            raise DataError(info_path, "not a LeRobot dataset (meta/info.json is missing)")
        try:
            self.info = json.loads(info_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(info_path, f"not valid JSON ({exc})") from None
        self.version = str(self.info.get("codebase_version", ""))
        if self.version not in SUPPORTED_VERSIONS:
            raise DataError(
                info_path,
                f"LeRobot codebase_version {self.version!r} is not supported (supported: {', '.join(SUPPORTED_VERSIONS)})",
            )
        if not isinstance(self.info, dict):
            raise DataError(info_path, "must hold a JSON object")
        for key in ("fps", "features", "data_path"):
            if key not in self.info:
                raise DataError(info_path, f"missing {key!r}")
        self.info_path = info_path
        self.fps = _positive_number(self.info["fps"], info_path, "fps")
        self.chunks_size = _index(self.info.get("chunks_size", 1000), info_path, "chunks_size", low=1)
        for key in ("data_path", "video_path"):
            if key in self.info and self.info[key] is not None and not isinstance(self.info[key], str):
                raise DataError(info_path, f"{key} must be a path template string")
        if not isinstance(self.info["features"], dict) or not all(
            isinstance(f, dict) for f in self.info["features"].values()
        ):
            raise DataError(info_path, "features must map each feature name to an object")
        self.features: dict = self.info["features"]
        self.legacy = self.version in LEGACY_VERSIONS
        # the path templates checked at once, before any episode is read
        numbers = ("episode_chunk", "episode_index") if self.legacy else ("chunk_index", "file_index")
        for key in ("data_path", "video_path"):
            if self.info.get(key) is not None:
                fields = dict.fromkeys(numbers, 0) | ({"video_key": "camera"} if key == "video_path" else {})
                self._inside(fill_path_template(self.info[key], fields, info_path, key), key)
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        # cameras stored as images inside the parquet rows (struct of PNG/JPEG bytes and a path)
        self.image_keys = [k for k, f in self.features.items() if f.get("dtype") == "image"]
        self.camera_keys = self.video_keys + self.image_keys
        self.tasks = self._read_tasks()
        self.episodes = self._read_episodes()

    # ------------------------------------------------------------------ metadata

    def _read_tasks(self) -> dict[int, str]:
        if self.legacy:
            path = self.root / "meta" / "tasks.jsonl"
            tasks = {}
            for number, row in enumerate(_read_jsonl(path), 1):
                if not isinstance(row, dict) or "task_index" not in row or "task" not in row:
                    raise DataError(path, f"line {number} needs task_index and task")
                tasks[_index(row["task_index"], path, f"line {number}: task_index")] = str(row["task"])
            return tasks
        import pandas as pd

        path = self.root / "meta" / "tasks.parquet"
        if not path.is_file():
            raise DataError(path, "missing (a v3.0 dataset lists its tasks here)")
        table = pd.read_parquet(path)
        if "task_index" not in table.columns:
            raise DataError(path, "no task_index column")
        # LeRobot stores the task string as the frame's index; accept a plain "task" column too.
        names = table["task"] if "task" in table.columns else table.index.to_series()
        return {_index(i, path, "task_index"): str(t) for i, t in zip(table["task_index"].tolist(), names)}

    def _read_episodes(self) -> list[dict]:
        if self.legacy:
            rows = _read_jsonl(self.root / "meta" / "episodes.jsonl")
        else:
            import pyarrow.parquet as pq

            folder = self.root / "meta" / "episodes"
            files = sorted(folder.glob("chunk-*/file-*.parquet"))
            if not files:
                raise DataError(folder, "no episode metadata (meta/episodes/chunk-*/file-*.parquet)")
            rows = []
            for file in files:
                table = pq.read_table(file)
                keep = [c for c in table.column_names if not c.startswith("stats/")]
                rows.extend(table.select(keep).to_pylist())
        where = self.root / "meta" / ("episodes.jsonl" if self.legacy else "episodes")
        for number, row in enumerate(rows, 1):
            if not isinstance(row, dict) or "episode_index" not in row:
                raise DataError(where, f"episode entry {number} has no episode_index")
            row["episode_index"] = _index(row["episode_index"], where, f"entry {number}: episode_index")
            if "length" in row:
                row["length"] = _index(row["length"], where, f"episode {row['episode_index']}: length")
        return sorted(rows, key=lambda r: r["episode_index"])

    # ------------------------------------------------------------------ paths

    def data_path(self, episode: dict) -> Path:
        index = int(episode["episode_index"])
        if self.legacy:
            fields = {"episode_chunk": index // self.chunks_size, "episode_index": index}
        else:
            where = self.root / "meta" / "episodes"
            fields = {
                "chunk_index": _index(
                    episode.get("data/chunk_index"), where, f"episode {index}: data/chunk_index"
                ),
                "file_index": _index(
                    episode.get("data/file_index"), where, f"episode {index}: data/file_index"
                ),
            }
        return self._inside(
            fill_path_template(self.info["data_path"], fields, self.info_path, "data_path"), "data_path"
        )

    def _inside(self, relative: str, key: str) -> Path:
        """``relative`` (a filled template) as a path that stays inside the dataset folder."""
        path = self.root / relative
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise DataError(self.info_path, f"{key} leads outside the dataset folder: {relative!r}")
        try:
            path.resolve().relative_to(self.root.resolve())
        except ValueError:
            raise DataError(
                self.info_path, f"{key} leads outside the dataset folder through a link: {relative!r}"
            ) from None
        return path

    def video_segment(self, episode: dict, key: str) -> tuple[Path, int]:
        """The file holding ``key``'s frames of ``episode`` and the episode's first frame in it."""
        index = int(episode["episode_index"])
        template = self.info.get("video_path")
        if not template:
            raise DataError(self.root / "meta" / "info.json", "no video_path: this dataset has no videos")
        if self.legacy:
            fields = {"episode_chunk": index // self.chunks_size, "video_key": key, "episode_index": index}
            return self._inside(
                fill_path_template(template, fields, self.info_path, "video_path"), "video_path"
            ), 0
        where = self.root / "meta" / "episodes"
        if f"videos/{key}/chunk_index" not in episode:
            raise DataError(where, f"episode {index}: no video entry for camera {key!r}")
        chunk = _index(
            episode.get(f"videos/{key}/chunk_index"), where, f"episode {index}: videos/{key}/chunk_index"
        )
        file = _index(
            episode.get(f"videos/{key}/file_index"), where, f"episode {index}: videos/{key}/file_index"
        )
        start_time = _positive_number(
            episode.get(f"videos/{key}/from_timestamp"),
            where,
            f"episode {index}: videos/{key}/from_timestamp",
            zero=True,
        )
        info = self.features[key].get("info") or {}
        fps = _positive_number(
            info.get("video.fps", self.fps), self.info_path, f"features.{key}.info.video.fps"
        )
        fields = {"video_key": key, "chunk_index": chunk, "file_index": file}
        path = self._inside(fill_path_template(template, fields, self.info_path, "video_path"), "video_path")
        return path, int(np.floor(start_time * fps + 0.5))

    def read_rows(self, episode: dict) -> dict[str, np.ndarray]:
        """The episode's numeric columns, as (T, ...) arrays, in frame order."""
        import pyarrow.parquet as pq

        index = int(episode["episode_index"])
        path = self.data_path(episode)
        where = f"episode {index} of {self.root}"
        if not path.is_file():
            raise DataError(path, f"{where}: data file is missing")
        try:
            if self.legacy:
                table = pq.read_table(path)
            else:  # many episodes per file: read only this one's rows
                table = pq.read_table(path, filters=[("episode_index", "==", index)])
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(path, f"{where}: unreadable parquet ({type(exc).__name__}: {exc})") from None
        if "frame_index" in table.column_names:
            order = np.argsort(np.asarray(table.column("frame_index")), kind="stable")
            table = table.take(order)
        arrays = {}
        for name in table.column_names:
            array = _arrow_to_numpy(table.column(name).combine_chunks())
            if array is not None:  # numbers and booleans; strings, images and ragged lists are not arrays
                arrays[name] = array
        return arrays

    # ------------------------------------------------------------------ conversion

    def resolve_views(self, views: dict[str, str] | None) -> dict[str, str]:
        cameras = self.camera_keys
        if views is None:
            if len(cameras) == 1:
                return {HEAD_VIEW: cameras[0]}
            raise ConfigError(
                f"{self.root} has {len(cameras)} cameras ({', '.join(cameras) or 'none'}); "
                f"say which is the head view, e.g. --views head={cameras[0] if cameras else 'observation.images.top'}"
            )
        for view, key in views.items():
            if key not in self.features:
                raise ConfigError(
                    f"--views {view}={key}: {self.root} has no camera {key!r} (cameras: {', '.join(cameras) or 'none'})"
                )
            if key not in cameras:
                raise ConfigError(
                    f"--views {view}={key}: feature {key!r} is stored as {self.features[key].get('dtype')!r}, not as a video or image"
                )
        return dict(views)

    def image_frames(
        self, episode: dict, key: str, keep: list[int], num_frames: int, where: str
    ) -> Iterator[np.ndarray]:
        """Frames of a camera stored as images in the episode's rows (only that column is read)."""
        import pyarrow.parquet as pq

        index = int(episode["episode_index"])
        path = self.data_path(episode)
        columns = [key] + (["frame_index"] if "frame_index" in self.features else [])
        filters = None if self.legacy else [("episode_index", "==", index)]
        try:
            table = pq.read_table(path, columns=columns, filters=filters)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(path, f"{where}: unreadable parquet ({type(exc).__name__}: {exc})") from None
        if "frame_index" in table.column_names:
            table = table.take(np.argsort(np.asarray(table.column("frame_index")), kind="stable"))
        images = table.column(key).to_pylist()
        if len(images) != num_frames:
            raise DataError(path, f"{where}: camera {key!r} has {len(images)} images for {num_frames} frames")
        for i in keep:
            item = images[i] or {}
            if item.get("bytes"):
                yield _decode_image(item["bytes"], path, f"{where}: camera {key!r}, frame {i}")
            elif item.get("path") and (self.root / item["path"]).is_file():
                yield read_image(self.root / item["path"])
            else:
                raise DataError(
                    path, f"{where}: camera {key!r}, frame {i} has no image bytes and no readable image path"
                )

    def source_episodes(
        self, mapping: LeRobotMapping, selected: set[str] | None, reader: SegmentReader
    ) -> Iterator[SourceEpisode]:
        views = self.resolve_views(mapping.views)
        for episode in self.select(selected):
            yield self._episode(episode, views, mapping, reader)

    def select(self, selected: set[str] | None) -> list[dict]:
        episodes = self.episodes
        if selected is not None:
            known = {str(int(e["episode_index"])) for e in episodes}
            missing = sorted(selected - known, key=lambda s: (len(s), s))
            if missing:
                raise ConfigError(f"--episodes: {self.root} has no episode {', '.join(missing[:10])}")
            episodes = [e for e in episodes if str(int(e["episode_index"])) in selected]
        return episodes

    def _episode(
        self, episode: dict, views: dict[str, str], mapping: LeRobotMapping, reader: SegmentReader
    ) -> SourceEpisode:
        index = int(episode["episode_index"])
        arrays = self.read_rows(episode)
        num_frames = len(next(iter(arrays.values()))) if arrays else int(episode.get("length", 0))
        task_index = int(arrays["task_index"][0]) if "task_index" in arrays and num_frames else None
        where = (
            f"episode {index}"
            + (f" (task {task_index})" if task_index is not None else "")
            + f" of {self.root}"
        )
        if num_frames == 0:
            raise DataError(self.data_path(episode), f"{where}: no frames")
        if "length" in episode and int(episode["length"]) != num_frames:
            raise DataError(
                self.data_path(episode),
                f"{where}: metadata says {episode['length']} frames, the data file has {num_frames}",
            )
        episode_tasks = [str(t) for t in (episode.get("tasks") or [])]
        if task_index is not None:
            instruction = self.tasks.get(task_index, episode_tasks[0] if episode_tasks else "")
        else:
            instruction = episode_tasks[0] if episode_tasks else ""
        ordered_tasks = (
            list(dict.fromkeys(self.tasks[int(t)] for t in arrays["task_index"] if int(t) in self.tasks))
            if "task_index" in arrays
            else episode_tasks
        )

        def stream_for(key: str):
            if key in self.image_keys:
                return lambda keep: self.image_frames(episode, key, keep, num_frames, where)
            path, start = self.video_segment(episode, key)
            return lambda keep: reader.frames(path, start, num_frames, keep, where)

        source = SourceEpisode(
            task=str(task_index if task_index is not None else 0),
            episode=str(index),
            where=where,
            instruction=instruction,
            num_frames=num_frames,
            fps=self.fps,
            views={view: stream_for(key) for view, key in views.items()},
            substeps=ordered_tasks if len(ordered_tasks) > 1 else [],
            source_arrays=arrays,
            meta={"source_views": views, "robot_type": self.info.get("robot_type")},
        )
        _apply_mapping(source, mapping, arrays, where)
        return source


def _apply_mapping(
    source: SourceEpisode, mapping: LeRobotMapping, arrays: dict[str, np.ndarray], where: str
) -> None:
    if mapping.eef_pose is not None:
        source.eef_pose = mapping.eef_pose.apply(arrays, where)
    if mapping.actions is not None:
        source.actions = mapping.actions.apply(arrays, where)
    if mapping.joints is not None:
        if mapping.joints not in arrays:
            raise DataError(where, f"--joints: the source has no feature {mapping.joints!r}")
        source.joint_positions = np.asarray(arrays[mapping.joints], dtype=np.float64).reshape(
            source.num_frames, -1
        )
    if mapping.fk is not None:
        if source.joint_positions is None:
            raise ConfigError("--fk needs --joints FEATURE (the joint positions it maps to poses)")
        source.eef_pose = apply_forward_kinematics(mapping.fk, source.joint_positions, where)
    for view, feature in (mapping.intrinsics or {}).items():
        values = _calibration(arrays, feature, 9, where).reshape(-1, 3, 3)
        if not np.all(values == values[0]):
            raise DataError(
                where,
                f"--intrinsics {view}={feature}: intrinsics change within the episode; only fixed intrinsics are supported",
            )
        source.intrinsics[view] = values[0]
    for view, feature in (mapping.extrinsics or {}).items():
        source.extrinsics[view] = _calibration(arrays, feature, 16, where).reshape(-1, 4, 4)
    mapped = {v for v in (*(mapping.intrinsics or {}), *(mapping.extrinsics or {}))}
    unknown = mapped - set(source.views)
    if unknown:
        raise ConfigError(f"calibration given for views that are not converted: {', '.join(sorted(unknown))}")


def _calibration(arrays: dict[str, np.ndarray], feature: str, width: int, where: str) -> np.ndarray:
    if feature not in arrays:
        raise DataError(
            where,
            f"calibration feature {feature!r} is not in the source (it has: {', '.join(sorted(arrays))})",
        )
    values = np.asarray(arrays[feature], dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != width:
        raise DataError(
            where,
            f"calibration feature {feature!r} must hold {width} values per frame, got shape {values.shape}",
        )
    return values


def _arrow_to_numpy(array) -> np.ndarray | None:
    """An arrow column as a numpy array of its own value type ((T,) or (T, D, ...)), or None."""
    import pyarrow as pa

    if array.null_count:
        return None
    if _is_list(array.type):
        values = _arrow_to_numpy(array.flatten())
        if values is None:
            return None
        if pa.types.is_fixed_size_list(array.type):
            width = array.type.list_size
        else:
            lengths = np.asarray(array.value_lengths())
            if len(lengths) and not np.all(lengths == lengths[0]):
                return None
            width = int(lengths[0]) if len(lengths) else 0
        return values.reshape(len(array), width, *values.shape[1:])
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_boolean(array.type):
        return array.to_numpy(zero_copy_only=False)
    return None


def _decode_image(data: bytes, path: Path, where: str) -> np.ndarray:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise DataError(path, f"{where}: undecodable image ({exc})") from None


def _is_list(arrow_type) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
    )


# The fields LeRobot's path templates use, each with the widths a template may give it. A template
# is filled by this parser, never by str.format: no attribute or item access, no conversions, and
# a width of at most two digits.
TEMPLATE_FIELDS = {"episode_chunk", "episode_index", "chunk_index", "file_index", "video_key"}
_NUMBER_SPEC = re.compile(r"0?[1-9]?[0-9]?d?")
_TEMPLATE_CHARS = 512


def fill_path_template(template: str, fields: dict[str, int | str], info_path: Path, key: str) -> str:
    """A LeRobot path template (``data/chunk-{episode_chunk:03d}/...``) filled with ``fields``.

    Only the documented field names are accepted, integers take an optional zero-padded width
    of at most 99 (``:03d``), the camera name takes none; anything else is an error naming
    ``info.json`` and the key.
    """
    if not isinstance(template, str) or not 0 < len(template) <= _TEMPLATE_CHARS:
        raise DataError(info_path, f"{key} must be a path template of 1 to {_TEMPLATE_CHARS} characters")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DataError(info_path, f"{key} is not a valid path template ({exc})") from None
    out = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if name not in fields:
            known = ", ".join(sorted(TEMPLATE_FIELDS & set(fields)))
            raise DataError(
                info_path, f"{key}: unknown template field {{{name}}} (this template may use: {known})"
            )
        value = fields[name]
        if conversion is not None or (spec and (isinstance(value, str) or not _NUMBER_SPEC.fullmatch(spec))):
            raise DataError(
                info_path,
                f"{key}: field {{{name}}} has format {('!' + conversion) if conversion else ''}{(':' + spec) if spec else ''}; "
                "only a zero-padded width of at most 2 digits such as :03d is accepted",
            )
        out.append(format(value, spec) if spec else str(value))
    return "".join(out)


def _index(value, path: Path, key: str, low: int = 0) -> int:
    """A whole number >= ``low`` from metadata (an integral float from parquet is accepted)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DataError(path, f"{key} must be an integer >= {low}, got {str(value)[:40]!r}")
    return value


def _positive_number(value, path: Path, key: str, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(path, f"{key} must be a number, got {str(value)[:40]!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        raise DataError(path, f"{key} must be a finite number {'>= 0' if zero else '> 0'}, got {number!r}")
    return number


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(path, "missing (a v2.1 LeRobot dataset lists its episodes and tasks in meta/*.jsonl)")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(path, f"line {number} is not valid JSON ({exc})") from None
    return rows


def resolve_source(text: str, revision: str | None = None) -> Path:
    """A dataset folder, or a hub repo id (``owner/name``) fetched into the Hugging Face cache.

    The cache is tried first, offline; the network is used only when the copy is not there, and a
    failure names the command that fetches it elsewhere.
    """
    path = Path(text).expanduser()
    if path.exists() or text.count("/") != 1 or text.startswith((".", "/", "~")):
        if not path.is_dir():
            raise DataError(path, "LeRobot dataset folder does not exist")
        return path
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DataError(
            path, "not a folder, and huggingface_hub is not installed to fetch it as a repo id"
        ) from None
    for offline in (True, False):
        try:
            return Path(
                snapshot_download(text, repo_type="dataset", revision=revision, local_files_only=offline)
            )
        except Exception as exc:  # not cached / offline / not found: many types
            if not offline:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise Unavailable(
                    f"LeRobot dataset {text!r} is neither a folder here nor fetchable ({type(exc).__name__}{': ' + first if first else ''})",
                    f"hf download {text} --repo-type dataset --local-dir DIR, then --source DIR",
                ) from None
    raise AssertionError("unreachable")


def convert_lerobot(
    source: Path,
    output: Path,
    mapping: LeRobotMapping | None = None,
    episodes: set[str] | None = None,
    settings: ConvertSettings | None = None,
    progress: bool = True,
) -> ConvertReport:
    """Convert a LeRobot dataset into ``output`` (the GT root), resumably. The source is only read."""
    mapping = mapping or LeRobotMapping()
    settings = settings or ConvertSettings()
    dataset = LeRobotDataset(source)
    dataset.resolve_views(mapping.views)  # a bad mapping fails before anything is written
    selected = dataset.select(episodes)
    info = {
        "format": "lerobot",
        "codebase_version": dataset.version,
        "path": str(dataset.root.resolve()),
        "fps": dataset.fps,
    }
    bind_output(
        output,
        "lerobot",
        str(dataset.root.resolve()),
        {
            **settings.as_dict(),
            **mapping.describe(),
            "episodes": sorted(episodes, key=lambda s: (len(s), s)) if episodes else None,
        },
    )
    with SegmentReader() as reader:
        return convert_episodes(
            dataset.source_episodes(mapping, episodes, reader),
            output,
            settings,
            info,
            total=len(selected),
            progress=progress,
        )
