"""Scoring rules as data (``rule.yaml``, ``rules/<name>.yaml``): columns, directions, ranges, groups.

A board has a default rule (``rule.yaml``) and may hold others under ``rules/``; the site says in
words which one ranks it. Two methods:

``sum`` (the EWMBench paper's own score)
    Each group is the *sum* of its columns (in the rule's units: ``scale`` turns the tool's
    CLIPScore x 100 into the paper's 0-1 CLIP), and the score is the sum of the groups: SceneC +
    (HSD + Dyn + nDTW) + (Diversity + BLEU + CLIP + Logics), 0-8. A lower-is-better column adds
    ``high - value`` (its distance below the upper bound), so a larger sum is always better. Where
    an entry lacks a group's columns but reports the group's value (a paper that prints only
    groups), the reported value is used and marked so. An entry is ranked when every group has a
    value.

``normalised_mean`` (WorldArena's EWMScore)
    Each column is normalised to [0, 1] on its ``bounds`` (1 best; one minus that for a
    lower-is-better column), and the score is the unweighted mean of the normalised columns x 100;
    a group's value is the mean of its normalised columns x 100. With ``normalise: per_video`` each
    video's value is normalised first and the normalised values averaged (as WorldArena does), for
    entries that carry per-video values; other entries are normalised from their aggregate, and
    the site says so. An entry is ranked when it covers at least ``rank_min_columns`` columns.

Columns under ``shown`` (pixel fidelity: PSNR, SSIM, LPIPS, FID, FVD) are displayed and checked at
intake but never enter a score. Every column has a ``range``: the values its metric can take, in the
tool's units; intake refuses a value outside it, and any infinite value unless ``allow_infinite``
(PSNR of identical frames is ``inf`` under the official tool). An infinite value in an aggregated
column is handled by its ``infinite`` setting: ``unranked`` (default: the entry is listed, not
ranked, with the reason), ``best`` or ``worst``. A benchmark may set ``directions`` that differ from
the rule's (the Genie Envisioner paper reads low diversity as good for action-conditioned GE-Sim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ewmbench.errors import ConfigError
from ewmbench.results.record import DIRECTIONS

RULE_FORMAT = "ewmbench-rule/2"
METHODS = ("sum", "normalised_mean")
NORMALISE = ("aggregate", "per_video")
INFINITE = ("unranked", "best", "worst")
DEFAULT_RULE = "rule.yaml"
RULES_FOLDER = "rules"


@dataclass(frozen=True)
class RuleColumn:
    name: str
    label: str
    group: str | None  # None: shown, never aggregated
    direction: str
    value_range: tuple[float, float]  # what the metric can take, in the tool's units
    bounds: tuple[float, float]  # normalisation bounds, in the rule's units (after scale)
    scale: float = 1.0  # tool units -> rule units
    allow_infinite: bool = False
    infinite: str = "unranked"
    description: str = ""

    @property
    def aggregated(self) -> bool:
        return self.group is not None

    def problem(self, value: float | None) -> str | None:
        """Why a value cannot be admitted for this column (None when it can)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{self.name} is not a number ({value!r})"
        if math.isnan(value):
            return f"{self.name} is NaN (undefined); leave a metric that was not computed out"
        if math.isinf(value):
            return (
                None if self.allow_infinite else f"{self.name} is {value} (only a finite value is accepted)"
            )
        low, high = self.value_range
        if not low <= value <= high:
            return f"{self.name} = {value!r} is outside the metric's range [{low:g}, {high:g}]"
        return None

    def normalise(self, value: float, direction: str) -> float:
        """Normalised score in [0, 1], 1 best; ``value`` in the tool's units, finite."""
        low, high = self.bounds
        share = min(1.0, max(0.0, (value * self.scale - low) / (high - low)))
        return share if direction == "higher" else 1.0 - share

    def contribution(self, value: float, direction: str) -> float:
        """What a finite value adds to a ``sum`` score: the value in rule units, or for a
        lower-is-better column its distance below the upper bound."""
        scaled = value * self.scale
        return scaled if direction == "higher" else self.bounds[1] - scaled


@dataclass(frozen=True)
class Benchmark:
    id: str
    title: str
    description: str = ""
    dataset_sha256: str | None = None  # entries computed by ewmbench must carry this dataset hash
    dataset_name: str | None = None
    directions: dict[str, str] = field(default_factory=dict)  # per-column overrides
    tasks: dict[str, str] = field(default_factory=dict)  # task id -> name, for the site


@dataclass(frozen=True)
class Score:
    overall: float | None  # the rule's score: a sum (paper scale) or a mean x 100
    groups: dict[str, float | None]
    group_sources: dict[str, str]  # "columns", "reported" or "" (no value)
    normalised: dict[str, float | None]  # per aggregated column in [0, 1] (normalised_mean only)
    covered: int  # aggregated columns with a usable value
    total: int  # aggregated columns
    problems: tuple[str, ...] = ()  # why the entry cannot be ranked (infinite values, ...)
    normalised_from: str = "aggregate"  # "per_video" when per-video values were normalised


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    version: str
    method: str
    normalise_mode: str
    protocol: str  # the protocol computed entries must be scored under
    protocol_version: str
    protocol_sha256: str | None
    columns: dict[str, RuleColumn]  # aggregated and shown, in display order
    groups: tuple[str, ...]
    group_labels: dict[str, str]
    benchmarks: dict[str, Benchmark]
    score_label: str = "Score"
    summary: str = ""  # one sentence, in words, of how the score is made (shown on the site)
    decimals: int = 4  # scores are compared (ties) and shown to this many decimals
    max_submissions_per_model: int = 3
    rank_min_columns: int = 1
    source: str = ""
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def aggregated(self) -> dict[str, RuleColumn]:
        return {n: c for n, c in self.columns.items() if c.aggregated}

    @property
    def shown(self) -> dict[str, RuleColumn]:
        return {n: c for n, c in self.columns.items() if not c.aggregated}

    def direction(self, column: str, benchmark: Benchmark | str | None = None) -> str:
        if isinstance(benchmark, str):
            benchmark = self.benchmarks.get(benchmark)
        if benchmark is not None and column in benchmark.directions:
            return benchmark.directions[column]
        return self.columns[column].direction

    def score(
        self,
        values: dict[str, float | None],
        benchmark: Benchmark | str | None = None,
        reported_groups: dict[str, float] | None = None,
        per_video: dict[str, list[float]] | None = None,
    ) -> Score:
        """Score one entry's values (tool units) under this rule."""
        problems: list[str] = []
        usable: dict[str, float] = {}
        for name, column in self.aggregated.items():
            value = values.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if math.isinf(value):
                if column.infinite == "unranked":
                    problems.append(
                        f"{column.label} is {'∞' if value > 0 else '−∞'}: this rule does not rank infinite values"
                    )
                    continue
                # counted as the best or the worst end of the bounds, as the rule says
                higher = self.direction(name, benchmark) == "higher"
                low, high = column.bounds
                end = high if (column.infinite == "best") == higher else low
                usable[name] = end / column.scale
                continue
            usable[name] = float(value)
        if self.method == "sum":
            return self._sum(usable, benchmark, reported_groups or {}, problems)
        return self._normalised_mean(usable, benchmark, per_video or {}, problems)

    def _sum(self, usable, benchmark, reported_groups, problems) -> Score:
        groups: dict[str, float | None] = {}
        sources: dict[str, str] = {}
        for group in self.groups:
            members = [n for n, c in self.aggregated.items() if c.group == group]
            if members and all(n in usable for n in members):
                groups[group] = sum(
                    self.columns[n].contribution(usable[n], self.direction(n, benchmark)) for n in members
                )
                sources[group] = "columns"
            elif group in reported_groups:
                groups[group], sources[group] = float(reported_groups[group]), "reported"
            else:
                groups[group], sources[group] = None, ""
        complete = all(v is not None for v in groups.values())
        if not complete:
            missing = [self.group_labels[g] for g, v in groups.items() if v is None]
            problems.append(f"no value for {', '.join(missing)} (every group is needed for the sum)")
        return Score(
            overall=sum(groups.values()) if complete else None,
            groups=groups,
            group_sources=sources,
            normalised={},
            covered=len(usable),
            total=len(self.aggregated),
            problems=tuple(problems),
        )

    def _normalised_mean(self, usable, benchmark, per_video, problems) -> Score:
        normalised: dict[str, float | None] = {}
        from_videos = self.normalise_mode == "per_video" and bool(per_video)
        for name, column in self.aggregated.items():
            direction = self.direction(name, benchmark)
            videos = [v for v in per_video.get(name, []) if v is not None and math.isfinite(v)]
            if from_videos and videos:
                normalised[name] = sum(column.normalise(v, direction) for v in videos) / len(videos)
            elif name in usable:
                normalised[name] = column.normalise(usable[name], direction)
            else:
                normalised[name] = None
        groups, sources = {}, {}
        for group in self.groups:
            members = [
                normalised[n]
                for n, c in self.aggregated.items()
                if c.group == group and normalised[n] is not None
            ]
            groups[group] = 100.0 * sum(members) / len(members) if members else None
            sources[group] = "columns" if members else ""
        present = [v for v in normalised.values() if v is not None]
        if len(present) < self.rank_min_columns:
            problems.append(
                f"covers {len(present)} of {len(normalised)} columns (at least {self.rank_min_columns} ranked)"
            )
        return Score(
            overall=100.0 * sum(present) / len(present) if present else None,
            groups=groups,
            group_sources=sources,
            normalised=normalised,
            covered=len(present),
            total=len(normalised),
            problems=tuple(problems),
            normalised_from="per_video" if from_videos else "aggregate",
        )

    def ranked(self, score: Score) -> bool:
        return score.overall is not None and not score.problems

    def rounded(self, value: float | None) -> float | None:
        """A score as compared and shown: rounded to the rule's decimals (ties share a rank)."""
        return None if value is None else round(value, self.decimals)

    def benchmark_for_dataset(self, sha256: str | None) -> Benchmark | None:
        for benchmark in self.benchmarks.values():
            if sha256 and benchmark.dataset_sha256 == sha256:
                return benchmark
        return None

    def value_problems(self, values: dict[str, float | None], where: str) -> list[str]:
        """Every value of ``values`` that a rule column cannot admit, named with ``where``."""
        return [
            f"{where}: {problem}"
            for name, value in values.items()
            if name in self.columns and (problem := self.columns[name].problem(value))
        ]

    def series_problems(self, column: str, values, where: str) -> list[str]:
        """Every value of one column's series (per task, per video) that it cannot admit."""
        if column not in self.columns:
            return []
        return [
            f"{where}: {problem}" for value in values if (problem := self.columns[column].problem(value))
        ][:3]


def rule_names(board: Path | str) -> list[str]:
    """The rules a board holds: its default (the rule.yaml's name) first, then ``rules/*.yaml``."""
    board = Path(board)
    names = [load_rule(board).name]
    folder = board / RULES_FOLDER
    if folder.is_dir():
        names += [p.stem for p in sorted(folder.glob("*.yaml")) if p.stem not in names]
    return names


def load_rule(path: Path | str, name: str | None = None) -> Rule:
    """Read and check a rule: a board folder (its ``rule.yaml``, or ``rules/<name>.yaml`` when
    ``name`` is given and is not the default's name), or a rule file itself."""
    path = Path(path)
    if path.is_dir():
        board = path
        path = board / DEFAULT_RULE
        if name is not None:
            alternative = board / RULES_FOLDER / f"{name}.yaml"
            if alternative.is_file():
                path = alternative
            elif not path.is_file() or _read(path).get("name") != name:
                raise ConfigError(
                    f"{board}: no rule named {name!r} (rule.yaml, or {RULES_FOLDER}/{name}.yaml)"
                )
    if not path.is_file():
        raise ConfigError(f"{path}: no rule.yaml (a board folder holds rule.yaml and entries/)")
    return _parse(_read(path), path)


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != RULE_FORMAT:
        raise ConfigError(f"{path}: not a board rule (expected format: {RULE_FORMAT})")
    return data


def _pair(spec, key: str, where: str) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in spec[key])
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be [low, high], got {spec.get(key)!r}") from None
    if not high > low:
        raise ConfigError(f"{where}: {key} must be [low, high] with high > low, got {spec[key]}")
    return low, high


def _column(name: str, spec: dict, group: str | None, path: Path) -> RuleColumn:
    where = f"{path}: column {name}"
    direction = spec["direction"]
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}: direction must be higher or lower, got {direction!r}")
    value_range = _pair(spec, "range", where)
    scale = float(spec.get("scale", 1.0))
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"{where}: scale must be a positive number, got {spec.get('scale')!r}")
    bounds = (
        _pair(spec, "bounds", where) if "bounds" in spec else (value_range[0] * scale, value_range[1] * scale)
    )
    if group is not None and not all(math.isfinite(b) for b in bounds):
        raise ConfigError(f"{where}: an aggregated column needs finite bounds, got {list(bounds)}")
    infinite = str(spec.get("infinite", "unranked"))
    if infinite not in INFINITE:
        raise ConfigError(f"{where}: infinite must be one of {', '.join(INFINITE)}, got {infinite!r}")
    return RuleColumn(
        name=name,
        label=str(spec.get("label", name)),
        group=group,
        direction=direction,
        value_range=value_range,
        bounds=bounds,
        scale=scale,
        allow_infinite=bool(spec.get("allow_infinite", False)),
        infinite=infinite,
        description=str(spec.get("description", "")),
    )


def _parse(data: dict, path: Path) -> Rule:
    try:
        score = data["score"]
        method = str(score["method"])
        if method not in METHODS:
            raise ConfigError(f"{path}: score.method must be one of {', '.join(METHODS)}, got {method!r}")
        normalise_mode = str(score.get("normalise", "aggregate"))
        if normalise_mode not in NORMALISE:
            raise ConfigError(f"{path}: score.normalise must be one of {', '.join(NORMALISE)}")
        group_specs = data["groups"]
        groups = tuple(str(g) for g in group_specs)
        group_labels = {
            str(g): str((spec or {}).get("label", g)) if isinstance(spec, dict) else str(spec or g)
            for g, spec in group_specs.items()
        }
        columns: dict[str, RuleColumn] = {}
        for name, spec in data["columns"].items():
            if spec["group"] not in groups:
                raise ConfigError(
                    f"{path}: column {name}: group {spec['group']!r} is not one of {', '.join(groups)}"
                )
            columns[name] = _column(name, spec, spec["group"], path)
        for name, spec in (data.get("shown") or {}).items():
            if name in columns:
                raise ConfigError(f"{path}: column {name} is both aggregated and shown")
            columns[name] = _column(name, spec, None, path)
        benchmarks = {}
        for key, b in data["benchmarks"].items():
            directions = {str(k): str(v) for k, v in (b.get("directions") or {}).items()}
            bad = {k: v for k, v in directions.items() if k not in columns or v not in DIRECTIONS}
            if bad:
                raise ConfigError(
                    f"{path}: benchmark {key}: directions must name rule columns and higher/lower, got {bad}"
                )
            benchmarks[key] = Benchmark(
                id=key,
                title=str(b["title"]),
                description=str(b.get("description", "")),
                dataset_sha256=b.get("dataset_sha256"),
                dataset_name=b.get("dataset_name"),
                directions=directions,
                tasks={str(k): str(v) for k, v in (b.get("tasks") or {}).items()},
            )
        protocol = data["protocol"]
        return Rule(
            name=str(data["name"]),
            title=str(data.get("title", data["name"])),
            version=str(data["version"]),
            method=method,
            normalise_mode=normalise_mode,
            protocol=str(protocol["name"]),
            protocol_version=str(protocol["version"]),
            protocol_sha256=protocol.get("sha256"),
            columns=columns,
            groups=groups,
            group_labels=group_labels,
            benchmarks=benchmarks,
            score_label=str(score.get("label", "Score")),
            summary=str(score.get("summary", "")).strip(),
            decimals=int(score.get("decimals", 4)),
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
