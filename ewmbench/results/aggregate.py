"""The per-video rows table, aggregation under a protocol, and our table.

``rows`` is one pandas table: one row per generated trial with ``task_id, episode_id, trial_id``
and one column per metric output (NaN where a metric was skipped or failed for that trial).
Episode-level metrics (diversity) carry their value on every trial row of the episode; the
table shows a protocol's ``first_trial_only`` columns on trial ``1`` rows only.

Our table (``output_format: ewmbench``) is built here; the official tool's table and results
JSON by ``ewmbench.results.official``; every file is written by ``ewmbench.results.writers``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING

from ewmbench.protocols import Protocol

if TYPE_CHECKING:
    import pandas as pd  # imported where a table is built: listing metrics imports no pandas

ID_COLUMNS = ["task_id", "episode_id", "trial_id"]
# The table every run writes: ours under `output_format: ewmbench`, the official tool's under
# `output_format: official` (ewmbench/results/official.py).
TABLE_FILE = "ewmbm_final_table.csv"
FIRST_TRIAL = "1"  # the trial whose rows show the protocol's first_trial_only columns


def results_file(name: str) -> str:
    """``<name>_results.json``: overall values (ours) or the official nested results."""
    return f"{name}_results.json"


def round_rows(rows: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Round the columns the protocol stores rounded (v1: the 3-decimal trajectory strings)."""
    rounded = rows.copy()
    for column, decimals in protocol.decimals.items():
        if column in rounded.columns:
            rounded[column] = rounded[column].astype(float).round(decimals)
    return rounded


def metric_columns(rows: pd.DataFrame) -> list[str]:
    return [c for c in rows.columns if c not in ID_COLUMNS and not c.startswith("_")]


def best_of_n_positions(
    episodes: Sequence[Hashable], values: Sequence[float], higher_is_better: bool
) -> list[int]:
    """Best-of-N, the one implementation: per episode key, the position of its best value.

    "Best" follows the column's direction (``higher_is_better``). Ties go to the first position;
    NaN is never chosen unless every value of the episode is NaN (then the first). Episodes come
    in the order of their first appearance.
    """
    best: dict[Hashable, int] = {}
    for position, (episode, value) in enumerate(zip(episodes, values)):
        value = float(value)
        if episode not in best:
            best[episode] = position
            continue
        current = float(values[best[episode]])
        if math.isnan(value):
            continue
        if math.isnan(current) or (value > current if higher_is_better else value < current):
            best[episode] = position
    return list(best.values())


def select_trials(
    rows: pd.DataFrame, protocol: Protocol, higher_is_better: Callable[[str], bool]
) -> pd.DataFrame:
    """The rows that count for the summary: all trials, or the best trial per episode by the
    protocol's selection column, in that column's direction (``higher_is_better(column)``)."""
    selection = protocol.aggregation.get("trial_selection", "all")
    if selection == "all":
        return rows
    if selection == "best_of_n":
        column = protocol.aggregation["selection_column"]
        if column not in rows.columns or rows[column].isna().all():
            return rows  # selection column not computed: nothing to select by (reported in summary)
        episodes = list(zip(rows["task_id"], rows["episode_id"]))
        positions = best_of_n_positions(
            episodes, rows[column].astype(float).tolist(), higher_is_better(column)
        )
        return rows.iloc[sorted(positions)]
    raise ValueError(f"protocol {protocol.name}: unknown trial_selection {selection!r}")


def aggregate(rows: pd.DataFrame, protocol: Protocol, higher_is_better: Callable[[str], bool]) -> dict:
    """Overall and per-task means of every metric column under the protocol's rules;
    ``higher_is_better(column)`` is each column's direction (best-of-N selection reads it)."""
    selected = select_trials(round_rows(rows, protocol), protocol, higher_is_better)
    overall_rule = protocol.aggregation.get("overall", "mean_of_rows")
    overall, per_task = {}, {}
    for column in metric_columns(rows):
        values = selected[["task_id", column]].dropna()
        task_means = values.groupby("task_id", sort=False)[column].mean()
        per_task[column] = {str(k): float(v) for k, v in task_means.items()}
        if values.empty:
            overall[column] = None
        elif overall_rule == "mean_of_rows":
            overall[column] = float(values[column].mean())
        elif overall_rule == "mean_of_task_means":
            overall[column] = float(task_means.mean())
        else:
            raise ValueError(f"protocol {protocol.name}: unknown overall rule {overall_rule!r}")
    return {"overall": overall, "per_task": per_task, "rows_counted": int(len(selected))}


def table_columns(rows: pd.DataFrame, protocol: Protocol) -> list[str]:
    """The table's metric columns: the protocol's ``official_table`` columns (in its order) that
    the run computed, or every metric column in sorted order."""
    columns = protocol.official_table.get("columns") or sorted(metric_columns(rows))
    return [c for c in columns if c in rows.columns and rows[c].notna().any()]


def table(rows: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Our ``ewmbm_final_table.csv``: ids, the protocol's table columns, a MEAN row.

    Cells hold the row values at full precision (Python's shortest round-trip form); a missing
    value is '-'. The protocol's ``first_trial_only`` columns (diversity, an episode value) are
    shown on trial ``1`` rows only. MEAN is the plain mean of the cells shown in the column;
    the protocol's overall values are in ``summary.json``.
    """
    import pandas as pd

    first_trial_only = set(protocol.official_table.get("first_trial_only", ()))
    shown = rows[ID_COLUMNS].astype(str).copy()
    mean_row = {"task_id": "MEAN", "episode_id": "", "trial_id": ""}
    for column in table_columns(rows, protocol):
        values = rows[column].astype(float)
        if column in first_trial_only:
            values = values.where(shown["trial_id"] == FIRST_TRIAL)
        shown[column] = [_full_precision(v) for v in values]
        counted = values.dropna()
        mean_row[column] = _full_precision(float(counted.mean())) if len(counted) else "-"
    return pd.concat([shown, pd.DataFrame([mean_row])], ignore_index=True)


def _full_precision(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))
