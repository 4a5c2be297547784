"""Pre-flight: every check that needs no generation and no scoring, done before anything is written.

``ewmbench run`` and ``ewmbench evaluate`` call :func:`preflight` first (``--dry-run`` stops after
it): the model and its options, the protocol file, the metric names, the device, the datasets and
how they pair, the split and the output folder are all checked, and each problem is raised as an
:class:`ewmbench.errors.EwmbenchError` naming the option or file. The checks that import more
(the metric registry: pandas and scipy; a CUDA or MPS device probe: torch) come after every
lighter check, so a typo in an option is reported at once.

What the checks found is the :class:`~ewmbench.run.plan.Plan` every later step reads: the
protocol loaded once, the ground truth found once with the split applied, the model built once
(not loaded) with its device, and the metric objects.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from ewmbench.data.datasets import SAMPLE, ready_sample, resolve_dataset
from ewmbench.data.layout import GENERATED_SUFFIX, Generated, GroundTruth
from ewmbench.data.split import load_split, split_keys
from ewmbench.errors import ConfigError, DataError, EwmbenchError, Unavailable, require
from ewmbench.metrics.base import unavailable
from ewmbench.metrics.registry import metric_registry
from ewmbench.models.adapter import WorldModel
from ewmbench.models.checks import check_request_fits
from ewmbench.models.invoke import model_device, open_model
from ewmbench.protocols import Protocol, resolve_protocol
from ewmbench.protocols.schema import METRIC_SETTINGS
from ewmbench.run.plan import EXECUTORS, SCORES_DIR, Plan, RunConfig

MAX_TRIALS = 1000
DEVICE_PATTERN = re.compile(r"^(cpu|cuda|cuda:\d{1,3}|mps)$")


def check_executor(config: RunConfig) -> None:
    """--executor, --workers and --num-gpus, refused before anything runs."""
    if config.executor not in EXECUTORS:
        raise ConfigError(f"--executor {config.executor!r} is not one of {', '.join(EXECUTORS)}")
    if config.workers is not None and (
        not isinstance(config.workers, int) or not 1 <= config.workers <= 1024
    ):
        raise ConfigError(f"--workers must be from 1 to 1024, got {config.workers}")
    if not 0 <= float(config.num_gpus) <= 64:
        raise ConfigError(f"--num-gpus must be from 0 to 64 (GPUs per worker), got {config.num_gpus}")
    if config.executor == "ray":
        require("ray", "scale")


class Refusals(ConfigError):
    """Every problem pre-flight found, one per line (a single problem reads as it always did)."""

    def __init__(self, problems: list[EwmbenchError]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Checks:
    """Runs checks that do not depend on each other, keeping each refusal instead of stopping at the
    first, so that one command lists every problem at once."""

    def __init__(self) -> None:
        self.problems: list[EwmbenchError] = []

    def __call__(self, check: Callable, *args):
        try:
            return check(*args)
        except (ConfigError, DataError, Unavailable) as exc:
            self.problems.append(exc)
            return None

    def passes(self, check: Callable, *args) -> bool:
        """Run ``check``; whether it passed (a check that others depend on)."""
        before = len(self.problems)
        self(check, *args)
        return len(self.problems) == before

    def refuse(self, problem: EwmbenchError) -> None:
        self.problems.append(problem)

    def raise_any(self) -> None:
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise Refusals(self.problems)


def preflight(config: RunConfig, kind: str, registry: Callable[[], dict] | None = None) -> Plan:
    """Check a run (``kind="run"``) or an evaluation (``"evaluate"``) without writing anything.
    Independent checks all run: a refusal lists every problem found (:class:`Refusals`).

    ``registry`` returns the metric registry (default: the package's), called once the lighter
    checks have run."""
    checks = _Checks()
    device_named = checks.passes(check_device_name, config.device)
    checks(check_executor, config)
    protocol = checks(resolve_protocol, config.protocol)
    split = checks(load_split, config.split) if config.split else None
    if config.detector_weights is not None and not Path(config.detector_weights).is_file():
        checks.refuse(ConfigError(f"--detector-weights {config.detector_weights}: no such file"))
    model = gt = generated = device = None
    inputs: dict[str, Path] = {}
    if kind == "run":
        if not isinstance(config.trials, int) or not 1 <= config.trials <= MAX_TRIALS:
            checks.refuse(ConfigError(f"--trials must be from 1 to {MAX_TRIALS}, got {config.trials}"))
        gt = checks(_run_ground_truth, config.dataset or SAMPLE)
        if gt is not None and split is not None:
            gt = checks(apply_split, gt, split)
        model = checks(check_model, config.model, config.model_options, gt)
        inputs = {"--dataset": gt.root} if gt is not None else {}
    elif config.gt is None or config.generated is None:
        checks.refuse(ConfigError("evaluate needs --gt and --generated"))
    else:
        found = checks(_evaluate_inputs, Path(config.gt), Path(config.generated))
        if found is not None:
            gt, generated = found
            inputs = {"--gt": gt.root, "--generated": generated.root}
            if split is not None:
                gt = checks(apply_split, gt, split)
    if gt is not None and not gt.episodes:
        checks.refuse(DataError(gt.root, "no episodes found (expected <task>/<episode>/video/ or video.mp4)"))
        gt = None
    resumes = checks(check_output, config, inputs)
    # The checks below load the metric registry or probe the accelerator: last.
    classes = (registry or metric_registry)() if protocol is not None else {}
    names = checks(resolve_metric_names, config.metrics, protocol, classes) if protocol is not None else None
    device_ok = device_named and checks.passes(check_device_available, config.device)
    if device_ok and model is not None and not checks.problems:
        # The model's own device rule probes CUDA (imports torch): only for an otherwise valid command.
        device = checks(model_device, model, config.device)
    checks.raise_any()
    metrics = [classes[name]() for name in names]  # the objects every later step scores with
    plan = Plan(kind, config, protocol, names, metrics, gt, generated, split, model, device)
    plan.resumes = bool(resumes)
    plan.unavailable = unavailable(metrics, protocol.settings)
    if kind == "run":
        plan.episodes = len(gt.episodes) if gt is not None else 0
        plan.trials = config.trials
    else:
        pairs = paired_trials(gt, generated)
        plan.episodes, plan.trials = len({(t.task, t.episode) for t in pairs}), len(pairs)
        missing = len(gt.episodes) - plan.episodes
        if missing:
            plan.warnings.append(
                f"{missing} of {len(gt.episodes)} ground-truth episodes have no generated trials; they are not scored"
            )
    return plan


def run_ground_truth(plan: Plan) -> GroundTruth:
    """The run's ground truth: the plan's, or, where pre-flight found the sample dataset still to
    be made, the sample generated now (once), its split applied and the model checked against it."""
    if plan.gt is None:
        gt = GroundTruth(resolve_dataset(SAMPLE))
        if plan.split:
            gt = apply_split(gt, plan.split)
        if plan.model is not None:
            check_fits(plan.model, gt)
        plan.gt = gt
        plan.episodes = len(gt.episodes)
    return plan.gt


# ---------------------------------------------------------------- model, device


def check_model(name: str | None, options: dict, gt: GroundTruth | None = None) -> WorldModel:
    """The adapter exists, takes these options (its typed ``options`` declarations), can be
    conditioned on what the dataset holds and has its extra installed: every refusal that needs no
    weights and no device probe. Returns the adapter, options set, nothing loaded (the run loads it)."""
    model = open_model(name, options)
    if gt is not None:
        check_fits(model, gt)
    model.check_available()  # its extra installed (Unavailable names the pip command)
    return model


def check_fits(model: WorldModel, gt: GroundTruth) -> None:
    """Every episode offers the conditioning the adapter needs."""
    for episode in gt.episodes:
        check_request_fits(model, episode.views, sidecar_fields(episode), episode.path)


def sidecar_fields(episode) -> dict[str, bool]:
    """What conditioning an episode offers (checked against an adapter's declared needs)."""
    sidecar = episode.sidecar
    present = {"instruction": episode.instruction_path.is_file()}
    if sidecar is None:
        return present
    present["actions"] = sidecar.actions is not None
    present["scene"] = "scene" in sidecar.meta
    present["joint_positions"] = sidecar.joint_positions is not None
    for view in sidecar.views:
        present[f"intrinsics/{view}"] = view in sidecar.intrinsics
        present[f"extrinsics/{view}"] = view in sidecar.extrinsics
    return present


def check_device_name(device: str | None) -> None:
    if device is not None and not DEVICE_PATTERN.match(device):
        raise ConfigError(f"--device {device!r}: not a device; use cpu, cuda, cuda:N or mps")


def check_device_available(device: str | None) -> None:
    """A CUDA or MPS device that this machine does not have is refused now, not mid-run."""
    if device is None or device == "cpu":
        return
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ConfigError(
                f"--device {device}: this machine has {have}; use --device cpu"
                + (f" or cuda:0..cuda:{count - 1}" if count else "")
            )
    elif device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps: not available on this machine; use --device cpu")


# ---------------------------------------------------------------- metrics


def resolve_metric_names(
    names: list[str] | None, protocol: Protocol, registry: dict | None = None
) -> list[str]:
    """Metric names to score: the protocol's (None), or the given ones, where a column name
    (``hsd``) stands for the metric that writes it. Unknown names are refused with the choices."""
    if registry is None:
        registry = metric_registry()
    unknown_in_protocol = [n for n in protocol.metrics if n not in registry]
    if unknown_in_protocol:
        raise ConfigError(
            f"{protocol.source}: metrics: unknown metric(s) {', '.join(unknown_in_protocol)}; "
            f"known metrics: {', '.join(sorted(registry))}"
        )
    resolved = list(protocol.metrics) if names is None else _resolve_names(names, protocol, registry)
    for name in resolved:
        _check_has_settings(name, protocol, registry)
    return resolved


def _check_has_settings(name: str, protocol: Protocol, registry: dict) -> None:
    """A metric of this package named with no settings would fail mid-run for want of a key."""
    cls = registry.get(name)
    if (
        name in METRIC_SETTINGS
        and not protocol.metrics.get(name)
        and cls is not None
        and cls.__module__.startswith("ewmbench.")
    ):
        raise ConfigError(
            f"{protocol.source}: metrics.{name}: no settings; copy its block from ewmbench-v1.yaml or ewmbench-v2.yaml"
        )


def _resolve_names(names: list[str], protocol: Protocol, registry: dict) -> list[str]:
    if not names:
        raise ConfigError(f"--metrics: no metric named; choose from {', '.join(protocol.metrics)}")
    owners: dict[str, str] = {}
    for metric in protocol.metrics:
        for column in registry[metric]().columns_for(protocol.settings(metric)):
            owners.setdefault(column, metric)
    resolved: list[str] = []
    for name in names:
        metric = name if name in registry else owners.get(name)
        if metric is None:
            close = difflib.get_close_matches(name, [*registry, *owners], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"--metrics: unknown metric {name!r}{hint}; metrics of {protocol.name}: {', '.join(protocol.metrics)}"
                " (a column name such as hsd also selects the metric that writes it)"
            )
        if metric not in protocol.metrics:
            raise ConfigError(f"--metrics: protocol {protocol.name!r} does not define metric {metric!r}")
        if metric not in resolved:
            resolved.append(metric)
    return resolved


# ---------------------------------------------------------------- datasets


def _run_ground_truth(dataset: str) -> GroundTruth | None:
    """The run's GT when it is here already; None when ``sample`` is still to be generated."""
    if dataset == SAMPLE:
        ready = ready_sample()
        return GroundTruth(ready) if ready is not None else None
    try:
        return GroundTruth(resolve_dataset(dataset))
    except DataError as exc:
        raise DataError(exc.path, f"--dataset: {exc.problem}") from None


def _evaluate_inputs(gt_path: Path, generated_path: Path) -> tuple[GroundTruth, Generated]:
    gt_root = resolve_dataset(gt_path)
    if not generated_path.exists():
        raise DataError(generated_path, "--generated: no such folder")
    if not generated_path.is_dir():
        raise DataError(generated_path, "--generated: is a file, not a <name>_dataset folder")
    if gt_root.resolve() == generated_path.resolve():
        raise ConfigError(
            f"--gt and --generated are the same folder ({gt_root}); --generated takes the <name>_dataset folder of generated trials"
        )
    inner = sorted(p for p in generated_path.iterdir() if p.is_dir() and p.name.endswith(GENERATED_SUFFIX))
    if inner and not generated_path.name.endswith(GENERATED_SUFFIX):
        raise DataError(
            generated_path,
            f"--generated: this looks like a run folder (it holds {inner[0].name}); pass --generated {inner[0]}",
        )
    gt, generated = GroundTruth(gt_root), Generated(generated_path)
    if not generated.trials:
        raise DataError(
            generated_path,
            "--generated: no trials found (expected <task>/<episode>/<trial>/video/)"
            + _layout_hint(generated_path),
        )
    return gt, generated


def _layout_hint(folder: Path) -> str:
    """Why a folder meant as generated trials holds none: the two common mix-ups."""
    inner = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.endswith(GENERATED_SUFFIX))
    if inner:
        return f"; this looks like a run folder: pass --generated {inner[0]}"
    for task in (p for p in folder.iterdir() if p.is_dir()):
        for episode in (p for p in task.iterdir() if p.is_dir()):
            if (episode / "video").exists() or any(episode.glob("video.*")):
                return (
                    f"; {episode} holds a video directly, the ground-truth layout: put each generated video in a "
                    "trial folder, <task>/<episode>/<trial>/video/ (or video.mp4)"
                )
    return ""


def paired_trials(gt: GroundTruth, generated: Generated) -> list:
    """Generated trials whose episode is in the ground truth; none is an error naming both folders."""
    keys = {e.key for e in gt.episodes}
    pairs = [t for t in generated.trials if (t.task, t.episode) in keys]
    if not pairs:
        gen_keys = sorted({(t.task, t.episode) for t in generated.trials})
        example = ", ".join(f"{a}/{b}" for a, b in gen_keys[:3])
        raise DataError(
            generated.root,
            f"no generated episode has ground truth in {gt.root} (generated holds {example}{', ...' if len(gen_keys) > 3 else ''}; "
            "task and episode folder names must match)",
        )
    return pairs


def apply_split(gt: GroundTruth, split: dict) -> GroundTruth:
    wanted = split_keys(split)
    present = {e.key for e in gt.episodes}
    absent = sorted(wanted - present)
    if absent:
        listed = ", ".join(f"{t}/{e}" for t, e in absent[:5])
        raise DataError(
            split["path"],
            f"{len(absent)} episode(s) of the split are not in {gt.root}: {listed}{', ...' if len(absent) > 5 else ''}",
        )
    return gt.restricted_to(wanted)


# ---------------------------------------------------------------- output folder


def check_output(config: RunConfig, inputs: dict[str, Path]) -> bool:
    """The output folder can hold this run; True when it resumes an earlier one."""
    output = Path(config.output).expanduser()
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; give a folder")
    resolved = output.resolve()
    for option, root in inputs.items():
        root = Path(root).resolve()
        if resolved == root or root in resolved.parents:
            raise ConfigError(
                f"--output {output} is inside the input dataset {root} ({option}); inputs are never written to: choose a folder outside it"
            )
    existing = next(p for p in (resolved, *resolved.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--output {output}: {existing} is not writable (read-only or not yours); choose another --output folder"
        )
    if not output.is_dir():
        return False
    config_path = output / "config.json"
    has_work = _has_work(output)
    if config_path.is_file():
        try:
            stored = json.loads(config_path.read_text(encoding="utf-8")).get("identity", {})
        except (OSError, ValueError, AttributeError) as exc:
            if has_work:
                raise ConfigError(
                    f"{config_path} is unreadable ({exc}); this run folder cannot be resumed safely: use a new --output folder"
                ) from None
            return False  # a run that wrote nothing else: its settings are rewritten
        identity = config.identity()
        if stored != identity:
            if not has_work:
                return False
            changed = sorted(k for k in set(identity) | set(stored) if stored.get(k) != identity.get(k))
            raise ConfigError(
                f"{output} holds a run with other settings ({', '.join(changed)} differ); "
                "use a new --output folder, or the same settings to resume"
            )
        return True
    leftovers = [p.name for p in output.iterdir() if not p.name.startswith(".tmp-")]
    if leftovers:
        raise ConfigError(
            f"--output {output} exists, is not empty and is not a run folder (holds {', '.join(sorted(leftovers)[:3])}); choose a new folder"
        )
    return False


def _has_work(output: Path) -> bool:
    scores = output / SCORES_DIR
    if scores.is_dir() and any(
        path.suffix in (".json", ".jsonl") and path.stat().st_size > 0 for path in scores.rglob("*.json*")
    ):
        return True  # stored scores: per-item records or appended record files
    return any(p.is_dir() and p.name.endswith(GENERATED_SUFFIX) for p in output.iterdir())
