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
        image = Image.fromarray(frame)
        if fit == "crop":
            image = image.crop(crop_box(frame.shape[0], frame.shape[1], height, width))
        out[i] = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))
    return out


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
    indices = time_indices(len(frames), num_frames, source_fps, target_fps)
    held = int(np.sum(indices >= len(frames)))
    picked = frames[np.minimum(indices, len(frames) - 1)]
    used = set(np.minimum(indices, len(frames) - 1).tolist())
    resized = resize_frames(picked, height, width, fit)
    report = {
        "source": {
            "frames": len(frames),
            "height": int(frames.shape[1]),
            "width": int(frames.shape[2]),
            "fps": source_fps,
        },
        "target": {"frames": int(num_frames), "height": int(height), "width": int(width), "fps": target_fps},
        "time": "by frame rate"
        if source_fps and target_fps and not np.isclose(source_fps, target_fps)
        else "by index",
        "held": held,  # output frames past the source's end (its last frame held)
        "dropped": int(len(frames) - len(used)),  # source frames no output frame shows
        "resized": frames.shape[1:3] != (height, width),
        "fit": fit,
    }
    return resized, report
