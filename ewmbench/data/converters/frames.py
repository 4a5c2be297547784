"""Frames of one episode out of a source video file, streamed one at a time.

LeRobot v3.0 packs many episodes into one mp4 (each a time range of it); v2.1 and AgiBot World
have one file per episode and camera. :class:`SegmentReader` serves both: it keeps the last
capture of each file open and reads forward, so consecutive episodes of a shared file are decoded
once in total instead of once per episode, and memory holds one frame per view.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import numpy as np

from ewmbench.data.budgets import VIDEO_FRAMES, how_to_raise
from ewmbench.data.video import probe_video
from ewmbench.errors import DataError


class _Capture:
    def __init__(self, path: Path):
        import cv2

        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise OSError("cannot open")
        try:
            self.header = probe_video(path, whole=False)  # frame size checked before any decoding
        except DataError:
            self.capture.release()
            raise
        self.position = 0  # index of the next frame read() returns

    def skip_to(self, index: int) -> bool:
        while self.position < index:
            if not self.capture.grab():
                return False
            self.position += 1
        return True

    def read(self) -> np.ndarray | None:
        import cv2

        ok, frame = self.capture.read()
        if not ok:
            return None
        self.position += 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def release(self) -> None:
        self.capture.release()


class SegmentReader:
    """Reads frame ranges of video files, reusing open captures when reading forward."""

    def __init__(self, max_open: int = 8):
        self.max_open = max_open
        self._open: OrderedDict[Path, _Capture] = OrderedDict()

    def _capture(self, path: Path, start: int, where: str) -> _Capture:
        capture = self._open.pop(path, None)
        if capture is not None and capture.position > start:
            capture.release()  # going backwards: reopen (sequential decoding is exact, seeking is not)
            capture = None
        if capture is None:
            if not path.is_file():
                raise DataError(path, f"{where}: video file is missing")
            try:
                capture = _Capture(path)
            except OSError:
                raise DataError(
                    path, f"{where}: cannot open the video (corrupt or unsupported codec)"
                ) from None
            except DataError as exc:
                raise DataError(path, f"{where}: {exc.problem}") from None
        self._open[path] = capture
        while len(self._open) > self.max_open:
            _, oldest = self._open.popitem(last=False)
            oldest.release()
        return capture

    def frames(self, path: Path, start: int, count: int, keep: list[int], where: str) -> Iterator[np.ndarray]:
        """Frames ``start + i`` for ``i`` in ``keep`` (sorted, repeats allowed), of a segment of ``count`` frames.

        Every frame of the segment must decode: a file that ends early is an error naming the
        episode, the file and how many frames it had, never a shorter episode.
        """
        path = Path(path)
        limit = int(VIDEO_FRAMES.value())
        if count > limit:
            raise DataError(
                path,
                f"{where}: the episode has {count} frames, more than the {limit}-frame budget{how_to_raise(VIDEO_FRAMES)}",
            )
        capture = self._capture(path, start, where)
        if not capture.skip_to(start):
            self._drop(path)
            raise DataError(
                path,
                f"{where}: video ends at frame {capture.position}, before the episode starts (frame {start}); truncated video?",
            )
        wanted = iter(keep)
        next_keep = next(wanted, None)
        for offset in range(count):
            frame = capture.read()
            if frame is not None and frame.shape[:2] != (capture.header.height, capture.header.width):
                self._drop(path)
                raise DataError(
                    path,
                    f"{where}: frame {capture.position - 1} is {frame.shape[0]}x{frame.shape[1]}, the header says "
                    f"{capture.header.height}x{capture.header.width}",
                )
            if frame is None:
                self._drop(path)
                raise DataError(
                    path,
                    f"{where}: video ends after {offset} of the episode's {count} frames (truncated or corrupt video)",
                )
            while offset == next_keep:  # a frame kept twice (resampling to a higher rate) is yielded twice
                yield frame
                next_keep = next(wanted, None)

    def _drop(self, path: Path) -> None:
        capture = self._open.pop(path, None)
        if capture is not None:
            capture.release()

    def close(self) -> None:
        while self._open:
            _, capture = self._open.popitem()
            capture.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def video_fps_and_count(path: Path, where: str) -> tuple[float, int]:
    """The frame rate a video file declares and its frame count (from the container)."""
    import cv2

    if not Path(path).is_file():
        raise DataError(path, f"{where}: video file is missing")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(path, f"{where}: cannot open the video (corrupt or unsupported codec)")
        return float(capture.get(cv2.CAP_PROP_FPS)), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
