"""Errors a user can act on: each names the path (or thing) and the problem."""

from __future__ import annotations

from pathlib import Path


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
