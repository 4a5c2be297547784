"""What a report reads of a run folder: rows, protocol and dataset identity, column directions.

:func:`read_run` is the one place the report touches a run folder's files (``config.json``,
``provenance.json``, ``summary.json``, ``rows.csv``). The typed run record (``ewmbench.record``) is
meant to replace this reading; the report only uses the fields of :class:`RunData`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ewmbench.errors import DataError

ID_COLUMNS = ("task_id", "episode_id", "trial_id")


@dataclass
class RunData:
    """One run as the report sees it. ``rows`` holds every trial row (ids as text)."""

    label: str
    path: Path
    model: str
    protocol: str  # the protocol's name (or file) as the run was configured
    protocol_hash: str
    dataset_hash: str
    rows: pd.DataFrame
    directions: dict[str, str]  # column -> "higher" | "lower"
    groups: dict[str, str]  # column -> metric group (fidelity, motion, ...)
    run_level: dict[str, float] = field(default_factory=dict)  # dataset-level columns (FID, FVD): one value
    skipped: dict[str, dict] = field(default_factory=dict)  # metric -> {reason, fix}
    gt_root: Path | None = None
    generated_root: Path | None = None
    detector_weights: Path | None = None

    @property
    def metric_columns(self) -> list[str]:
        return [c for c in self.rows.columns if c not in ID_COLUMNS and not c.startswith("_")]

    @property
    def episodes(self) -> set[tuple[str, str]]:
        return set(zip(self.rows.task_id, self.rows.episode_id))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(path, "missing: not a finished run folder (run `ewmbench run` or `ewmbench evaluate` first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not readable JSON ({exc})") from None


def column_facts() -> tuple[dict[str, str], dict[str, str]]:
    """Direction and group of every column any registered metric can write."""
    from ewmbench.metrics.base import metric_registry

    directions, groups = {}, {}
    for metric in metric_registry().values():
        columns = set(metric.columns) | set(metric.lower_is_better)
        for column in columns:
            directions[column] = "lower" if column in metric.lower_is_better else "higher"
            groups[column] = metric.group
    return directions, groups


def dataset_hash(gt_root: Path) -> str:
    """SHA-256 over the GT episodes' ids and head-video content: equal for equal data anywhere."""
    from ewmbench.data.layout import GroundTruth
    from ewmbench.data.video import content_hash

    digest = hashlib.sha256()
    for episode in GroundTruth(gt_root).episodes:
        digest.update(f"{episode.task}/{episode.episode}:{content_hash(episode.video_path())}\n".encode())
    return digest.hexdigest()


def read_run(path: Path | str, label: str | None = None) -> RunData:
    """Read a finished run folder; :class:`DataError` naming the file when something is missing."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "run folder does not exist")
    config = _read_json(path / "config.json").get("config", {})
    provenance = _read_json(path / "provenance.json")
    summary = _read_json(path / "summary.json")
    rows_path = path / "rows.csv"
    if not rows_path.is_file():
        raise DataError(rows_path, "missing: not a finished run folder")
    rows = pd.read_csv(rows_path, dtype={c: str for c in ID_COLUMNS}, keep_default_na=True)
    missing = [c for c in ID_COLUMNS if c not in rows.columns]
    if missing:
        raise DataError(rows_path, f"no {', '.join(missing)} column(s)")

    if config.get("gt"):
        gt_root = Path(config["gt"])
    else:
        from ewmbench.runner import resolve_ground_truth

        gt_root = resolve_ground_truth(config.get("dataset") or "sample")
    if config.get("generated"):
        generated_root = Path(config["generated"])
    else:
        generated_root = path / f"{config.get('model')}_dataset"
    directions, groups = column_facts()
    columns = [c for c in rows.columns if c not in ID_COLUMNS]
    run_level = {k: float(v) for k, v in summary.get("overall", {}).items() if k not in columns and isinstance(v, (int, float))}
    return RunData(
        label=label or path.resolve().name,
        path=path,
        model=summary.get("model") or str(config.get("model")),
        protocol=str(config.get("protocol")),
        protocol_hash=provenance.get("protocol", {}).get("sha256", ""),
        dataset_hash=dataset_hash(gt_root) if gt_root.is_dir() else "",
        rows=rows,
        directions={c: directions.get(c, "higher") for c in [*columns, *run_level]},
        groups={c: groups.get(c, "other") for c in [*columns, *run_level]},
        run_level=run_level,
        skipped=summary.get("skipped_metrics", {}),
        gt_root=gt_root if gt_root.is_dir() else None,
        generated_root=generated_root if generated_root.is_dir() else None,
        detector_weights=Path(config["detector_weights"]) if config.get("detector_weights") else None,
    )
