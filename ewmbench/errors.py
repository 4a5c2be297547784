"""Errors a user can act on: each names the path (or thing) and the problem."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType


class EwmbenchError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(EwmbenchError):
    """Input data is missing, malformed or inconsistent."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ConfigError(EwmbenchError):
    """A protocol, option or name the user gave is not valid."""


class Unavailable(EwmbenchError):
    """Something a metric or model needs is not available here (weights, trajectories, GPU).

    ``fix`` is the command (or action) that makes it available; a metric that raises this is
    reported as skipped with both, never scored as zero.
    """

    def __init__(self, reason: str, fix: str = ""):
        self.reason = reason
        self.fix = fix
        super().__init__(reason + (f" (fix: {fix})" if fix else ""))


class MissingExtra(Unavailable):
    """An optional dependency is not installed; ``fix`` is the install command of its extra."""

    def __init__(self, module: str, extra: str, purpose: str = ""):
        self.module, self.extra = module, extra
        what = f"{purpose} needs" if purpose else "needs"
        super().__init__(
            f"{what} the Python package {module!r}, which is not installed",
            f'pip install "ewmbench[{extra}]"',
        )


def require_installed(module: str, extra: str, purpose: str = "") -> None:
    """Like :func:`require`, without importing: the module is found on the path
    (``importlib.util.find_spec``), or :class:`MissingExtra` names the extra. For listings and
    checks, where importing torch or transformers just to find them would cost seconds."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise MissingExtra(module, extra, purpose)


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingExtra` naming the extra that installs it.

    The extras follow the capabilities (pyproject.toml): ``detect``, ``neural``, ``sim``,
    ``generate``, ``serve``, ``report``, ``leaderboard``, ``scale``; ``all`` installs every one.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is installed but something it imports is broken: show that
        raise MissingExtra(module, extra, purpose) from None
