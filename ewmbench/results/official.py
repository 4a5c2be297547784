"""The official EWMBench output files, as the official tool writes them (``output_format: official``).

Two files, from the per-trial rows of a run:

``<name>_results.json``
    One key per dimension, nested per task, episode and trial (keys are the folder names), values
    stored as the official tool stores them: ``trajectory_consistency`` holds 3-decimal strings
    (``{"hsd": "0.788", "dyn": "0.028", "ndtw": "0.639"}``); ``psnr`` and ``ssim`` floats;
    ``diversity`` one float per episode; ``scene_consistency`` VBench's
    ``[mean, [{"video_path": ".../<task>/<episode>/<trial>/video", "video_results": float}]]``;
    ``semantics`` ``{"BLEUScore", "CLIPScore"}`` per trial and ``logics`` the logic flag per
    ``<name>_dataset_<task>_<episode>_<trial>`` (``true``/``false``). Written as Python's ``json`` writes it
    (``indent=2``, no final newline; an infinite PSNR is ``Infinity``, which Python reads back).

``ewmbm_final_table.csv``
    ``task_id, episode_id, trial_id`` and the computed columns of the protocol's ``official_table``
    ``columns`` (the official ones, in the official sorted order). Rows are
    the (task, episode, trial) id triples sorted as text ("10" before "2"); task and trial ids
    are written as ints, the episode id as the folder name. Cells: trajectory columns the
    3-decimal strings; ``psnr``, ``ssim``, ``scene_consistency``, ``diversity`` the floats at full
    precision; ``BLEUScore``, ``CLIPScore`` the float32 of the score rounded to 6 decimals, at
    full precision. The protocol's ``official_table``
    ``first_trial_only`` columns (diversity, an episode value) are shown on trial "1" rows and '-'
    on the others. Then a ``MEAN`` row (``round(sum / count, 6)`` of the stored values), an
    empty row and a comment row. Excel-dialect CSV: ``\\r\\n`` line endings.

The logic flags follow the protocol's ``official_table`` ``logic_flags``. ``official_writer``
(v1) is what the official table writer does: it files each flag under the trial id of the *last*
scene-consistency video instead of the flag's own trial (a stale loop variable), so only that
trial's rows show a flag, the last trial of each episode (in id text order) wins, and without
scene consistency there is no logic column at all; flags are written ``True``/``False`` and
MEAN counts them as 1/0. ``per_trial`` writes each flag on its own row as an int (1/0).

Where the official tool would crash we write a file instead, and say so here: a value that
could not be scored (NaN) is left out of the JSON and leaves its table cell empty and out of
MEAN; an id that is not an integer is written as its folder name.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ewmbench.errors import ConfigError
from ewmbench.files import write_bytes
from ewmbench.protocols import LOGIC_FLAGS, Protocol
from ewmbench.results import FIRST_TRIAL, ID_COLUMNS, TABLE_FILE, results_file


def _three_decimals(value: float) -> str:
    return f"{value:.3f}"  # the official '%.3f' string


def _float32_six_decimals(value: float) -> float:
    # The official semantics scores are float32 tensors, rounded with numpy to 6 decimals in
    # float32 and stored as the Python float of that float32 (e.g. 0.12345699965953827).
    return float(np.around(np.float32(value), 6))


def _flag(value: float) -> int | None:
    return int(value) if math.isfinite(value) else None


# How the official tool stores each column it can write, in the order it writes them (sorted).
CELL_STORAGE: dict[str, Callable[[float], object]] = {
    "BLEUScore": _float32_six_decimals,
    "CLIPScore": _float32_six_decimals,
    "diversity": float,
    "dyn": _three_decimals,
    "hsd": _three_decimals,
    "logic_constraints": _flag,
    "ndtw": _three_decimals,
    "psnr": float,
    "scene_consistency": float,
    "ssim": float,
}
OFFICIAL_COLUMNS = sorted(CELL_STORAGE)
TRAJECTORY_KEYS = ("hsd", "dyn", "ndtw")  # key order inside a trial of trajectory_consistency
SEMANTICS_KEYS = ("BLEUScore", "CLIPScore")
EPISODE_COLUMN = "diversity"  # the official format's one per-episode column
TABLE_NOTE = (
    "# Diversity is calculated based on the generation results of different trails within the same episode. "
    "Only shown in trial_id=1. Others are marked with '-'."
)

TrialKey = tuple[str, str, str]


@dataclass(frozen=True)
class OfficialValues:
    """What the official files hold, every value already in its stored form."""

    trials: dict[TrialKey, dict[str, object]]  # (task, episode, trial) -> {column: stored value}
    episodes: dict[tuple[str, str], float]  # (task, episode) -> diversity
    columns: tuple[
        str, ...
    ]  # official columns computed in the run, in table order (even where every value is missing)

    @classmethod
    def from_rows(cls, rows: pd.DataFrame, columns: Sequence[str] = OFFICIAL_COLUMNS) -> OfficialValues:
        """The stored values of ``columns`` (official columns) that ``rows`` has."""
        unknown = sorted(set(columns) - set(CELL_STORAGE))
        if unknown:
            raise ValueError(
                f"no official storage rule for column(s) {', '.join(unknown)}; official columns: {', '.join(OFFICIAL_COLUMNS)}"
            )
        columns = tuple(c for c in columns if c in rows.columns)
        ids = rows[ID_COLUMNS].astype(str)
        arrays = {column: rows[column].to_numpy(dtype=float) for column in columns}
        trials: dict[TrialKey, dict[str, object]] = {}
        episodes: dict[tuple[str, str], float] = {}
        for position, (task, episode, trial) in enumerate(ids.itertuples(index=False, name=None)):
            cells = trials.setdefault((task, episode, trial), {})
            for column, array in arrays.items():
                value = float(array[position])
                if math.isnan(value):
                    continue  # not scored: no JSON entry, an empty cell
                if column == EPISODE_COLUMN:
                    episodes.setdefault((task, episode), value)
                    continue
                stored = CELL_STORAGE[column](value)
                if stored is not None:
                    cells[column] = stored
        return cls({k: v for k, v in trials.items() if v}, episodes, columns)


def results_json(
    values: OfficialValues, name: str, generated_root: Path | str, logic_flags: str = "official_writer"
) -> dict:
    """``<name>_results.json`` as a dict, dimensions in the official default order."""
    flag = bool if logic_flags == "official_writer" else int
    ordered = sorted(values.trials.items())

    def nested(pick: Callable[[dict[str, object]], object]) -> dict:
        tree: dict = {}
        for (task, episode, trial), cells in ordered:
            value = pick(cells)
            if value is not None:
                tree.setdefault(task, {}).setdefault(episode, {})[trial] = value
        return tree

    def only(keys: tuple[str, ...]) -> Callable[[dict[str, object]], dict | None]:
        return lambda cells: {k: cells[k] for k in keys if k in cells} or None

    results: dict = {}
    if EPISODE_COLUMN in values.columns:
        diversity: dict = {}
        for (task, episode), value in sorted(values.episodes.items()):
            diversity.setdefault(task, {})[episode] = value
        results["diversity"] = diversity
    if "scene_consistency" in values.columns:
        videos = [
            {
                "video_path": os.path.join(str(generated_root), task, episode, trial, "video"),
                "video_results": cells["scene_consistency"],
            }
            for (task, episode, trial), cells in ordered
            if "scene_consistency" in cells
        ]
        scores = [v["video_results"] for v in videos]
        # The mean over videos (the official multi-process value; one process weighs videos by
        # their frame pairs, which is the same number when all videos have the same length).
        results["scene_consistency"] = [sum(scores) / len(scores) if scores else None, videos]
    if set(values.columns) & set(TRAJECTORY_KEYS):
        results["trajectory_consistency"] = nested(only(TRAJECTORY_KEYS))
    if "logic_constraints" in values.columns:
        results["logics"] = {
            f"{name}_dataset_{task}_{episode}_{trial}": flag(cells["logic_constraints"])
            for (task, episode, trial), cells in ordered
            if "logic_constraints" in cells
        }
    if set(values.columns) & set(SEMANTICS_KEYS):
        results["semantics"] = nested(only(SEMANTICS_KEYS))
    for column in ("psnr", "ssim"):
        if column in values.columns:
            results[column] = nested(lambda cells, c=column: cells.get(c))
    return results


def _as_written(identifier: str) -> int | str:
    """Task and trial ids as the official table writes them: ints (the folder name if not one)."""
    try:
        return int(identifier)
    except ValueError:
        return identifier


def _counted(cell: object) -> float | int | None:
    """A cell as the official MEAN counts it: trajectory strings parsed back; '-' and empty not counted."""
    if cell in ("-", ""):
        return None
    return float(cell) if isinstance(cell, str) else cell  # type: ignore[return-value]


def _placed_logic_flags(values: OfficialValues, logic_flags: str) -> dict[TrialKey, object]:
    """Which table row shows which logic flag (see the module's docstring)."""
    flags = {
        key: cells["logic_constraints"]
        for key, cells in sorted(values.trials.items())
        if "logic_constraints" in cells
    }
    if logic_flags == "per_trial":
        return flags
    if logic_flags != "official_writer":
        raise ValueError(f"logic_flags must be one of {', '.join(LOGIC_FLAGS)}, not {logic_flags!r}")
    scene = sorted(key for key, cells in values.trials.items() if "scene_consistency" in cells)
    if not scene:
        return {}  # the official writer fails on every flag and drops it
    stale_trial = scene[-1][2]
    placed: dict[TrialKey, object] = {}
    for (task, episode, _), flag in flags.items():  # in id text order: an episode's last flag wins
        placed[(task, episode, stale_trial)] = bool(flag)
    return placed


def table_text(
    values: OfficialValues,
    first_trial_only: Collection[str] = (EPISODE_COLUMN,),
    logic_flags: str = "official_writer",
) -> str:
    """``ewmbm_final_table.csv``, byte for byte as the official writer produces it."""
    logic = _placed_logic_flags(values, logic_flags)
    cells_of = {
        key: {c: v for c, v in cells.items() if c != "logic_constraints"}
        for key, cells in values.trials.items()
    }
    keys = {key for key, cells in cells_of.items() if cells} | set(logic)
    episode_on_first_trial = EPISODE_COLUMN in values.columns and EPISODE_COLUMN in first_trial_only
    if episode_on_first_trial:
        # An episode's diversity row exists even when that trial does not (as in the official table).
        keys |= {(task, episode, FIRST_TRIAL) for task, episode in values.episodes}

    rows: list[dict[str, object]] = []
    for task, episode, trial in sorted(keys):
        row: dict[str, object] = {
            "task_id": _as_written(task),
            "episode_id": episode,
            "trial_id": _as_written(trial),
        }
        row.update(cells_of.get((task, episode, trial), {}))
        if (task, episode, trial) in logic:
            row["logic_constraints"] = logic[(task, episode, trial)]
        if EPISODE_COLUMN in values.columns:
            shown = not episode_on_first_trial or trial == FIRST_TRIAL
            row[EPISODE_COLUMN] = values.episodes.get((task, episode), "-") if shown else "-"
        if trial != FIRST_TRIAL:
            row.update({c: "-" for c in first_trial_only if c != EPISODE_COLUMN and c in row})
        rows.append(row)

    # A column appears when at least one of its cells is not empty.
    fields = ID_COLUMNS + [c for c in values.columns if any(c in row for row in rows)]
    mean_row: dict[str, object] = {"task_id": "MEAN"}
    for column in fields[len(ID_COLUMNS) :]:
        counted = [v for v in (_counted(row.get(column, "")) for row in rows) if v is not None]
        if counted:
            mean_row[column] = round(sum(counted) / len(counted), 6)

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    writer.writerow(mean_row)
    writer.writerow({})
    writer.writerow({fields[0]: TABLE_NOTE})
    return buffer.getvalue()


def write_official_files(
    output: Path, rows: pd.DataFrame, name: str, generated_root: Path | str, protocol: Protocol
) -> None:
    """Write ``ewmbm_final_table.csv`` and ``<name>_results.json`` in the official format."""
    layout = protocol.official_table
    columns = layout.get("columns") or OFFICIAL_COLUMNS
    unknown = sorted(set(columns) - set(CELL_STORAGE))
    if unknown:
        raise ConfigError(
            f"{protocol.source}: official_table columns {', '.join(unknown)} are not official columns "
            f"(output_format: official writes {', '.join(OFFICIAL_COLUMNS)})"
        )
    values = OfficialValues.from_rows(rows, columns)
    logic_flags = layout.get("logic_flags", "per_trial")
    output = Path(output)
    # Bytes, so that no platform translates the table's \r\n line endings.
    table = table_text(values, layout.get("first_trial_only", ()), logic_flags)
    write_bytes(output / TABLE_FILE, table.encode("utf-8"))
    results = json.dumps(results_json(values, name, generated_root, logic_flags), indent=2)
    write_bytes(output / results_file(name), results.encode("utf-8"))
