"""The ``ewmbench`` command line: one module per command group, each registering its commands on ``app``.

The modules stay thin: they parse options, call the package and print. Heavy imports happen inside
the commands, so ``ewmbench --help`` and ``ewmbench models`` start fast.
"""

from ewmbench.cli import (  # noqa: F401  (registration)
    catalog,
    compare,
    convert,
    data,
    detector,
    evaluation,
    importing,
    leaderboard,
    policy,
    serve,
    validity,
    weights,
)
from ewmbench.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()
