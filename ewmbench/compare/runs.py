"""A run as a comparison sees it: its record, under a label.

Every fact a report shows of a run (rows, protocol and dataset hashes, column directions, the
protocol it was scored under, where its frames lie) is read from the run record
(:class:`ewmbench.results.record.RunRecord`); nothing is looked up by name and no other file of
the run folder is read. The protocol is the one the record embeds (:meth:`RunRecord.protocol_used`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from ewmbench.data.datasets import SAMPLE, default_sample_path
from ewmbench.protocols import Protocol
from ewmbench.results.record import ID_COLUMNS, RunRecord, load_run


@dataclass(eq=False)
class ComparedRun:
    """One run of a comparison: its record under a label (unique within the comparison)."""

    label: str
    record: RunRecord

    @property
    def path(self) -> Path:
        """The run folder (or the folder of a lone ``record.json``)."""
        where = self.record.path
        if where is None:
            return Path(".")
        return where if where.is_dir() else where.parent

    @property
    def model(self) -> str:
        return self.record.model.name

    @cached_property
    def protocol(self) -> Protocol:
        """The protocol the run was scored under (settings, aggregation rule, decimals)."""
        return self.record.protocol_used()

    @property
    def protocol_name(self) -> str:
        return self.record.protocol.name

    @property
    def protocol_version(self) -> str:
        return self.record.protocol.version

    @property
    def protocol_hash(self) -> str:
        return self.record.protocol.sha256 or ""  # "" when unknown (written before ewmbench-run/1)

    @property
    def dataset_hash(self) -> str:
        return self.record.dataset.sha256 or ""

    @cached_property
    def rows(self) -> pd.DataFrame:
        """Every trial row (ids as text), without the dataset-level columns (one value per run)."""
        rows = self.record.rows_frame()
        return rows[[c for c in rows.columns if c not in self._dataset_level]]

    @property
    def _dataset_level(self) -> list[str]:
        return [c for c, column in self.record.columns.items() if column.level == "dataset"]

    @property
    def directions(self) -> dict[str, str]:
        return {c: column.direction for c, column in self.record.columns.items()}

    @property
    def groups(self) -> dict[str, str]:
        return {c: column.group for c, column in self.record.columns.items()}

    @property
    def column_metrics(self) -> dict[str, str]:
        return {c: column.metric for c, column in self.record.columns.items() if column.metric}

    @property
    def run_level(self) -> dict[str, float]:
        """Dataset-level columns (FID, FVD): one value for the run."""
        overall = self.record.overall
        return {c: overall[c] for c in self._dataset_level if overall.get(c) is not None}

    @property
    def skipped(self) -> dict[str, dict]:
        return {k: {"reason": v.reason, "fix": v.fix} for k, v in self.record.skipped.items()}

    @property
    def task_names(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.record.dataset.task_names or {}).items()}

    @property
    def metric_columns(self) -> list[str]:
        return [c for c in self.rows.columns if c not in ID_COLUMNS and not c.startswith("_")]

    @property
    def episodes(self) -> set[tuple[str, str]]:
        return set(zip(self.rows.task_id, self.rows.episode_id))

    # ---- where the frames and tracks lie (for the pictures)

    @property
    def gt_root(self) -> Path | None:
        found = _existing(self.record.dataset.path)
        if found is None and self.record.dataset.name == SAMPLE:
            found = _existing(default_sample_path())  # never generated here: pictures only
        return found

    @property
    def generated_root(self) -> Path | None:
        return _existing(self.record.model.videos) or _existing(self.path / f"{self.model}_dataset")

    @property
    def cache_dir(self) -> Path | None:
        return Path(self.record.tracks.store) if self.record.tracks.store else None

    @property
    def detector_weights(self) -> Path | None:
        return Path(self.record.tracks.detector) if self.record.tracks.detector else None


def _existing(path: str | Path | None) -> Path | None:
    return Path(path) if path and Path(path).is_dir() else None


def compared_run(run: Path | str | RunRecord, label: str | None = None) -> ComparedRun:
    """A run folder, a ``record.json`` or a loaded record, under ``label`` (default: the run
    folder's name; for a record never saved, its model's name)."""
    record = run if isinstance(run, RunRecord) else load_run(run)
    compared = ComparedRun(label or record.model.name, record)
    if not label and record.path is not None:
        compared.label = compared.path.resolve().name
    return compared
