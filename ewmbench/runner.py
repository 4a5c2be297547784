"""Runs: generate videos with a world model, score them, aggregate, write the run folder.

A run folder::

    OUTPUT/config.json             the resolved configuration
    OUTPUT/provenance.json         package version, git commit, seeds, device, protocol file hash
    OUTPUT/<model>_dataset/...     generated trials in the official layout (``ewmbench run`` only)
    OUTPUT/scores/<metric>/...     one JSON per scored trial (or episode): the resumable state
    OUTPUT/rows.csv, rows.parquet  one row per trial, one column per metric output
    OUTPUT/summary.json            overall and per-task results, skipped metrics with the fix
    OUTPUT/ewmbm_final_table.csv   the table: the official tool's (``output_format: official``,
    OUTPUT/<name>_results.json     ewmbench/official.py) or ours (``ewmbench``, results.py)

Every stage is idempotent: a finished item is recognised by its stored input hashes and not
redone, so a killed run resumes and a finished run does no work when started again.
"""

from __future__ import annotations

import os
import platform
import subprocess
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import ewmbench
from ewmbench.data.datasets import SAMPLE, resolve_dataset
from ewmbench.data.layout import (
    HEAD_VIEW,
    Episode,
    Generated,
    GroundTruth,
    Problem,
    Trial,
    pairing_problems,
    write_trial,
)
from ewmbench.data.split import provenance as split_provenance
from ewmbench.data.video import list_frames, video_size
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError, Unavailable
from ewmbench.files import sha256_file, write_json
from ewmbench.metrics.base import Metric
from ewmbench.metrics.registry import column_directions, higher_is_better, metric_registry
from ewmbench.models.base import (
    CONDITIONING,
    Capabilities,
    GenerationRequest,
    WorldModel,
    json_safe,
    load_model_class,
)
from ewmbench.models.invoke import batch_size, call_model, conform_result
from ewmbench.official import write_official_files
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.device import default_device
from ewmbench.preflight import (  # noqa: F401  (sidecar_fields: re-exported)
    Plan,
    RunConfig,
    apply_split,
    check_model,
    model_device,
    preflight,
    resolve_metric_names,
    sidecar_fields,
)
from ewmbench.protocols import Protocol, resolve_protocol
from ewmbench.record import (
    Column,
    Counts,
    DatasetRef,
    ModelRef,
    ProtocolRef,
    Provenance,
    RunRecord,
    Skipped,
    Weight,
    dataset_hash,
)
from ewmbench.results import ID_COLUMNS, aggregate, write_own_files, write_rows
from ewmbench.run import (  # noqa: F401  (Scorer, store_name: re-exported)
    Job,
    Scorer,
    build_plan,
    collect_scorer,
    execute,
    pairs_for,
    store_name,
)

__all__ = ["RunConfig", "RunResult", "evaluate", "run", "score"]


@dataclass
class RunResult:
    output: Path
    rows: pd.DataFrame
    summary: dict


def trial_seed(base_seed: int, task: str, episode: str, trial: str) -> int:
    """A per-trial seed that depends only on the run seed and the trial's ids."""
    return (base_seed * 1_000_003 + zlib.crc32(f"{task}/{episode}/{trial}".encode())) % (2**31)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


def prepare_output(config: RunConfig, plan: Plan) -> None:
    """Write the run's configuration; :func:`ewmbench.preflight.preflight` has checked the folder."""
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    written = {"identity": config.identity(), "config": config.recorded()}
    written["config"]["metrics_resolved"] = plan.metrics
    if plan.split:
        written["split"] = split_provenance(plan.split)
    write_json(output / "config.json", written)


@dataclass
class PreparedModel:
    """An adapter checked against the dataset and loaded, with what provenance records of it."""

    model: WorldModel
    source: str  # "module:Class"
    device: str

    @property
    def name(self) -> str:
        return self.model.name

    def record(self) -> dict:
        return {
            "name": self.model.name,
            "source": self.source,
            "oracle": self.model.oracle,
            "device": self.device,
            "config": self.model.config(),
            "capabilities": self.model.capabilities_now().describe(),
            "status": self.model.status,
        }


def prepare_model(config: RunConfig, gt: GroundTruth) -> PreparedModel:
    """Check the model (:func:`ewmbench.preflight.check_model`) and its device, then load the
    weights, before the run folder is touched."""
    model = check_model(config.model, config.model_options, gt)
    device = model_device(model, config.device)
    model.load(device)
    cls = type(model)
    return PreparedModel(model, f"{cls.__module__}:{cls.__qualname__}", device)


def generate(
    config: RunConfig,
    gt: GroundTruth,
    generated_root: Path,
    prepared: PreparedModel,
    progress: Progress | None = None,
) -> Generated:
    """Generate ``config.trials`` trials per episode; trials already written are kept."""
    model = prepared.model
    trial_ids = [str(i) for i in range(1, config.trials + 1)]
    todo = [
        (e, t)
        for e in gt.episodes
        for t in trial_ids
        if not _trial_complete(generated_root / e.task / e.episode / t)
    ]
    total = len(gt.episodes) * len(trial_ids)
    task = None
    if progress and todo:
        kept = f"; {total - len(todo)} of {total} kept from before" if len(todo) < total else ""
        task = progress.add_task(f"generate ({model.name}{kept})", total=len(todo))
    elif progress:
        progress.console.print(f"generate ({model.name}): all {total} trials were written before; resuming")
    size = batch_size(model)
    for start in range(0, len(todo), size):
        batch = todo[start : start + size]
        requests = [
            build_request(e, t, trial_seed(config.seed, e.task, e.episode, t), model).validate()
            for e, t in batch
        ]
        results = call_model(model, requests, [e for e, _ in batch])
        for (episode, trial), request, result in zip(batch, requests, results):
            write_generated_trial(generated_root, episode, trial, request, result, prepared)
            if task is not None:
                progress.advance(task)
    return Generated(generated_root)


def write_generated_trial(
    root: Path, episode: Episode, trial: str, request: GenerationRequest, result, prepared: PreparedModel
) -> None:
    """Conform every view to the GT's frame count and size, and write the trial with its sidecar."""
    sizes = {}
    for view in request.views:
        sizes[view] = (request.height, request.width)
        if view != HEAD_VIEW:
            try:
                _, height, width = video_size(episode.video_path(view))
                sizes[view] = (height, width)
            except DataError:
                pass  # no GT for this view: the head view's size
    frames, state, reports = conform_result(request, result, sizes, result.info.get("fps"), request.fps)
    meta = {
        "model": prepared.name,
        "oracle": prepared.model.oracle,
        "model_config": prepared.model.config(),
        "seed": request.seed,
        "embodiment": _embodiment(episode),
        "views": list(request.views),
        "conform": reports,
        "info": json_safe(result.info),
        "state": sorted(state),
    }
    extra = {v: f for v, f in frames.items() if v != HEAD_VIEW}
    write_trial(
        root,
        episode.task,
        episode.episode,
        trial,
        frames[HEAD_VIEW],
        extra_views=extra,
        meta=meta,
        arrays=state,
    )


def _embodiment(episode: Episode) -> str | None:
    sidecar = episode.sidecar
    value = (sidecar.meta.get("embodiment") or sidecar.meta.get("generator")) if sidecar else None
    return str(value) if value else None


def _trial_complete(path: Path) -> bool:
    # write_trial renames a finished trial into place, so a trial folder exists only when complete.
    return (path / "video").is_dir() and bool(list_frames(path / "video"))


def build_request(
    episode: Episode, trial: str, seed: int, model: WorldModel | None = None
) -> GenerationRequest:
    """The request for one trial: only the conditioning the adapter declares, as plain data."""
    num_frames, height, width = video_size(episode.video_path())
    sidecar = episode.sidecar
    caps = (
        model.capabilities_now() if model is not None else Capabilities(conditioning=frozenset(CONDITIONING))
    )
    conditioning = caps.conditioning
    views = tuple(v for v in caps.required_views if v in episode.views) or (HEAD_VIEW,)
    request = GenerationRequest(
        task=episode.task,
        episode=episode.episode,
        trial=trial,
        seed=seed,
        num_frames=num_frames,
        fps=sidecar.fps if sidecar else None,
        height=height,
        width=width,
        views=views,
        embodiment=_embodiment(episode),
    )
    if "text" in conditioning:
        request.instruction = episode.instruction
        request.substeps = list(sidecar.substeps) if sidecar else []
    if "image" in conditioning:
        request.memory_frames = {view: episode.initial_frame(view)[None] for view in views}
    if sidecar is None:
        return request
    if "actions" in conditioning and sidecar.actions is not None:
        request.actions = np.asarray(sidecar.actions)[:num_frames]
        request.action_space = "eef14-euler"
    if "calibration" in conditioning:
        request.intrinsics = {v: np.asarray(k) for v, k in sidecar.intrinsics.items() if v in views}
        request.extrinsics = {
            v: np.asarray(e)[:num_frames] for v, e in sidecar.extrinsics.items() if v in views
        }
    if "scene" in conditioning and "scene" in sidecar.meta:
        request.scene = {k: sidecar.meta[k] for k in ("scene", "subject") if k in sidecar.meta}
    if "joints" in conditioning and sidecar.joint_positions is not None:
        request.joint_positions = np.asarray(sidecar.joint_positions)[:num_frames]
        if "joint_names" in sidecar.meta:
            request.extra["joint_names"] = list(sidecar.meta["joint_names"])
    return request


def resolve_metrics(names: list[str] | None, protocol: Protocol) -> list[Metric]:
    registry = metric_registry()
    return [registry[n]() for n in resolve_metric_names(names, protocol, registry)]


def score(
    config: RunConfig,
    gt: GroundTruth,
    generated: Generated,
    progress: Progress | None = None,
    plan: Plan | None = None,
    model_config: dict | None = None,
) -> RunResult:
    protocol = resolve_protocol(config.protocol)  # once; each metric then receives its own settings
    metrics = resolve_metrics(plan.metrics if plan else config.metrics, protocol)
    detector = DetectorChoice(weights=Path(config.detector_weights) if config.detector_weights else None)
    # Metrics that read no frame (motion on stored tracks) trigger no frame check and no decoding.
    uses_frames = any(m.uses_frames for m in metrics)

    problems: list[Problem] = (
        gt.problems(videos_needed=uses_frames)
        + generated.problems(videos_needed=uses_frames)
        + pairing_problems(gt, generated, frame_counts=uses_frames)
    )
    if plan is not None and plan.split:
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
    episodes: dict[tuple[str, str], list[Trial]] = {}
    for episode, trial in pairs:
        episodes.setdefault(episode.key, []).append(trial)
    trial_warnings = size_mismatches(pairs) if uses_frames else []

    device = scoring_device(config, metrics, pairs)
    columns = {m.name: m.columns_for(protocol.settings(m.name)) for m in metrics}
    skipped: dict[str, dict] = {}
    for metric in metrics:
        try:
            metric.check_available(protocol.settings(metric.name))
        except Unavailable as exc:
            skipped[metric.name] = {"reason": exc.reason, "fix": exc.fix}
    # plan -> execute: every work item's record is written by the executor ...
    items = build_plan([m for m in metrics if m.name not in skipped], pairs)
    task = progress.add_task(f"score ({config.executor})", total=len(items)) if progress else None
    computed = execute(
        config.executor,
        Job(Path(config.output), protocol, config.cache_dir, device, detector),
        items,
        (lambda n: progress.advance(task, n)) if progress else (lambda n: None),
        config.workers,
        config.num_gpus,
    )
    # ... and collect reads only the stored records (a missing one is an error, never recomputed),
    # with the keys the executor built in this process (serial), else built here once.
    scorer = collect_scorer(Job(Path(config.output), protocol, config.cache_dir, device, detector))
    videos = scorer.videos
    run_values: dict[str, float] = {}  # dataset-level metrics: one value per column for the run
    values: dict[tuple[str, str, str], dict] = {t.key: {} for _, t in pairs}
    row_notes: list[dict] = []
    for metric in metrics:
        if metric.name in skipped:
            continue
        if metric.level == "dataset":
            record = (
                scorer.score_dataset(metric, pairs_for(metric, pairs))
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
            records = scorer.score_trials(metric, scored_pairs) if scored_pairs else []
            items = [(e, [t], r) for (e, t), r in zip(scored_pairs, records)]
        else:
            grouped: dict[tuple[str, str], list[Trial]] = {}
            for episode, trial in pairs_for(metric, pairs):
                grouped.setdefault(episode.key, []).append(trial)
            items = [
                (gt_by_key[k], trials, scorer.score_episode(metric, gt_by_key[k], trials))
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

    # Skipped metrics get no columns: summary.json lists them with the reason and the fix.
    row_columns = [
        c for m in metrics if m.level != "dataset" and m.name not in skipped for c in columns[m.name]
    ]
    rows = pd.DataFrame(
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
    registry = metric_registry()
    aggregated = aggregate(rows, protocol, lambda column: higher_is_better(column, registry))
    aggregated["overall"].update(run_values)
    scored = (
        rows[row_columns].notna().any(axis=1)
        if row_columns
        else pd.Series(bool(run_values), index=rows.index)
    )
    scored_episodes = {(r.task_id, r.episode_id) for r, ok in zip(rows.itertuples(), scored) if ok}
    summary = {
        "model": generated.name,
        "oracle": None if config.model is None else load_model_class(config.model).oracle,
        "protocol": {"name": protocol.name, "version": protocol.version, "source": protocol.source},
        "counts": {
            "episodes": len(episodes),
            "trials": len(pairs),
            "gt_episodes": len(gt.episodes),
            "generated_trials": len(generated.trials),
            "episodes_scored": len(scored_episodes),
            "trials_scored": int(scored.sum()),
        },
        "scored": f"{len(scored_episodes)} of {len(gt.episodes)} episodes ({int(scored.sum())} of {len(generated.trials)} generated trials)",
        **aggregated,
        "task_names": gt.task_names(),
        "directions": column_directions(list(aggregated["overall"]), registry),
        "skipped_metrics": skipped,
        "notes": row_notes,
        "problems": [{"path": str(p.path), "message": p.message, "severity": p.severity} for p in problems],
        "trial_warnings": trial_warnings,
        "scored_now": computed,
    }
    output = Path(config.output)
    write_rows(output, rows)
    write_json(output / "summary.json", summary)
    if protocol.output_format == "official":
        write_official_files(output, rows, generated.name, generated.root, protocol)
    else:
        write_own_files(output, rows, summary, protocol, generated.name)
    build_record(
        config,
        protocol,
        metrics,
        columns,
        skipped,
        aggregated,
        summary,
        gt,
        rows,
        pairs,
        videos,
        detector,
        device,
        model_config,
    ).save(output)
    return RunResult(output, rows, summary)


def scoring_device(config: RunConfig, metrics: list[Metric], pairs: list[tuple[Episode, Trial]]) -> str:
    """``--device``; else the default device (a CUDA probe: imports torch) only where a scored
    metric runs a network, else ``cpu``: motion on stored tracks and PSNR/SSIM probe nothing."""
    if config.device:
        return config.device
    for metric in metrics:
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


def size_mismatches(pairs: list[tuple[Episode, Trial]]) -> list[dict]:
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


def build_record(
    config: RunConfig,
    protocol: Protocol,
    metrics: list[Metric],
    columns: dict[str, tuple[str, ...]],
    skipped: dict[str, dict],
    aggregated: dict,
    summary: dict,
    gt: GroundTruth,
    rows: pd.DataFrame,
    pairs: list[tuple[Episode, Trial]],
    videos: VideoCache,
    detector: DetectorChoice,
    device: str,
    model_config: dict | None,
) -> RunRecord:
    """The typed run record (``ewmbench-run/1``) of a scored run."""
    by_column = {c: m for m in metrics if m.name not in skipped for c in columns[m.name]}
    scored = [c for c in summary["overall"] if c in by_column]
    dataset_items = _dataset_items(gt, videos)
    prov = provenance(config, device)
    return RunRecord(
        protocol=ProtocolRef(
            name=protocol.name, version=protocol.version, source=protocol.source, sha256=protocol.sha256
        ),
        dataset=DatasetRef(
            name=_dataset_name(config, gt),
            path=str(Path(gt.root).resolve()),
            sha256=dataset_hash(dataset_items),
            tasks=len({e.task for e in gt.episodes}),
            episodes=len(gt.episodes),
            task_names=summary["task_names"],
        ),
        model=ModelRef(
            name=summary["model"],
            options=dict(config.model_options),
            config=model_config,
            oracle=summary.get("oracle"),
        ),
        columns={
            c: Column(
                name=c,
                metric=by_column[c].name,
                group=by_column[c].group,
                level=by_column[c].level,
                direction=summary["directions"][c],
            )
            for c in scored
        },
        overall={c: summary["overall"][c] for c in scored},
        per_task={c: aggregated["per_task"].get(c, {}) for c in scored},
        counts=Counts(
            tasks=len({t.task for _, t in pairs}),
            episodes=summary["counts"]["episodes"],
            trials=summary["counts"]["trials"],
            rows_counted=aggregated["rows_counted"],
        ),
        skipped={
            name: Skipped(reason=why["reason"], fix=why.get("fix", "") or "") for name, why in skipped.items()
        },
        provenance=Provenance(
            ewmbench_version=prov["ewmbench_version"],
            git_commit=prov["git_commit"],
            python=prov["python"],
            platform=prov["platform"],
            numpy=prov["numpy"],
            torch=prov["torch"],
            device=device,
            seed=config.seed,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            weights=weights_used(metrics, protocol, skipped, pairs, detector),
        ),
        rows=[
            {k: (str(v) if k in ID_COLUMNS else float(v)) for k, v in row.items()}
            for row in rows.to_dict("records")
        ],
    )


def _dataset_items(gt: GroundTruth, videos: VideoCache) -> list[tuple[str, str, str]]:
    """(task, episode, content hash) of every GT episode, for the record's dataset hash. An episode
    that could not be read (reported among the problems) still counts, as unreadable; a name that
    is not UTF-8 is hashed by its bytes."""
    items = []
    for episode in gt.episodes:
        try:
            digest = videos.content_hash(episode.video_path())
        except DataError:
            digest = "unreadable"
        task, name = (
            os.fsencode(n).decode("utf-8", "backslashreplace") for n in (episode.task, episode.episode)
        )
        items.append((task, name, digest))
    return items


def _dataset_name(config: RunConfig, gt: GroundTruth) -> str:
    if config.dataset and not Path(config.dataset).is_dir():
        return config.dataset  # a named dataset, e.g. "sample"
    return Path(gt.root).resolve().name


WEIGHT_HASH_LIMIT = (
    512 * 2**20
)  # hash weight files up to this size at the end of a run; larger ones keep their published hash


def weights_used(
    metrics: list[Metric],
    protocol: Protocol,
    skipped: dict,
    pairs: list[tuple[Episode, Trial]],
    detector: DetectorChoice,
) -> tuple[Weight, ...]:
    """Every pretrained weight the scored metrics named in their settings, and the gripper detector(s)."""
    from ewmbench.perception.detector_weights import choose_weights
    from ewmbench.perception.weights import resolve, weight_specs

    specs = weight_specs()
    found: dict[str, Weight] = {}
    for metric in metrics:
        if metric.name in skipped:
            continue
        for value in protocol.settings(metric.name).values():
            if not isinstance(value, str) or value not in specs:
                continue
            item = specs[value]
            digest = item.sha256
            try:
                path = resolve(value)
                if path.is_file() and path.stat().st_size <= WEIGHT_HASH_LIMIT:
                    digest = sha256_file(path)
            except Unavailable:
                pass
            previous = found.get(value)
            used_by = f"{previous.used_by}, {metric.name}" if previous else metric.name
            found[value] = Weight(id=value, source=item.source, sha256=digest, used_by=used_by)
    if "trajectory_consistency" in {m.name for m in metrics} - set(skipped):
        # The detector runs only where a video has no traj/traj.npy.
        needs_tracks = {
            e.video_path() for e, t in pairs if not e.traj_path.is_file() or not t.traj_path.is_file()
        }
        for video in sorted(needs_tracks):
            try:
                path = Path(choose_weights(video, detector))
            except Unavailable:
                continue
            key = f"detector:{path.name}"
            if key not in found:
                found[key] = Weight(
                    id=key,
                    source=str(path),
                    sha256=sha256_file(path),
                    used_by="trajectory_consistency (gripper tracking)",
                )
    return tuple(found[k] for k in sorted(found))


def provenance(config: RunConfig, device: str, plan: Plan | None = None) -> dict:
    protocol = resolve_protocol(config.protocol)
    record = {
        "ewmbench_version": ewmbench.__version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": _installed_version("numpy"),
        "torch": _installed_version("torch"),  # read from the installed metadata: no torch import
        "device": device,
        "seed": config.seed,
        "protocol": {
            "name": protocol.name,
            "version": protocol.version,
            "source": protocol.source,
            "sha256": protocol.sha256,
        },  # the whole file: settings, aggregation and decimals
    }
    if plan is not None and plan.model_config:
        record["model"] = {"name": config.model, "config": plan.model_config}
    if plan is not None and plan.split:
        record["split"] = split_provenance(plan.split)
    return record


def _installed_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    root = Path(ewmbench.__file__).resolve().parent.parent
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def run(config: RunConfig, show_progress: bool = True, plan: Plan | None = None) -> RunResult:
    """``ewmbench run``: generate with ``config.model`` on ``config.dataset``, then score.

    Every check runs before anything is written (see :mod:`ewmbench.preflight`)."""
    plan = plan or preflight(config, "run", registry=lambda: metric_registry())
    gt = GroundTruth(resolve_dataset(config.dataset or SAMPLE))
    if plan.split:
        gt = apply_split(gt, plan.split)
    prepared = prepare_model(config, gt)
    prepare_output(config, plan)
    record = provenance(config, prepared.device, plan)
    record["model"] = prepared.record()
    write_json(Path(config.output) / "provenance.json", record)
    with _progress() if show_progress else _NoProgress() as progress:
        generated = generate(config, gt, Path(config.output) / f"{prepared.name}_dataset", prepared, progress)
        return score(config, gt, generated, progress, plan, model_config=prepared.model.config())


def evaluate(config: RunConfig, show_progress: bool = True, plan: Plan | None = None) -> RunResult:
    """``ewmbench evaluate``: score a generated dataset against its ground truth."""
    plan = plan or preflight(config, "evaluate", registry=lambda: metric_registry())
    prepare_output(config, plan)
    gt_by_key = {e.key: e for e in plan.gt.episodes}
    pairs = [
        (gt_by_key[t.task, t.episode], t) for t in plan.generated.trials if (t.task, t.episode) in gt_by_key
    ]
    device = scoring_device(config, resolve_metrics(plan.metrics, plan.protocol), pairs)
    write_json(Path(config.output) / "provenance.json", provenance(config, device, plan))
    with _progress() if show_progress else _NoProgress() as progress:
        return score(config, plan.gt, plan.generated, progress, plan)


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
