"""Leaderboard entries: one JSON file per submission, with model metadata and provenance.

``entries/<id>.json`` (format ``ewmbench-entry/1``)::

    id            the file stem
    model         WorldArena 2.0 front matter: model_name, version, organization, release_year,
                  source_type (open_source | closed_source), control_type (text_driven |
                  action_driven | hybrid); optional license, paper_url, code_url
    benchmark     the benchmark id of the board's rule the numbers were measured on
    protocol      {name, version, sha256} the numbers were computed under (null sha256 for papers)
    metrics       {overall: {column: value}, per_task: {column: {task: value}},
                  groups: {group: value}, per_video: {column: [value, ...]}}; only the rule's
                  columns; a column not reported is absent (never 0). ``groups``: a paper's
                  printed group values where it prints no columns (the ``sum`` rule uses them);
                  ``per_video``: the counted rows' values (a ``per_video`` rule normalises them)
    ci            {column: [low, high]}: bootstrap intervals (verified entries)
    reported      [{label, value, note}]: a paper's own columns kept as printed (e.g. group sums)
    counts        {tasks, episodes, trials} where known
    provenance    kind: reported | verified | self-reported, and what backs it:
                  reported: source, arxiv, table, url, note
                  verified: ewmbench_version, git_commit, protocol_sha256, dataset_sha256,
                            record_sha256, bootstrap {resamples, level, seed}, command
                  self-reported: record_sha256, bundle_sha256, ewmbench_version
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ewmbench.compare.statistics import bootstrap_ci
from ewmbench.errors import ConfigError, DataError
from ewmbench.files import write_text
from ewmbench.results import round_rows, select_trials

ENTRY_FORMAT = "ewmbench-entry/1"
KINDS = ("reported", "verified", "self-reported")
SOURCE_TYPES = ("open_source", "closed_source")
CONTROL_TYPES = ("text_driven", "action_driven", "hybrid")
REQUIRED_FIELDS = ("model_name", "version", "organization", "release_year", "source_type", "control_type")
OPTIONAL_FIELDS = ("license", "paper_url", "code_url")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class MetadataError(ValueError):
    """A model's front matter misses or mistypes a field (intake code ``metadata_invalid``)."""


def check_metadata(data: Any) -> dict:
    """The model metadata with types checked; raises :class:`MetadataError` naming the field."""
    if not isinstance(data, dict):
        raise MetadataError(f"the front matter must be a mapping of fields, got {type(data).__name__}")
    missing = [f for f in REQUIRED_FIELDS if data.get(f) in (None, "")]
    if missing:
        raise MetadataError(f"missing required field(s): {', '.join(missing)}")
    clean: dict[str, Any] = {}
    for name in ("model_name", "organization"):
        if not isinstance(data[name], str) or not data[name].strip() or len(data[name]) > 200:
            raise MetadataError(
                f"{name} must be a non-empty text of at most 200 characters, got {data[name]!r}"
            )
        clean[name] = data[name].strip()
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, (str, int, float)) or len(str(version)) > 100:
        raise MetadataError(f'version must be a text such as "1.0", got {version!r}')
    clean["version"] = str(version).strip()
    year = data["release_year"]
    if isinstance(year, bool) or not isinstance(year, int) or not 1990 <= year <= 2100:
        raise MetadataError(f"release_year must be a year such as 2025, got {year!r}")
    clean["release_year"] = year
    if data["source_type"] not in SOURCE_TYPES:
        raise MetadataError(
            f"source_type must be one of {', '.join(SOURCE_TYPES)}, got {data['source_type']!r}"
        )
    if data["control_type"] not in CONTROL_TYPES:
        raise MetadataError(
            f"control_type must be one of {', '.join(CONTROL_TYPES)}, got {data['control_type']!r}"
        )
    clean["source_type"], clean["control_type"] = data["source_type"], data["control_type"]
    for name in OPTIONAL_FIELDS:
        value = data.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > 500:
            raise MetadataError(f"{name} must be a text, got {value!r}")
        if name.endswith("_url") and not re.match(r"^https?://[^\s<>\"']+$", value):
            raise MetadataError(f"{name} must be an http(s) address, got {value!r}")
        clean[name] = value
    return clean


@dataclass
class Entry:
    id: str
    model: dict
    benchmark: str
    provenance: dict
    overall: dict[str, float | None]
    per_task: dict[str, dict[str, float | None]] = field(default_factory=dict)
    ci: dict[str, list[float]] = field(default_factory=dict)
    reported: list[dict] = field(default_factory=list)
    groups: dict[str, float] = field(default_factory=dict)  # printed group values (papers)
    per_video: dict[str, list[float | None]] = field(default_factory=dict)
    task_names: dict[str, str] = field(default_factory=dict)  # task id -> name, from the record
    protocol: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def kind(self) -> str:
        return self.provenance["kind"]

    def to_dict(self) -> dict:
        return {
            "format": ENTRY_FORMAT,
            "id": self.id,
            "model": self.model,
            "benchmark": self.benchmark,
            "protocol": self.protocol,
            "counts": self.counts,
            "metrics": {
                "overall": {k: _encode(v) for k, v in self.overall.items()},
                "per_task": {k: {t: _encode(v) for t, v in per.items()} for k, per in self.per_task.items()},
                **({"groups": dict(self.groups)} if self.groups else {}),
                **(
                    {"per_video": {k: [_encode(v) for v in values] for k, values in self.per_video.items()}}
                    if self.per_video
                    else {}
                ),
            },
            **({"task_names": dict(self.task_names)} if self.task_names else {}),
            "ci": {k: [_encode(v) for v in pair] for k, pair in self.ci.items()},
            "reported": self.reported,
            "provenance": self.provenance,
        }


def _encode(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _decode(value, where: str, source) -> float | None:
    if value is None:
        return None
    if value in ("inf", "-inf"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(source, f"{where}: expected a number, null, 'inf' or '-inf', got {value!r}")
    return float(value)


def entry_from_dict(data: Any, rule, source: Path | str = "<entry>") -> Entry:
    """Parse and check one entry against the board's rule."""
    if not isinstance(data, dict) or data.get("format") != ENTRY_FORMAT:
        raise DataError(source, f"not a leaderboard entry (expected format: {ENTRY_FORMAT})")
    entry_id = data.get("id")
    if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
        raise DataError(source, f"id must be lower-case letters, digits, '.', '_' or '-', got {entry_id!r}")
    try:
        model = check_metadata(data.get("model"))
    except MetadataError as exc:
        raise DataError(source, f"model: {exc}") from None
    if data.get("benchmark") not in rule.benchmarks:
        raise DataError(
            source,
            f"benchmark {data.get('benchmark')!r} is not one of the board's: {', '.join(rule.benchmarks)}",
        )
    provenance = data.get("provenance")
    if not isinstance(provenance, dict) or provenance.get("kind") not in KINDS:
        raise DataError(source, f"provenance.kind must be one of {', '.join(KINDS)}")
    needs = {
        "reported": ("source", "table"),
        "verified": ("ewmbench_version", "protocol_sha256", "dataset_sha256", "record_sha256"),
        "self-reported": ("record_sha256",),
    }[provenance["kind"]]
    lacking = [k for k in needs if not provenance.get(k)]
    if lacking:
        raise DataError(source, f"a {provenance['kind']} entry's provenance needs {', '.join(lacking)}")
    metrics = data.get("metrics") or {}
    overall_raw = metrics.get("overall") or {}
    unknown = [c for c in overall_raw if c not in rule.columns]
    if unknown:
        raise DataError(
            source,
            f"metrics for column(s) the rule does not have: {', '.join(unknown)} (keep a paper's own columns under 'reported')",
        )
    overall = {c: _decode(v, f"metrics.overall.{c}", source) for c, v in overall_raw.items()}
    per_task = {
        c: {str(t): _decode(v, f"metrics.per_task.{c}.{t}", source) for t, v in per.items()}
        for c, per in (metrics.get("per_task") or {}).items()
        if c in rule.columns
    }
    groups_raw = metrics.get("groups") or {}
    if not isinstance(groups_raw, dict) or any(g not in rule.groups for g in groups_raw):
        raise DataError(
            source, f"metrics.groups must map the rule's groups ({', '.join(rule.groups)}) to values"
        )
    groups = {}
    for group, value in groups_raw.items():
        decoded = _decode(value, f"metrics.groups.{group}", source)
        if decoded is None or not math.isfinite(decoded):
            raise DataError(source, f"metrics.groups.{group} must be a finite number, got {value!r}")
        groups[group] = decoded
    per_video_raw = metrics.get("per_video") or {}
    if not isinstance(per_video_raw, dict) or not all(isinstance(v, list) for v in per_video_raw.values()):
        raise DataError(source, "metrics.per_video must map columns to lists of values")
    per_video = {
        c: [_decode(v, f"metrics.per_video.{c}", source) for v in values]
        for c, values in per_video_raw.items()
        if c in rule.columns
    }
    problems = rule.value_problems(overall, "metrics.overall") + [
        problem
        for c, values in per_video.items()
        for problem in rule.series_problems(c, values, f"metrics.per_video.{c}")
    ]
    if problems:
        raise DataError(source, "; ".join(problems[:3]))
    task_names = data.get("task_names") or {}
    if not isinstance(task_names, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 100 and len(v) <= 200
        for k, v in task_names.items()
    ):
        raise DataError(source, "task_names must map task ids to names (texts of at most 200 characters)")
    ci = {}
    for column, pair in (data.get("ci") or {}).items():
        if column not in rule.columns or not isinstance(pair, list) or len(pair) != 2:
            raise DataError(source, f"ci.{column} must be [low, high] for a rule column")
        ci[column] = [_decode(v, f"ci.{column}", source) for v in pair]
    if provenance["kind"] != "verified" and ci:
        raise DataError(source, "only verified entries carry bootstrap intervals")
    reported = data.get("reported") or []
    if not isinstance(reported, list) or not all(
        isinstance(r, dict) and "label" in r and "value" in r for r in reported
    ):
        raise DataError(source, "reported must be a list of {label, value, note}")
    return Entry(
        id=entry_id,
        model=model,
        benchmark=data["benchmark"],
        provenance=provenance,
        overall=overall,
        per_task=per_task,
        ci=ci,
        reported=reported,
        groups=groups,
        per_video=per_video,
        task_names=dict(task_names),
        protocol=data.get("protocol") or {},
        counts=data.get("counts") or {},
        path=Path(source) if not isinstance(source, Path) else source,
    )


def load_entries(board: Path | str, rule) -> list[Entry]:
    """Every entry of a board, checked; a bad file is an error naming it."""
    folder = Path(board) / "entries"
    entries = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(path, f"not valid JSON ({exc})") from None
        entry = entry_from_dict(data, rule, path)
        if entry.id != path.stem:
            raise DataError(path, f"id {entry.id!r} differs from the file name")
        entries.append(entry)
    return entries


def write_entry(board: Path | str, entry: Entry) -> Path:
    """Write ``entries/<id>.json`` atomically; an existing entry is never overwritten."""
    folder = Path(board) / "entries"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{entry.id}.json"
    if target.exists():
        raise ConfigError(f"{target} already exists; an entry is never overwritten")
    write_text(target, json.dumps(entry.to_dict(), indent=2, allow_nan=False) + "\n")
    entry.path = target
    return target


def replace_entry(board: Path | str, entry: Entry, replaced: Entry | None) -> Path:
    """Write ``entry``; when it ``replaced`` (a self-reported entry of the same bundle, upgraded
    to verified by re-scoring) that file is replaced in place, so one bundle stays one entry."""
    if replaced is None:
        return write_entry(board, entry)
    folder = Path(board) / "entries"
    target = folder / f"{entry.id}.json"
    write_text(target, json.dumps(entry.to_dict(), indent=2, allow_nan=False) + "\n")
    old = folder / f"{replaced.id}.json"
    if old != target:
        old.unlink(missing_ok=True)
    entry.path = target
    return target


def slug(text: str, length: int = 32) -> str:
    """Lower-case letters, digits and '-', at most ``length`` characters (ids stay within
    :data:`ID_PATTERN`'s 100 however long a submitted name is)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:length].strip("-") or "model"


def model_key(name: str) -> str:
    """A model name as compared for the per-model submission limit: Unicode NFKC, case-folded,
    without whitespace, zero-width or other format characters ("GE Base", "ge-base" differ;
    "GE\u200bBase", "ｇｅ base" and "GE BASE" are "gebase")."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(
        ch
        for ch in folded
        if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc", "Zs", "Zl", "Zp")
    )


def entry_from_record(
    record,
    rule,
    model: dict,
    kind: str,
    entry_id: str,
    provenance: dict,
    ci_resamples: int = 2000,
    ci_level: float = 0.95,
    ci_seed: int = 0,
) -> Entry:
    """An entry computed by ewmbench: values from a run record, intervals for verified entries.

    The record must be scored under the rule's protocol and on one of its benchmarks (by dataset
    hash); its columns outside the rule are left out.
    """

    where = record.path or "<record>"
    problem = protocol_problem(record, rule)
    if problem:
        raise DataError(where, problem)
    benchmark = rule.benchmark_for_dataset(record.dataset.sha256)
    if benchmark is None:
        raise DataError(
            where,
            f"dataset {record.dataset.name!r} (sha256 {str(record.dataset.sha256)[:12]}...) is not a benchmark "
            f"of this board; its benchmarks: {', '.join(rule.benchmarks)}",
        )
    columns = [c for c in record.columns if c in rule.columns]
    overall = {c: record.overall.get(c) for c in columns if record.overall.get(c) is not None}
    per_task = {c: dict(record.per_task.get(c, {})) for c in overall}
    counted, overall_rule = _counted_rows(record)
    per_video = {c: [_finite_or_none(row.get(c)) for row in counted] for c in overall if c in rule.aggregated}
    ci = {}
    provenance = dict(
        provenance,
        kind=kind,
        record_sha256=record.sha256(),
        protocol_sha256=record.protocol.sha256,
        dataset_sha256=record.dataset.sha256,
        ewmbench_version=record.provenance.ewmbench_version,
        git_commit=record.provenance.git_commit,
    )
    if kind == "verified":
        for column in overall:
            if record.columns[column].level == "dataset":
                continue  # one value per run: no episodes to resample
            interval = bootstrap_ci(
                counted, column, overall=overall_rule, resamples=ci_resamples, level=ci_level, seed=ci_seed
            )
            if interval is not None:
                ci[column] = interval.as_list()
        provenance["bootstrap"] = {
            "resamples": ci_resamples,
            "level": ci_level,
            "seed": ci_seed,
            "unit": "episodes within tasks, trials nested",
        }
    return Entry(
        id=entry_id,
        model=model,
        benchmark=benchmark.id,
        provenance=provenance,
        overall=overall,
        per_task=per_task,
        ci=ci,
        per_video=per_video,
        task_names={str(k)[:100]: str(v)[:200] for k, v in (record.dataset.task_names or {}).items()},
        protocol={
            "name": record.protocol.name,
            "version": record.protocol.version,
            "sha256": record.protocol.sha256,
        },
        counts={
            "tasks": record.counts.tasks,
            "episodes": record.counts.episodes,
            "trials": record.counts.trials,
        },
    )


def protocol_problem(record, rule) -> str | None:
    """Why a record's protocol is not the board's (name, version and the whole file's sha256)."""
    ref = record.protocol
    if (ref.name, ref.version) != (rule.protocol, rule.protocol_version):
        return (
            f"scored under {ref.name} {ref.version}; this board takes {rule.protocol} "
            f"{rule.protocol_version} (score again with --protocol {rule.protocol})"
        )
    if rule.protocol_sha256 and ref.sha256 != rule.protocol_sha256:
        return (
            f"scored under a {ref.name} file whose sha256 is {str(ref.sha256)[:12]}..., not the board's "
            f"{rule.protocol_sha256[:12]}... (a modified or older protocol file; score again with this "
            "release's --protocol " + rule.protocol + ")"
        )
    return None


def _finite_or_none(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if not math.isnan(value) else None


def _counted_rows(record) -> tuple[list[dict], str]:
    """The rows the record's protocol counts (stored rounding, best-of-N in the selection column's
    direction) and its overall rule, through the same functions the run's summary used."""
    protocol = record.protocol_used()
    frame = record.rows_frame()
    selected = select_trials(
        round_rows(frame, protocol), protocol, lambda column: record.columns[column].direction == "higher"
    )
    return selected.to_dict("records"), protocol.aggregation.get("overall", "mean_of_rows")
