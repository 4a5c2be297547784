"""The comparison of runs: comparability checks, per-metric CIs, paired differences, agreement.

:func:`compare_runs` turns run folders into a :class:`Comparison` (numbers only, no files);
:func:`to_dict` and :func:`to_table` are ``report.json`` and ``report.csv``;
:func:`ewmbench.compare.writer.write_report` writes them with the figures and ``report.html``.

Definitions (also written into ``report.json`` under ``settings``):

* The rows counted are the protocol's (``ewmbench-v2`` keeps the best trial per episode), rounded
  as the protocol stores them.
* A run's value is the protocol's overall rule on those rows (``mean_of_rows`` or
  ``mean_of_task_means``), per task the mean of the task's rows: the run's summary values.
* The CI is a percentile bootstrap over episodes resampled within their task (trials travel with
  their episode); see :mod:`ewmbench.compare.statistics`. Its seed depends on the scope and the
  metric only, so a run gets the same CI in ``report`` and in every ``compare`` it is part of.
* A difference is ``run - baseline`` over the episodes both scored: a paired sign-flip test
  (exact up to 16 episodes) and the interval inverted from that same test, so the interval
  excludes 0 exactly when the raw p-value is below ``1 - level``. Holm's correction across the
  metrics of one run and one scope (overall, or one task) gives ``p_adjusted``; significant
  means ``p_adjusted < alpha``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ewmbench.compare import statistics as st
from ewmbench.compare.runs import ComparedRun, compared_run
from ewmbench.data.layout import id_sort_key
from ewmbench.errors import ConfigError
from ewmbench.metrics.base import METRICS
from ewmbench.results import round_rows, select_trials
from ewmbench.results.record import ID_COLUMNS, RunRecord

REPORT_FORMAT = "ewmbench-report/1"
OVERALL = "overall"
CEILING_TOLERANCE = 1e-9  # a score this close to its best possible value counts as at the ceiling


@dataclass(frozen=True)
class Settings:
    level: float = st.DEFAULT_LEVEL
    resamples: int = st.DEFAULT_RESAMPLES
    alpha: float = 0.05
    seed: int = 0
    worst: int = 2  # worst episodes shown per metric and run
    frames: int = 6  # frames per strip


@dataclass(frozen=True)
class Metric:
    column: str
    group: str
    direction: str


@dataclass(frozen=True)
class WorstCase:
    metric: str
    run: str
    task_id: str
    episode_id: str
    trial_id: str
    value: float


@dataclass
class Comparison:
    """Everything a report shows, keyed by (scope, metric column, run label)."""

    runs: list[ComparedRun]
    baseline: str
    metrics: list[Metric]
    scopes: list[str]  # "overall", then task ids
    episodes: list[tuple[str, str]]  # the episodes compared (common to every run)
    notes: list[str]  # comparability notes shown at the top (mismatches allowed)
    settings: Settings
    values: dict[tuple[str, str, str], st.Interval | None] = field(default_factory=dict)
    differences: dict[tuple[str, str, str], st.PairedComparison | None] = field(default_factory=dict)
    run_level: dict[tuple[str, str], float | None] = field(default_factory=dict)  # (metric, run): FID-like
    agreement: dict[str, dict[str, float]] = field(default_factory=dict)
    agreement_items: int = 0
    worst: list[WorstCase] = field(default_factory=list)
    normalised: dict[str, dict[str, float | None]] = field(default_factory=dict)  # run -> axis -> [0, 1]
    selected_rows: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    ceilings: dict[str, float] = field(default_factory=dict)  # column -> its best possible value, where known
    task_names: dict[str, str] = field(default_factory=dict)  # task id -> name, where the dataset names it

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.runs]

    @property
    def single(self) -> bool:
        """One run: a report of it, with no baseline and no differences."""
        return len(self.runs) == 1

    def task_label(self, scope: str) -> str:
        """``overall``, a task's name (``pick_place``) or, when the dataset names none, ``task 1``."""
        if scope == OVERALL:
            return OVERALL
        return self.task_names.get(scope) or f"task {scope}"

    def run(self, label: str) -> ComparedRun:
        return next(r for r in self.runs if r.label == label)

    def significant(self, scope: str, column: str, label: str) -> str:
        """``better``, ``worse`` or ``n.s.`` for a run against the baseline; ``""`` if not compared."""
        diff = self.differences.get((scope, column, label))
        return diff.verdict(self.settings.alpha) if diff is not None else ""


# ------------------------------------------------------------------ comparability


def _unique_labels(runs: list[ComparedRun]) -> None:
    seen: dict[str, int] = {}
    for run in runs:
        count = seen.get(run.label, 0)
        seen[run.label] = count + 1
        if count:
            run.label = f"{run.label}-{count + 1}"


def check_comparable(
    runs: list[ComparedRun], allow_mismatch: bool
) -> tuple[list[tuple[str, str]], list[str]]:
    """The common episodes and the notes on what differs; refuse a difference unless allowed.

    A hash that a run does not record (written before ``ewmbench-run/1``) cannot be checked: the
    protocol is then compared by name and version, and the note says what could not be checked.
    """
    first = runs[0]
    problems: list[str] = []
    for run in runs[1:]:
        if first.protocol_hash and run.protocol_hash:
            if run.protocol_hash != first.protocol_hash:
                problems.append(
                    f"protocol differs: {first.label} used {first.protocol_name} (sha256 {first.protocol_hash[:12]}), "
                    f"{run.label} used {run.protocol_name} (sha256 {run.protocol_hash[:12]})"
                )
        elif (run.protocol_name, run.protocol_version) != (first.protocol_name, first.protocol_version):
            problems.append(
                f"protocol differs: {first.label} used {first.protocol_name} {first.protocol_version}, "
                f"{run.label} used {run.protocol_name} {run.protocol_version}"
            )
        if first.dataset_hash and run.dataset_hash and run.dataset_hash != first.dataset_hash:
            problems.append(
                f"dataset differs: {first.label} has ground truth sha256 {first.dataset_hash[:12]}, "
                f"{run.label} has {run.dataset_hash[:12]}"
            )
        if run.episodes != first.episodes:
            only_first = sorted(first.episodes - run.episodes, key=_id_order)
            only_run = sorted(run.episodes - first.episodes, key=_id_order)
            parts = []
            if only_first:
                parts.append(f"{len(only_first)} only in {first.label} ({_episode_list(only_first)})")
            if only_run:
                parts.append(f"{len(only_run)} only in {run.label} ({_episode_list(only_run)})")
            problems.append(f"episode set differs: {'; '.join(parts)}")
    common = set(first.episodes)
    for run in runs[1:]:
        common &= run.episodes
    if problems and not allow_mismatch:
        raise ConfigError(
            "runs are not comparable: "
            + " | ".join(problems)
            + " (--allow-mismatch compares the common episodes)"
        )
    notes = list(problems)
    if problems:
        notes.append(f"compared on the {len(common)} episode(s) every run has")
    unchecked = [r.label for r in runs if not (r.protocol_hash and r.dataset_hash)]
    if unchecked and len(runs) > 1:
        notes.append(
            f"not checked: the protocol and dataset hashes of {', '.join(unchecked)} (written before ewmbench-run/1, "
            "no hash recorded); the protocol was compared by name and version"
        )
    if not common:
        raise ConfigError("runs have no episode in common: nothing to compare")
    return sorted(common, key=_id_order), notes


def _id_order(key: tuple[str, ...]) -> tuple:

    return tuple(id_sort_key(k) for k in key)


def _episode_list(episodes: list[tuple[str, str]], limit: int = 4) -> str:
    text = ", ".join(f"{t}/{e}" for t, e in episodes[:limit])
    return text + (f", +{len(episodes) - limit} more" if len(episodes) > limit else "")


# ------------------------------------------------------------------ numbers


def counted_rows(run: ComparedRun, episodes: set[tuple[str, str]]) -> tuple[pd.DataFrame, str]:
    """The rows the run's protocol counts, on the compared episodes; and its overall rule."""
    protocol = run.protocol
    rows = run.rows[[(t, e) in episodes for t, e in zip(run.rows.task_id, run.rows.episode_id)]]
    selected = select_trials(
        round_rows(rows, protocol), protocol, lambda column: run.directions.get(column, "higher") == "higher"
    )
    return selected.reset_index(drop=True), protocol.aggregation.get("overall", "mean_of_rows")


def _seed(base: int, *parts: object) -> int:
    """A seed per (scope, metric): stable across machines, output folders and run order."""
    return (base * 1_000_003 + zlib.crc32("/".join(map(str, parts)).encode())) % (2**32)


def _has_values(rows: pd.DataFrame, column: str) -> bool:
    return column in rows.columns and bool(rows[column].notna().any())


def compare_runs(
    paths: list[Path | str | RunRecord | ComparedRun],
    baseline: str | Path | None = None,
    *,
    allow_mismatch: bool = False,
    settings: Settings | None = None,
) -> Comparison:
    """Compare runs against a baseline (the first run unless named by label or path)."""
    settings = settings or Settings()
    runs = [p if isinstance(p, ComparedRun) else compared_run(p) for p in paths]
    if not runs:
        raise ConfigError("no run to report on")
    _unique_labels(runs)
    base = _pick_baseline(runs, baseline)
    runs = [base] + [r for r in runs if r is not base]
    episodes, notes = check_comparable(runs, allow_mismatch)
    episode_set = set(episodes)

    selected, rules = {}, {}
    for run in runs:
        selected[run.label], rules[run.label] = counted_rows(run, episode_set)
    columns: list[str] = []
    for run in runs:
        columns += [c for c in run.metric_columns if c not in columns]
    run_level_columns: list[str] = []
    for run in runs:
        run_level_columns += [c for c in run.run_level if c not in run_level_columns and c not in columns]
    metrics = [
        Metric(c, _fact(runs, "groups", c, "other"), _fact(runs, "directions", c, "higher"))
        for c in columns + run_level_columns
    ]
    tasks = sorted({t for t, _ in episodes}, key=_id_order)
    comparison = Comparison(
        runs=runs,
        baseline=base.label,
        metrics=metrics,
        scopes=[OVERALL, *tasks],
        episodes=episodes,
        notes=notes,
        settings=settings,
        selected_rows=selected,
        ceilings=_ceilings(runs, columns),
        task_names={t: name for t in tasks if (name := _task_name(runs, t))},
    )
    overall_rule = rules[base.label]  # equal across runs once the protocols are (checked above)

    for scope in comparison.scopes:
        rule = overall_rule if scope == OVERALL else "mean_of_rows"  # within one task both rules agree
        base_rows = (
            selected[base.label]
            if scope == OVERALL
            else selected[base.label][selected[base.label].task_id == scope]
        )
        for run in runs:
            rows = (
                selected[run.label]
                if scope == OVERALL
                else selected[run.label][selected[run.label].task_id == scope]
            )
            family = []
            for column in columns:
                key = (scope, column, run.label)
                if not _has_values(rows, column):
                    comparison.values[key] = None
                    continue
                comparison.values[key] = st.bootstrap_ci(
                    rows,
                    column,
                    overall=rule,
                    resamples=settings.resamples,
                    level=settings.level,
                    seed=_seed(settings.seed, scope, column),
                )
                if run is base or not _has_values(base_rows, column):
                    continue
                diff = st.paired_comparison(
                    base_rows,
                    rows,
                    column,
                    direction=_fact(runs, "directions", column, "higher"),
                    overall=rule,
                    level=settings.level,
                    seed=_seed(settings.seed, "paired", scope, column),
                )
                if diff is not None:
                    family.append((key, diff))
            adjusted = st.holm_adjust([c for _, c in family])
            comparison.differences.update({key: c for (key, _), c in zip(family, adjusted)})
    for column in run_level_columns:
        for run in runs:
            value = run.run_level.get(column)
            comparison.run_level[(column, run.label)] = (
                value if value is not None and math.isfinite(value) else None
            )

    # Agreement is a property of the metrics, not of the protocol's trial selection: every trial counts.
    pooled = pd.concat(
        [r.rows[[(t, e) in episode_set for t, e in zip(r.rows.task_id, r.rows.episode_id)]] for r in runs],
        ignore_index=True,
    )
    shown = [c for c in columns if c in pooled.columns]
    comparison.agreement = st.kendall_agreement(
        {c: pooled[c].astype(float).to_numpy() for c in shown}, {m.column: m.direction for m in metrics}
    )
    comparison.agreement_items = len(pooled)
    comparison.worst = _worst_cases(comparison, columns)
    comparison.normalised = _normalised(comparison)
    return comparison


def signed(value: float) -> str:
    """A difference or interval bound, 3 significant digits with its sign; exactly 0 is ``0``."""
    if math.isnan(value):
        return "-"
    if value == 0:
        return "0"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.3g}"


def difference_text(diff: st.PairedComparison) -> tuple[str, str, str]:
    """(difference, "[low, high]", "p=raw, Holm p=adjusted"): the interval and the raw p-value come
    from the same sign-flip test, so they never disagree; the verdict uses the Holm p-value."""
    p_text = "-" if math.isnan(diff.p_value) else f"{diff.p_value:.2g}"
    holm_text = "-" if math.isnan(diff.p_adjusted) else f"{diff.p_adjusted:.2g}"
    return (
        signed(diff.difference),
        f"[{signed(diff.low)}, {signed(diff.high)}]",
        f"p={p_text}, Holm {holm_text}",
    )


def _fact(runs: list[ComparedRun], attribute: str, column: str, default: str) -> str:
    for run in runs:
        facts = getattr(run, attribute)
        if column in facts:
            return facts[column]
    return default


def _task_name(runs: list[ComparedRun], task: str) -> str:
    """The task's name as the first run whose dataset names it gives it; "" when none does."""
    return next((run.task_names[task] for run in runs if run.task_names.get(task)), "")


def _ceilings(runs: list[ComparedRun], columns: list[str]) -> dict[str, float]:
    """Each column's best possible value, as its metric declares it under the run's protocol; a
    metric not installed here (a plugin) leaves its columns without one."""
    ceilings: dict[str, float] = {}
    for column in columns:
        run = next((r for r in runs if r.column_metrics.get(column) in METRICS), None)
        if run is None:
            continue
        try:
            metric = METRICS.load(run.column_metrics[column])
        except ConfigError:
            continue
        settings = run.protocol.metrics.get(metric.name) or {}
        best = metric.best_value(column, settings)
        if best is not None and math.isfinite(best):
            ceilings[column] = float(best)
    return ceilings


def _pick_baseline(runs: list[ComparedRun], baseline: str | Path | None) -> ComparedRun:
    if baseline is None:
        return runs[0]
    for run in runs:
        if str(baseline) == run.label or (
            Path(baseline).exists() and Path(baseline).resolve() == run.path.resolve()
        ):
            return run
    raise ConfigError(
        f"baseline {str(baseline)!r} is none of the compared runs ({', '.join(r.label for r in runs)})"
    )


def below_ceiling(values: np.ndarray, ceiling: float | None, direction: str) -> np.ndarray:
    """Which finite values fall short of the column's best possible value (all of them when it has
    none known): an episode at the ceiling is not a failure, however it ranks."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if ceiling is None:
        return finite
    short = values < ceiling if direction == "higher" else values > ceiling
    return finite & short & ~np.isclose(values, ceiling, rtol=0.0, atol=CEILING_TOLERANCE)


def _worst_cases(comparison: Comparison, columns: list[str]) -> list[WorstCase]:
    """Per metric and run, the worst-scoring trials of distinct episodes (direction-aware), among
    those below the column's best possible value: an exact replay (hsd = 1) has no worst episode."""
    cases = []
    for column in columns:
        direction = next(m.direction for m in comparison.metrics if m.column == column)
        for run in comparison.runs:
            rows = comparison.selected_rows[run.label]
            if column not in rows.columns:
                continue
            scored = rows[below_ceiling(rows[column], comparison.ceilings.get(column), direction)]
            ordered = scored.assign(_order=range(len(scored))).sort_values(
                [column, "_order"], ascending=[direction == "higher", True], kind="stable"
            )
            kept = ordered.drop_duplicates(["task_id", "episode_id"]).head(comparison.settings.worst)
            cases += [
                WorstCase(column, run.label, str(t), str(e), str(trial), float(v))
                for t, e, trial, v in zip(
                    kept.task_id, kept.episode_id, kept.trial_id, kept[column].astype(float)
                )
            ]
    return cases


def radar_axes(comparison: Comparison) -> list[tuple[str, list[str]]]:
    """The radar's axes: metric groups when there are at least 3, otherwise the columns themselves."""
    columns = [
        m
        for m in comparison.metrics
        if any(comparison.values.get((OVERALL, m.column, r)) for r in comparison.labels)
    ]
    groups: dict[str, list[str]] = {}
    for m in columns:
        groups.setdefault(m.group, []).append(m.column)
    if len(groups) >= 3:
        return list(groups.items())
    return [(m.column, [m.column]) for m in columns]


def radar_informative(comparison: Comparison) -> bool:
    """Whether a radar says anything: two runs or more, three axes or more, and on some axis the
    runs differ (with one run, or every run at the best, the shape is a full polygon)."""
    if comparison.single or len(radar_axes(comparison)) < 3:
        return False
    for axis in (axis for axis, _ in radar_axes(comparison)):
        values = [comparison.normalised.get(label, {}).get(axis) for label in comparison.labels]
        known = [v for v in values if v is not None]
        if len(known) != len(values) or (known and max(known) - min(known) > CEILING_TOLERANCE):
            return True
    return False


def _normalised(comparison: Comparison) -> dict[str, dict[str, float | None]]:
    """Each column scaled to the best compared run (best = 1): value / best for higher-is-better
    columns, best / value for lower-is-better ones (both need positive values; otherwise min-max
    across the runs). An axis is the mean of its columns."""
    scaled: dict[str, dict[str, float]] = {}
    for metric in comparison.metrics:
        values = {}
        for label in comparison.labels:
            interval = comparison.values.get((OVERALL, metric.column, label))
            if interval is not None and math.isfinite(interval.estimate):
                values[label] = interval.estimate
        if not values:
            continue
        array = np.array(list(values.values()))
        if np.all(array > 0):
            best = array.max() if metric.direction == "higher" else array.min()
            ratio = array / best if metric.direction == "higher" else best / array
        elif np.ptp(array) > 0:
            ratio = (array - array.min()) / np.ptp(array)
            ratio = ratio if metric.direction == "higher" else 1.0 - ratio
        else:
            ratio = np.ones_like(array)
        scaled[metric.column] = {label: float(r) for label, r in zip(values, ratio)}
    out: dict[str, dict[str, float | None]] = {}
    for label in comparison.labels:
        out[label] = {}
        for axis, columns in radar_axes(comparison):
            parts = [scaled[c][label] for c in columns if c in scaled and label in scaled[c]]
            out[label][axis] = float(np.mean(parts)) if parts else None
    return out


# ------------------------------------------------------------------ report.json / report.csv


def to_dict(comparison: Comparison, figures: dict[str, object] | None = None) -> dict:
    """``report.json``: every number the HTML shows. No absolute path, no time: same runs, same bytes."""
    s = comparison.settings
    runs = []
    for run in comparison.runs:
        rows = comparison.selected_rows[run.label]
        runs.append(
            {
                "label": run.label,
                "model": run.model,
                "protocol": run.protocol_name,
                "protocol_version": run.protocol_version,
                "protocol_hash": run.protocol_hash,
                "dataset_hash": run.dataset_hash,
                "episodes": len(rows.groupby(["task_id", "episode_id"])),
                "rows_counted": len(rows),
                # the fix only: a skip reason can name a local path (a weights cache), the report must not
                "skipped_metrics": {name: why.get("fix", "") for name, why in sorted(run.skipped.items())},
                "missing_columns": [
                    m.column
                    for m in comparison.metrics
                    if m.column not in run.metric_columns and m.column not in run.run_level
                ],
            }
        )
    values = []
    for (scope, column, label), interval in comparison.values.items():
        entry = {"scope": scope, "metric": column, "run": label}
        entry.update(
            {"missing": True}
            if interval is None
            else {
                "missing": False,
                "estimate": interval.estimate,
                "low": interval.low,
                "high": interval.high,
                "episodes": interval.episodes,
                "trials": interval.trials,
            }
        )
        values.append(entry)
    differences = []
    for (scope, column, label), diff in comparison.differences.items():
        differences.append(
            {
                "scope": scope,
                "metric": column,
                "run": label,
                "baseline": comparison.baseline,
                "difference": diff.difference,
                "low": diff.low,
                "high": diff.high,
                "p_value": diff.p_value,
                "p_adjusted": diff.p_adjusted,
                "ties": diff.ties,
                "improvement": diff.improvement,
                "verdict": diff.verdict(s.alpha),
                "episodes": diff.episodes,
            }
        )
    shown = list(comparison.agreement)
    return {
        "format": REPORT_FORMAT,
        "baseline": comparison.baseline,
        "runs": runs,
        "comparability": {
            "notes": comparison.notes,
            "episodes": [f"{t}/{e}" for t, e in comparison.episodes],
        },
        "settings": {
            "level": s.level,
            "resamples": s.resamples,
            "test": "sign-flip",
            "alpha": s.alpha,
            "seed": s.seed,
            "correction": "holm over the metrics of one run and one scope",
            "estimate": "the protocol's overall rule on the rows it counts (per task: the mean of the task's rows)",
            "interval": "percentile bootstrap over episodes within tasks, trials kept with their episode",
            "difference_interval": "inverted from the paired sign-flip test (the same test as p_value): "
            "excludes 0 exactly when p_value < 1 - level",
            "ties": "episodes whose difference is exactly 0 stay in the test (their flips change nothing)",
        },
        "metrics": [
            {
                "column": m.column,
                "group": m.group,
                "direction": m.direction,
                "best_possible": comparison.ceilings.get(m.column),
            }
            for m in comparison.metrics
        ],
        "task_names": comparison.task_names,
        "scopes": comparison.scopes,
        "values": values,
        "run_level": [
            {"metric": c, "run": label, "value": v} for (c, label), v in comparison.run_level.items()
        ],
        "differences": differences,
        "agreement": {
            "metrics": shown,
            "items": comparison.agreement_items,
            "tau": [[comparison.agreement[a][b] for b in shown] for a in shown],
        },
        "radar": {"axes": [axis for axis, _ in radar_axes(comparison)], "runs": comparison.normalised},
        "worst": [vars(w) for w in comparison.worst],
        "figures": figures or {},
    }


def to_table(comparison: Comparison) -> pd.DataFrame:
    """``report.csv``: one row per scope, metric and run, with its difference from the baseline."""
    records = []
    for scope in comparison.scopes:
        for metric in comparison.metrics:
            for label in comparison.labels:
                interval = comparison.values.get((scope, metric.column, label))
                diff = comparison.differences.get((scope, metric.column, label))
                record = {
                    "scope": scope,
                    "metric": metric.column,
                    "group": metric.group,
                    "direction": metric.direction,
                    "run": label,
                    "estimate": None,
                    "low": None,
                    "high": None,
                    "episodes": None,
                    "difference": None,
                    "difference_low": None,
                    "difference_high": None,
                    "p_value": None,
                    "p_adjusted": None,
                    "verdict": "",
                }
                if scope == OVERALL and (metric.column, label) in comparison.run_level:
                    record["estimate"] = comparison.run_level[(metric.column, label)]
                if interval is not None:
                    record.update(
                        estimate=interval.estimate,
                        low=interval.low,
                        high=interval.high,
                        episodes=interval.episodes,
                    )
                if diff is not None:
                    record.update(
                        difference=diff.difference,
                        difference_low=diff.low,
                        difference_high=diff.high,
                        p_value=diff.p_value,
                        p_adjusted=diff.p_adjusted,
                        verdict=diff.verdict(comparison.settings.alpha),
                    )
                if interval is None and record["estimate"] is None:
                    record["verdict"] = "missing"
                records.append(record)
    return pd.DataFrame.from_records(records)


__all__ = [
    "ID_COLUMNS",
    "Comparison",
    "Settings",
    "below_ceiling",
    "compare_runs",
    "counted_rows",
    "difference_text",
    "radar_informative",
    "signed",
    "to_dict",
    "to_table",
]
