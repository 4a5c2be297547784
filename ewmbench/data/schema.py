"""The shape of an episode's sidecar (``ewmbench/meta.json`` and ``ewmbench/arrays.npz``), checked
once at load, every problem reported with its file and key.

``meta.json`` may carry any further keys (task type, seed, success, scene description): those are
kept as they are. The keys read by the package are typed here, and an array the package does not
know is refused, since a misspelled array name (``eef_poses``) would otherwise be dropped in silence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ewmbench.errors import DataError

SIDECAR_FORMAT = "ewmbench-sidecar/1"
ARRAY_NAMES = ("eef_pose", "joint_positions", "actions")
VIEW_ARRAY_PREFIXES = ("intrinsics/", "extrinsics/")
SOURCE_PREFIX = "source/"  # a converted dataset's own arrays, kept exactly: any name, shape and plain dtype
ViewName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


class SidecarMeta(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)

    format: str
    fps: Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)] | None = None
    views: Annotated[list[ViewName], Field(min_length=1)] = ["head"]
    substeps: list[str] = []
    embodiment: str | None = None
    generator: str | None = None
    num_frames: Annotated[int, Field(ge=1)] | None = None


def read_meta(path: Path) -> dict:
    """``meta.json`` as a checked dict, or :class:`DataError` listing every problem."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"sidecar is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(path, f"cannot read the sidecar ({exc.strerror or exc})") from None
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(path, f"sidecar is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(
            path, f"sidecar must be a JSON object with a 'format' key, got a {type(meta).__name__}"
        )
    if meta.get("format") != SIDECAR_FORMAT:
        raise DataError(path, f"unknown sidecar format {meta.get('format')!r} (expected {SIDECAR_FORMAT!r})")
    try:
        SidecarMeta.model_validate(meta)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {_shown(e.get('input'))})"
            for e in exc.errors()
        ]
        raise DataError(path, "invalid sidecar: " + "; ".join(problems)) from None
    return meta


def check_arrays(arrays: dict[str, np.ndarray], views: list[str], path: Path) -> None:
    """Every array of ``arrays.npz`` known, numeric, finite and of its documented shape."""
    problems = []
    for key, array in arrays.items():
        if key.startswith(SOURCE_PREFIX) and key != SOURCE_PREFIX:
            continue  # numpy refuses object arrays at load (allow_pickle=False), so these are plain data
        known = key in ARRAY_NAMES or (key.startswith(VIEW_ARRAY_PREFIXES) and key.split("/", 1)[1])
        if not known:
            problems.append(
                f"{key}: unknown array (known: {', '.join(ARRAY_NAMES)}, intrinsics/<view>, extrinsics/<view>, source/<name>)"
            )
            continue
        if array.dtype.kind not in "fiu":
            problems.append(f"{key}: must be numeric, got dtype {array.dtype}")
            continue
        expected = _expected_shape(key, array)
        if expected:
            problems.append(f"{key}: must be {expected}, got {array.shape}")
        elif not np.isfinite(array).all():
            problems.append(f"{key}: contains NaN or inf")
    if problems:
        raise DataError(path, "invalid sidecar arrays: " + "; ".join(problems))


def _expected_shape(key: str, array: np.ndarray) -> str:
    """The documented shape when ``array`` does not have it, else ''."""
    if key in ("eef_pose", "actions"):
        return (
            "" if array.ndim == 2 and array.shape[1] == 14 and array.shape[0] > 0 else "(T, 14) with T >= 1"
        )
    if key == "joint_positions":
        return "" if array.ndim == 2 and array.shape[0] > 0 else "(T, J) with T >= 1"
    if key.startswith("intrinsics/"):
        return "" if array.shape == (3, 3) else "(3, 3)"
    return (
        ""
        if array.ndim == 3 and array.shape[1:] == (4, 4) and array.shape[0] > 0
        else "(T, 4, 4) with T >= 1"
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
