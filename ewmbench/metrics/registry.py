"""Every metric by name (loaded through :data:`ewmbench.metrics.base.METRICS`), and the direction
of each result column, read from the metric that writes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ewmbench.errors import ConfigError
from ewmbench.metrics.base import METRICS, Metric


def metric_registry() -> dict[str, type[Metric]]:
    """Every metric class by name: the built-ins, the ``ewmbench.metrics`` entry-point group and
    classes registered in this process (imports each metric module; none imports torch)."""
    return {name: METRICS.load(name) for name in METRICS.names()}


def higher_is_better(column: str, registry: Mapping[str, type[Metric]] | None = None) -> bool:
    """The direction of a result column, as the metric that writes it declares it
    (``lower_is_better``); every consumer (best-of-N, reports, leaderboards) reads it here."""
    for cls in (registry if registry is not None else metric_registry()).values():
        if column in cls.columns:
            return column not in cls.lower_is_better
    raise ConfigError(
        f"no metric writes a column {column!r}, so its direction is unknown (see `ewmbench metrics`)"
    )


def column_directions(
    columns: Sequence[str], registry: Mapping[str, type[Metric]] | None = None
) -> dict[str, str]:
    """``{"column": "higher" | "lower"}`` of the given columns (for result files)."""
    return {c: "higher" if higher_is_better(c, registry) else "lower" for c in columns}
