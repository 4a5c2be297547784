"""The one video reader and writer: frame folders (jpg/jpeg/png) and mp4 files.

Frames are always ``uint8`` arrays of shape (T, H, W, 3) in RGB order.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ewmbench.data.budgets import FRAME_PIXELS, VIDEO_BYTES, VIDEO_FRAMES, VIDEO_SECONDS, how_to_raise
from ewmbench.errors import DataError
from ewmbench.files import atomic_path, update_with_file

if TYPE_CHECKING:
    from PIL import Image

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def max_frame_pixels() -> int:
    """Largest frame read (width x height; ``ewmbench.data.budgets.FRAME_PIXELS``): a header
    claiming more is refused before any pixel is decoded."""
    return int(FRAME_PIXELS.value())


def list_frames(folder: Path) -> list[Path]:
    """Frame files of ``folder`` sorted by name, as the official tool orders them.

    A frame name that does not lead to a file (a dangling link, a link loop, a folder) is an error:
    skipping it would shift every later frame and change the scores in silence.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "frame folder does not exist")
    frames = []
    for path in folder.iterdir():
        if path.suffix.lower() not in FRAME_SUFFIXES or path.name.startswith(".tmp-"):
            continue
        if not path.is_file():
            if path.is_symlink():
                raise DataError(
                    path, "frame is a broken symbolic link (its target is missing, or the link loops)"
                )
            raise DataError(path, "frame name holds a folder, not an image file")
        frames.append(path)
    return sorted(frames)


def video_source(path: Path) -> Path:
    """Resolve ``path`` (a frame folder, a folder holding ``video/``, or a video file)."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(path, f"not a video file (expected one of {', '.join(VIDEO_SUFFIXES)})")
        return path
    if (path / "video").is_dir():
        return path / "video"
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not list_frames(path) and len(videos) == 1:
            return videos[0]
        return path
    raise DataError(path, "no such video, frame folder or file")


def _open_image(path: Path) -> Image.Image:
    """``Image.open`` with its failures as :class:`DataError` and the size limit checked."""
    from PIL import Image  # imported when an image is opened: listing metrics imports no PIL

    try:
        with warnings.catch_warnings():
            # Our own limit (below PIL's) applies; PIL's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise DataError(path, f"image is too large to read safely ({exc})") from None
    except (OSError, ValueError, ImportError, SyntaxError) as exc:
        # PIL reports truncated or corrupt files as OSError; ImportError comes from plugins that
        # other libraries (ultralytics) hook into Image.open for formats PIL cannot identify.
        raise DataError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_frame_pixels():
        image.close()
        raise DataError(
            path,
            f"image header claims {width}x{height} pixels, outside the readable range (1 to {max_frame_pixels()} "
            f"pixels{how_to_raise(FRAME_PIXELS)})",
        )
    return image


def read_image(path: Path) -> np.ndarray:
    """One image as RGB uint8 (H, W, 3).

    16-bit PNG frames are scaled to 8 bits exactly (value / 257, rounded: 65535 -> 255), not
    clipped or truncated; an alpha channel is dropped, as for 8-bit images.
    """
    decoded = _read_8_bit_png(path)
    if decoded is not None:
        return decoded
    from PIL import Image

    image = _open_image(path)
    try:
        with image:
            if _is_16_bit_png(path):
                return _read_16_bit_png(path)
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


def _read_8_bit_png(path: Path) -> np.ndarray | None:
    """An 8-bit RGB or RGBA PNG (what cameras and generators write) decoded by OpenCV's libpng,
    a third faster than PIL, the same pixels as PIL's ``convert("RGB")`` (alpha dropped); None for
    any other file, and for one OpenCV cannot decode whole, which PIL then reads or reports."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not (
        data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and data[24:26] in (b"\x08\x02", b"\x08\x06")
    ):
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if width < 1 or height < 1 or width * height > max_frame_pixels():
        return None
    import cv2  # imported when a frame is decoded: listing metrics imports no OpenCV

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.shape != (height, width, 3):
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _is_16_bit_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(25)
    return head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16


def _read_16_bit_png(path: Path) -> np.ndarray:
    import cv2

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16:
        raise DataError(path, "unreadable 16-bit PNG")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    elif array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    else:
        array = np.repeat(array[..., :1], 3, axis=2)  # grey + alpha
    return ((array.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)  # round(v / 257)


def read_video(path: Path, max_frames: int | None = None) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8 RGB.

    ``path`` may be a folder of frames, a folder holding ``video/``, or an mp4 (or other) file.
    The video's size is checked against the budgets (``ewmbench.data.budgets``) before any frame
    is decoded: a video file from its container's header, a frame folder from its first frame and
    its file count. Where a video need not be held whole, :func:`iter_video` streams it.
    """
    source = video_source(path)
    if source.is_file():
        header = probe_video(source)
        count = header.frames if max_frames is None else min(header.frames, max_frames)
        _check_whole(source, count, header.height, header.width)
        frames = list(iter_video(source, max_frames))
    else:
        files = list_frames(source)
        if max_frames is not None:
            files = files[:max_frames]
        _check_frame_count(source, len(files))
        if files:
            with _open_image(files[0]) as image:
                width, height = image.size
            _check_whole(source, len(files), height, width)
        frames = _read_images(files)
    if not frames:
        raise DataError(source, "video has no frames")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise DataError(source, f"frames have different sizes: {sorted(shapes)}")
    return np.stack(frames)


def _read_images(files: list[Path]) -> list[np.ndarray]:
    """Frames decoded on threads (the CPU count, at most 8: image decoders release the GIL),
    returned in order."""
    threads = min(8, os.cpu_count() or 1, len(files))
    if threads < 2:
        return [read_image(f) for f in files]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(read_image, files))


@dataclass(frozen=True)
class VideoHeader:
    """What a video file's container says about it, before any frame is decoded."""

    frames: int
    height: int
    width: int
    fps: float | None


def probe_video(path: Path, whole: bool = True) -> VideoHeader:
    """A video file's header, checked against the frame-size budget and, for a ``whole`` video
    (not a file that packs many episodes, each a time range of it), the length and duration budgets."""
    import cv2

    path = Path(path)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(path, "cannot open video file (corrupt or unsupported codec)")
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        height = capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        width = capture.get(cv2.CAP_PROP_FRAME_WIDTH)
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    fps = float(fps) if math.isfinite(fps) and 0 < fps < 1000 else None
    height = int(height) if math.isfinite(height) else 0
    width = int(width) if math.isfinite(width) else 0
    count = int(count) if math.isfinite(count) and count > 0 else 0
    limit = max_frame_pixels()
    if width < 1 or height < 1 or width * height > limit:
        raise DataError(
            path,
            f"video header claims {width}x{height} pixels a frame, outside the readable range "
            f"(1 to {limit} pixels{how_to_raise(FRAME_PIXELS)})",
        )
    if not whole:
        return VideoHeader(count, height, width, fps)
    _check_frame_count(path, count)
    if fps is not None and count / fps > VIDEO_SECONDS.value():
        raise DataError(
            path,
            f"video header claims {count / fps:.0f} s ({count} frames at {fps:g} fps), longer than the "
            f"{VIDEO_SECONDS.value():g} s budget{how_to_raise(VIDEO_SECONDS)}",
        )
    return VideoHeader(count, height, width, fps)


def iter_video(path: Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """A video file's frames, one (H, W, 3) uint8 RGB array at a time: the header is checked first
    (:func:`probe_video`), then every decoded frame against it and the frame budget, since a
    container can understate its length or change size mid-stream."""
    import cv2

    path = Path(path)
    header = probe_video(path)
    limit = int(VIDEO_FRAMES.value())
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(path, "cannot open video file (corrupt or unsupported codec)")
    try:
        read = 0
        while max_frames is None or read < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            read += 1
            if read > limit:
                raise DataError(
                    path,
                    f"video holds more than {limit} frames, the video-frames budget{how_to_raise(VIDEO_FRAMES)}",
                )
            if frame.shape[:2] != (header.height, header.width):
                raise DataError(
                    path,
                    f"frame {read - 1} is {frame.shape[0]}x{frame.shape[1]}, the header says {header.height}x{header.width}",
                )
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _check_frame_count(source: Path, count: int) -> None:
    limit = int(VIDEO_FRAMES.value())
    if count > limit:
        raise DataError(
            source,
            f"video has {count} frames, more than the {limit}-frame budget{how_to_raise(VIDEO_FRAMES)}",
        )


def _check_whole(source: Path, count: int, height: int, width: int) -> None:
    needed = count * height * width * 3
    limit = int(VIDEO_BYTES.value())
    if needed > limit:
        raise DataError(
            source,
            f"video of {count} frames of {height}x{width} needs {needed / 2**20:.0f} MiB decoded, more than the "
            f"{limit / 2**20:.0f} MiB budget for a whole video{how_to_raise(VIDEO_BYTES)}",
        )


def video_size(path: Path) -> tuple[int, int, int]:
    """(frames, height, width) without decoding every frame of a frame folder."""
    source = video_source(path)
    if source.is_file():
        header = probe_video(source)
        return header.frames, header.height, header.width
    files = list_frames(source)
    if not files:
        raise DataError(source, "video has no frames")
    with _open_image(files[0]) as image:
        width, height = image.size
    return len(files), height, width


def video_fps(path: Path) -> float | None:
    """The frame rate a video file declares (None for frame folders or when it declares none)."""
    source = video_source(path)
    if not source.is_file():
        return None
    import cv2

    capture = cv2.VideoCapture(str(source))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS)) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return fps if fps > 0 and fps == fps and fps < 1000 else None


def write_frames(
    frames: np.ndarray | Iterable[np.ndarray], folder: Path, suffix: str = ".jpg", quality: int = 95
) -> list[Path]:
    """Write uint8 RGB frames ((T, H, W, 3), or an iterable of (H, W, 3)) as ``frame_00000<suffix>`` ...

    Files are written under a temporary name and renamed, so a killed writer never leaves a
    half-written frame behind under a final name. An iterable is consumed one frame at a time.
    """
    if isinstance(frames, np.ndarray) and (
        frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8
    ):
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame {index} must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        target = folder / f"frame_{index:05d}{suffix}"
        save_image(frame, target, quality=quality)
        paths.append(target)
    return paths


def save_image(frame: np.ndarray, target: Path, quality: int = 95) -> None:
    """Save one RGB uint8 image atomically (temporary file, then rename)."""
    fmt = "PNG" if Path(target).suffix.lower() == ".png" else "JPEG"
    # PNG at zlib level 1: several times faster to write than the default 6, still lossless.
    options = {"quality": quality, "subsampling": 0} if fmt == "JPEG" else {"compress_level": 1}
    from PIL import Image

    with atomic_path(target) as tmp:
        Image.fromarray(frame).save(tmp, format=fmt, **options)


def write_mp4(frames: np.ndarray, target: Path, fps: float = 5.0, lossless: bool = False) -> None:
    """Write RGB frames as an H.264 mp4 (for people to look at; metrics read frame folders).

    ``lossless``: RGB H.264 at CRF 0 (libx264rgb), decoded back to the very same pixels; larger
    files that common browsers do not play, for videos that will be scored (submission bundles).
    """
    import imageio.v2 as imageio

    options = (
        {"codec": "libx264rgb", "pixelformat": "rgb24", "ffmpeg_params": ["-crf", "0"]}
        if lossless
        else {"codec": "libx264"}
    )
    with (
        atomic_path(target) as tmp,
        imageio.get_writer(tmp, fps=fps, macro_block_size=1, format="FFMPEG", **options) as writer,
    ):
        for frame in frames:
            writer.append_data(np.asarray(frame))


def content_hash(path: Path) -> str:
    """A hash of a video's content (frame names and bytes, or the file's bytes), for caches."""
    source = video_source(path)
    digest = hashlib.sha256()
    files = [source] if source.is_file() else list_frames(source)
    for file in files:
        digest.update(file.name.encode())
        update_with_file(digest, file)
    return digest.hexdigest()
