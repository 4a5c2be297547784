"""What a report reads of a run: its record (rows, protocol and dataset hashes, column directions)
and where its frames lie, for the pictures.

:func:`read_run` reads the run record (:func:`ewmbench.results.record.load_run`) and the folder's
``config.json`` (the ground-truth and generated folders); the report uses only :class:`RunData`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ewmbench.errors import DataError
from ewmbench.files import read_json
from ewmbench.results.record import ID_COLUMNS


@dataclass
class RunData:
    """One run as the report sees it. ``rows`` holds every trial row (ids as text)."""

    label: str
    path: Path
    model: str
    protocol: str  # what load_protocol takes: a built-in's name, or the file of a custom one
    protocol_hash: str  # "" when unknown (a run written before ewmbench-run/1)
    dataset_hash: str  # "" when unknown
    rows: pd.DataFrame
    directions: dict[str, str]  # column -> "higher" | "lower"
    groups: dict[str, str]  # column -> metric group (fidelity, motion, ...)
    run_level: dict[str, float] = field(default_factory=dict)  # dataset-level columns (FID, FVD): one value
    skipped: dict[str, dict] = field(default_factory=dict)  # metric -> {reason, fix}
    gt_root: Path | None = None
    generated_root: Path | None = None
    detector_weights: Path | None = None
    protocol_version: str = ""
    protocol_name: str = ""  # the name inside the protocol file, for display
    cache_dir: Path | None = None  # where the run cached derived data (gripper tracks), if not the default
    task_names: dict[str, str] = field(default_factory=dict)  # task id -> name, where the dataset names it
    column_metrics: dict[str, str] = field(default_factory=dict)  # column -> the metric that wrote it

    @property
    def metric_columns(self) -> list[str]:
        return [c for c in self.rows.columns if c not in ID_COLUMNS and not c.startswith("_")]

    @property
    def episodes(self) -> set[tuple[str, str]]:
        return set(zip(self.rows.task_id, self.rows.episode_id))


def _config(folder: Path) -> dict:
    """The run's resolved configuration (``config.json``), or nothing for a lone record file."""
    path = folder / "config.json"
    if not path.is_file():
        return {}
    try:
        return read_json(path).get("config", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise DataError(path, f"not readable JSON ({exc})") from None


def _existing(path: str | Path | None) -> Path | None:
    return Path(path) if path and Path(path).is_dir() else None


def read_run(path: Path | str, label: str | None = None) -> RunData:
    """A run folder (or ``record.json``) through the run record; frames are found through its config."""
    from ewmbench.results.record import load_run

    record = load_run(path)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    config = _config(folder)
    dataset_level = [c for c, column in record.columns.items() if column.level == "dataset"]
    rows = record.rows_frame()
    rows = rows[[c for c in rows.columns if c not in dataset_level]]
    gt_root = _existing(record.dataset.path) or _existing(config.get("gt"))
    if gt_root is None and config.get("dataset") == "sample":
        from ewmbench.data.datasets import default_sample_path

        gt_root = _existing(default_sample_path())  # never generated here: pictures only
    generated_root = _existing(config.get("generated")) or _existing(
        folder / f"{config.get('model', record.model.name)}_dataset"
    )
    return RunData(
        label=label or folder.resolve().name,
        path=folder,
        model=record.model.name,
        protocol=_protocol_ref(record.protocol.name, record.protocol.source),
        protocol_hash=record.protocol.sha256 or "",
        dataset_hash=record.dataset.sha256 or "",
        rows=rows,
        directions={c: column.direction for c, column in record.columns.items()},
        groups={c: column.group for c, column in record.columns.items()},
        run_level={c: record.overall.get(c) for c in dataset_level if record.overall.get(c) is not None},
        skipped={k: {"reason": v.reason, "fix": v.fix} for k, v in record.skipped.items()},
        gt_root=gt_root,
        generated_root=generated_root,
        detector_weights=Path(config["detector_weights"]) if config.get("detector_weights") else None,
        protocol_version=record.protocol.version,
        protocol_name=record.protocol.name,
        cache_dir=Path(config["cache_dir"]) if config.get("cache_dir") else None,
        task_names={str(k): str(v) for k, v in (getattr(record.dataset, "task_names", None) or {}).items()},
        column_metrics={c: column.metric for c, column in record.columns.items() if column.metric},
    )


def _protocol_ref(name: str, source: str) -> str:
    """What :func:`ewmbench.protocols.load_protocol` takes: a built-in's name, else its file."""
    from ewmbench.protocols import available_protocols

    if name in available_protocols() or not source or not Path(source).is_file():
        return name
    return source
