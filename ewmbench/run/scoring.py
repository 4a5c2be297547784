"""Scoring one work item and storing its record: what every executor runs.

A record is one JSON file per (metric, trial), (metric, episode) or (metric, run) under
``<output>/scores/``, keyed by every input and setting that changes its numbers; a record whose
key matches is reused, so a killed run resumes and two executors give the same files.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from ewmbench.data.layout import Episode, Trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError, EwmbenchError, Unavailable
from ewmbench.files import write_json
from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.trajectories import trajectory_identity
from ewmbench.preflight import SCORES_DIR
from ewmbench.protocols import Protocol


class NotScored(EwmbenchError):
    """Collect found no stored record for a planned item (an executor did not finish)."""


def store_name(name: str) -> str:
    """A folder or file name for the score store: the id itself, or for an id too long for a
    file name (255 bytes), its start and a hash of the whole, so that two long ids never collide."""
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= 120:
        return name
    return encoded[:60].decode("utf-8", "ignore") + "-" + hashlib.sha256(encoded).hexdigest()[:16]


def hash_settings(protocol: Protocol, metric: Metric) -> str:
    text = json.dumps(
        {"protocol": protocol.name, "version": protocol.version, "settings": protocol.settings(metric.name)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Scorer:
    """Scores every (metric, trial or episode), reusing stored results whose inputs are unchanged.

    With ``read_only`` (collect) nothing is computed: a missing record raises :class:`NotScored`.
    """

    def __init__(
        self,
        output: Path,
        protocol: Protocol,
        videos: VideoCache,
        device: str,
        detector: DetectorChoice = DetectorChoice(),
        read_only: bool = False,
    ):
        self.output = Path(output)
        self.protocol = protocol
        self.videos = videos
        self.device = device
        self.detector = detector
        self.read_only = read_only
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
        if self.read_only:
            raise NotScored(
                f"{path}: no stored record with the current inputs (the executor did not finish this item; run again to resume)"
            )
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

    def _computed_with(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> dict:
        """What besides the videos and the protocol settings changes the metric's numbers: the
        compute device's type (float16 on CUDA, float32 elsewhere; detector on the device) and,
        for metrics on trajectories, where each trajectory comes from."""
        extra: dict = dict(metric.computed_with(self.protocol.settings(metric.name)))
        if not metric.device_free:
            extra["device"] = str(self.device).split(":")[0]
        if "trajectories" in metric.needs:
            try:
                extra["trajectories"] = sorted(
                    {self._track_identity(e.traj_path, e.video_path(), None) for e, _ in pairs}
                    | {self._track_identity(t.traj_path, t.video_path(), e.video_path()) for e, t in pairs}
                )
            except EwmbenchError as exc:  # the same error fails the scoring itself, with its path
                extra["trajectories"] = f"error: {exc}"
        return extra

    def _track_identity(self, traj_path: Path, video: Path, gt_video: Path | None) -> str:
        """Where a track comes from: its traj.npy's content, or the detector's and the video's
        content (a tracked video's track changes with its frames)."""
        identity = trajectory_identity(traj_path, video, self.detector, gt_video=gt_video)
        if identity.startswith("detector:"):
            identity += ":" + self.videos.content_hash(video)
        return identity

    def trial_key(self, metric: Metric, episode: Episode, trial: Trial) -> dict:
        """What a stored trial score is keyed by: every input and setting that changes its numbers
        (for a metric on tracks alone, the tracks' identities stand for the videos)."""
        key = {"settings": hash_settings(self.protocol, metric)}
        if metric.uses_frames:
            key |= {
                "gt": self.videos.content_hash(episode.video_path()),
                "generated": self.videos.content_hash(trial.video_path()),
            }
        return key | self._computed_with(metric, [(episode, trial)])

    def trial_path(self, metric: Metric, trial: Trial) -> Path:
        return (
            self.output
            / SCORES_DIR
            / metric.name
            / store_name(trial.task)
            / store_name(trial.episode)
            / f"{store_name(trial.trial)}.json"
        )

    def trial_inputs(self, episode: Episode, trial: Trial) -> TrialInputs:
        return TrialInputs(episode, trial, self.videos, self.device, self.detector)

    def score_trial(self, metric: Metric, episode: Episode, trial: Trial) -> dict:
        key = self.trial_key(metric, episode, trial)
        inputs = self.trial_inputs(episode, trial)
        return self._score(
            self.trial_path(metric, trial),
            key,
            lambda: metric.score_trial(inputs, self.protocol.settings(metric.name)),
        )

    def score_trials(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> list[dict]:
        """Trial records of many trials of one metric: those not stored are computed together
        through the metric's batched path (``score_trials``), each stored as its own record, so
        the records are those :meth:`score_trial` writes."""
        keyed = [(e, t, self.trial_key(metric, e, t)) for e, t in pairs]
        records: list[dict | None] = [self._stored(self.trial_path(metric, t), k) for e, t, k in keyed]
        todo = [i for i, r in enumerate(records) if r is None]
        if todo and not self.read_only and type(metric).score_trials is not Metric.score_trials:
            settings = self.protocol.settings(metric.name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    batch = metric.score_trials(
                        [self.trial_inputs(keyed[i][0], keyed[i][1]) for i in todo], settings
                    )
                except (Unavailable, DataError):
                    batch = None  # one bad trial: score one by one, so each gets its own status
            if batch is not None and not caught:
                for i, values in zip(todo, batch):
                    record = {"status": "ok", "values": values, "key": keyed[i][2], "warnings": []}
                    write_json(self.trial_path(metric, keyed[i][1]), record)
                    self.computed += 1
                    records[i] = record
        return [
            r if r is not None else self.score_trial(metric, e, t) for r, (e, t, _) in zip(records, keyed)
        ]

    def score_dataset(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> dict:
        key = {
            "settings": hash_settings(self.protocol, metric),
            "gt": sorted({self.videos.content_hash(e.video_path()) for e, _ in pairs}),
            "generated": sorted(self.videos.content_hash(t.video_path()) for _, t in pairs),
            **self._computed_with(metric, pairs),
        }
        path = self.output / SCORES_DIR / metric.name / "dataset.json"
        inputs = [TrialInputs(e, t, self.videos, self.device, self.detector) for e, t in pairs]
        return self._score(
            path, key, lambda: metric.score_dataset(inputs, self.protocol.settings(metric.name))
        )

    def score_episode(self, metric: Metric, episode: Episode, trials: list[Trial]) -> dict:
        key = {
            "settings": hash_settings(self.protocol, metric),
            "generated": {t.trial: self.videos.content_hash(t.video_path()) for t in trials},
            **self._computed_with(metric, [(episode, t) for t in trials]),
        }
        path = (
            self.output
            / SCORES_DIR
            / metric.name
            / store_name(episode.task)
            / store_name(episode.episode)
            / "episode.json"
        )
        inputs = EpisodeInputs(episode, trials, self.videos, self.device)
        return self._score(
            path, key, lambda: metric.score_episode(inputs, self.protocol.settings(metric.name))
        )
