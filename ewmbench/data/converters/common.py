"""What every converter shares: one source episode, the settings, and the streaming writer.

A converter reads its format and yields :class:`SourceEpisode` objects, one at a time; each holds
the episode's per-frame arrays (small) and, per view, a *function* that streams its frames (large),
so no episode's video is ever held in memory. :func:`convert_episodes` writes them into the
EWMBench ground-truth layout plus our sidecar, each episode atomically, skipping episodes that are
already complete, so an interrupted conversion resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ewmbench.data.layout import HEAD_VIEW, SIDECAR_DIR, Sidecar, write_episode
from ewmbench.errors import ConfigError, DataError
from ewmbench.files import read_json, write_json

MARKER = "ewmbench_convert.json"
MARKER_FORMAT = "ewmbench-convert/1"
FRAME_SUFFIXES = {"png": ".png", "jpg": ".jpg"}

# Streams the frames of one view, given the source frame indices to keep (sorted; repeats allowed).
FrameStream = Callable[[list[int]], Iterator[np.ndarray]]


@dataclass
class SourceEpisode:
    """One episode as a converter read it, before resampling and resizing."""

    task: str  # output folder names: the source's own task and episode indices
    episode: str
    where: str  # how errors name this episode, e.g. "episode 12 (task 3) of /data/my_lerobot"
    instruction: str
    num_frames: int  # source frames
    fps: float  # source frame rate
    views: dict[str, FrameStream]  # our view name -> frame stream; "head" is required
    substeps: list[str] = field(default_factory=list)
    source_arrays: dict[str, np.ndarray] = field(default_factory=dict)  # by the source's own names, exactly
    eef_pose: np.ndarray | None = None  # (T, 14), through a documented mapping only
    actions: np.ndarray | None = None  # (T, 14), likewise
    joint_positions: np.ndarray | None = None
    intrinsics: dict[str, np.ndarray] = field(default_factory=dict)  # per view (3, 3), at the source size
    extrinsics: dict[str, np.ndarray] = field(default_factory=dict)  # per view (T, 4, 4)
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ConvertSettings:
    """What a conversion writes; an output folder is bound to the settings that started it."""

    fps: float | None = None  # None: the source's own rate
    size: tuple[int, int] | None = None  # (width, height); None: the source's size
    image_format: str = "png"  # png is lossless: the conversion adds no loss to the source's codec

    def __post_init__(self) -> None:
        if self.fps is not None and not (self.fps > 0 and np.isfinite(self.fps)):
            raise ConfigError(f"--fps must be a positive number, got {self.fps}")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ConfigError(f"--size must be WIDTHxHEIGHT with both at least 1, got {self.size}")
        if self.image_format not in FRAME_SUFFIXES:
            raise ConfigError(
                f"--image-format must be one of {', '.join(FRAME_SUFFIXES)}, got {self.image_format!r}"
            )

    def as_dict(self) -> dict:
        return {
            "fps": self.fps,
            "size": list(self.size) if self.size else None,
            "image_format": self.image_format,
        }


def parse_views(text: str | None) -> dict[str, str] | None:
    """``"head=observation.images.top,hand_left=observation.images.wrist"`` -> {view: source name}."""
    if not text:
        return None
    mapping: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigError(f"--views entries must be VIEW=SOURCE_CAMERA, got {item.strip()!r}")
        view, source = (part.strip() for part in item.split("=", 1))
        if not view or not source or "/" in view or view.startswith("."):
            raise ConfigError(f"--views: bad entry {item.strip()!r}")
        if view in mapping:
            raise ConfigError(f"--views names view {view!r} twice")
        mapping[view] = source
    if HEAD_VIEW not in mapping:
        raise ConfigError(f"--views must map the scored view {HEAD_VIEW!r}, e.g. head=observation.images.top")
    return mapping


def parse_id_list(text: str | None, what: str = "--episodes") -> set[str] | None:
    """``"0,3,7-9"`` -> {"0", "3", "7", "8", "9"}; ids that are not numbers are kept as given."""
    if not text:
        return None
    ids: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "-" in item and all(p.strip().isdigit() for p in item.split("-", 1)):
            low, high = (int(p) for p in item.split("-", 1))
            if high < low or high - low > 10_000_000:
                raise ConfigError(f"{what}: bad range {item!r}")
            ids.update(str(i) for i in range(low, high + 1))
        else:
            ids.add(str(int(item)) if item.isdigit() else item)
    return ids


def resample_indices(num_frames: int, source_fps: float, target_fps: float | None) -> list[int]:
    """Source frames to keep: all of them, or at each time k / target_fps the nearest source frame.

    Frame k of the output shows time k / target_fps; its source frame is round(k * source_fps /
    target_fps) (halves round up, so the rule does not depend on numpy's banker's rounding).
    """
    if target_fps is None or target_fps == source_fps:
        return list(range(num_frames))
    duration = num_frames / source_fps
    count = max(1, int(np.floor(duration * target_fps + 1e-9)))
    indices = [int(np.floor(k * source_fps / target_fps + 0.5)) for k in range(count)]
    return [min(i, num_frames - 1) for i in indices]


def scale_intrinsics(k: np.ndarray, source_size: tuple[int, int], target_size: tuple[int, int]) -> np.ndarray:
    """Intrinsics of a resized image (pixel centres at integer coordinates, as OpenCV has them)."""
    sx = target_size[0] / source_size[0]
    sy = target_size[1] / source_size[1]
    scaled = np.array(k, dtype=np.float64)
    scaled[0, 0] *= sx
    scaled[0, 1] *= sx
    scaled[1, 1] *= sy
    scaled[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
    scaled[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
    return scaled


def _resized(
    frames: Iterator[np.ndarray], size: tuple[int, int] | None, seen: list[tuple[int, int]]
) -> Iterator[np.ndarray]:
    """Frames at ``size`` (area interpolation when shrinking); records the source size in ``seen``."""
    import cv2

    for frame in frames:
        if not seen:
            seen.append((frame.shape[1], frame.shape[0]))
        if size is None or (frame.shape[1], frame.shape[0]) == size:
            yield frame
            continue
        shrinking = size[0] < frame.shape[1] or size[1] < frame.shape[0]
        yield cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _checked(frames: Iterator[np.ndarray], expected: int, where: str, view: str) -> Iterator[np.ndarray]:
    """The frames, and an error (inside the episode's atomic write) if their number is not ``expected``:
    frames and per-frame arrays must stay aligned, whatever a reader does."""
    count = 0
    for frame in frames:
        count += 1
        if count > expected:
            break
        yield frame
    if count != expected:
        raise DataError(where, f"view {view!r} gave {count} frames where {expected} were expected")


def _per_frame(array: np.ndarray, num_frames: int) -> bool:
    return array.ndim >= 1 and array.shape[0] == num_frames


def build_sidecar(
    episode: SourceEpisode,
    keep: list[int],
    settings: ConvertSettings,
    source_sizes: dict[str, tuple[int, int]],
    info: dict,
) -> Sidecar:
    """The sidecar of a converted episode: arrays at the kept frames, calibration at the output size."""
    resampled = keep != list(range(episode.num_frames))

    def pick(array: np.ndarray | None) -> np.ndarray | None:
        if array is None:
            return None
        return array[keep] if resampled and _per_frame(array, episode.num_frames) else array

    intrinsics = {}
    for view, k in episode.intrinsics.items():
        if view not in episode.views:
            continue
        if settings.size is not None and view in source_sizes and source_sizes[view] != settings.size:
            k = scale_intrinsics(k, source_sizes[view], settings.size)
        intrinsics[view] = np.asarray(k, dtype=np.float64)
    meta = {
        **episode.meta,
        "source": info,
        "source_task": episode.task,
        "source_episode": episode.episode,
        "source_fps": episode.fps,
        "source_num_frames": episode.num_frames,
    }
    if resampled:
        meta["source_frame_indices"] = keep
    return Sidecar(
        fps=settings.fps if settings.fps is not None else episode.fps,
        views=list(episode.views),
        substeps=list(episode.substeps),
        eef_pose=pick(episode.eef_pose),
        joint_positions=pick(episode.joint_positions),
        actions=pick(episode.actions),
        intrinsics=intrinsics,
        extrinsics={view: pick(e) for view, e in episode.extrinsics.items() if view in episode.views},
        source={name: pick(array) for name, array in episode.source_arrays.items()},
        meta=meta,
    )


@dataclass
class ConvertReport:
    output: Path
    written: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # already complete (resumed)
    frames: int = 0  # frames written (head view)


def bind_output(output: Path, source_format: str, source: str, options: dict) -> None:
    """Bind ``output`` to one conversion: a later run with other settings is refused, not mixed in."""
    output = Path(output)
    record = {"format": MARKER_FORMAT, "source_format": source_format, "source": source, "options": options}
    marker = output / MARKER
    if marker.is_file():
        try:
            existing = read_json(marker)
        except (OSError, ValueError) as exc:
            raise DataError(marker, f"conversion marker is not valid JSON ({exc})") from None
        if existing != record:
            differing = sorted(
                k
                for k in set(existing.get("options", {})) | set(options)
                if existing.get("options", {}).get(k) != options.get(k)
            )
            if existing.get("source") != source or existing.get("source_format") != source_format:
                differing.insert(0, "source")
            raise ConfigError(
                f"{output} holds a conversion with other settings (differ: {', '.join(differing) or 'format'}); "
                "use another --output, or the same settings to resume"
            )
        return
    if output.exists() and any(not p.name.startswith(".") for p in output.iterdir()):
        raise DataError(
            output,
            "output folder exists and is not empty (and holds no conversion to resume); choose another --output",
        )
    write_json(marker, record, sort_keys=True)


def convert_episodes(
    episodes: Iterable[SourceEpisode],
    output: Path,
    settings: ConvertSettings,
    info: dict,
    total: int | None = None,
    progress: bool = True,
) -> ConvertReport:
    """Write each episode into ``output/<task>/<episode>/`` (atomically), skipping complete ones.

    ``info`` describes the source (format, path, version) and is stored in every sidecar.
    """
    output = Path(output)
    report = ConvertReport(output)

    def done(task: str, episode: str) -> bool:
        return (output / task / episode / SIDECAR_DIR / "meta.json").is_file()

    with _progress_bar(progress, total) as advance:
        for episode in episodes:
            if done(episode.task, episode.episode):
                report.skipped.append((episode.task, episode.episode))
                advance(f"{episode.task}/{episode.episode} (done before)")
                continue
            report.frames += write_converted(episode, output, settings, info)
            report.written.append((episode.task, episode.episode))
            advance(f"{episode.task}/{episode.episode}")
    return report


def write_converted(episode: SourceEpisode, output: Path, settings: ConvertSettings, info: dict) -> int:
    """Write one episode; returns the number of head frames written."""
    if HEAD_VIEW not in episode.views:
        raise DataError(
            episode.where, f"no {HEAD_VIEW!r} view mapped (views: {', '.join(episode.views) or 'none'})"
        )
    if episode.num_frames < 1:
        raise DataError(episode.where, "episode has no frames")
    keep = resample_indices(episode.num_frames, episode.fps, settings.fps)
    sizes: dict[str, list[tuple[int, int]]] = {view: [] for view in episode.views}
    streams = {
        view: _checked(_resized(stream(keep), settings.size, sizes[view]), len(keep), episode.where, view)
        for view, stream in episode.views.items()
    }
    extra = {view: s for view, s in streams.items() if view != HEAD_VIEW}
    # The sidecar is written last by write_episode, after every frame, so it can carry the
    # calibration scaled from the sizes the streams actually had.
    sidecar = _LazySidecar(
        lambda: build_sidecar(episode, keep, settings, {v: s[0] for v, s in sizes.items() if s}, info)
    )
    write_episode(
        output,
        episode.task,
        episode.episode,
        streams[HEAD_VIEW],
        episode.instruction,
        sidecar=sidecar,
        extra_views=extra,
        frame_suffix=FRAME_SUFFIXES[settings.image_format],
    )
    return len(keep)


class _LazySidecar:
    """Builds the sidecar when ``write_episode`` saves it (after the frames)."""

    def __init__(self, build: Callable[[], Sidecar]):
        self._build = build

    def save(self, episode_dir: Path) -> None:
        self._build().save(episode_dir)


class _progress_bar:
    """A rich progress bar over episodes (or nothing, when ``enabled`` is false)."""

    def __init__(self, enabled: bool, total: int | None):
        self.enabled = enabled
        self.total = total

    def __enter__(self) -> Callable[[str], None]:
        if not self.enabled:
            return lambda _label: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("converting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            transient=False,
        )
        self._progress.__enter__()
        task = self._progress.add_task("", total=self.total)
        return lambda label: self._progress.update(task, advance=1, description=label)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._progress.__exit__(*exc)
