"""The official EWMBench data layout, read and written exactly, plus our optional sidecar.

Ground truth::

    <root>/<task>/<episode>/video/frame_00000.jpg ...   (or video/<one>.mp4, or video.mp4)
    <root>/<task>/<episode>/prompt/init_frame.png
    <root>/<task>/<episode>/prompt/introduction.txt
    <root>/<task>/<episode>/traj/traj.npy               (after gripper tracking)
    <root>/<task>/<episode>/ewmbench/                   (our sidecar, optional; see Sidecar)

Generated::

    <name>_dataset/<task>/<episode>/<trial>/video/frame_00000.jpg ...
    <name>_dataset/<task>/<episode>/<trial>/traj/traj.npy  (after gripper tracking)
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from tokenize import TokenError

import numpy as np

from ewmbench.data.schema import SIDECAR_FORMAT, SOURCE_PREFIX, check_arrays, read_meta
from ewmbench.data.video import (
    VIDEO_SUFFIXES,
    list_frames,
    read_image,
    read_video,
    save_image,
    video_size,
    write_frames,
)
from ewmbench.errors import DataError
from ewmbench.files import atomic_path, write_json, write_text

HEAD_VIEW = "head"
SIDECAR_DIR = "ewmbench"
TRIAL_SIDECAR_FORMAT = "ewmbench-trial/1"
GENERATED_SUFFIX = "_dataset"
# Entries of an episode folder that the official tool does not treat as trials.
NON_TRIAL_SUFFIXES = (".png", ".json")


def id_sort_key(name: str) -> tuple:
    """Numeric ids sort as numbers, others after them as text."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: id_sort_key(p.name),
    )


def _video_path(folder: Path) -> Path:
    """Where a video lives in an episode or trial folder: ``video/`` or ``video.mp4``."""
    if (folder / "video").is_dir():
        return folder / "video"
    for suffix in VIDEO_SUFFIXES:
        if (folder / f"video{suffix}").is_file():
            return folder / f"video{suffix}"
    return folder / "video"


@dataclass
class Sidecar:
    """Our per-episode extensions, in ``<episode>/ewmbench/``: ``meta.json`` and ``arrays.npz``.

    Arrays (all optional): ``eef_pose`` (T, 14) per frame, [left xyz, rpy, gripper, right xyz,
    rpy, gripper] in the robot base frame, gripper openness in [0, 1]; ``joint_positions`` (T, J);
    ``actions`` (T, 14) in the same layout as ``eef_pose``; per view ``intrinsics`` (3, 3) in
    pixels and ``extrinsics`` (T, 4, 4) camera-to-base (OpenCV camera axes); ``source/<name>``:
    arrays of a converted dataset kept exactly as the source stored them, under its own names.
    Extra views' frames live in ``ewmbench/views/<view>/``; the head view is the official ``video/``.
    """

    fps: float | None = None
    views: list[str] = field(default_factory=lambda: [HEAD_VIEW])
    substeps: list[str] = field(default_factory=list)
    eef_pose: np.ndarray | None = None
    joint_positions: np.ndarray | None = None
    actions: np.ndarray | None = None
    intrinsics: dict[str, np.ndarray] = field(default_factory=dict)
    extrinsics: dict[str, np.ndarray] = field(default_factory=dict)
    source: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # a converted dataset's own arrays, by its names
    meta: dict = field(default_factory=dict)  # anything else: task type, seed, success, ...

    @classmethod
    def load(cls, episode_dir: Path) -> Sidecar | None:
        folder = Path(episode_dir) / SIDECAR_DIR
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            if meta_path.is_symlink() or meta_path.exists():
                raise DataError(meta_path, "sidecar is not a readable file (a dangling link or a folder)")
            return None
        meta = read_meta(meta_path)
        arrays: dict[str, np.ndarray] = {}
        arrays_path = folder / "arrays.npz"
        if arrays_path.is_file():
            try:
                data = np.load(arrays_path, allow_pickle=False)
                if not isinstance(data, np.lib.npyio.NpzFile):
                    raise DataError(arrays_path, "sidecar arrays must be an .npz archive, not a single array")
                with data:
                    arrays = {key: data[key] for key in data.files}
            except (
                OSError,
                ValueError,
                EOFError,
                KeyError,
                zipfile.BadZipFile,
                NotImplementedError,
                RuntimeError,
                SyntaxError,
                TokenError,
            ) as exc:
                # RuntimeError: an encrypted zip member; SyntaxError/TokenError: a mangled .npy header
                raise DataError(
                    arrays_path, f"unreadable sidecar arrays ({type(exc).__name__}: {exc})"
                ) from None
        check_arrays(arrays, list(meta.get("views", [HEAD_VIEW])), arrays_path)
        sidecar = cls(
            fps=None if meta.get("fps") is None else float(meta["fps"]),
            views=list(meta.get("views", [HEAD_VIEW])),
            substeps=list(meta.get("substeps", [])),
            eef_pose=arrays.get("eef_pose"),
            joint_positions=arrays.get("joint_positions"),
            actions=arrays.get("actions"),
            intrinsics={
                k.removeprefix("intrinsics/"): v for k, v in arrays.items() if k.startswith("intrinsics/")
            },
            extrinsics={
                k.removeprefix("extrinsics/"): v for k, v in arrays.items() if k.startswith("extrinsics/")
            },
            source={
                k.removeprefix(SOURCE_PREFIX): v for k, v in arrays.items() if k.startswith(SOURCE_PREFIX)
            },
            meta={k: v for k, v in meta.items() if k not in {"format", "fps", "views", "substeps"}},
        )
        sidecar.validate(folder)
        return sidecar

    def validate(self, where: Path) -> None:
        if self.eef_pose is not None and (self.eef_pose.ndim != 2 or self.eef_pose.shape[1] != 14):
            raise DataError(where / "arrays.npz", f"eef_pose must be (T, 14), got {self.eef_pose.shape}")
        if self.actions is not None and (self.actions.ndim != 2 or self.actions.shape[1] != 14):
            raise DataError(where / "arrays.npz", f"actions must be (T, 14), got {self.actions.shape}")
        for view, k in self.intrinsics.items():
            if k.shape != (3, 3):
                raise DataError(where / "arrays.npz", f"intrinsics/{view} must be (3, 3), got {k.shape}")
        for view, e in self.extrinsics.items():
            if e.ndim != 3 or e.shape[1:] != (4, 4):
                raise DataError(where / "arrays.npz", f"extrinsics/{view} must be (T, 4, 4), got {e.shape}")

    def save(self, episode_dir: Path) -> None:
        folder = Path(episode_dir) / SIDECAR_DIR
        self.validate(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": SIDECAR_FORMAT,
            "fps": self.fps,
            "views": self.views,
            "substeps": self.substeps,
            **self.meta,
        }
        arrays = {}
        for name in ("eef_pose", "joint_positions", "actions"):
            if getattr(self, name) is not None:
                arrays[name] = np.asarray(getattr(self, name))
        arrays.update({f"intrinsics/{v}": np.asarray(k) for v, k in self.intrinsics.items()})
        arrays.update({f"extrinsics/{v}": np.asarray(e) for v, e in self.extrinsics.items()})
        arrays.update({f"{SOURCE_PREFIX}{name}": np.asarray(a) for name, a in self.source.items()})
        if arrays:
            with atomic_path(folder / "arrays.npz") as tmp:
                _save_npz_reproducibly(tmp, arrays)
        write_json(folder / "meta.json", meta, sort_keys=True)


def read_trial_meta(trial_dir: Path) -> dict | None:
    """A generated trial's ``ewmbench/meta.json`` (format ``ewmbench-trial/1``), or None."""
    path = Path(trial_dir) / SIDECAR_DIR / "meta.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or not UTF-8
        raise DataError(path, f"trial sidecar is not valid JSON ({exc})") from None
    return meta if isinstance(meta, dict) and meta.get("format") == TRIAL_SIDECAR_FORMAT else None


def _save_npz_reproducibly(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez``, but the same arrays always give the same bytes.

    ``np.savez`` stamps each zip member with the current time, so two otherwise identical
    sidecars would differ; here members are sorted by name and carry a fixed timestamp.
    """
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)


@dataclass(frozen=True)
class Episode:
    """One ground-truth episode: ``<root>/<task>/<episode>/``."""

    task: str
    episode: str
    path: Path

    @property
    def key(self) -> tuple[str, str]:
        return (self.task, self.episode)

    def video_path(self, view: str = HEAD_VIEW) -> Path:
        if view == HEAD_VIEW:
            return self._head_video
        return self.path / SIDECAR_DIR / "views" / view

    @cached_property
    def _head_video(self) -> Path:
        return _video_path(self.path)  # looked up once per object (a few stat calls)

    @property
    def init_frame_path(self) -> Path:
        return self.path / "prompt" / "init_frame.png"

    def initial_frame(self, view: str = HEAD_VIEW) -> np.ndarray:
        """The conditioning frame (H, W, 3): ``prompt/init_frame.png`` for the head view when
        present, else the view's first frame."""
        if view == HEAD_VIEW and self.init_frame_path.is_file():
            return read_image(self.init_frame_path)
        return read_video(self.video_path(view), max_frames=1)[0]

    @property
    def instruction_path(self) -> Path:
        return self.path / "prompt" / "introduction.txt"

    @property
    def instruction(self) -> str:
        if not self.instruction_path.is_file():
            return ""
        return self.instruction_path.read_text(encoding="utf-8", errors="replace").strip()

    @cached_property
    def traj_path(self) -> Path:
        return self.path / "traj" / "traj.npy"

    @cached_property
    def sidecar(self) -> Sidecar | None:
        return Sidecar.load(self.path)

    @property
    def views(self) -> list[str]:
        return self.sidecar.views if self.sidecar else [HEAD_VIEW]


@dataclass(frozen=True)
class Trial:
    """One generated trial: ``<name>_dataset/<task>/<episode>/<trial>/``."""

    task: str
    episode: str
    trial: str
    path: Path

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.task, self.episode, self.trial)

    def video_path(self, view: str = HEAD_VIEW) -> Path:
        if view == HEAD_VIEW:
            return self._head_video
        return self.path / SIDECAR_DIR / "views" / view

    @cached_property
    def _head_video(self) -> Path:
        return _video_path(self.path)  # looked up once per object (a few stat calls)

    @cached_property
    def traj_path(self) -> Path:
        return self.path / "traj" / "traj.npy"


@dataclass(frozen=True)
class Problem:
    """A layout problem found while reading a dataset."""

    path: Path
    message: str
    severity: str = "error"  # "error" stops scoring of that item, "warning" does not

    def __str__(self) -> str:
        return f"[{self.severity}] {self.path}: {self.message}"


class GroundTruth:
    """A ground-truth dataset in the official layout."""

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "ground-truth dataset folder does not exist")

    @cached_property
    def episodes(self) -> list[Episode]:
        return [
            Episode(task.name, episode.name, episode)
            for task in _subdirs(self.root)
            for episode in _subdirs(task)
        ]

    def task_names(self) -> dict[str, str]:
        """Each task id's name where its first episode's sidecar gives one (``task_name``), for
        display: ``{"1": "pick_place"}``. Tasks without a name are left out."""
        names: dict[str, str] = {}
        for episode in self.episodes:
            if episode.task in names:
                continue
            try:
                meta = episode.sidecar.meta if episode.sidecar is not None else {}
            except DataError:
                continue  # a broken sidecar is reported with the layout problems; the task keeps its id
            name = str(meta.get("task_name") or "").strip()
            if name and name != episode.task:
                names[episode.task] = name
        return names

    def restricted_to(self, keys: set[tuple[str, str]]) -> GroundTruth:
        """The same dataset holding only the episodes whose (task, episode) is in ``keys``."""
        subset = GroundTruth(self.root)
        subset.episodes = [e for e in self.episodes if e.key in keys]
        return subset

    def episode(self, task: str, episode: str) -> Episode:
        for item in self.episodes:
            if item.key == (task, episode):
                return item
        raise DataError(self.root / task / episode, "no such episode in the ground-truth dataset")

    def problems(self, videos_needed: bool = True) -> list[Problem]:
        """Layout problems. Without ``videos_needed`` (no metric reads frames), the video of an
        episode with ``traj/traj.npy`` is not listed."""
        problems = []
        if not self.episodes:
            problems.append(Problem(self.root, "no episodes found (expected <task>/<episode>/video/)"))
        for task in _subdirs(self.root):
            if not _subdirs(task):
                problems.append(Problem(task, "task folder has no episodes"))
        for episode in self.episodes:
            if not (_is_text(episode.task) and _is_text(episode.episode)):
                problems.append(
                    Problem(
                        episode.path,
                        "folder name is not UTF-8 text; rename it (ids are written to CSV and JSON)",
                    )
                )
                continue
            if videos_needed or not episode.traj_path.is_file():
                problems.extend(_video_problems(episode.video_path()))
            for name in (episode.task, episode.episode):
                if not name.isdigit():
                    problems.append(
                        Problem(
                            episode.path,
                            f"id {name!r} is not numeric (the official CSV casts ids to int)",
                            "warning",
                        )
                    )
            if not episode.instruction_path.is_file():
                problems.append(
                    Problem(
                        episode.instruction_path,
                        "missing (generators that need the instruction will fail)",
                        "warning",
                    )
                )
            if not episode.init_frame_path.is_file():
                problems.append(
                    Problem(
                        episode.init_frame_path,
                        "missing (generators fall back to the first video frame)",
                        "warning",
                    )
                )
            try:
                sidecar = episode.sidecar
            except DataError as exc:
                problems.append(Problem(exc.path, exc.problem))
                continue
            if sidecar:
                for view in sidecar.views:
                    if view != HEAD_VIEW:
                        problems.extend(_video_problems(episode.video_path(view)))
        return problems


class Generated:
    """A generated dataset: ``<name>_dataset/<task>/<episode>/<trial>/``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "generated dataset folder does not exist")

    @property
    def name(self) -> str:
        return self.root.name.removesuffix(GENERATED_SUFFIX)

    @cached_property
    def trials(self) -> list[Trial]:
        trials = []
        for task in _subdirs(self.root):
            for episode in _subdirs(task):
                for entry in sorted(episode.iterdir(), key=lambda p: id_sort_key(p.name)):
                    if (
                        entry.name.startswith(".")
                        or entry.suffix.lower() in NON_TRIAL_SUFFIXES
                        or not entry.is_dir()
                    ):
                        continue
                    trials.append(Trial(task.name, episode.name, entry.name, entry))
        return trials

    def trials_of(self, task: str, episode: str) -> list[Trial]:
        return [t for t in self.trials if (t.task, t.episode) == (task, episode)]

    def problems(self, videos_needed: bool = True) -> list[Problem]:
        """Layout problems. A trial that holds only its track (``traj/traj.npy``, no video) is
        scored by the metrics on tracks: no problem when no metric reads frames
        (``videos_needed=False``), else a warning (metrics on frames skip it)."""
        problems = []
        if not self.root.name.endswith(GENERATED_SUFFIX):
            problems.append(
                Problem(
                    self.root,
                    f"folder name does not end in {GENERATED_SUFFIX!r}; the model name is taken as {self.name!r}",
                    "warning",
                )
            )
        if not self.trials:
            problems.append(Problem(self.root, "no trials found (expected <task>/<episode>/<trial>/video/)"))
        for trial in self.trials:
            if not all(_is_text(n) for n in (trial.task, trial.episode, trial.trial)):
                problems.append(
                    Problem(
                        trial.path,
                        "folder name is not UTF-8 text; rename it (ids are written to CSV and JSON)",
                    )
                )
                continue
            video = trial.video_path()
            if not video.exists() and trial.traj_path.is_file():
                if videos_needed:
                    problems.append(
                        Problem(
                            video,
                            "no video, only traj/traj.npy: metrics on frames skip this trial",
                            "warning",
                        )
                    )
                continue
            problems.extend(_video_problems(video))
        return problems


def _is_text(name: str) -> bool:
    """False for a file name that is not valid UTF-8 (Python keeps its bytes as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def looks_generated(root: Path) -> bool:
    """Whether a dataset folder is a generated one: named ``<name>_dataset``, or holding trial
    folders with ``video/`` one level below its episodes (a GT episode holds ``video/`` itself)."""
    root = Path(root)
    if root.name.endswith(GENERATED_SUFFIX):
        return True
    for task in (p for p in root.iterdir() if p.is_dir()):
        for episode in (p for p in task.iterdir() if p.is_dir()):
            if (episode / "video").exists() or (episode / "prompt").exists():
                return False
            return any((t / "video").exists() for t in episode.iterdir() if t.is_dir())
    return False


def _video_problems(video: Path) -> list[Problem]:
    if video.is_file():
        return []
    if not video.is_dir():
        return [Problem(video, "missing video (expected a frame folder or video.mp4)")]
    try:
        frames = list_frames(video)
    except DataError as exc:
        return [Problem(exc.path, exc.problem)]
    if frames:
        return []
    videos = [p for p in video.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
    if len(videos) == 1:
        return []
    return [Problem(video, "video folder has no frames (.jpg/.jpeg/.png) and no single video file")]


def pairing_problems(gt: GroundTruth, generated: Generated, frame_counts: bool = True) -> list[Problem]:
    """Episodes present on one side only, and (``frame_counts``: reads each trial's first frame)
    episodes whose trials differ in frame count."""
    problems = []
    gt_keys = {e.key for e in gt.episodes}
    gen_keys = {(t.task, t.episode) for t in generated.trials}
    for task, episode in sorted(gen_keys - gt_keys):
        problems.append(
            Problem(
                generated.root / task / episode, "generated episode has no ground truth; it is not scored"
            )
        )
    for task, episode in sorted(gt_keys - gen_keys):
        problems.append(
            Problem(
                gt.root / task / episode,
                "ground-truth episode has no generated trials; it is not scored",
                "warning",
            )
        )
    by_episode: dict[tuple[str, str], list[Trial]] = {}
    for trial in generated.trials if frame_counts else ():
        by_episode.setdefault((trial.task, trial.episode), []).append(trial)
    for task, episode in sorted(gt_keys & gen_keys) if frame_counts else ():
        counts = {}
        for trial in by_episode[(task, episode)]:
            if not trial.video_path().exists() and trial.traj_path.is_file():
                continue  # a track without a video (a warning of Generated.problems)
            try:
                counts[trial.trial] = video_size(trial.video_path())[0]
            except DataError:
                continue  # reported by Generated.problems()
        if len(set(counts.values())) > 1:
            problems.append(
                Problem(
                    generated.root / task / episode,
                    f"trials have different frame counts: {counts}",
                    "warning",
                )
            )
    return problems


def write_episode(
    root: Path,
    task: str,
    episode: str,
    frames: np.ndarray,
    instruction: str,
    init_frame: np.ndarray | None = None,
    sidecar: Sidecar | None = None,
    extra_views: dict[str, np.ndarray] | None = None,
    frame_suffix: str = ".jpg",
) -> Episode:
    """Write one ground-truth episode atomically (built in a temporary folder, then renamed).

    ``frames`` and the extra views may be arrays or iterables of (H, W, 3) frames: an iterable is
    written as it is produced, so a long episode never has to fit in memory.
    """
    final = Path(root) / task / episode
    if final.exists():
        raise DataError(final, "episode already exists; refusing to overwrite it")
    tmp = final.with_name(f".tmp-{episode}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        written = write_frames(frames, tmp / "video", suffix=frame_suffix)
        if not written:
            raise DataError(final, "episode has no frames")
        (tmp / "prompt").mkdir(parents=True, exist_ok=True)
        if init_frame is None:  # the first frame, as written (read back: ``frames`` may be a spent iterator)
            from ewmbench.data.video import read_image

            init_frame = read_image(written[0])
        save_image(init_frame, tmp / "prompt" / "init_frame.png")
        write_text(tmp / "prompt" / "introduction.txt", instruction + "\n")
        for view, view_frames in (extra_views or {}).items():
            write_frames(view_frames, tmp / SIDECAR_DIR / "views" / view, suffix=frame_suffix)
        if sidecar is not None:
            sidecar.save(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed episode leaves nothing behind
        raise
    os.replace(tmp, final)
    return Episode(task, episode, final)


def write_trial(
    root: Path,
    task: str,
    episode: str,
    trial: str,
    frames: np.ndarray,
    extra_views: dict[str, np.ndarray] | None = None,
    meta: dict | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> Trial:
    """Write one generated trial atomically; an existing trial is replaced only as a whole.

    Frames are written as lossless PNG so that scores measure the model, not our encoder. The
    trial's sidecar ``<trial>/ewmbench/`` holds ``meta.json`` (format ``ewmbench-trial/1``: the
    model, its settings, what the resampling did, the result's info), ``arrays.npz`` (per-frame
    state the model returned, e.g. ``eef_pose``) and the extra views in ``views/<view>/``.
    """
    final = Path(root) / task / episode / trial
    tmp = final.with_name(f".tmp-{trial}")
    shutil.rmtree(tmp, ignore_errors=True)
    write_frames(frames, tmp / "video", suffix=".png")
    for view, view_frames in (extra_views or {}).items():
        write_frames(view_frames, tmp / SIDECAR_DIR / "views" / view, suffix=".png")
    if meta is not None or arrays:
        folder = tmp / SIDECAR_DIR
        folder.mkdir(parents=True, exist_ok=True)
        if arrays:
            _save_npz_reproducibly(folder / "arrays.npz", arrays)
        payload = {"format": TRIAL_SIDECAR_FORMAT, **(meta or {})}
        write_json(folder / "meta.json", payload, sort_keys=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return Trial(task, episode, trial, final)
