"""The scoring rule of a board (``rule.yaml``): columns, directions, bounds, groups, benchmarks.

Normalisation is data, not code: each column has bounds ``[low, high]``; a value maps to
``(value - low) / (high - low)`` clipped to [0, 1], and to one minus that for a lower-is-better
column, so 1 is always best. The aggregate is the unweighted mean of an entry's normalised
columns x 100 (EWMScore-style), and each group's score is the mean of its normalised columns x 100.
A column an entry lacks is *not reported*: it is left out of that entry's means, never counted as
zero, and the entry says how many of the rule's columns its aggregate covers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ewmbench.errors import ConfigError
from ewmbench.record import DIRECTIONS

RULE_FORMAT = "ewmbench-rule/1"


@dataclass(frozen=True)
class RuleColumn:
    name: str
    label: str
    group: str
    direction: str
    low: float
    high: float

    def normalise(self, value: float | None) -> float | None:
        """Normalised score in [0, 1] (1 best), or None when the value is not reported."""
        if value is None or math.isnan(value):
            return None
        if math.isinf(value):
            share = 1.0 if value > 0 else 0.0
        else:
            share = min(1.0, max(0.0, (value - self.low) / (self.high - self.low)))
        return share if self.direction == "higher" else 1.0 - share


@dataclass(frozen=True)
class Benchmark:
    id: str
    title: str
    description: str = ""
    dataset_sha256: str | None = None  # entries computed by ewmbench must carry this dataset hash
    dataset_name: str | None = None


@dataclass(frozen=True)
class Score:
    aggregate: float | None  # mean of normalised columns x 100; None when no column is reported
    groups: dict[str, float | None]  # per group, mean of its normalised columns x 100
    normalised: dict[str, float | None]  # per column, in [0, 1]
    covered: int  # rule columns with a value
    total: int  # rule columns


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    version: str
    protocol: str  # the protocol computed entries must be scored under
    protocol_version: str
    columns: dict[str, RuleColumn]
    groups: tuple[str, ...]
    benchmarks: dict[str, Benchmark]
    max_submissions_per_model: int = 3
    rank_min_columns: int = 1  # entries covering fewer rule columns are listed but not ranked
    source: str = ""
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def score(self, values: dict[str, float | None]) -> Score:
        normalised = {name: column.normalise(values.get(name)) for name, column in self.columns.items()}
        present = [v for v in normalised.values() if v is not None]
        groups = {}
        for group in self.groups:
            members = [
                normalised[c.name]
                for c in self.columns.values()
                if c.group == group and normalised[c.name] is not None
            ]
            groups[group] = 100.0 * sum(members) / len(members) if members else None
        return Score(
            aggregate=100.0 * sum(present) / len(present) if present else None,
            groups=groups,
            normalised=normalised,
            covered=len(present),
            total=len(self.columns),
        )

    def ranked(self, score: Score) -> bool:
        return score.aggregate is not None and score.covered >= self.rank_min_columns

    def benchmark_for_dataset(self, sha256: str | None) -> Benchmark | None:
        for benchmark in self.benchmarks.values():
            if sha256 and benchmark.dataset_sha256 == sha256:
                return benchmark
        return None


def load_rule(path: Path | str) -> Rule:
    """Read and check ``rule.yaml`` (a board folder or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "rule.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no rule.yaml (a board folder holds rule.yaml and entries/)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != RULE_FORMAT:
        raise ConfigError(f"{path}: not a board rule (expected format: {RULE_FORMAT})")
    try:
        groups = tuple(str(g) for g in data["groups"])
        columns = {}
        for name, spec in data["columns"].items():
            direction = spec["direction"]
            low, high = (float(b) for b in spec["bounds"])
            if direction not in DIRECTIONS:
                raise ConfigError(
                    f"{path}: column {name}: direction must be higher or lower, got {direction!r}"
                )
            if not high > low:
                raise ConfigError(
                    f"{path}: column {name}: bounds must be [low, high] with high > low, got {spec['bounds']}"
                )
            if spec["group"] not in groups:
                raise ConfigError(
                    f"{path}: column {name}: group {spec['group']!r} is not one of {', '.join(groups)}"
                )
            columns[name] = RuleColumn(
                name=name,
                label=str(spec.get("label", name)),
                group=spec["group"],
                direction=direction,
                low=low,
                high=high,
            )
        benchmarks = {
            key: Benchmark(
                id=key,
                title=str(b["title"]),
                description=str(b.get("description", "")),
                dataset_sha256=b.get("dataset_sha256"),
                dataset_name=b.get("dataset_name"),
            )
            for key, b in data["benchmarks"].items()
        }
        protocol = data["protocol"]
        return Rule(
            name=str(data["name"]),
            title=str(data.get("title", data["name"])),
            version=str(data["version"]),
            protocol=str(protocol["name"]),
            protocol_version=str(protocol["version"]),
            columns=columns,
            groups=groups,
            benchmarks=benchmarks,
            max_submissions_per_model=int(data.get("max_submissions_per_model", 3)),
            rank_min_columns=int(data.get("rank_min_columns", 1)),
            source=str(path),
            description=str(data.get("description", "")),
            notes=tuple(data.get("notes", [])),
        )
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: malformed rule ({type(exc).__name__}: {exc})") from None
