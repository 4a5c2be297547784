"""Runs: generate videos with a world model, score them, aggregate, write the run folder.

A run folder::

    OUTPUT/config.json             the resolved configuration
    OUTPUT/provenance.json         package version, git commit, seeds, device, protocol file hash
    OUTPUT/<model>_dataset/...     generated trials in the official layout (``ewmbench run`` only)
    OUTPUT/scores/<metric>/...     one JSON per scored trial (or episode): the resumable state
    OUTPUT/rows.csv, rows.parquet  one row per trial, one column per metric output
    OUTPUT/summary.json            overall and per-task results, skipped metrics with the fix
    OUTPUT/ewmbm_final_table.csv   the official table (ids, sorted metric columns, MEAN row)

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
from pathlib import Path

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import ewmbench
from ewmbench.data.layout import HEAD_VIEW, Episode, Generated, GroundTruth, Problem, Trial, pairing_problems, write_trial
from ewmbench.data.video import list_frames, video_size
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, DataError, Unavailable
from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs, column_directions, higher_is_better, metric_registry
from ewmbench.models.base import GenerationRequest, model_registry
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.device import default_device
from ewmbench.protocols import DEFAULT_PROTOCOL, Protocol, resolve_protocol
from ewmbench.files import write_json
from ewmbench.results import ID_COLUMNS, aggregate, write_tables

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


def generate(config: RunConfig, gt: GroundTruth, generated_root: Path, progress: Progress | None = None) -> Generated:
    """Generate ``config.trials`` trials per episode; trials already written are kept."""
    models = model_registry()
    if config.model not in models:
        raise ConfigError(f"unknown model {config.model!r}; available: {', '.join(sorted(models))} (see `ewmbench models`)")
    model = models[config.model](**config.model_options)
    model.check_available()
    trial_ids = [str(i) for i in range(1, config.trials + 1)]
    todo = [(e, t) for e in gt.episodes for t in trial_ids if not _trial_complete(generated_root / e.task / e.episode / t)]
    task = progress.add_task(f"generate ({config.model})", total=len(todo)) if progress else None
    for episode, trial in todo:
        request = build_request(episode, trial, trial_seed(config.seed, episode.task, episode.episode, trial))
        result = model.generate(request)
        frames = result.frames.get(HEAD_VIEW)
        if frames is None or len(frames) == 0:
            raise ConfigError(f"model {config.model!r} returned no {HEAD_VIEW!r} frames for {episode.path}")
        extra = {v: f for v, f in result.frames.items() if v != HEAD_VIEW}
        write_trial(generated_root, episode.task, episode.episode, trial, frames, extra_views=extra)
        if progress:
            progress.advance(task)
    return Generated(generated_root)


def _trial_complete(path: Path) -> bool:
    # write_trial renames a finished trial into place, so a trial folder exists only when complete.
    return (path / "video").is_dir() and bool(list_frames(path / "video"))


def build_request(episode: Episode, trial: str, seed: int) -> GenerationRequest:
    num_frames, height, width = video_size(episode.video_path())
    sidecar = episode.sidecar
    request = GenerationRequest(
        episode=episode, trial=trial, seed=seed, num_frames=num_frames,
        fps=sidecar.fps if sidecar else None, height=height, width=width,
        instruction=episode.instruction, substeps=list(sidecar.substeps) if sidecar else [],
        memory_frames={HEAD_VIEW: episode.initial_frame(HEAD_VIEW)[None]},
    )
    if sidecar:
        request.actions = sidecar.actions
        request.intrinsics = dict(sidecar.intrinsics)
        request.extrinsics = dict(sidecar.extrinsics)
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


def score(config: RunConfig, gt: GroundTruth, generated: Generated, progress: Progress | None = None) -> RunResult:
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
        "model": config.model or generated.name,
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
    write_tables(output, rows, protocol)
    write_json(output / "summary.json", summary)
    write_json(output / f"{generated.name}_results.json", summary["overall"])
    return RunResult(output, rows, summary)


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
                     "sha256": hashlib.sha256(json.dumps(protocol.metrics, sort_keys=True, default=str).encode()).hexdigest()},
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
    """A dataset folder, or a named dataset (``sample``) generated on first use."""
    if Path(dataset).is_dir():
        return Path(dataset)
    from ewmbench.sim.sample import resolve_dataset

    return resolve_dataset(dataset)


def run(config: RunConfig, show_progress: bool = True) -> RunResult:
    """``ewmbench run``: generate with ``config.model`` on ``config.dataset``, then score."""
    if config.trials < 1:
        raise ConfigError("--trials must be at least 1")
    gt = GroundTruth(resolve_ground_truth(config.dataset or "sample"))
    prepare_output(config)
    write_json(Path(config.output) / "provenance.json", provenance(config, config.device or default_device()))
    with _progress() if show_progress else _NoProgress() as progress:
        generated = generate(config, gt, Path(config.output) / f"{config.model}_dataset", progress)
        return score(config, gt, generated, progress)


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
