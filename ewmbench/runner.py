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

import hashlib
import json
import platform
import subprocess
import warnings
import zlib
from dataclasses import asdict, dataclass, field
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
from ewmbench.data.conform import conform_video, time_indices
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
from ewmbench.data.video import list_frames, video_size
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, DataError, Unavailable
from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs, column_directions, higher_is_better, metric_registry
from ewmbench.models.base import (
    CONDITIONING,
    Capabilities,
    GenerationRequest,
    WorldModel,
    check_device,
    check_request_fits,
    json_safe,
    load_model_class,
    validate_result,
)
from ewmbench.official import write_official_files
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.device import default_device
from ewmbench.protocols import DEFAULT_PROTOCOL, Protocol, resolve_protocol
from ewmbench.files import sha256_file, write_json
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

SCORES_DIR = "scores"


@dataclass
class RunConfig:
    output: Path
    protocol: str = DEFAULT_PROTOCOL
    metrics: list[str] | None = None  # None: every metric the protocol defines
    # ewmbench run: generate with a model on a ground-truth dataset
    model: str | None = None
    model_options: dict = field(default_factory=dict)
    dataset: str | None = None
    trials: int = 3
    seed: int = 0
    # ewmbench evaluate: score videos generated elsewhere
    gt: Path | None = None
    generated: Path | None = None
    # preprocessing
    cache_dir: Path | None = None
    detector_weights: Path | None = None
    device: str | None = None

    def identity(self) -> dict:
        """The settings a run folder is bound to: resuming with other values is refused."""
        keys = ("protocol", "model", "model_options", "dataset", "trials", "seed", "gt", "generated")
        return {k: _plain(getattr(self, k)) for k in keys}


@dataclass
class RunResult:
    output: Path
    rows: pd.DataFrame
    summary: dict


def _plain(value):
    if isinstance(value, Path):
        return str(value.resolve())
    return value


def trial_seed(base_seed: int, task: str, episode: str, trial: str) -> int:
    """A per-trial seed that depends only on the run seed and the trial's ids."""
    return (base_seed * 1_000_003 + zlib.crc32(f"{task}/{episode}/{trial}".encode())) % (2**31)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        transient=False,
    )


def prepare_output(config: RunConfig) -> None:
    output = Path(config.output)
    config_path = output / "config.json"
    if config_path.is_file():
        stored = json.loads(config_path.read_text()).get("identity", {})
        if stored != config.identity():
            changed = sorted(k for k in config.identity() if stored.get(k) != config.identity()[k])
            raise ConfigError(
                f"{output} holds a run with other settings ({', '.join(changed)} differ); "
                "use a new --output folder, or the same settings to resume"
            )
    elif output.exists() and any(output.iterdir()):
        raise ConfigError(f"{output} exists, is not empty and is not a run folder; choose a new --output folder")
    output.mkdir(parents=True, exist_ok=True)
    write_json(config_path, {"identity": config.identity(), "config": {k: _plain(v) for k, v in asdict(config).items()}})


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
            "name": self.model.name, "source": self.source, "oracle": self.model.oracle, "device": self.device,
            "config": self.model.config(), "capabilities": self.model.capabilities_now().describe(), "status": self.model.status,
        }


def check_model(config: RunConfig, gt: GroundTruth) -> tuple[WorldModel, str]:
    """Resolve the adapter, validate its options, the device and what the dataset offers; load nothing.

    Everything that can be refused without weights is refused here (pre-flight checks call it).
    """
    cls = load_model_class(config.model)
    model = cls(**config.model_options)  # options validated, nothing loaded
    device = check_device(model, config.device, default_device().startswith("cuda"))
    for episode in gt.episodes:
        check_request_fits(model, episode.views, sidecar_fields(episode), episode.path)
    model.check_available()
    return model, device


def prepare_model(config: RunConfig, gt: GroundTruth) -> PreparedModel:
    """:func:`check_model`, then load the weights, before the run folder is touched."""
    model, device = check_model(config, gt)
    model.load(device)
    cls = type(model)
    return PreparedModel(model, f"{cls.__module__}:{cls.__qualname__}", device)


def sidecar_fields(episode: Episode) -> dict[str, bool]:
    sidecar = episode.sidecar
    present = {"instruction": episode.instruction_path.is_file()}
    if sidecar is None:
        return present
    present["actions"] = sidecar.actions is not None
    present["scene"] = "scene" in sidecar.meta
    for view in sidecar.views:
        present[f"intrinsics/{view}"] = view in sidecar.intrinsics
        present[f"extrinsics/{view}"] = view in sidecar.extrinsics
    return present


def generate(config: RunConfig, gt: GroundTruth, generated_root: Path, prepared: PreparedModel, progress: Progress | None = None) -> Generated:
    """Generate ``config.trials`` trials per episode; trials already written are kept."""
    model = prepared.model
    trial_ids = [str(i) for i in range(1, config.trials + 1)]
    todo = [(e, t) for e in gt.episodes for t in trial_ids if not _trial_complete(generated_root / e.task / e.episode / t)]
    task = progress.add_task(f"generate ({model.name})", total=len(todo)) if progress else None
    batch_size = 1 if model.oracle else max(1, model.capabilities_now().max_batch)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        requests = [build_request(e, t, trial_seed(config.seed, e.task, e.episode, t), model).validate() for e, t in batch]
        if model.oracle:
            results = [model.generate_oracle(requests[0], batch[0][0])]
        elif batch_size > 1:
            results = model.generate_batch(requests)
        else:
            results = [model.generate(requests[0])]
        for (episode, trial), request, result in zip(batch, requests, results):
            validate_result(model, request, result)
            write_generated_trial(generated_root, episode, trial, request, result, prepared)
            if progress:
                progress.advance(task)
    return Generated(generated_root)


def write_generated_trial(root: Path, episode: Episode, trial: str, request: GenerationRequest, result, prepared: PreparedModel) -> None:
    """Conform every view to the GT's frame count and size, and write the trial with its sidecar."""
    frames, reports = {}, {}
    source_fps = result.info.get("fps")
    for view in request.views:
        height, width = request.height, request.width
        if view != HEAD_VIEW:
            try:
                _, height, width = video_size(episode.video_path(view))
            except DataError:
                pass  # no GT for this view: the head view's size
        frames[view], reports[view] = conform_video(result.frames[view], request.num_frames, height, width, source_fps, request.fps)
    state = {}  # per-frame state is resampled in time exactly as the frames were
    for key, value in result.state.items():
        value = np.asarray(value)
        if value.ndim >= 1 and len(value):
            value = value[np.minimum(time_indices(len(value), request.num_frames, source_fps, request.fps), len(value) - 1)]
        state[key] = value
    meta = {
        "model": prepared.name, "oracle": prepared.model.oracle, "model_config": prepared.model.config(), "seed": request.seed,
        "embodiment": _embodiment(episode),
        "views": list(request.views), "conform": reports, "info": json_safe(result.info),
        "state": sorted(state),
    }
    extra = {v: f for v, f in frames.items() if v != HEAD_VIEW}
    write_trial(root, episode.task, episode.episode, trial, frames[HEAD_VIEW], extra_views=extra, meta=meta, arrays=state)


def _embodiment(episode: Episode) -> str | None:
    sidecar = episode.sidecar
    value = (sidecar.meta.get("embodiment") or sidecar.meta.get("generator")) if sidecar else None
    return str(value) if value else None


def _trial_complete(path: Path) -> bool:
    # write_trial renames a finished trial into place, so a trial folder exists only when complete.
    return (path / "video").is_dir() and bool(list_frames(path / "video"))


def build_request(episode: Episode, trial: str, seed: int, model: WorldModel | None = None) -> GenerationRequest:
    """The request for one trial: only the conditioning the adapter declares, as plain data."""
    num_frames, height, width = video_size(episode.video_path())
    sidecar = episode.sidecar
    caps = model.capabilities_now() if model is not None else Capabilities(conditioning=frozenset(CONDITIONING))
    conditioning = caps.conditioning
    views = tuple(v for v in caps.required_views if v in episode.views) or (HEAD_VIEW,)
    request = GenerationRequest(
        task=episode.task, episode=episode.episode, trial=trial, seed=seed, num_frames=num_frames,
        fps=sidecar.fps if sidecar else None, height=height, width=width, views=views,
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
        request.extrinsics = {v: np.asarray(e)[:num_frames] for v, e in sidecar.extrinsics.items() if v in views}
    if "scene" in conditioning and "scene" in sidecar.meta:
        request.scene = {k: sidecar.meta[k] for k in ("scene", "subject") if k in sidecar.meta}
    return request


def resolve_metrics(names: list[str] | None, protocol: Protocol) -> list[Metric]:
    registry = metric_registry()
    if names is None:
        names = [n for n in protocol.metrics if n in registry]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(sorted(registry))}")
    missing = [n for n in names if n not in protocol.metrics]
    if missing:
        raise ConfigError(f"protocol {protocol.name!r} does not define metric(s) {', '.join(missing)}")
    return [registry[n]() for n in names]


def _hash_settings(protocol: Protocol, metric: Metric) -> str:
    text = json.dumps({"protocol": protocol.name, "version": protocol.version, "settings": protocol.settings(metric.name)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Scorer:
    """Scores every (metric, trial or episode), reusing stored results whose inputs are unchanged."""

    def __init__(self, output: Path, protocol: Protocol, videos: VideoCache, device: str, detector: DetectorChoice = DetectorChoice()):
        self.output = Path(output)
        self.protocol = protocol
        self.videos = videos
        self.device = device
        self.detector = detector
        self.computed = 0  # items scored in this process (0 when everything was reused)

    def _stored(self, path: Path, key: dict) -> dict | None:
        if path.is_file():
            try:
                record = json.loads(path.read_text())
            except json.JSONDecodeError:
                return None  # a torn write from a killed run: score again
            if record.get("key") == key:
                return record
        return None

    def _score(self, path: Path, key: dict, compute) -> dict:
        record = self._stored(path, key)
        if record is not None:
            return record
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                record = {"status": "ok", "values": compute()}
            except Unavailable as exc:
                record = {"status": "skipped", "values": {}, "reason": exc.reason, "fix": exc.fix}
            except DataError as exc:
                record = {"status": "failed", "values": {}, "reason": str(exc)}
        record["key"] = key
        record["warnings"] = sorted({str(w.message) for w in caught})
        write_json(path, record)
        self.computed += 1
        return record

    def score_trial(self, metric: Metric, episode: Episode, trial: Trial) -> dict:
        key = {
            "settings": _hash_settings(self.protocol, metric),
            "gt": self.videos.content_hash(episode.video_path()),
            "generated": self.videos.content_hash(trial.video_path()),
        }
        path = self.output / SCORES_DIR / metric.name / trial.task / trial.episode / f"{trial.trial}.json"
        inputs = TrialInputs(episode, trial, self.videos, self.device, self.detector)
        return self._score(path, key, lambda: metric.score_trial(inputs, self.protocol.settings(metric.name)))

    def score_dataset(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> dict:
        key = {
            "settings": _hash_settings(self.protocol, metric),
            "gt": sorted({self.videos.content_hash(e.video_path()) for e, _ in pairs}),
            "generated": sorted(self.videos.content_hash(t.video_path()) for _, t in pairs),
        }
        path = self.output / SCORES_DIR / metric.name / "dataset.json"
        inputs = [TrialInputs(e, t, self.videos, self.device, self.detector) for e, t in pairs]
        return self._score(path, key, lambda: metric.score_dataset(inputs, self.protocol.settings(metric.name)))

    def score_episode(self, metric: Metric, episode: Episode, trials: list[Trial]) -> dict:
        key = {
            "settings": _hash_settings(self.protocol, metric),
            "generated": {t.trial: self.videos.content_hash(t.video_path()) for t in trials},
        }
        path = self.output / SCORES_DIR / metric.name / episode.task / episode.episode / "episode.json"
        inputs = EpisodeInputs(episode, trials, self.videos, self.device)
        return self._score(path, key, lambda: metric.score_episode(inputs, self.protocol.settings(metric.name)))


def score(config: RunConfig, gt: GroundTruth, generated: Generated, progress: Progress | None = None,
          model_config: dict | None = None) -> RunResult:
    protocol = resolve_protocol(config.protocol)  # once; each metric then receives its own settings
    metrics = resolve_metrics(config.metrics, protocol)
    videos = VideoCache(config.cache_dir)
    detector = DetectorChoice(weights=Path(config.detector_weights) if config.detector_weights else None)

    problems: list[Problem] = gt.problems() + generated.problems() + pairing_problems(gt, generated)
    bad_videos = {p.path for p in problems if p.severity == "error"}
    gt_by_key = {e.key: e for e in gt.episodes}
    pairs = [
        (gt_by_key[(t.task, t.episode)], t)
        for t in generated.trials
        if (t.task, t.episode) in gt_by_key and t.video_path() not in bad_videos
        and gt_by_key[(t.task, t.episode)].video_path() not in bad_videos
    ]
    episodes: dict[tuple[str, str], list[Trial]] = {}
    for episode, trial in pairs:
        episodes.setdefault(episode.key, []).append(trial)

    scorer = Scorer(config.output, protocol, videos, config.device or default_device(), detector)
    columns = {m.name: m.columns_for(protocol.settings(m.name)) for m in metrics}
    skipped: dict[str, dict] = {}
    run_values: dict[str, float] = {}  # dataset-level metrics: one value per column for the run
    values: dict[tuple[str, str, str], dict] = {t.key: {} for _, t in pairs}
    row_notes: list[dict] = []
    for metric in metrics:
        settings = protocol.settings(metric.name)
        try:
            metric.check_available(settings)
        except Unavailable as exc:
            skipped[metric.name] = {"reason": exc.reason, "fix": exc.fix}
            continue
        if metric.level == "dataset":
            record = scorer.score_dataset(metric, pairs) if pairs else {"status": "skipped", "reason": "no scored trials", "fix": "", "warnings": []}
            if record["status"] == "skipped":
                skipped[metric.name] = {"reason": record["reason"], "fix": record.get("fix", "")}
                continue
            run_values.update({c: float(record["values"].get(c, float("nan"))) for c in columns[metric.name]})
            if record["status"] != "ok" or record["warnings"]:
                row_notes.append({"metric": metric.name, "status": record["status"], "reason": record.get("reason"),
                                  "fix": record.get("fix"), "warnings": record["warnings"]})
            continue
        if metric.level == "trial":
            items = [(e, [t]) for e, t in pairs]
        else:
            items = [(gt_by_key[k], trials) for k, trials in episodes.items()]
        task = progress.add_task(f"score {metric.name}", total=len(items)) if progress else None
        notes, statuses = [], set()
        for episode, trials in items:
            if metric.level == "trial":
                record = scorer.score_trial(metric, episode, trials[0])
            else:
                record = scorer.score_episode(metric, episode, trials)
            statuses.add(record["status"])
            for trial in trials:
                values[trial.key].update({c: float(record["values"].get(c, float("nan"))) for c in columns[metric.name]})
            if record["status"] != "ok" or record["warnings"]:
                notes.append({
                    "metric": metric.name, "task_id": episode.task, "episode_id": episode.episode,
                    "trial_id": trials[0].trial if metric.level == "trial" else None,
                    "status": record["status"], "reason": record.get("reason"), "fix": record.get("fix"),
                    "warnings": record["warnings"],
                })
            if progress:
                progress.advance(task)
        if statuses == {"skipped"}:
            # Nothing could be scored (e.g. no trajectories and no detector): the metric is skipped.
            skipped[metric.name] = {"reason": notes[0]["reason"], "fix": notes[0]["fix"]}
        else:
            row_notes.extend(notes)

    # Skipped metrics get no columns: summary.json lists them with the reason and the fix.
    row_columns = [c for m in metrics if m.level != "dataset" and m.name not in skipped for c in columns[m.name]]
    rows = pd.DataFrame(
        [{"task_id": k[0], "episode_id": k[1], "trial_id": k[2], **{c: v.get(c, float("nan")) for c in row_columns}} for k, v in values.items()],
        columns=ID_COLUMNS + row_columns,
    )
    registry = metric_registry()
    aggregated = aggregate(rows, protocol, lambda column: higher_is_better(column, registry))
    aggregated["overall"].update(run_values)
    summary = {
        "model": generated.name,
        "oracle": None if config.model is None else load_model_class(config.model).oracle,
        "protocol": {"name": protocol.name, "version": protocol.version, "source": protocol.source},
        "counts": {"episodes": len(episodes), "trials": len(pairs)},
        **aggregated,
        "directions": column_directions(list(aggregated["overall"]), registry),
        "skipped_metrics": skipped,
        "notes": row_notes,
        "problems": [{"path": str(p.path), "message": p.message, "severity": p.severity} for p in problems],
        "scored_now": scorer.computed,
    }
    output = Path(config.output)
    write_rows(output, rows)
    write_json(output / "summary.json", summary)
    if protocol.output_format == "official":
        write_official_files(output, rows, generated.name, generated.root, protocol)
    else:
        write_own_files(output, rows, summary, protocol, generated.name)
    device = config.device or default_device()
    build_record(config, protocol, metrics, columns, skipped, aggregated, summary, gt, rows, pairs, videos, detector,
                 device, model_config).save(output)
    return RunResult(output, rows, summary)


def build_record(config: RunConfig, protocol: Protocol, metrics: list[Metric], columns: dict[str, tuple[str, ...]],
                 skipped: dict[str, dict], aggregated: dict, summary: dict, gt: GroundTruth, rows: pd.DataFrame,
                 pairs: list[tuple[Episode, Trial]], videos: VideoCache, detector: DetectorChoice, device: str,
                 model_config: dict | None) -> RunRecord:
    """The typed run record (``ewmbench-run/1``) of a scored run."""
    by_column = {c: m for m in metrics if m.name not in skipped for c in columns[m.name]}
    scored = [c for c in summary["overall"] if c in by_column]
    dataset_items = [(e.task, e.episode, videos.content_hash(e.video_path())) for e in gt.episodes]
    prov = provenance(config, device)
    return RunRecord(
        protocol=ProtocolRef(name=protocol.name, version=protocol.version, source=protocol.source, sha256=protocol.sha256),
        dataset=DatasetRef(
            name=_dataset_name(config, gt), path=str(Path(gt.root).resolve()), sha256=dataset_hash(dataset_items),
            tasks=len({e.task for e in gt.episodes}), episodes=len(gt.episodes),
        ),
        model=ModelRef(name=summary["model"], options=dict(config.model_options), config=model_config, oracle=summary.get("oracle")),
        columns={c: Column(name=c, metric=by_column[c].name, group=by_column[c].group, level=by_column[c].level,
                           direction=summary["directions"][c]) for c in scored},
        overall={c: summary["overall"][c] for c in scored},
        per_task={c: aggregated["per_task"].get(c, {}) for c in scored},
        counts=Counts(tasks=len({t.task for _, t in pairs}), episodes=summary["counts"]["episodes"],
                      trials=summary["counts"]["trials"], rows_counted=aggregated["rows_counted"]),
        skipped={name: Skipped(reason=why["reason"], fix=why.get("fix", "") or "") for name, why in skipped.items()},
        provenance=Provenance(
            ewmbench_version=prov["ewmbench_version"], git_commit=prov["git_commit"], python=prov["python"],
            platform=prov["platform"], numpy=prov["numpy"], torch=prov["torch"], device=device, seed=config.seed,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            weights=weights_used(metrics, protocol, skipped, pairs, detector),
        ),
        rows=[{k: (str(v) if k in ID_COLUMNS else float(v)) for k, v in row.items()} for row in rows.to_dict("records")],
    )


def _dataset_name(config: RunConfig, gt: GroundTruth) -> str:
    if config.dataset and not Path(config.dataset).is_dir():
        return config.dataset  # a named dataset, e.g. "sample"
    return Path(gt.root).resolve().name


WEIGHT_HASH_LIMIT = 512 * 2**20  # hash weight files up to this size at the end of a run; larger ones keep their published hash


def weights_used(metrics: list[Metric], protocol: Protocol, skipped: dict, pairs: list[tuple[Episode, Trial]],
                 detector: DetectorChoice) -> tuple[Weight, ...]:
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
        needs_tracks = {e.video_path() for e, t in pairs if not e.traj_path.is_file() or not t.traj_path.is_file()}
        for video in sorted(needs_tracks):
            try:
                path = Path(choose_weights(video, detector))
            except Unavailable:
                continue
            key = f"detector:{path.name}"
            if key not in found:
                found[key] = Weight(id=key, source=str(path), sha256=sha256_file(path), used_by="trajectory_consistency (gripper tracking)")
    return tuple(found[k] for k in sorted(found))


def provenance(config: RunConfig, device: str) -> dict:
    protocol = resolve_protocol(config.protocol)
    return {
        "ewmbench_version": ewmbench.__version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": _installed_version("numpy"),
        "torch": _installed_version("torch"),  # read from the installed metadata: no torch import
        "device": device,
        "seed": config.seed,
        "protocol": {"name": protocol.name, "version": protocol.version, "source": protocol.source,
                     "sha256": protocol.sha256},  # the whole file: settings, aggregation and decimals
    }


def _installed_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    root = Path(ewmbench.__file__).resolve().parent.parent
    try:
        result = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def resolve_ground_truth(dataset: str) -> Path:
    """A dataset folder, or a named dataset (``sample`` generated on first use, ``ewmbench`` downloaded)."""
    from ewmbench.sim.sample import resolve_dataset

    return resolve_dataset(dataset)


def run(config: RunConfig, show_progress: bool = True) -> RunResult:
    """``ewmbench run``: generate with ``config.model`` on ``config.dataset``, then score."""
    if config.trials < 1:
        raise ConfigError("--trials must be at least 1")
    gt = GroundTruth(resolve_ground_truth(config.dataset or "sample"))
    prepared = prepare_model(config, gt)
    prepare_output(config)
    record = provenance(config, config.device or default_device())
    record["model"] = prepared.record()
    write_json(Path(config.output) / "provenance.json", record)
    with _progress() if show_progress else _NoProgress() as progress:
        generated = generate(config, gt, Path(config.output) / f"{prepared.name}_dataset", prepared, progress)
        return score(config, gt, generated, progress, model_config=prepared.model.config())


def evaluate(config: RunConfig, show_progress: bool = True) -> RunResult:
    """``ewmbench evaluate``: score a generated dataset against its ground truth."""
    if config.gt is None or config.generated is None:
        raise ConfigError("evaluate needs --gt and --generated")
    gt, generated = GroundTruth(config.gt), Generated(config.generated)
    prepare_output(config)
    write_json(Path(config.output) / "provenance.json", provenance(config, config.device or default_device()))
    with _progress() if show_progress else _NoProgress() as progress:
        return score(config, gt, generated, progress)


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
