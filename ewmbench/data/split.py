"""Split files (``ewmbench-split/1``, written by ``ewmbench data curate``): read, checked, applied.

A run given ``--split FILE`` scores exactly the episodes the split lists; every listed episode
must exist in the ground-truth dataset, and the split's identity (file hash, source, method) is
recorded in the run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ewmbench.errors import DataError

SPLIT_FORMAT = "ewmbench-split/1"
Id = Annotated[str, Field(min_length=1, max_length=255)]


class SplitTask(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    episodes: Annotated[list[Id], Field(min_length=1)]


class SplitFile(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    format: str
    method: str = ""
    parameters: dict[str, Any] = {}
    source: dict[str, Any] = {}
    tasks: Annotated[dict[Id, SplitTask], Field(min_length=1)]


def load_split(path: Path) -> dict:
    """A split file as checked data, with ``path`` and ``sha256`` of the file added."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "split file does not exist (write one with `ewmbench data curate`)")
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(path, f"split file is not UTF-8 text (byte {exc.start})") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(path, f"split file is not valid JSON ({exc})") from None
    except OSError as exc:
        raise DataError(path, f"cannot read the split file ({exc.strerror or exc})") from None
    if not isinstance(data, dict) or data.get("format") != SPLIT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DataError(path, f"not a split file: format {found!r}, expected {SPLIT_FORMAT!r}")
    try:
        SplitFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise DataError(path, "invalid split file: " + "; ".join(problems[:10])) from None
    for task, entry in data["tasks"].items():
        if len(set(entry["episodes"])) != len(entry["episodes"]):
            raise DataError(path, f"task {task!r} lists an episode more than once")
    return {**data, "path": str(path.resolve()), "sha256": hashlib.sha256(raw).hexdigest()}


def split_keys(split: dict) -> set[tuple[str, str]]:
    return {(task, episode) for task, entry in split["tasks"].items() for episode in entry["episodes"]}


def provenance(split: dict) -> dict:
    """What a run records about its split."""
    return {
        "path": split["path"],
        "sha256": split["sha256"],
        "format": split["format"],
        "method": split.get("method", ""),
        "parameters": split.get("parameters", {}),
        "source": split.get("source", {}),
        "episodes": sum(len(e["episodes"]) for e in split["tasks"].values()),
    }
