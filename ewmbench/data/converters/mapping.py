"""How a source's own arrays become the sidecar's 14-D ``eef_pose`` / ``actions``: only when asked.

The sidecar layout is, per frame, ``[L xyz, L rpy, L gripper, R xyz, R rpy, R gripper]`` (robot
base frame, metres, extrinsic x-y-z Euler angles in radians, gripper openness in [0, 1]). A
source's arrays are always kept exactly under their own names; the 14-D arrays are filled only
through one of these, never guessed:

- a column selection, ``FEATURE`` (a feature that is already 14 wide, in our layout) or
  ``FEATURE[a:b]`` / ``FEATURE[i,j,...]`` (14 columns picked by index, copied unchanged);
- forward kinematics, ``--fk module:function``: a function the user provides that maps the joint
  array ``(T, J)`` to ``(T, 14)`` in our layout.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ewmbench.errors import ConfigError, DataError

POSE_WIDTH = 14
_SPEC = re.compile(r"^(?P<feature>[^\[\]]+?)(\[(?P<columns>[^\[\]]*)\])?$")

ForwardKinematics = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ColumnSelection:
    """``FEATURE`` or ``FEATURE[columns]``: which source feature, which of its columns."""

    feature: str
    columns: tuple[int, ...] | None  # None: the whole feature (must be 14 wide)
    text: str

    def apply(self, arrays: dict[str, np.ndarray], where: str) -> np.ndarray:
        if self.feature not in arrays:
            raise DataError(
                where,
                f"mapping {self.text!r}: the source has no feature {self.feature!r} (it has: {', '.join(sorted(arrays))})",
            )
        array = np.asarray(arrays[self.feature])
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise DataError(
                where,
                f"mapping {self.text!r}: feature {self.feature!r} has shape {array.shape}, expected (T, D)",
            )
        if self.columns is None:
            selected = array
        else:
            if max(self.columns) >= array.shape[1]:
                raise DataError(
                    where,
                    f"mapping {self.text!r}: feature {self.feature!r} has only {array.shape[1]} columns",
                )
            selected = array[:, list(self.columns)]
        if selected.shape[1] != POSE_WIDTH:
            raise DataError(
                where,
                f"mapping {self.text!r} gives {selected.shape[1]} columns, the sidecar's layout needs {POSE_WIDTH}",
            )
        return selected.astype(np.float64)


def parse_selection(text: str | None, option: str) -> ColumnSelection | None:
    """``"observation.state[0:14]"``, ``"action"``, ``"observation.state[0,1,2,...]"``."""
    if not text:
        return None
    match = _SPEC.match(text.strip())
    if not match:
        raise ConfigError(f"{option}: expected FEATURE or FEATURE[a:b] or FEATURE[i,j,...], got {text!r}")
    feature, columns = match.group("feature").strip(), match.group("columns")
    if columns is None:
        return ColumnSelection(feature, None, text)
    try:
        if ":" in columns:
            low, high = (int(part) for part in columns.split(":", 1))
            picked = tuple(range(low, high))
        else:
            picked = tuple(int(part) for part in columns.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{option}: column list must be integers, got {columns!r}") from None
    if not picked or min(picked) < 0:
        raise ConfigError(f"{option}: empty or negative column selection {columns!r}")
    if len(picked) != POSE_WIDTH:
        raise ConfigError(f"{option}: selects {len(picked)} columns, the sidecar's layout needs {POSE_WIDTH}")
    return ColumnSelection(feature, picked, text)


def load_forward_kinematics(text: str | None) -> ForwardKinematics | None:
    """``"package.module:function"`` -> the function (imported now, so a typo fails before converting)."""
    if not text:
        return None
    if ":" not in text:
        raise ConfigError(f"--fk must be module:function, got {text!r}")
    module_name, function_name = text.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--fk: cannot import {module_name!r} ({exc})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"--fk: {module_name!r} has no function {function_name!r}")
    return function


def apply_forward_kinematics(fk: ForwardKinematics, joints: np.ndarray, where: str) -> np.ndarray:
    try:
        pose = np.asarray(fk(np.asarray(joints)), dtype=np.float64)
    except Exception as exc:  # user code: report what it raised, with the episode
        raise DataError(where, f"forward kinematics failed ({type(exc).__name__}: {exc})") from None
    if pose.shape != (len(joints), POSE_WIDTH):
        raise DataError(
            where, f"forward kinematics returned shape {pose.shape}, expected ({len(joints)}, {POSE_WIDTH})"
        )
    return pose
