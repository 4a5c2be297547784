"""A run's per-video results in the shapes other tools read: VBench's and WorldArena's.

Both are one JSON object with a key per metric: ``{metric: [average, [{"video_path": ...,
"video_results": value}, ...]]}`` (VBench's ``*_eval_results.json``).

``vbench``
    Every row of the run (every trial), every metric column under its own name; ``video_path`` is
    the generated trial's folder ``<model>_dataset/<task>/<episode>/<trial>/video``; ``average``
    is the mean of the values listed. Rows without a value (a metric skipped for that video) are
    left out of that metric's list.

``worldarena``
    ``output/generated_results.json`` under the folder given, where WorldArena 2.0's
    ``csv_results/aggregate_results.py`` looks for it (``--base_dir`` that folder). One video per
    episode, the same first trial as ``ewmbench submit --target worldarena``; ``video_path`` is
    ``generated_dataset/<task>/<episode stem>/<trial>/video``, from which the aggregator parses
    the video id ``<task>_episode<N>``, the stem of the submitted file. Each item carries
    ``video_results_normalized`` as WorldArena's ``_normalize_value`` makes it: per video, before
    any averaging; for a metric without empirical bounds in WorldArena's code, the value itself.
    The one metric WorldArena defines as ours is ``semantic_alignment``: the CLIP text-encoder
    cosine of the generated and ground-truth captions, which is our ``CLIPScore`` / 100 (ours is
    ``max(100 cos, 0)``, so the two differ only where the cosine is negative). Our other columns
    are written under their own names (WorldArena's ``trajectory_accuracy`` is a different number:
    the raw ``1 / DTW cost`` on its own bounds, not our normalised ``ndtw``); its aggregator keeps
    only the columns it knows, so its CSV shows Semantic Alignment.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ewmbench.errors import ConfigError, DataError
from ewmbench.files import write_text
from ewmbench.leaderboard.bundle import first_trials, worldarena_stem
from ewmbench.results.record import load_run

FORMATS = ("vbench", "worldarena")
WORLDARENA_RESULTS = Path("output") / "generated_results.json"
# Our column -> (WorldArena's metric, factor): metrics WorldArena defines as we do.
WORLDARENA_SAME = {"CLIPScore": ("semantic_alignment", 0.01)}


def _value(row: dict, column: str) -> float | None:
    value = row.get(column)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _encode(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _mean(values: list[float]) -> float | str:
    total = sum(values) / len(values)
    return _encode(total) if not math.isnan(total) else None


def vbench_results(record) -> dict:
    """``{column: [average, [{video_path, video_results}]]}`` over every row."""
    prefix = f"{record.model.name}_dataset"
    out = {}
    for column, spec in record.columns.items():
        if spec.level == "dataset":
            continue  # one value per run (FID, FVD): no per-video results
        items = []
        for row in record.rows:
            value = _value(row, column)
            if value is None:
                continue
            path = f"{prefix}/{row['task_id']}/{row['episode_id']}/{row['trial_id']}/video"
            items.append({"video_path": path, "video_results": _encode(value)})
        if items:
            out[column] = [_mean([float(i["video_results"]) for i in items]), items]
    return out


def worldarena_results(record) -> dict:
    """``{metric: [average, [{video_path, video_results, video_results_normalized}]]}``, one
    video per episode (its first trial)."""
    keys = [(r["task_id"], r["episode_id"], r["trial_id"]) for r in record.rows]
    chosen = set(first_trials(keys).values())
    rows = [r for r, key in zip(record.rows, keys) if key in chosen]
    out = {}
    for column, spec in record.columns.items():
        if spec.level == "dataset":
            continue
        name, factor = WORLDARENA_SAME.get(column, (column, 1.0))
        items = []
        for row in rows:
            value = _value(row, column)
            if value is None:
                continue
            value *= factor
            stem = worldarena_stem(row["task_id"], row["episode_id"])
            episode = stem[len(row["task_id"]) + 1 :]
            items.append(
                {
                    "video_path": f"generated_dataset/{row['task_id']}/{episode}/{row['trial_id']}/video",
                    "video_results": _encode(value),
                    # WorldArena normalises per video; without bounds for a metric, the value itself
                    "video_results_normalized": _encode(value),
                }
            )
        if items:
            out[name] = [_mean([float(i["video_results"]) for i in items]), items]
    return out


def export_run(run: Path | str, output: Path | str, fmt: str) -> Path:
    """Write ``run``'s per-video results in ``fmt`` under ``output`` (a folder); returns the file."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    record = load_run(run)
    if not record.rows:
        raise DataError(run, "the run record has no per-video rows to export")
    output = Path(output)
    if fmt == "vbench":
        target = output / f"{record.model.name}_eval_results.json"
        data = vbench_results(record)
    else:
        target = output / WORLDARENA_RESULTS
        data = worldarena_results(record)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, json.dumps(data, indent=1, allow_nan=False) + "\n")
    return target
