"""End-effector tracks in the official ``traj/traj.npy`` format, read and validated.

A track is an array of shape (T, 2, 2): frames x [left, right gripper] x (x, y), in image
coordinates normalised to [0, 1] (x / 640, y / 480). A gripper that was not detected in a frame
is marked by exactly (-1, -1). Anything else (another shape, NaN or inf, coordinates outside
[0, 1] that are not the missing marker, an empty track) is rejected with a :class:`DataError`
naming the file, so that no malformed track reaches the metrics.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError

import numpy as np

from ewmbench.errors import DataError

MISSING = -1.0


def missing_mask(track: np.ndarray) -> np.ndarray:
    """(T, 2) booleans: True where a gripper is marked missing by exactly (-1, -1)."""
    return np.all(track == MISSING, axis=-1)


def validate_traj(track: np.ndarray, where: Path | str) -> np.ndarray:
    """Return ``track`` as float32 (T, 2, 2) or raise :class:`DataError` saying what is wrong."""
    array = np.asarray(track)
    if array.dtype.kind not in "fiu":
        raise DataError(where, f"trajectory must be numeric, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[1:] != (2, 2):
        raise DataError(
            where, f"trajectory must have shape (T, 2, 2) (frames x grippers x xy), got {array.shape}"
        )
    if array.shape[0] == 0:
        raise DataError(where, "trajectory is empty (0 frames)")
    # The official tool loads tracks as float32; validation runs on the same values it scores.
    array = array.astype(np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        frame = int(np.argwhere(~finite)[0][0])
        raise DataError(where, f"trajectory contains NaN or inf (first at frame {frame})")
    missing = missing_mask(array)
    outside = ((array < 0) | (array > 1)).any(axis=-1) & ~missing
    if outside.any():
        frame, gripper = (int(v) for v in np.argwhere(outside)[0])
        value = tuple(float(v) for v in array[frame, gripper])
        raise DataError(
            where,
            f"trajectory point {value} at frame {frame}, gripper {gripper} is outside [0, 1] and is not "
            "the missing marker (-1, -1)",
        )
    return array


def load_traj(path: Path | str) -> np.ndarray:
    """Read and validate an official ``traj.npy`` track: float32 of shape (T, 2, 2)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "trajectory file not found (run gripper tracking first)")
    try:
        stored = _stored_track(path)
    except OSError as exc:
        raise DataError(path, f"not a readable .npy array ({type(exc).__name__}: {exc})") from None
    if stored.error is not None:
        raise stored.error
    return stored.track.copy()


def traj_digest(path: Path | str) -> str:
    """SHA-256 (hex) of a ``traj.npy`` file's bytes, its identity in score keys; read together
    with its values, which :func:`load_traj` then takes from the same read."""
    return _stored_track(Path(path)).digest


@dataclass(frozen=True)
class _StoredTrack:
    digest: str
    track: np.ndarray | None  # validated, read-only; None where the file was refused
    error: DataError | None


_STORED_LIMIT = 4096  # tracks kept (a few kB each): more than a chunk of trials and their GT
_stored: OrderedDict[tuple, _StoredTrack] = OrderedDict()
_stored_lock = threading.Lock()


def _stored_track(path: Path) -> _StoredTrack:
    """One read of a ``traj.npy``: its content hash and its validated track, or the error loading it
    raises (raised when the track is loaded, not when its identity is taken). The last
    ``_STORED_LIMIT`` files are kept by (path, device, inode, size, modification and change
    times), the signature the content-hash index trusts: a rewritten file is read again."""
    info = path.stat()
    key = (str(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    with _stored_lock:
        if key in _stored:
            _stored.move_to_end(key)
            return _stored[key]
    data = path.read_bytes()
    track, error = None, None
    try:
        track = _parse_traj(data, path)
        track.setflags(write=False)
    except DataError as exc:
        error = exc
    stored = _StoredTrack(hashlib.sha256(data).hexdigest(), track, error)
    with _stored_lock:
        _stored[key] = stored
        while len(_stored) > _STORED_LIMIT:
            _stored.popitem(last=False)
    return stored


def _parse_traj(data: bytes, path: Path) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError, SyntaxError, TokenError, RuntimeError) as exc:
        # numpy parses the header as a Python literal: a mangled one raises SyntaxError or TokenError
        raise DataError(path, f"not a readable .npy array ({type(exc).__name__}: {exc})") from None
    if isinstance(array, np.lib.npyio.NpzFile):
        array.close()
        raise DataError(path, "not a .npy array (an .npz archive)")
    return np.array(validate_traj(array, path))  # its own memory, not a view of the file's bytes
