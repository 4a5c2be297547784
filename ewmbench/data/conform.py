"""Conform a video to the benchmark's frames: its frame count, size and (when known) frame rate.

A world model generates at its native size, frame rate and length (LTX-Video 8n+1 frames at
multiples of 32 pixels, GE-Base 192x256 at 30 fps, ...). Scoring compares it frame by frame with
the ground truth, so every generated video is brought to the GT's frame count and size by
:func:`conform_video`, the one function for this (generation and video import use it), and what
it did is returned as a plain dict that the trial's sidecar records.

Time: when both frame rates are known and differ, output frame ``i`` shows the source frame
nearest to time ``i / target_fps`` (``round(i * source_fps / target_fps)``); otherwise frames are
matched by index. Either way, a source that ends early holds its last frame (``held`` counts
those frames) and one that runs long is cut (``dropped``).

Space: every frame is resized with PIL's bicubic filter to exactly (height, width). With
``fit="stretch"`` (default) the whole frame is scaled, which undoes a model input that was
scaled from the GT size; with ``fit="crop"`` the largest centred region of the target aspect
ratio is cut out first. Frames already at the target size pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

from ewmbench.errors import ConfigError

FITS = ("stretch", "crop")


def time_indices(
    source_frames: int, num_frames: int, source_fps: float | None = None, target_fps: float | None = None
) -> np.ndarray:
    """Source frame index for each of ``num_frames`` output frames (may point past the end)."""
    if source_frames < 1 or num_frames < 1:
        raise ConfigError(f"cannot conform {source_frames} frames to {num_frames}")
    return _output_indices(num_frames, source_fps, target_fps)


def _output_indices(num_frames: int, source_fps: float | None, target_fps: float | None) -> np.ndarray:
    out = np.arange(num_frames, dtype=np.float64)
    if source_fps and target_fps and not np.isclose(source_fps, target_fps):
        # floor(x + 0.5): round half up, so the mapping does not depend on banker's rounding
        return np.floor(out * (source_fps / target_fps) + 0.5).astype(np.int64)
    return out.astype(np.int64)


def resize_frames(frames: np.ndarray, height: int, width: int, fit: str = "stretch") -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, height, width, 3) uint8."""
    if fit not in FITS:
        raise ConfigError(f"unknown fit {fit!r}; use one of {', '.join(FITS)}")
    frames = np.asarray(frames)
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = _resize_one(frame, height, width, fit)
    return out


def _resize_one(frame: np.ndarray, height: int, width: int, fit: str) -> np.ndarray:
    if frame.shape[:2] == (height, width):
        return frame
    image = Image.fromarray(frame)
    if fit == "crop":
        image = image.crop(crop_box(frame.shape[0], frame.shape[1], height, width))
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))


def crop_box(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The largest centred (left, top, right, bottom) box of aspect ``width / height`` in (h, w)."""
    if w * height > h * width:  # source wider than target
        new_w = round(h * width / height)
        left = (w - new_w) // 2
        return (left, 0, left + new_w, h)
    new_h = round(w * height / width)
    top = (h - new_h) // 2
    return (0, top, w, top + new_h)


def conform_video(
    frames: np.ndarray,
    num_frames: int,
    height: int,
    width: int,
    source_fps: float | None = None,
    target_fps: float | None = None,
    fit: str = "stretch",
) -> tuple[np.ndarray, dict]:
    """``frames`` (T, h, w, 3) uint8 brought to (num_frames, height, width, 3); and what was done."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ConfigError(
            f"frames must be (T, H, W, 3) uint8, got shape {frames.shape} and dtype {frames.dtype}"
        )
    return conform_stream(iter(frames), num_frames, height, width, source_fps, target_fps, fit)


def conform_stream(
    frames: Iterable[np.ndarray],
    num_frames: int,
    height: int,
    width: int,
    source_fps: float | None = None,
    target_fps: float | None = None,
    fit: str = "stretch",
) -> tuple[np.ndarray, dict]:
    """:func:`conform_video` of frames that arrive one at a time (a video being decoded): only the
    frames an output shows are kept, so memory holds the output and one source frame."""
    if fit not in FITS:
        raise ConfigError(f"unknown fit {fit!r}; use one of {', '.join(FITS)}")
    if num_frames < 1:
        raise ConfigError(f"cannot conform a video to {num_frames} frames")
    indices = _output_indices(num_frames, source_fps, target_fps)
    outputs_of: dict[int, list[int]] = {}
    for position, index in enumerate(indices.tolist()):
        outputs_of.setdefault(index, []).append(position)
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    count, last, shape = 0, None, None
    for frame in frames:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ConfigError(
                f"frames must be (H, W, 3) uint8, got shape {frame.shape} and dtype {frame.dtype}"
            )
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise ConfigError(f"frame {count} is {frame.shape[:2]}, the first was {shape[:2]}")
        if count in outputs_of:
            out[outputs_of[count]] = _resize_one(frame, height, width, fit)
        count, last = count + 1, frame
    if count == 0 or last is None or shape is None:
        raise ConfigError(f"cannot conform 0 frames to {num_frames}")
    past_end = indices >= count
    if past_end.any():
        out[past_end] = _resize_one(last, height, width, fit)
    used = set(np.minimum(indices, count - 1).tolist())
    report = {
        "source": {"frames": count, "height": int(shape[0]), "width": int(shape[1]), "fps": source_fps},
        "target": {"frames": int(num_frames), "height": int(height), "width": int(width), "fps": target_fps},
        "time": "by frame rate"
        if source_fps and target_fps and not np.isclose(source_fps, target_fps)
        else "by index",
        "held": int(past_end.sum()),  # output frames past the source's end (its last frame held)
        "dropped": int(count - len(used)),  # source frames no output frame shows
        "resized": shape[:2] != (height, width),
        "fit": fit,
    }
    return out, report
