"""Files: the cache root, file hashes, atomic writes and our JSON conventions, one of each.

Every file the package writes goes through :func:`atomic_path` (a temporary name in the same
folder, renamed into place when complete), so a killed process never leaves a half-written file
under a final name, and readers see the old file or the new one. JSON is written without ``NaN``
or ``Infinity`` tokens, which other tools cannot read: NaN becomes ``null`` and infinities the
strings ``"inf"``/``"-inf"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ENV = "EWMBENCH_CACHE"
TEMPORARY_PREFIX = ".tmp-"  # readers skip names starting with "." (never a task, episode or trial)


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files are created private (0600); a finished file gets the mode open() would give it.
_FILE_MODE = 0o666 & ~_process_umask()


def cache_root() -> Path:
    """Where derived data (tracks, features, captions, the sample dataset) is cached:
    ``$EWMBENCH_CACHE`` when set, read at each call, else ``~/.cache/ewmbench``."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ewmbench"


# ---------------------------------------------------------------- hashes


def update_with_file(digest: Any, path: Path, block_size: int = 1 << 20) -> None:
    """Feed a file's bytes to a ``hashlib`` digest, a block at a time."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(block_size), b""):
            digest.update(block)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, remembered per (path, size, modification time) so that a
    weights file hashed for every video of a run is read once."""
    path = Path(path).resolve()
    stat = path.stat()
    return _sha256_of(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _sha256_of(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    update_with_file(digest, path)
    return digest.hexdigest()


# ---------------------------------------------------------------- atomic writes


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; renamed to ``target`` when the block ends
    without an error, removed when it raises. The folder is created when missing."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMPORARY_PREFIX, suffix=target.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_array(path: Path, array: np.ndarray) -> None:
    """One array as ``.npy`` (never pickled)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)


def load_array(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


# ---------------------------------------------------------------- JSON


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN -> null, +-inf -> "inf"/"-inf", numpy scalars and arrays -> Python,
    paths -> text, tuples -> lists, mapping keys -> text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Path):
        return str(value)
    return value


def json_text(data: Any, sort_keys: bool = False) -> str:
    """Our JSON file text: :func:`json_safe` values, indented by 2, ending in a newline."""
    return json.dumps(json_safe(data), indent=2, sort_keys=sort_keys) + "\n"


def write_json(path: Path, data: Any, sort_keys: bool = False) -> None:
    write_text(path, json_text(data, sort_keys))


def load_yaml(text: str) -> Any:
    """YAML text as Python data, safely (``yaml.safe_load``'s rules), through libyaml's C parser
    where PyYAML was built with it (40x faster on our protocol files, the same data)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
