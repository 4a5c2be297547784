"""The run's configuration and its plan: what ``ewmbench run`` and ``ewmbench evaluate`` will do.

:class:`RunConfig` is what the user asked for (the command line's options, or the Python face's
arguments). :class:`Plan` is what pre-flight (:func:`ewmbench.run.preflight.preflight`) made of it
once every check passed: the loaded, typed protocol; the ground truth with the split applied;
the generated trials (``evaluate``); the model, options set and not loaded (``run``); the metric
objects that will score. Everything after pre-flight reads the plan, never the configuration's
names again: the protocol file is read once, the dataset found once, the split applied once and
the model built once.

This module imports nothing heavy: the executor registry lives here, and listing it imports
no executor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ewmbench.data.layout import Generated, GroundTruth
from ewmbench.protocols import DEFAULT_PROTOCOL, Protocol
from ewmbench.registry import Entry, Registry

if TYPE_CHECKING:
    from ewmbench.metrics.base import Metric
    from ewmbench.models.adapter import WorldModel

SCORES_DIR = "scores"  # <output>/scores/<metric>/...: the stored record of every work item


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
    # a split file (``ewmbench data curate``): only its episodes are generated and scored
    split: Path | None = None
    # how scoring runs (ewmbench.run.executors): never changes a number, so not part of the identity
    executor: str = "serial"  # serial, processes, ray
    workers: int | None = None  # processes / local Ray: worker count (default: the CPU count)
    num_gpus: float = 0.0  # ray: GPUs per worker

    def identity(self) -> dict:
        """The settings a run folder is bound to: resuming with other values is refused.

        Settings that only change how a number is computed (detector weights, device) are not
        here: they are part of each stored score's key, so a resume with other values recomputes
        exactly the scores they change.
        """
        keys = ("protocol", "model", "model_options", "dataset", "trials", "seed", "gt", "generated", "split")
        return {k: _plain(getattr(self, k)) for k in keys}

    def recorded(self) -> dict:
        """Every setting as written to the run's ``config.json`` (paths resolved, as in :meth:`identity`)."""
        return {k: _plain(v) for k, v in asdict(self).items()}


def _plain(value):
    if isinstance(value, Path):
        return str(value.resolve())
    return value


@dataclass
class Plan:
    """What a run or an evaluation will do, once every check has passed; built once, by pre-flight."""

    kind: str  # "run" or "evaluate"
    config: RunConfig
    protocol: Protocol  # loaded once: every later step reads it from here
    metric_names: list[str]
    metrics: list[Metric]  # the objects that score, one per name, in that order
    gt: GroundTruth | None  # the split applied; None: the sample dataset is generated on first use
    generated: Generated | None = None  # evaluate: the trials to score
    split: dict | None = None
    model: WorldModel | None = None  # run: the adapter with its options, not loaded
    model_device: str | None = None  # run: where the model loads (None: decided when the GT is here)
    episodes: int = 0
    trials: int = 0
    resumes: bool = False
    warnings: list[str] = field(default_factory=list)
    unavailable: dict[str, dict] = field(
        default_factory=dict
    )  # metric -> why it is skipped here: {reason, fix}

    @property
    def output(self) -> Path:
        return Path(self.config.output)

    @property
    def model_config(self) -> dict:
        return self.model.config() if self.model is not None else {}

    def describe(self) -> list[str]:
        lines = []
        scope = (
            f"{self.episodes} episode(s)"
            if self.gt is not None
            else "the sample dataset (generated on first use)"
        )
        if self.split:
            scope += f" of split {self.split['path']}"
        if self.kind == "run":
            lines.append(f"generate {self.trials} trial(s) per episode for {scope}")
        else:
            lines.append(f"score {self.trials} generated trial(s) of {scope}")
        runnable = [m for m in self.metric_names if m not in self.unavailable]
        lines.append(f"score under {self.protocol.name}: {', '.join(runnable) or '(none)'}")
        lines.append(("resume the run in " if self.resumes else "write the run to ") + str(self.output))
        return lines


# How scoring runs, by name (functions in ewmbench.run.executors, loaded on use).
EXECUTORS = Registry(
    "executor",
    [
        Entry("serial", "ewmbench.run.executors:run_serial", "one process, item after item"),
        Entry(
            "processes", "ewmbench.run.executors:run_processes", "a pool of worker processes (--workers N)"
        ),
        Entry(
            "ray", "ewmbench.run.executors:run_ray", "Ray tasks (RAY_ADDRESS, else a local Ray; --num-gpus)"
        ),
    ],
    entry_point_group="ewmbench.executors",
)
