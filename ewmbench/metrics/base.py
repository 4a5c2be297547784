"""The metric interface: a name, a group, output columns, and pure scoring from inputs.

A metric scores either one generated trial against its ground-truth episode (``level = "trial"``),
all trials of an episode together (``level = "episode"``, e.g. diversity), or the whole run at
once (``level = "dataset"``: distribution metrics such as FID and FVD compare the set of all
generated videos with the set of all GT videos; ``score_dataset`` receives every trial's inputs
and returns one value per column for the run, with per-video features cached). Frames, content
hashes and derived data are reached through ``inputs.videos`` (a
:class:`~ewmbench.data.video_cache.VideoCache`), the compute device is ``inputs.device``; a
metric receives its protocol settings and never loads a protocol itself. A metric that cannot
run raises :class:`ewmbench.errors.Unavailable` with the reason and the fixing command, and is
reported as skipped, never as zero.

Each metric states the direction of its columns once, in ``lower_is_better``;
:func:`higher_is_better` is what every consumer (best-of-N selection, reports, leaderboards)
reads.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import numpy as np

from ewmbench.data.layout import Episode, Trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import Unavailable, require_installed
from ewmbench.perception.detector import TrackingSettings
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.trajectories import trajectory_of
from ewmbench.registry import Entry, Registry

GROUPS = ("fidelity", "scene", "motion", "semantics", "diversity")
LEVELS = ("trial", "episode", "dataset")


@dataclass
class TrialInputs:
    """One generated trial and its ground-truth episode, with what scoring shares."""

    episode: Episode
    trial: Trial
    videos: VideoCache
    device: str = "cpu"
    detector: DetectorChoice = field(default_factory=DetectorChoice)  # the user's detector choice

    def gt_frames(self) -> np.ndarray:
        return self.videos.frames(self.episode.video_path())

    def frames(self) -> np.ndarray:
        return self.videos.frames(self.trial.video_path())

    def gt_trajectory(self, tracking: TrackingSettings) -> np.ndarray:
        """The GT end-effector track: ``traj/traj.npy``, else tracked with ``tracking``."""
        return trajectory_of(
            self.episode.traj_path,
            self.episode.video_path(),
            self.videos,
            tracking,
            self.detector,
            self.device,
        )

    def trajectory(self, tracking: TrackingSettings) -> np.ndarray:
        """The generated trial's track, tracked with ``tracking`` and the episode's embodiment."""
        return trajectory_of(
            self.trial.traj_path,
            self.trial.video_path(),
            self.videos,
            tracking,
            self.detector,
            self.device,
            gt_video=self.episode.video_path(),
        )


@dataclass
class EpisodeInputs:
    """All generated trials of one episode (episode-level metrics such as diversity)."""

    episode: Episode
    trials: list[Trial]
    videos: VideoCache
    device: str = "cpu"


class Metric(ABC):
    name: ClassVar[str]
    group: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    level: ClassVar[str] = "trial"
    description: ClassVar[str] = ""
    lower_is_better: ClassVar[frozenset[str]] = frozenset()  # columns where smaller is better (distances)
    # The best value a column can take (a perfect generation's score), where it is finite: reports
    # show "worst" episodes only where a score falls short of it. Columns not named have none known.
    best_values: ClassVar[Mapping[str, float]] = {}
    # Inputs beyond the frames that change the numbers, so a stored score is keyed by them too:
    # "trajectories" (traj/traj.npy, or the detector and tracking settings that make them).
    needs: ClassVar[frozenset[str]] = frozenset()
    # False for metrics computed from trajectories alone (the motion metrics): their stored scores
    # are keyed by the tracks' identities, and by a video's content only where it is tracked.
    uses_frames: ClassVar[bool] = True
    # True when the numbers do not depend on the compute device (no network runs on it).
    device_free: ClassVar[bool] = False
    # With a batched path (score_trials): the most trials per work chunk, for a metric whose
    # chunk is costly (a network's passes); None: the large chunks of cheap batched maths.
    chunk_trials: ClassVar[int | None] = None
    # A dataset metric whose work splits into shards of whole episodes (FID, FVD: each shard's
    # videos' features computed into the feature store): at most this many trials per shard, each
    # shard a work item an executor runs on its own (score_shard). None: one item.
    shard_trials: ClassVar[int | None] = None
    # Optional packages the metric runs on, and the extra that installs them (pyproject.toml).
    modules: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    @classmethod
    def best_value(cls, column: str, settings: Mapping) -> float | None:
        """The best value ``column`` can take under a protocol's settings of this metric; None
        when it is unbounded or not known."""
        return cls.best_values.get(column)

    def columns_for(self, settings: dict) -> tuple[str, ...]:
        """The columns this metric fills under a protocol's settings (some are optional)."""
        return self.columns

    def check_available(self, settings: dict) -> None:
        """Raise :class:`Unavailable` when this metric cannot run here (before any scoring).

        By default: its optional packages must be installed (else the extra is named; found on
        the path, not imported), and the weight its protocol settings name under ``weights``
        must resolve (tests build random-weight encoders instead with ``random_init``).
        """
        for module in self.modules:
            require_installed(module, self.extra or "all", f"metric {self.name!r}")
        if "weights" in settings and not settings.get("random_init"):
            from ewmbench.perception.weights import resolve

            resolve(settings["weights"])  # raises Unavailable naming `ewmbench weights download ID`

    def computed_with(self, settings: dict) -> dict:
        """What else changes this metric's numbers besides its inputs, settings and device type
        (e.g. the captioner backend), for the key of a stored score."""
        return {}

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        raise NotImplementedError(f"{self.name} scores episodes, not trials")

    def score_trials(self, inputs: Sequence[TrialInputs], settings: dict) -> list[dict[str, float]]:
        """:meth:`score_trial` of many trials, in order; a metric with a faster batched path
        overrides it (the runner hands it the trials of one work chunk). Must give exactly the
        values of :meth:`score_trial`."""
        return [self.score_trial(item, settings) for item in inputs]

    def has_batched_path(self) -> bool:
        """Whether the metric overrides :meth:`score_trials` with a batched path."""
        return type(self).score_trials is not Metric.score_trials

    def batches(self, settings: dict) -> bool:
        """Whether, under ``settings``, the metric scores a chunk of trials at once (then the plan
        gives it chunks of its own) rather than trial by trial with the other frame metrics."""
        return self.has_batched_path()

    def score_episode(self, inputs: EpisodeInputs, settings: dict) -> dict[str, float]:
        raise NotImplementedError(f"{self.name} scores trials, not episodes")

    def score_dataset(self, inputs: Sequence[TrialInputs], settings: dict) -> dict[str, float]:
        """One value per column for a whole run (``level = "dataset"``): ``inputs`` holds every
        scored trial; the GT side is the set of distinct episodes those trials belong to."""
        raise NotImplementedError(f"{self.name} scores {self.level}s, not whole runs")

    def score_shard(self, inputs: Sequence[TrialInputs], settings: dict) -> None:
        """A shard's share of the work :meth:`score_dataset` needs (FID, FVD: each video's
        features, into the feature store), run as a work item of its own; nothing is returned:
        :meth:`score_dataset` then reads what the shards stored."""
        raise NotImplementedError(f"{self.name} has no shards")


def unavailable(metrics: Sequence[Metric], settings: Callable[[str], dict]) -> dict[str, dict]:
    """The metrics that cannot run here (a missing extra, weights not downloaded), each with
    ``{"reason", "fix"}``: what a dry run announces, a run reports as skipped and ``ewmbench
    metrics`` lists. ``settings`` gives a metric's protocol settings by name."""
    found = {}
    for metric in metrics:
        try:
            metric.check_available(settings(metric.name))
        except Unavailable as exc:
            found[metric.name] = {"reason": exc.reason, "fix": exc.fix}
    return found


Item = TypeVar("Item")


def dataset_shards(
    items: Sequence[Item], episode_of: Callable[[Item], object], size: int
) -> list[list[Item]]:
    """``items`` (trials, in order) grouped by episode in first-seen order, and whole episodes
    packed into shards of at most ``size`` trials (an episode with more trials is a shard of its
    own): the split the plan, the executors and :meth:`Metric.score_dataset` all use."""
    episodes: dict[object, list[Item]] = {}
    for item in items:
        episodes.setdefault(episode_of(item), []).append(item)
    shards: list[list[Item]] = []
    for trials in episodes.values():
        if shards and len(shards[-1]) + len(trials) <= size:
            shards[-1].extend(trials)
        else:
            shards.append(list(trials))
    return shards


# Built-in metrics by name, as "module:Class" strings (in the order `ewmbench metrics` lists them):
# naming a metric imports only its group's module.
BUILTIN_METRICS: dict[str, str] = {
    "diversity": "ewmbench.metrics.diversity:Diversity",
    "psnr": "ewmbench.metrics.fidelity:PSNR",
    "ssim": "ewmbench.metrics.fidelity:SSIM",
    "lpips": "ewmbench.metrics.fidelity:LPIPS",
    "fid": "ewmbench.metrics.fidelity:FID",
    "fvd": "ewmbench.metrics.fidelity:FVD",
    "trajectory_consistency": "ewmbench.metrics.motion:TrajectoryConsistency",
    "scene_consistency": "ewmbench.metrics.scene:SceneConsistency",
    "semantics": "ewmbench.metrics.semantics:Semantics",
}
METRICS = Registry(
    "metric",
    [Entry(name, target) for name, target in BUILTIN_METRICS.items()],
    entry_point_group="ewmbench.metrics",
    hint="(see `ewmbench metrics`)",
    base=Metric,
)


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Check a metric class's level and group, and register it in this process (built-ins are
    found through :data:`BUILTIN_METRICS` without it; a user's own metric needs it)."""
    if cls.level not in LEVELS:
        raise ValueError(f"metric {cls.name!r}: unknown level {cls.level!r}")
    if cls.group not in GROUPS:
        raise ValueError(f"metric {cls.name!r}: unknown group {cls.group!r}")
    return METRICS.register(cls.name, cls)
