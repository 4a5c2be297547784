"""Results: the per-video rows table, aggregation under a protocol, and the files a run writes.

``rows`` is one pandas table: one row per generated trial with ``task_id, episode_id, trial_id``
and one column per metric output (NaN where a metric was skipped or failed for that trial).
Episode-level metrics (diversity) carry their value on every trial row of the episode; the
official table shows it on trial ``1`` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import pandas as pd

from ewmbench.files import atomic_path, write_text
from ewmbench.protocols import Protocol

ID_COLUMNS = ["task_id", "episode_id", "trial_id"]
OFFICIAL_TABLE = "ewmbm_final_table.csv"


def round_rows(rows: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Round metric values as the protocol stores them (v1: 3 decimals, as the official strings)."""
    if protocol.decimals is None:
        return rows
    rounded = rows.copy()
    for column in metric_columns(rows):
        rounded[column] = rounded[column].astype(float).round(protocol.decimals)
    return rounded


def metric_columns(rows: pd.DataFrame) -> list[str]:
    return [c for c in rows.columns if c not in ID_COLUMNS and not c.startswith("_")]


def best_of_n_positions(episodes: Sequence[Hashable], values: Sequence[float], higher_is_better: bool) -> list[int]:
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


def select_trials(rows: pd.DataFrame, protocol: Protocol, higher_is_better: Callable[[str], bool]) -> pd.DataFrame:
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
        positions = best_of_n_positions(episodes, rows[column].astype(float).tolist(), higher_is_better(column))
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


def official_table(rows: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """``ewmbm_final_table.csv`` as the official tool writes it: ids, metric columns, MEAN.

    The columns and their order, and the columns shown on trial ``1`` rows only ('-' elsewhere;
    diversity, an episode value), are the protocol's ``official_table`` data. Values are stored
    rounded (3 decimals in v1) and the MEAN row averages the stored values.
    """
    rounded = round_rows(rows, protocol)
    decimals = protocol.decimals if protocol.decimals is not None else 6
    layout = protocol.official_table
    columns = layout.get("columns") or sorted(metric_columns(rows))
    first_trial_only = set(layout.get("first_trial_only", ()))
    table = rounded[ID_COLUMNS].astype(str).copy()
    mean_row = {"task_id": "MEAN", "episode_id": "", "trial_id": ""}
    for column in (c for c in columns if c in rows.columns and rows[c].notna().any()):
        values = rounded[column].astype(float)
        if column in first_trial_only:
            values = values.where(rounded["trial_id"].astype(str) == "1")
        table[column] = [_format(v, decimals) for v in values]
        counted = values.dropna()
        mean_row[column] = _format(float(counted.mean()), decimals) if len(counted) else "-"
    return pd.concat([table, pd.DataFrame([mean_row])], ignore_index=True)


def _format(value: float, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{decimals}f}"


def write_tables(output: Path, rows: pd.DataFrame, protocol: Protocol) -> None:
    write_text(output / "rows.csv", rows.to_csv(index=False))
    with atomic_path(output / "rows.parquet") as tmp:
        rows.to_parquet(tmp, index=False)
    write_text(output / OFFICIAL_TABLE, official_table(rows, protocol).to_csv(index=False))
