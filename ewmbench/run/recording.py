"""The run record, built from the plan and the scores: what was measured, how, on what, by whom.

:func:`provenance` is asked once per run (package and library versions, git commit, seed,
protocol): it is written to ``provenance.json`` before any work, and the record's provenance is
made from the same answer. :func:`build_record` makes the :class:`~ewmbench.results.record.RunRecord`
that every file of the run is then written from (:mod:`ewmbench.results.writers`).
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import ewmbench
from ewmbench.data.layout import GroundTruth
from ewmbench.data.split import provenance as split_provenance
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError, Unavailable
from ewmbench.files import sha256_file
from ewmbench.metrics.base import Metric
from ewmbench.metrics.registry import column_directions
from ewmbench.perception.detector_weights import DetectorChoice, choose_weights
from ewmbench.perception.weights import resolve, weight_specs
from ewmbench.protocols import Protocol
from ewmbench.results import ID_COLUMNS
from ewmbench.results.record import (
    Column,
    Counts,
    DatasetRef,
    ModelRef,
    ProtocolRef,
    Provenance,
    RunRecord,
    Skipped,
    Tracks,
    Weight,
    dataset_hash,
)
from ewmbench.results.summary import RunNotes
from ewmbench.run.plan import Plan
from ewmbench.run.score import Pair, Scores, plan_registry


def build_record(plan: Plan, scores: Scores, prov: dict, model_config: dict | None) -> RunRecord:
    """The typed run record (``ewmbench-run/1``) of a scored run."""
    pairing, skipped, aggregated = scores.pairing, scores.skipped, scores.aggregated
    by_column = {c: m for m in plan.metrics if m.name not in skipped for c in scores.columns[m.name]}
    scored = [c for c in aggregated["overall"] if c in by_column]
    directions = column_directions(scored, plan_registry(plan))
    protocol, gt = plan.protocol, pairing.gt
    return RunRecord(
        protocol=ProtocolRef(
            name=protocol.name,
            version=protocol.version,
            source=protocol.source,
            sha256=protocol.sha256,
            text=protocol.text,
        ),
        dataset=DatasetRef(
            name=_dataset_name(plan, gt),
            path=str(Path(gt.root).resolve()),
            sha256=dataset_hash(_dataset_items(gt, scores.videos)),
            tasks=len({e.task for e in gt.episodes}),
            episodes=len(gt.episodes),
            task_names=gt.task_names(),
        ),
        model=ModelRef(
            name=pairing.generated.name,
            options=dict(plan.config.model_options),
            config=model_config,
            oracle=plan.model.oracle if plan.model is not None else None,
            videos=str(Path(pairing.generated.root).resolve()),
        ),
        columns={
            c: Column(
                name=c,
                metric=by_column[c].name,
                group=by_column[c].group,
                level=by_column[c].level,
                direction=directions[c],
            )
            for c in scored
        },
        overall={c: aggregated["overall"][c] for c in scored},
        per_task={c: aggregated["per_task"].get(c, {}) for c in scored},
        counts=Counts(
            tasks=len({t.task for _, t in pairing.pairs}),
            episodes=pairing.episodes,
            trials=len(pairing.pairs),
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
            device=pairing.device,
            seed=plan.config.seed,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            weights=weights_used(plan.metrics, protocol, skipped, pairing.pairs, scores.detector),
        ),
        rows=[
            {k: (str(v) if k in ID_COLUMNS else float(v)) for k, v in row.items()}
            for row in scores.rows.to_dict("records")
        ],
        tracks=Tracks(
            store=_resolved(plan.config.cache_dir), detector=_resolved(plan.config.detector_weights)
        ),
    )


def _resolved(path: Path | str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def run_notes(scores: Scores) -> RunNotes:
    """What the run noticed besides its numbers, for ``summary.json``."""
    rows, scored = scores.rows, scores.scored
    scored_episodes = {(r.task_id, r.episode_id) for r, ok in zip(rows.itertuples(), scored) if ok}
    return RunNotes(
        generated_trials=len(scores.pairing.generated.trials),
        episodes_scored=len(scored_episodes),
        trials_scored=int(scored.sum()),
        notes=scores.notes,
        problems=[
            {"path": str(p.path), "message": p.message, "severity": p.severity}
            for p in scores.pairing.problems
        ],
        trial_warnings=scores.pairing.trial_warnings,
        scored_now=scores.computed,
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


def _dataset_name(plan: Plan, gt: GroundTruth) -> str:
    dataset = plan.config.dataset
    if dataset and not Path(dataset).is_dir():
        return dataset  # a named dataset, e.g. "sample"
    return Path(gt.root).resolve().name


WEIGHT_HASH_LIMIT = (
    512 * 2**20
)  # hash weight files up to this size at the end of a run; larger ones keep their published hash


def weights_used(
    metrics: list[Metric],
    protocol: Protocol,
    skipped: dict,
    pairs: list[Pair],
    detector: DetectorChoice,
) -> tuple[Weight, ...]:
    """Every pretrained weight the scored metrics named in their settings, and the gripper detector(s)."""
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


def provenance(plan: Plan, device: str) -> dict:
    """What ran, where and how: asked once per run (``provenance.json`` and the record)."""
    protocol = plan.protocol
    record = {
        "ewmbench_version": ewmbench.__version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": _installed_version("numpy"),
        "torch": _installed_version("torch"),  # read from the installed metadata: no torch import
        "device": device,
        "seed": plan.config.seed,
        "protocol": {
            "name": protocol.name,
            "version": protocol.version,
            "source": protocol.source,
            "sha256": protocol.sha256,
        },  # the whole file: settings, aggregation and decimals
    }
    if plan.model_config:
        record["model"] = {"name": plan.config.model, "config": plan.model_config}
    if plan.split:
        record["split"] = split_provenance(plan.split)
    return record


def _installed_version(distribution: str) -> str | None:
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
