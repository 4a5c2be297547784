"""Scoring a plan's trials: pair -> check -> execute -> collect -> rows -> aggregate.

Each step is one function, called in this order (:func:`pair`, then :func:`score` for the rest):

* :func:`pair` (before scoring, so provenance can name the device): every problem with the
  ground truth and the generated trials, the (episode, trial) pairs that are scored, the device;
* the plan's unavailable metrics (a missing extra, absent weights) are skipped;
* :func:`execute_items`: the work items (metric x trial, episode or run, :mod:`ewmbench.run.items`)
  run by the plan's executor, each writing its record;
* :func:`collect`: the stored records read back (never recomputed) into values per trial and
  dataset-level values, with notes on what failed or warned;
* :func:`rows_table` and :func:`aggregate_rows`: the per-trial table and the protocol's overall
  and per-task values.

The result, :class:`Scores`, is what the run record is built from (:mod:`ewmbench.run.recording`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.progress import Progress

from ewmbench.data.layout import Episode, Generated, GroundTruth, Problem, Trial, pairing_problems
from ewmbench.data.video import video_size
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError
from ewmbench.metrics.base import Metric
from ewmbench.metrics.registry import higher_is_better
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.device import default_device
from ewmbench.results import ID_COLUMNS, aggregate
from ewmbench.run.executors import collect_scorer, execute
from ewmbench.run.items import Job, build_plan, pairs_for
from ewmbench.run.plan import Plan
from ewmbench.run.scoring import Scorer

Pair = tuple[Episode, Trial]


@dataclass
class Pairing:
    """The datasets as scoring sees them: every problem found, and the pairs that are scored."""

    gt: GroundTruth
    generated: Generated
    problems: list[Problem]
    pairs: list[Pair]
    trial_warnings: list[dict]  # trials scored although their size differs from the ground truth
    device: str  # where the metrics' networks run

    @property
    def episodes(self) -> int:
        return len({e.key for e, _ in self.pairs})


@dataclass
class Scores:
    """What scoring found: the rows, the aggregate and everything the record and summary report."""

    pairing: Pairing
    detector: DetectorChoice
    columns: dict[str, tuple[str, ...]]  # metric -> its columns under the protocol
    skipped: dict[str, dict]  # metric -> {reason, fix}
    rows: pd.DataFrame
    aggregated: dict  # overall (run-level values included), per_task, rows_counted
    run_values: dict[str, float]  # dataset-level columns (FID, FVD): one value for the run
    notes: list[dict]
    computed: int  # records computed now (0 when everything was reused)
    videos: VideoCache  # content hashes of every video read (the dataset hash)

    @property
    def scored(self) -> pd.Series:
        """Per row: whether any metric scored it (a run-level value counts for every row)."""
        row_columns = [c for c in self.rows.columns if c not in ID_COLUMNS]
        if row_columns:
            return self.rows[row_columns].notna().any(axis=1)
        return pd.Series(bool(self.run_values), index=self.rows.index)


def pair(plan: Plan, gt: GroundTruth, generated: Generated) -> Pairing:
    """Check the datasets, pair their trials and choose the scoring device."""
    # Metrics that read no frame (motion on stored tracks) trigger no frame check and no decoding.
    uses_frames = any(m.uses_frames for m in plan.metrics)
    problems, pairs = pair_trials(gt, generated, uses_frames, bool(plan.split))
    trial_warnings = size_mismatches(pairs) if uses_frames else []
    return Pairing(gt, generated, problems, pairs, trial_warnings, scoring_device(plan, pairs))


def score(plan: Plan, pairing: Pairing, progress: Progress | None = None) -> Scores:
    """Score the paired trials with the plan's metrics under the plan's protocol."""
    protocol, metrics, pairs = plan.protocol, plan.metrics, pairing.pairs
    detector = detector_choice(plan)
    columns = {m.name: m.columns_for(protocol.settings(m.name)) for m in metrics}
    skipped = dict(plan.unavailable)  # found by pre-flight; collect adds the metrics it could not score
    job = Job(plan.output, protocol, plan.config.cache_dir, pairing.device, detector)
    computed = execute_items(plan, job, [m for m in metrics if m.name not in skipped], pairs, progress)
    # Collect reads only the stored records (a missing one is an error, never recomputed), with the
    # keys the executor built in this process (serial), else built here once.
    scorer = collect_scorer(job)
    values, run_values, notes = collect(scorer, metrics, columns, skipped, pairing.gt, pairs)
    rows = rows_table(metrics, columns, skipped, values)
    aggregated = aggregate_rows(plan, rows, run_values)
    return Scores(
        pairing, detector, columns, skipped, rows, aggregated, run_values, notes, computed, scorer.videos
    )


def pair_trials(
    gt: GroundTruth, generated: Generated, uses_frames: bool, split: bool
) -> tuple[list[Problem], list[Pair]]:
    """Every problem found in the two datasets and how they pair, and the pairs scored: each
    generated trial with its ground-truth episode, unless either video has an error."""
    problems: list[Problem] = (
        gt.problems(videos_needed=uses_frames)
        + generated.problems(videos_needed=uses_frames)
        + pairing_problems(gt, generated, frame_counts=uses_frames)
    )
    if split:
        # Generated episodes outside the split are left out on purpose, not for want of ground truth.
        outside = [p for p in problems if p.message.startswith("generated episode has no ground truth")]
        problems = [p for p in problems if p not in outside]
        if outside:
            problems.append(
                Problem(
                    generated.root,
                    f"{len(outside)} generated episode(s) outside the split are not scored",
                    "warning",
                )
            )
    bad_paths = [p.path for p in problems if p.severity == "error"]
    gt_by_key = {e.key: e for e in gt.episodes}
    pairs = [
        (gt_by_key[(t.task, t.episode)], t)
        for t in generated.trials
        if (t.task, t.episode) in gt_by_key
        and not _has_problem(t.video_path(), bad_paths)
        and not _has_problem(gt_by_key[(t.task, t.episode)].video_path(), bad_paths)
    ]
    return problems, pairs


def detector_choice(plan: Plan) -> DetectorChoice:
    weights = plan.config.detector_weights
    return DetectorChoice(weights=Path(weights) if weights else None)


def execute_items(
    plan: Plan, job: Job, metrics: list[Metric], pairs: list[Pair], progress: Progress | None
) -> int:
    """Every work item of ``metrics`` over ``pairs``, run by the plan's executor (each writes its
    record); how many records were computed now."""
    items = build_plan(metrics, pairs, plan.protocol.settings)
    task = progress.add_task(f"score ({plan.config.executor})", total=len(items)) if progress else None
    advance: Callable[[int], None] = (lambda n: progress.advance(task, n)) if progress else (lambda n: None)
    return execute(plan.config.executor, job, items, advance, plan.config.workers, plan.config.num_gpus)


def collect(
    scorer: Scorer,
    metrics: list[Metric],
    columns: dict[str, tuple[str, ...]],
    skipped: dict[str, dict],
    gt: GroundTruth,
    pairs: list[Pair],
) -> tuple[dict[tuple[str, str, str], dict], dict[str, float], list[dict]]:
    """The stored records read back: values per trial, dataset-level values, notes on what failed
    or warned. A metric whose every record was skipped joins ``skipped`` (updated in place)."""
    gt_by_key = {e.key: e for e in gt.episodes}
    run_values: dict[str, float] = {}  # dataset-level metrics: one value per column for the run
    values: dict[tuple[str, str, str], dict] = {t.key: {} for _, t in pairs}
    row_notes: list[dict] = []
    for metric in metrics:
        if metric.name in skipped:
            continue
        if metric.level == "dataset":
            record = (
                scorer.stored_dataset(metric, pairs_for(metric, pairs))
                if pairs_for(metric, pairs)
                else {"status": "skipped", "reason": "no scored trials", "fix": "", "warnings": []}
            )
            if record["status"] == "skipped":
                skipped[metric.name] = {"reason": record["reason"], "fix": record.get("fix", "")}
                continue
            run_values.update({c: float(record["values"].get(c, float("nan"))) for c in columns[metric.name]})
            if record["status"] != "ok" or record["warnings"]:
                row_notes.append(
                    {
                        "metric": metric.name,
                        "status": record["status"],
                        "reason": record.get("reason"),
                        "fix": record.get("fix"),
                        "warnings": record["warnings"],
                    }
                )
            continue
        if metric.level == "trial":
            scored_pairs = pairs_for(metric, pairs)
            records = scorer.stored_trials(metric, scored_pairs) if scored_pairs else []
            items = [(e, [t], r) for (e, t), r in zip(scored_pairs, records)]
        else:
            grouped: dict[tuple[str, str], list[Trial]] = {}
            for episode, trial in pairs_for(metric, pairs):
                grouped.setdefault(episode.key, []).append(trial)
            items = [
                (gt_by_key[k], trials, scorer.stored_episode(metric, gt_by_key[k], trials))
                for k, trials in grouped.items()
            ]
        notes, statuses = [], set()
        for episode, trials, record in items:
            statuses.add(record["status"])
            for trial in trials:
                values[trial.key].update(
                    {c: float(record["values"].get(c, float("nan"))) for c in columns[metric.name]}
                )
            if record["status"] != "ok" or record["warnings"]:
                notes.append(
                    {
                        "metric": metric.name,
                        "task_id": episode.task,
                        "episode_id": episode.episode,
                        "trial_id": trials[0].trial if metric.level == "trial" else None,
                        "status": record["status"],
                        "reason": record.get("reason"),
                        "fix": record.get("fix"),
                        "warnings": record["warnings"],
                    }
                )
        if statuses == {"skipped"}:
            # Nothing could be scored (e.g. no trajectories and no detector): the metric is skipped.
            skipped[metric.name] = {"reason": notes[0]["reason"], "fix": notes[0]["fix"]}
        else:
            row_notes.extend(notes)
    return values, run_values, row_notes


def rows_table(
    metrics: list[Metric],
    columns: dict[str, tuple[str, ...]],
    skipped: dict[str, dict],
    values: dict[tuple[str, str, str], dict],
) -> pd.DataFrame:
    """One row per scored trial; skipped metrics get no columns (the record lists them with the fix)."""
    row_columns = [
        c for m in metrics if m.level != "dataset" and m.name not in skipped for c in columns[m.name]
    ]
    return pd.DataFrame(
        [
            {
                "task_id": k[0],
                "episode_id": k[1],
                "trial_id": k[2],
                **{c: v.get(c, float("nan")) for c in row_columns},
            }
            for k, v in values.items()
        ],
        columns=ID_COLUMNS + row_columns,
    )


def aggregate_rows(plan: Plan, rows: pd.DataFrame, run_values: dict[str, float]) -> dict:
    """Overall and per-task values under the plan's protocol; run-level values join the overall."""
    registry = plan_registry(plan)
    aggregated = aggregate(rows, plan.protocol, lambda column: higher_is_better(column, registry))
    aggregated["overall"].update(run_values)
    return aggregated


def plan_registry(plan: Plan) -> dict[str, type[Metric]]:
    """The plan's metric classes by name: a column's direction is its writer's declaration."""
    return {m.name: type(m) for m in plan.metrics}


def scoring_device(plan: Plan, pairs: list[Pair]) -> str:
    """``--device``; else the default device (a CUDA probe: imports torch) only where a scored
    metric runs a network, else ``cpu``: motion on stored tracks and PSNR/SSIM probe nothing."""
    if plan.config.device:
        return plan.config.device
    for metric in plan.metrics:
        if metric.device_free:
            continue
        if (
            not metric.uses_frames
            and metric.needs <= {"trajectories"}
            and all(e.traj_path.is_file() and t.traj_path.is_file() for e, t in pairs)
        ):
            continue  # every track is stored: no detector runs
        return default_device()
    return "cpu"


def _has_problem(video: Path, bad_paths: list[Path]) -> bool:
    """An error was reported for the video, a file in it, or a folder holding it (a bad name)."""
    return bool(bad_paths) and any(p == video or video in p.parents or p in video.parents for p in bad_paths)


def size_mismatches(pairs: list[Pair]) -> list[dict]:
    """Trials whose video differs from its ground truth in frame count or size: scored as the
    protocol says (frames matched, resized), and recorded, since the numbers then mean less."""
    found = []
    for episode, trial in pairs:
        try:
            gt_size, size = video_size(episode.video_path()), video_size(trial.video_path())
        except DataError:
            continue  # reported among the problems
        if gt_size != size:
            found.append({
                "task_id": trial.task, "episode_id": trial.episode, "trial_id": trial.trial,
                "frames": size[0], "size": [size[2], size[1]], "gt_frames": gt_size[0], "gt_size": [gt_size[2], gt_size[1]],
                "message": f"generated video has {size[0]} frames of {size[2]}x{size[1]}, its ground truth {gt_size[0]} of "
                           f"{gt_size[2]}x{gt_size[1]}; frames are matched and resized as the protocol says",
            })  # fmt: skip
    return found
