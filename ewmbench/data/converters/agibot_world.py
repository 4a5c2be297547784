"""AgiBot World episodes into the EWMBench ground-truth layout, with actions and calibration.

The AgiBot World layout (Alpha/Beta releases), as its dataset card describes it::

    task_info/task_<task>.json                    [{episode_id, task_name, init_scene_text,
                                                    label_info: {action_config: [{start_frame,
                                                    end_frame, action_text, skill}, ...]}}, ...]
    observations/<task>/<episode>/videos/<camera>.mp4     head_color, hand_left_color, hand_right_color, ...
    parameters/<task>/<episode>/camera/<name>_intrinsic_params.json          {"intrinsic": {fx, fy, ppx, ppy}}
    parameters/<task>/<episode>/camera/<name>_extrinsic_params_aligned.json  per frame {"extrinsic":
                                                    {rotation_matrix (3x3), translation_vector (3)}}
    proprio_stats/<task>/<episode>/proprio_stats.h5      state/..., action/..., timestamp

An episode becomes ``OUTPUT/<task>/<episode>/``. Every dataset of ``proprio_stats.h5`` is kept
exactly under its HDF5 path (``source/state/end/position``, ...). The 14-D arrays follow one fixed,
documented mapping (see ``docs/converters.md``):

- ``eef_pose`` from ``state/end/position`` (T, 2, 3), ``state/end/orientation`` (T, 2, 4; xyzw
  quaternions, turned into extrinsic x-y-z Euler angles, unwrapped over time) and
  ``state/effector/position`` (T, 2; AgiBot's raw gripper position, 0 open .. ``gripper_max_mm``
  closed, as GE's bundled samples show: about 35 with the fingers open, 117-121 holding a handle;
  openness = 1 - value / ``gripper_max_mm``, clipped to [0, 1]);
- ``actions`` from ``action/end/position``, ``action/end/orientation`` and
  ``action/effector/position`` (0 open .. 1 closed, so openness = 1 - value);
- ``joint_positions`` from ``state/joint/position``.

A group that is missing, or not one row per frame, leaves that 14-D array out (the reason goes in
the sidecar's ``meta.mapping_notes``) rather than guessing. Extrinsics are kept as the files give
them (rotation and translation of the camera in the robot base frame, i.e. camera-to-base).
"""

from __future__ import annotations

import json
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
from ewmbench.data.converters.frames import SegmentReader, video_fps_and_count
from ewmbench.data.layout import HEAD_VIEW
from ewmbench.errors import ConfigError, DataError, require

DEFAULT_VIEWS = {"head": "head_color", "hand_left": "hand_left_color", "hand_right": "hand_right_color"}
DEFAULT_GRIPPER_MAX_MM = 120.0  # AgiBot G1's raw gripper position when closed; --gripper-max-mm changes it


@dataclass(frozen=True)
class AgiBotEpisodeRef:
    task: str
    episode: str
    info: dict  # its task_info entry


class AgiBotWorld:
    """An AgiBot World dataset folder, read episode by episode."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser()
        self.task_info_dir = self.root / "task_info"
        if not self.task_info_dir.is_dir() or not (self.root / "observations").is_dir():
            raise DataError(self.root, "not an AgiBot World dataset (expected task_info/ and observations/)")

    def episodes(
        self, tasks: set[str] | None = None, episodes: set[str] | None = None
    ) -> list[AgiBotEpisodeRef]:
        refs = []
        files = sorted(
            self.task_info_dir.glob("task_*.json"), key=lambda p: _id_key(p.stem.removeprefix("task_"))
        )
        if not files:
            raise DataError(self.task_info_dir, "no task_<id>.json files")
        for file in files:
            task = file.stem.removeprefix("task_")
            if tasks is not None and task not in tasks:
                continue
            try:
                entries = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise DataError(file, f"not valid JSON ({exc})") from None
            if not isinstance(entries, list):
                raise DataError(file, "expected a list of episode entries")
            for entry in entries:
                episode = str(entry.get("episode_id", ""))
                if not episode:
                    raise DataError(file, "an entry has no episode_id")
                if episodes is not None and episode not in episodes:
                    continue
                if not (self.root / "observations" / task / episode).is_dir():
                    if episodes is not None:  # asked for by name: its absence is an error, not a skip
                        raise DataError(
                            self.root / "observations" / task / episode,
                            f"episode {episode} of task {task}: no observations folder",
                        )
                    continue  # task_info lists every episode of a task; a partial download holds some
                refs.append(AgiBotEpisodeRef(task, episode, entry))
        refs.sort(key=lambda r: (_id_key(r.task), _id_key(r.episode)))
        if episodes is not None:
            missing = episodes - {r.episode for r in refs}
            if missing:
                raise ConfigError(f"--episodes: no episode {', '.join(sorted(missing)[:10])} in {self.root}")
        return refs

    def source_episode(
        self, ref: AgiBotEpisodeRef, views: dict[str, str], reader: SegmentReader, gripper_max_mm: float
    ) -> SourceEpisode:
        where = f"episode {ref.episode} (task {ref.task}) of {self.root}"
        videos = {
            view: self.root / "observations" / ref.task / ref.episode / "videos" / f"{camera}.mp4"
            for view, camera in views.items()
        }
        for view, path in videos.items():
            if not path.is_file():
                raise DataError(path, f"{where}: camera {views[view]!r} (view {view!r}) is missing")
        fps, video_frames = video_fps_and_count(videos[HEAD_VIEW], where)
        arrays = read_h5(self.root / "proprio_stats" / ref.task / ref.episode / "proprio_stats.h5", where)
        num_frames = _frame_count(arrays, video_frames, where, videos[HEAD_VIEW])
        notes: list[str] = []
        eef_pose = _pose(arrays, "state", num_frames, gripper_max_mm, notes)
        actions = _pose(arrays, "action", num_frames, gripper_max_mm, notes)
        joints = arrays.get("state/joint/position")
        if joints is not None and (joints.ndim != 2 or len(joints) != num_frames):
            notes.append(
                f"joint_positions: state/joint/position has shape {joints.shape}, not one row per frame"
            )
            joints = None
        intrinsics, extrinsics = {}, {}
        for view, camera in views.items():
            k, e = self._calibration(ref, camera, num_frames, where)
            if k is not None:
                intrinsics[view] = k
            if e is not None:
                extrinsics[view] = e
        substeps = [
            str(a.get("action_text", ""))
            for a in ref.info.get("label_info", {}).get("action_config", [])
            if a.get("action_text")
        ]
        instruction = str(ref.info.get("task_name", "")).strip()
        return SourceEpisode(
            task=ref.task,
            episode=ref.episode,
            where=where,
            instruction=instruction,
            num_frames=num_frames,
            fps=fps,
            views={
                view: (lambda keep, path=path: reader.frames(path, 0, num_frames, keep, where))
                for view, path in videos.items()
            },
            substeps=substeps,
            source_arrays=arrays,
            eef_pose=eef_pose,
            actions=actions,
            joint_positions=None if joints is None else np.asarray(joints, dtype=np.float64),
            intrinsics=intrinsics,
            extrinsics=extrinsics,
            meta={
                "source_views": views,
                "init_scene_text": ref.info.get("init_scene_text"),
                "action_config": ref.info.get("label_info", {}).get("action_config", []),
                "gripper_max_mm": gripper_max_mm,
                "mapping_notes": notes,
                "embodiment": "agibot-g1",
            },
        )

    def _calibration(
        self, ref: AgiBotEpisodeRef, camera: str, num_frames: int, where: str
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        name = camera.removesuffix("_color")
        folder = self.root / "parameters" / ref.task / ref.episode
        candidates = [folder / "camera", folder / "parameters" / "camera", folder]
        camera_dir = next((c for c in candidates if (c / f"{name}_intrinsic_params.json").is_file()), None)
        if camera_dir is None:
            return None, None
        intrinsic_path = camera_dir / f"{name}_intrinsic_params.json"
        data = _read_json(intrinsic_path)
        try:
            values = data["intrinsic"]
            k = np.array(
                [[values["fx"], 0.0, values["ppx"]], [0.0, values["fy"], values["ppy"]], [0.0, 0.0, 1.0]],
                dtype=np.float64,
            )
        except (KeyError, TypeError):
            raise DataError(
                intrinsic_path, f"{where}: expected {{'intrinsic': {{fx, fy, ppx, ppy}}}}"
            ) from None
        extrinsic_path = camera_dir / f"{name}_extrinsic_params_aligned.json"
        if not extrinsic_path.is_file():
            return k, None
        entries = _read_json(extrinsic_path)
        if not isinstance(entries, list) or len(entries) != num_frames:
            count = len(entries) if isinstance(entries, list) else "not a list"
            raise DataError(
                extrinsic_path, f"{where}: expected one extrinsic per frame ({num_frames}), got {count}"
            )
        matrices = np.tile(np.eye(4), (num_frames, 1, 1))
        try:
            for t, entry in enumerate(entries):
                matrices[t, :3, :3] = np.asarray(
                    entry["extrinsic"]["rotation_matrix"], dtype=np.float64
                ).reshape(3, 3)
                matrices[t, :3, 3] = np.asarray(
                    entry["extrinsic"]["translation_vector"], dtype=np.float64
                ).reshape(3)
        except (KeyError, TypeError, ValueError):
            raise DataError(
                extrinsic_path,
                f"{where}: entry {t} lacks extrinsic.rotation_matrix (3x3) / translation_vector (3)",
            ) from None
        return k, matrices


def read_h5(path: Path, where: str) -> dict[str, np.ndarray]:
    """Every numeric dataset of an HDF5 file, by its path, exactly as stored."""
    h5py = require("h5py", "convert", "reading AgiBot World's proprio_stats.h5")
    if not path.is_file():
        raise DataError(path, f"{where}: proprio_stats.h5 is missing")
    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as h5:

            def visit(name, item):
                if isinstance(item, h5py.Dataset) and item.dtype.kind in "biuf":
                    arrays[name] = item[()]

            h5.visititems(visit)
    except OSError as exc:
        raise DataError(path, f"{where}: unreadable HDF5 ({exc})") from None
    return {name: np.asarray(value) for name, value in arrays.items()}


def _frame_count(arrays: dict[str, np.ndarray], video_frames: int, where: str, video: Path) -> int:
    stamps = arrays.get("timestamp")
    if stamps is None:
        return video_frames
    if len(stamps) > video_frames:
        raise DataError(
            video,
            f"{where}: video has {video_frames} frames, proprio_stats.h5 has {len(stamps)} (truncated video?)",
        )
    if len(stamps) < video_frames:
        raise DataError(
            video,
            f"{where}: video has {video_frames} frames, proprio_stats.h5 only {len(stamps)}; they must match frame for frame",
        )
    return len(stamps)


def quaternions_to_rpy(quaternions: np.ndarray) -> np.ndarray:
    """(T, 4) xyzw -> (T, 3) extrinsic x-y-z Euler angles, unwrapped over time (as the sample's poses)."""
    from scipy.spatial.transform import Rotation

    return np.unwrap(Rotation.from_quat(quaternions).as_euler("xyz"), axis=0)


def _pose(
    arrays: dict[str, np.ndarray], group: str, num_frames: int, gripper_max_mm: float, notes: list[str]
) -> np.ndarray | None:
    names = (f"{group}/end/position", f"{group}/end/orientation", f"{group}/effector/position")
    target = "eef_pose" if group == "state" else "actions"
    shapes = {n: arrays[n].shape if n in arrays else None for n in names}
    expected = {names[0]: (num_frames, 2, 3), names[1]: (num_frames, 2, 4), names[2]: (num_frames, 2)}
    wrong = [
        f"{n} is {'missing' if shapes[n] is None else shapes[n]}, expected {expected[n]}"
        for n in names
        if shapes[n] != expected[n]
    ]
    if wrong:
        notes.append(f"{target} not filled: " + "; ".join(wrong))
        return None
    position, orientation, effector = (np.asarray(arrays[n], dtype=np.float64) for n in names)
    # Both groups grow as the gripper closes: the state in raw units up to gripper_max_mm, the action 0..1.
    closure = effector / gripper_max_mm if group == "state" else effector
    openness = np.clip(1.0 - closure, 0.0, 1.0)
    arms = [
        np.concatenate(
            [position[:, arm], quaternions_to_rpy(orientation[:, arm]), openness[:, arm : arm + 1]], axis=1
        )
        for arm in (0, 1)
    ]
    return np.concatenate(arms, axis=1)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None


def _id_key(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def convert_agibot_world(
    source: Path,
    output: Path,
    views: dict[str, str] | None = None,
    tasks: set[str] | None = None,
    episodes: set[str] | None = None,
    settings: ConvertSettings | None = None,
    gripper_max_mm: float = DEFAULT_GRIPPER_MAX_MM,
    progress: bool = True,
) -> ConvertReport:
    """Convert AgiBot World episodes into ``output`` (the GT root), resumably. The source is only read."""
    settings = settings or ConvertSettings()
    views = dict(views or DEFAULT_VIEWS)
    if HEAD_VIEW not in views:
        raise ConfigError(f"--views must map {HEAD_VIEW!r}")
    if not gripper_max_mm > 0:
        raise ConfigError(f"--gripper-max-mm must be positive, got {gripper_max_mm}")
    dataset = AgiBotWorld(source)
    refs = dataset.episodes(tasks, episodes)
    if not refs:
        raise DataError(dataset.root, "no episodes to convert (task_info lists none that have observations)")
    info = {"format": "agibot-world", "path": str(dataset.root.resolve())}
    options = {
        **settings.as_dict(),
        "views": views,
        "gripper_max_mm": gripper_max_mm,
        "tasks": sorted(tasks) if tasks else None,
        "episodes": sorted(episodes) if episodes else None,
    }
    bind_output(output, "agibot-world", str(dataset.root.resolve()), options)
    with SegmentReader() as reader:
        stream: Iterator[SourceEpisode] = (
            dataset.source_episode(ref, views, reader, gripper_max_mm) for ref in refs
        )
        return convert_episodes(stream, output, settings, info, total=len(refs), progress=progress)
