"""The run record: one typed, versioned file that says what a run measured and how (``ewmbench-run/1``).

A run folder's ``record.json`` holds everything a leaderboard or a report needs, without
re-reading the videos:

* ``protocol``: name, version, source and the sha256 of the *whole* protocol file (metric
  settings, aggregation rules and decimals alike), so two records with one hash were scored and
  aggregated the same way; and the file's text, checked against that hash on reading, so a
  finished run is aggregated again (reports, boards) without looking its protocol up by name;
* ``dataset``: its name, the folder it was read from, the number of tasks and episodes, and a
  content hash over every ground-truth video (task id, episode id, video content hash);
* ``model``: the adapter's name, the options it was given, its ``config()``, whether it is an
  oracle (was handed the ground truth) and the folder of its generated trials;
* ``columns``: every metric column with its metric, group, level and direction
  (``higher`` or ``lower`` is better);
* ``overall`` and ``per_task`` values per column, as the protocol aggregates them;
* ``counts``: tasks, episodes, trials and the rows the aggregate counted;
* ``skipped``: metrics that could not run, each with the reason and the command that fixes it;
* ``rows``: one row per trial (ids and every column), for statistics over episodes and trials;
* ``provenance``: package version, git commit, Python/numpy/torch versions, device, seed, and the
  weights used (id, source, sha256);
* ``tracks``: where the gripper tracks lie beyond ``traj/traj.npy`` (feature store, detector).

A run builds its record from its plan and scores (``ewmbench.run.recording``) and writes every
other file from it (``ewmbench.results.writers``).

This module is the only reader and writer of the record. It imports nothing heavy (no torch, no
pandas until :meth:`RunRecord.rows_frame` is called), so leaderboards and reports run without
torch. Values that are not finite numbers are stored as JSON ``null`` (missing) or the strings
``"inf"``/``"-inf"``, never as ``NaN``/``Infinity`` tokens.

Run folders written before this schema (``summary.json`` with column ``directions`` and
``rows.csv``, no ``record.json``) are read by :func:`load_run` with the fields they lack set to
``None`` and ``legacy`` true; older folders, and folders that are neither, are refused with a
message naming what is missing and the command that writes a record.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ewmbench.errors import ConfigError, DataError
from ewmbench.files import write_text
from ewmbench.protocols import Protocol, parse_protocol, resolve_protocol

SCHEMA = "ewmbench-run/1"
RECORD_FILE = "record.json"
ID_COLUMNS = ("task_id", "episode_id", "trial_id")
DIRECTIONS = ("higher", "lower")


# ---------------------------------------------------------------- parts


@dataclass(frozen=True)
class ProtocolRef:
    name: str
    version: str
    source: str
    sha256: str | None  # of the whole protocol file text; None in legacy records
    # the whole protocol file text (settings, aggregation, decimals), checked against sha256 on
    # reading: a finished run is compared and ranked without looking its protocol up by name.
    # None in records written before it was embedded.
    text: str | None = None


@dataclass(frozen=True)
class DatasetRef:
    name: str  # "sample", or the folder name of a dataset given by path
    path: str | None
    sha256: str | None  # over (task, episode, video content hash) of every GT episode; None in legacy records
    tasks: int
    episodes: int
    task_names: dict[str, str] = field(default_factory=dict)  # task id -> name, where the sidecar gives one


@dataclass(frozen=True)
class ModelRef:
    name: str
    options: dict = field(default_factory=dict)
    config: dict | None = (
        None  # the adapter's config(); None when videos were generated elsewhere (or legacy)
    )
    oracle: bool | None = (
        None  # the adapter was handed the ground truth (ground-truth, sim); None when unknown
    )
    videos: str | None = None  # the folder of the generated trials (<name>_dataset); None when unknown


@dataclass(frozen=True)
class Column:
    name: str
    metric: str | None  # None only in legacy records (old folders do not say which metric wrote a column)
    group: str | None  # fidelity, scene, motion, semantics, diversity
    level: str | None  # trial, episode, dataset
    direction: str  # "higher" or "lower" is better

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"


@dataclass(frozen=True)
class Counts:
    tasks: int
    episodes: int
    trials: int
    rows_counted: int  # rows the aggregate used (fewer than trials under best-of-N)


@dataclass(frozen=True)
class Skipped:
    reason: str
    fix: str = ""


@dataclass(frozen=True)
class Weight:
    id: str  # a weights.yaml id, or "detector:<file name>" for a detector checkpoint
    source: str  # repository@revision/file, or a local path
    sha256: str | None  # of the file where it is one file; the published hash otherwise; None when unknown
    used_by: str = ""


@dataclass(frozen=True)
class Tracks:
    """Where the run's gripper tracks come from beyond the stored ``traj/traj.npy`` files: the
    feature store that cached them (None: the default) and the detector weights the user chose
    (None: the default choice). Reports draw the tracks the run scored from here."""

    store: str | None = None
    detector: str | None = None


@dataclass(frozen=True)
class Provenance:
    ewmbench_version: str
    git_commit: str | None = None
    python: str | None = None
    platform: str | None = None
    numpy: str | None = None
    torch: str | None = None
    device: str | None = None
    seed: int | None = None
    created: str | None = None  # UTC, ISO 8601
    weights: tuple[Weight, ...] = ()


# ---------------------------------------------------------------- the record


@dataclass
class RunRecord:
    protocol: ProtocolRef
    dataset: DatasetRef
    model: ModelRef
    columns: dict[str, Column]
    overall: dict[str, float | None]
    per_task: dict[str, dict[str, float | None]]
    counts: Counts
    skipped: dict[str, Skipped]
    provenance: Provenance
    rows: list[
        dict[str, Any]
    ]  # one per trial: task_id, episode_id, trial_id (str), then column values (float, NaN = missing)
    tracks: Tracks = field(default_factory=Tracks)
    legacy: bool = False  # read from a folder written before ewmbench-run/1
    path: Path | None = field(default=None, compare=False)  # where it was loaded from or saved to

    schema = SCHEMA

    # ---- views

    @property
    def tasks(self) -> list[str]:
        return sorted(
            {str(row["task_id"]) for row in self.rows} | {t for per in self.per_task.values() for t in per}
        )

    def direction(self, column: str) -> str:
        return self.columns[column].direction

    def protocol_used(self) -> Protocol:
        """The protocol the run was scored under, from the text the record embeds (its sha256
        checked on reading). A record written before the text was embedded (or a legacy folder)
        names its protocol only: the installed one of that name (or file) is used, as before;
        callers that must have the very file compare its ``sha256`` with the record's."""
        ref = self.protocol
        where = self.path or "<record>"
        if ref.text is not None:
            try:
                return parse_protocol(ref.text, f"{where}: protocol")
            except ConfigError as exc:
                raise DataError(where, f"the embedded protocol is not valid ({exc})") from None
        try:
            return resolve_protocol(ref.source if ref.source and Path(ref.source).is_file() else ref.name)
        except ConfigError as exc:
            raise DataError(
                where,
                f"the record does not embed its protocol and {exc}; score the videos again with "
                "`ewmbench evaluate` to record the protocol it used",
            ) from None

    def rows_frame(self):
        """The rows as a pandas table (ids as text), for statistics."""
        import pandas as pd

        names = list(ID_COLUMNS) + [c for c in self.columns if any(c in row for row in self.rows)]
        frame = pd.DataFrame(self.rows, columns=names)
        for column in ID_COLUMNS:
            frame[column] = frame[column].astype(str)
        return frame

    # ---- serialisation

    def to_dict(self) -> dict:
        row_columns = list(ID_COLUMNS) + [c for c in self.columns if any(c in row for row in self.rows)]
        return {
            "schema": SCHEMA,
            "legacy": self.legacy,
            "protocol": _without_none(asdict(self.protocol), "text"),
            "dataset": asdict(self.dataset),
            "model": _without_none(asdict(self.model), "videos"),
            "columns": {
                name: {k: v for k, v in asdict(c).items() if k != "name"} for name, c in self.columns.items()
            },
            "overall": {k: _encode(v) for k, v in self.overall.items()},
            "per_task": {k: {t: _encode(v) for t, v in per.items()} for k, per in self.per_task.items()},
            "counts": asdict(self.counts),
            "skipped": {k: asdict(v) for k, v in self.skipped.items()},
            "provenance": {
                **asdict(self.provenance),
                "weights": [asdict(w) for w in self.provenance.weights],
            },
            # fields added within ewmbench-run/1 are left out where unset, so that a record
            # written before them keeps its canonical hash (sha256)
            **({"tracks": asdict(self.tracks)} if self.tracks != Tracks() else {}),
            "rows": {
                "columns": row_columns,
                "data": [
                    [_encode(row.get(c)) if c not in ID_COLUMNS else str(row[c]) for c in row_columns]
                    for row in self.rows
                ],
            },
        }

    def to_json(self) -> str:
        return json.dumps(_plain_json(self.to_dict()), indent=1, sort_keys=False, allow_nan=False) + "\n"

    def sha256(self) -> str:
        """Hash of the record's canonical content (independent of where it lies)."""
        canonical = json.dumps(
            _plain_json(self.to_dict()), sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def save(self, path: Path | str | None = None) -> Path:
        """Write atomically to ``path`` (a folder gets ``record.json``), or back where it came from."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("RunRecord.save needs a path: this record was not loaded from a file")
        if target.is_dir() or target.suffix != ".json":
            target = target / RECORD_FILE
        write_text(target, self.to_json())
        self.path = target
        return target

    @classmethod
    def from_dict(cls, data: Any, source: Path | str = "<record>") -> RunRecord:
        """Parse and check a record; every problem is a :class:`DataError` naming ``source``."""
        if not isinstance(data, dict):
            raise DataError(source, "a run record must be a JSON object")
        schema = data.get("schema")
        if schema != SCHEMA:
            if isinstance(schema, str) and schema.startswith("ewmbench-run/"):
                raise DataError(
                    source,
                    f"run record schema {schema!r} is not one this version reads ({SCHEMA}); upgrade ewmbench",
                )
            raise DataError(source, f"not an ewmbench run record (schema {schema!r}, expected {SCHEMA!r})")
        try:
            columns = {
                name: Column(
                    name=name,
                    metric=c["metric"],
                    group=c["group"],
                    level=c["level"],
                    direction=str(c["direction"]),
                )
                for name, c in _mapping(data, "columns").items()
            }
            for column in columns.values():
                if column.direction not in DIRECTIONS:
                    raise DataError(
                        source,
                        f"column {column.name!r}: direction must be 'higher' or 'lower', got {column.direction!r}",
                    )
            rows_block = _mapping(data, "rows")
            row_columns = list(rows_block["columns"])
            if row_columns[:3] != list(ID_COLUMNS):
                raise DataError(source, f"rows must start with the columns {', '.join(ID_COLUMNS)}")
            unknown = [c for c in row_columns[3:] if c not in columns]
            if unknown:
                raise DataError(
                    source, f"rows have column(s) not described under 'columns': {', '.join(unknown)}"
                )
            rows = []
            for index, values in enumerate(rows_block["data"]):
                if len(values) != len(row_columns):
                    raise DataError(
                        source, f"row {index} has {len(values)} values for {len(row_columns)} columns"
                    )
                row = {c: str(v) for c, v in zip(ID_COLUMNS, values[:3])}
                row.update(
                    {
                        c: _decode_float(v, source, f"row {index}, {c}")
                        for c, v in zip(row_columns[3:], values[3:])
                    }
                )
                rows.append(row)
            provenance = dict(_mapping(data, "provenance"))
            weights = tuple(Weight(**w) for w in provenance.pop("weights", []) or [])
            record = cls(
                protocol=ProtocolRef(**_mapping(data, "protocol")),
                dataset=DatasetRef(**_mapping(data, "dataset")),
                model=ModelRef(**_mapping(data, "model")),
                columns=columns,
                overall={k: _decode(v, source, f"overall {k}") for k, v in _mapping(data, "overall").items()},
                per_task={
                    k: {str(t): _decode(v, source, f"per_task {k}/{t}") for t, v in per.items()}
                    for k, per in _mapping(data, "per_task").items()
                },
                counts=Counts(**_mapping(data, "counts")),
                skipped={k: Skipped(**v) for k, v in _mapping(data, "skipped").items()},
                provenance=Provenance(**provenance, weights=weights),
                tracks=Tracks(**(data.get("tracks") or {})),
                rows=rows,
                legacy=bool(data.get("legacy", False)),
            )
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(source, f"run record is malformed ({type(exc).__name__}: {exc})") from None
        text = record.protocol.text
        if text is not None and (not isinstance(text, str) or sha256_text(text) != record.protocol.sha256):
            raise DataError(source, "the embedded protocol text does not match the protocol's sha256")
        missing = [c for c in record.overall if c not in columns]
        if missing:
            raise DataError(
                source, f"overall values for column(s) not described under 'columns': {', '.join(missing)}"
            )
        return record


def _without_none(fields: dict, *optional: str) -> dict:
    return {k: v for k, v in fields.items() if k not in optional or v is not None}


def _mapping(data: dict, key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise KeyError(f"{key!r} (an object) is missing")
    return value


# ---------------------------------------------------------------- values


def _encode(value: Any) -> float | str | None:
    """A JSON-safe number: None for missing (NaN), "inf"/"-inf" for infinities."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _decode(value: Any, source, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(source, f"{where}: expected a number, null, 'inf' or '-inf', got {value!r}")
    return float(value)


def _decode_float(value: Any, source, where: str) -> float:
    decoded = _decode(value, source, where)
    return math.nan if decoded is None else decoded


def _plain_json(value: Any) -> Any:
    """Numpy scalars and paths in model configs become plain JSON values; NaN becomes null."""
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float) or hasattr(value, "__float__") and type(value).__module__ == "numpy":
        return _encode(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy integers, 0-d arrays
        return _plain_json(value.item())
    return str(value)


# ---------------------------------------------------------------- hashes


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dataset_hash(items: list[tuple[str, str, str]]) -> str:
    """Hash of a dataset from (task id, episode id, video content hash) triples, order-free."""
    lines = sorted(f"{task}\t{episode}\t{content}" for task, episode, content in items)
    return sha256_text("\n".join(lines))


# ---------------------------------------------------------------- loading


def load_run(path: Path | str) -> RunRecord:
    """The record of a run: a ``record.json`` file, or a run folder (new or legacy layout)."""
    path = Path(path)
    if path.is_file():
        return _read_record_file(path)
    if not path.is_dir():
        raise DataError(path, "no such run folder or record file")
    if (path / RECORD_FILE).is_file():
        return _read_record_file(path / RECORD_FILE)
    if (path / "summary.json").is_file():
        return _read_legacy(path)
    raise DataError(
        path,
        f"not a run folder: it has neither {RECORD_FILE} nor summary.json (run `ewmbench run` or `ewmbench evaluate` first)",
    )


def _read_record_file(path: Path) -> RunRecord:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    record = RunRecord.from_dict(data, source=path)
    record.path = path
    return record


LEGACY_SUMMARY_KEYS = ("model", "protocol", "counts", "overall", "per_task", "skipped_metrics")


def _read_legacy(folder: Path) -> RunRecord:
    """A run folder from before ``ewmbench-run/1``: ``summary.json`` + ``rows.csv`` (+ ``provenance.json``)."""
    summary_path = folder / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(summary_path, f"not valid JSON ({exc})") from None
    missing = [k for k in LEGACY_SUMMARY_KEYS if not isinstance(summary, dict) or k not in summary]
    if missing:
        raise DataError(
            summary_path,
            f"cannot be read as a run: it lacks {', '.join(missing)}; score the videos again with `ewmbench evaluate`",
        )
    rows_path = folder / "rows.csv"
    if not rows_path.is_file():
        raise DataError(
            folder,
            "old run folder without rows.csv: its per-trial rows are lost; score the videos again with `ewmbench evaluate`",
        )
    with open(rows_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        if header[:3] != list(ID_COLUMNS):
            raise DataError(rows_path, f"rows must start with the columns {', '.join(ID_COLUMNS)}")
        rows = [
            {**{c: raw[c] for c in ID_COLUMNS}, **{c: _csv_float(raw[c], rows_path) for c in header[3:]}}
            for raw in reader
        ]
    names = list(dict.fromkeys(header[3:] + list(summary["overall"])))
    columns = _describe_columns(names, summary, summary_path)
    provenance_path = folder / "provenance.json"
    prov = json.loads(provenance_path.read_text(encoding="utf-8")) if provenance_path.is_file() else {}
    protocol = summary["protocol"]
    counts = summary["counts"]
    tasks = {r["task_id"] for r in rows}
    return RunRecord(
        protocol=ProtocolRef(
            name=protocol["name"],
            version=str(protocol["version"]),
            source=protocol.get("source", ""),
            sha256=None,
        ),
        dataset=DatasetRef(
            name="unknown", path=None, sha256=None, tasks=len(tasks), episodes=int(counts["episodes"])
        ),
        model=ModelRef(name=str(summary["model"]), options={}, config=None),
        columns=columns,
        overall={k: _decode(v, summary_path, f"overall {k}") for k, v in summary["overall"].items()},
        per_task={
            k: {t: _decode(v, summary_path, f"per_task {k}/{t}") for t, v in per.items()}
            for k, per in summary["per_task"].items()
        },
        counts=Counts(
            tasks=len(tasks),
            episodes=int(counts["episodes"]),
            trials=int(counts["trials"]),
            rows_counted=int(summary.get("rows_counted", counts["trials"])),
        ),
        skipped={
            k: Skipped(reason=v.get("reason", ""), fix=v.get("fix", ""))
            for k, v in summary["skipped_metrics"].items()
        },
        provenance=Provenance(
            ewmbench_version=str(prov.get("ewmbench_version", "unknown")),
            git_commit=prov.get("git_commit"),
            python=prov.get("python"),
            platform=prov.get("platform"),
            numpy=prov.get("numpy"),
            torch=prov.get("torch"),
            device=prov.get("device"),
            seed=prov.get("seed"),
        ),
        rows=rows,
        legacy=True,
        path=folder,
    )


def _csv_float(text: str, source: Path) -> float:
    if text in ("", "nan", "NaN"):
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise DataError(source, f"{text!r} is not a number") from None


def _describe_columns(names: list[str], summary: dict, source: Path) -> dict[str, Column]:
    """Columns of a legacy folder, from the summary's ``directions``. Which metric wrote a column
    is not in the old files, so ``metric``, ``group`` and ``level`` stay unknown (None)."""
    directions = summary.get("directions")
    if not isinstance(directions, dict):
        raise DataError(
            source,
            "written before column directions were recorded; score the videos again with `ewmbench evaluate`",
        )
    missing = [n for n in names if directions.get(n) not in DIRECTIONS]
    if missing:
        raise DataError(
            source,
            f"no direction recorded for column(s) {', '.join(missing)}; score the videos again with `ewmbench evaluate`",
        )
    return {n: Column(name=n, metric=None, group=None, level=None, direction=directions[n]) for n in names}
