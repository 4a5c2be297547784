"""Scoring one work item and storing its record: what every executor runs.

A record is keyed by every input and setting that changes its numbers; a record whose key matches
is reused, so a killed run resumes and two executors give the same records. Under
``<output>/scores/<metric>/``: trial records as JSON lines appended to one file per writing
process (``records-<writer>.jsonl``), one file per episode (``<task>/<episode>/episode.json``)
and per run (``dataset.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path

from ewmbench.data.layout import Episode, Trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError, EwmbenchError, Unavailable
from ewmbench.files import write_json
from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.trajectories import trajectory_identity
from ewmbench.protocols import Protocol
from ewmbench.run.plan import SCORES_DIR


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


TRIAL_RECORDS = "records-"  # trial records, appended: scores/<metric>/records-<writer>.jsonl


class Scorer:
    """Scores every (metric, trial or episode), reusing stored results whose inputs are unchanged.

    Trial records are appended, one JSON line each, to the scorer's own file per metric
    (``scores/<metric>/records-<writer>.jsonl``; a chunk's records in one write), and read once
    per metric into an index by trial ids; a killed run keeps every record written whole and
    resumes with the rest.
    Executors call ``score_*`` (reuse or compute, and store); collect calls ``stored_*``, which only
    read: a missing record raises :class:`NotScored`, never a computation.
    """

    def __init__(
        self,
        output: Path,
        protocol: Protocol,
        videos: VideoCache,
        device: str,
        detector: DetectorChoice = DetectorChoice(),
    ):
        self.output = Path(output)
        self.protocol = protocol
        self.videos = videos
        self.device = device
        self.detector = detector
        self.computed = 0  # items scored in this process (0 when everything was reused)
        self._settings_hashes: dict[str, str] = {}
        self._identities: dict[Path, str] = {}  # track identity by traj.npy path
        # metric -> (bytes read per record file, records by trial ids)
        self._trial_records: dict[str, tuple[dict[str, int], dict]] = {}
        self._writer_id = uuid.uuid4().hex[:16]  # this scorer's record files: records-<id>.jsonl

    def _stored(self, path: Path, key: dict) -> dict | None:
        if path.is_file():
            try:
                record = json.loads(path.read_text())
            except json.JSONDecodeError:
                return None  # a torn write from a killed run: score again
            if record.get("key") == key:
                return record
        return None

    def _compute(self, compute) -> dict:
        """A record (status, values, warnings) of ``compute()``; Unavailable and DataError are
        statuses, not failures of the run."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                record = {"status": "ok", "values": compute()}
            except Unavailable as exc:
                record = {"status": "skipped", "values": {}, "reason": exc.reason, "fix": exc.fix}
            except DataError as exc:
                record = {"status": "failed", "values": {}, "reason": str(exc)}
        record["warnings"] = sorted({str(w.message) for w in caught})
        return record

    def _read(self, path: Path, key: dict) -> dict:
        """The stored record at ``path`` with ``key``; none is :class:`NotScored`."""
        record = self._stored(path, key)
        if record is None:
            raise NotScored(
                f"{path}: no stored record with the current inputs (the executor did not finish this item; run again to resume)"
            )
        return record

    def _score(self, path: Path, key: dict, compute) -> dict:
        record = self._stored(path, key)
        if record is not None:
            return record
        record = self._compute(compute)
        record["key"] = key
        write_json(path, record)
        self.computed += 1
        return record

    def settings_hash(self, metric: Metric) -> str:
        if metric.name not in self._settings_hashes:
            self._settings_hashes[metric.name] = hash_settings(self.protocol, metric)
        return self._settings_hashes[metric.name]

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
                    {self._track_identity(e, None) for e, _ in pairs}
                    | {self._track_identity(t, e) for e, t in pairs}
                )
            except EwmbenchError as exc:  # the same error fails the scoring itself, with its path
                extra["trajectories"] = f"error: {exc}"
        return extra

    def _track_identity(self, item: Episode | Trial, episode: Episode | None) -> str:
        """Where the track of ``item`` (a GT episode, or a trial of ``episode``) comes from: its
        traj.npy's content, or the detector's and the video's content (a tracked video's track
        changes with its frames). Once per track and run."""
        traj_path = item.traj_path
        if traj_path not in self._identities:
            video = item.video_path()
            gt_video = episode.video_path() if episode is not None else None
            identity = trajectory_identity(traj_path, video, self.detector, gt_video=gt_video)
            if identity.startswith("detector:"):
                identity += ":" + self.videos.content_hash(video)
            self._identities[traj_path] = identity
        return self._identities[traj_path]

    def trial_key(self, metric: Metric, episode: Episode, trial: Trial) -> dict:
        """What a stored trial score is keyed by: every input and setting that changes its numbers
        (for a metric on tracks alone, the tracks' identities stand for the videos)."""
        key = {"settings": self.settings_hash(metric)}
        if metric.uses_frames:
            key |= {
                "gt": self.videos.content_hash(episode.video_path()),
                "generated": self.videos.content_hash(trial.video_path()),
            }
        return key | self._computed_with(metric, [(episode, trial)])

    def trial_records_folder(self, metric: Metric) -> Path:
        return self.output / SCORES_DIR / metric.name

    def _trial_index(self, metric: Metric) -> dict[tuple[str, str, str], list[dict]]:
        """Every stored trial record of ``metric`` by (task, episode, trial) (a trial scored again
        with other inputs has several; the one whose key matches counts). The record files are
        read once; later calls read only what was appended since (a file that vanished or shrank
        makes the index be read again from the start). A line without its newline or not JSON
        (the torn end of a killed run's file) is ignored: that trial is scored again."""
        folder = self.trial_records_folder(metric)
        offsets, index = self._trial_records.get(metric.name, ({}, {}))
        try:
            present = {
                entry.name: entry.stat().st_size
                for entry in os.scandir(folder)
                if entry.name.startswith(TRIAL_RECORDS) and entry.name.endswith(".jsonl")
            }
        except FileNotFoundError:
            present = {}
        if any(present.get(name, -1) < offset for name, offset in offsets.items()):
            offsets, index = {}, {}  # records were removed: read everything again
        for name in sorted(present):
            offset = offsets.get(name, 0)
            if present[name] <= offset:
                continue
            with open(folder / name, "rb") as fh:
                fh.seek(offset)
                data = fh.read(present[name] - offset)
            end = data.rfind(b"\n") + 1  # complete lines only; a torn tail is read again later
            for line in data[:end].splitlines():
                try:
                    record = json.loads(line)
                    index.setdefault((record["task"], record["episode"], record["trial"]), []).append(record)
                except (ValueError, KeyError, TypeError):
                    continue
            offsets[name] = offset + end
        self._trial_records[metric.name] = (offsets, index)
        return index

    def _append_trial_records(self, metric: Metric, records: list[dict]) -> None:
        """Append ``records`` to this scorer's own record file of ``metric``, one JSON line each,
        in one write: a killed run keeps every line written whole."""
        folder = self.trial_records_folder(metric)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{TRIAL_RECORDS}{self._writer_id}.jsonl"
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            start = os.fstat(fd).st_size
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        offsets, index = self._trial_records.setdefault(metric.name, ({}, {}))
        if offsets.get(name, 0) == start:  # only this scorer writes its file
            offsets[name] = start + len(data)
            for record in records:
                index.setdefault((record["task"], record["episode"], record["trial"]), []).append(record)

    def _stored_trials(
        self, metric: Metric, pairs: list[tuple[Episode, Trial]]
    ) -> tuple[list[dict], list[dict | None]]:
        """Each pair's key, and its stored record with that key (None where there is none)."""
        keys = [self.trial_key(metric, e, t) for e, t in pairs]
        index = self._trial_index(metric)
        records: list[dict | None] = []
        for (_, trial), key in zip(pairs, keys):
            stored = index.get(trial.key, ())
            records.append(next((r for r in reversed(stored) if r.get("key") == key), None))
        return keys, records

    def stored_trials(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> list[dict]:
        """The stored trial records of ``pairs`` (collect); a missing one is :class:`NotScored`."""
        _, records = self._stored_trials(metric, pairs)
        todo = [i for i, r in enumerate(records) if r is None]
        if todo:
            trial = pairs[todo[0]][1]
            raise NotScored(
                f"{self.trial_records_folder(metric)}: no stored record of trial {trial.task}/{trial.episode}/{trial.trial} "
                f"with the current inputs ({len(todo)} missing; the executor did not finish them; run again to resume)"
            )
        return records

    def score_trial(self, metric: Metric, episode: Episode, trial: Trial) -> dict:
        return self.score_trials(metric, [(episode, trial)])[0]

    def trial_inputs(self, episode: Episode, trial: Trial) -> TrialInputs:
        return TrialInputs(episode, trial, self.videos, self.device, self.detector)

    def score_trials(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> list[dict]:
        """Trial records of many trials of one metric, each keyed once: stored ones are reused,
        the others computed together through the metric's batched path (``score_trials``, stored
        in one write) or, without one or where the batch fails or warns, one trial at a time,
        each stored as it is scored with its own status."""
        keys, records = self._stored_trials(metric, pairs)
        todo = [i for i, r in enumerate(records) if r is None]
        if not todo:
            return records
        settings = self.protocol.settings(metric.name)
        batch = None
        if len(todo) > 1 and type(metric).score_trials is not Metric.score_trials:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    batch = metric.score_trials([self.trial_inputs(*pairs[i]) for i in todo], settings)
                except (Unavailable, DataError):
                    batch = None  # one bad trial: score one by one, so each gets its own status
            if caught:
                batch = None

        def stored(i: int, record: dict) -> dict:
            trial = pairs[i][1]
            return {
                "task": trial.task,
                "episode": trial.episode,
                "trial": trial.trial,
                **record,
                "key": keys[i],
            }

        if batch is not None:  # one write for the chunk
            new = [
                stored(i, {"status": "ok", "values": values, "warnings": []})
                for i, values in zip(todo, batch)
            ]
            self._append_trial_records(metric, new)
            for i, record in zip(todo, new):
                records[i] = record
        else:  # one write per trial: a killed run keeps every trial scored before
            for i in todo:
                inputs = self.trial_inputs(*pairs[i])
                records[i] = stored(
                    i, self._compute(lambda inputs=inputs: metric.score_trial(inputs, settings))
                )
                self._append_trial_records(metric, [records[i]])
        self.computed += len(todo)
        return records

    def _dataset_item(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> tuple[Path, dict]:
        key = {
            "settings": self.settings_hash(metric),
            "gt": sorted({self.videos.content_hash(e.video_path()) for e, _ in pairs}),
            "generated": sorted(self.videos.content_hash(t.video_path()) for _, t in pairs),
            **self._computed_with(metric, pairs),
        }
        return self.output / SCORES_DIR / metric.name / "dataset.json", key

    def score_dataset(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> dict:
        path, key = self._dataset_item(metric, pairs)
        inputs = [TrialInputs(e, t, self.videos, self.device, self.detector) for e, t in pairs]
        return self._score(
            path, key, lambda: metric.score_dataset(inputs, self.protocol.settings(metric.name))
        )

    def score_shard(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> None:
        """A shard of a sharded dataset metric (a work item of its own): its share of the work
        goes to the feature store, where the run's dataset item reads it; a shard that cannot be
        computed is left to the dataset item, which records why."""
        inputs = [TrialInputs(e, t, self.videos, self.device, self.detector) for e, t in pairs]
        try:
            metric.score_shard(inputs, self.protocol.settings(metric.name))
        except (Unavailable, DataError):
            pass

    def stored_dataset(self, metric: Metric, pairs: list[tuple[Episode, Trial]]) -> dict:
        """The stored run-level record (collect); a missing one is :class:`NotScored`."""
        return self._read(*self._dataset_item(metric, pairs))

    def _episode_item(self, metric: Metric, episode: Episode, trials: list[Trial]) -> tuple[Path, dict]:
        key = {
            "settings": self.settings_hash(metric),
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
        return path, key

    def score_episode(self, metric: Metric, episode: Episode, trials: list[Trial]) -> dict:
        path, key = self._episode_item(metric, episode, trials)
        inputs = EpisodeInputs(episode, trials, self.videos, self.device)
        return self._score(
            path, key, lambda: metric.score_episode(inputs, self.protocol.settings(metric.name))
        )

    def stored_episode(self, metric: Metric, episode: Episode, trials: list[Trial]) -> dict:
        """The stored episode record (collect); a missing one is :class:`NotScored`."""
        return self._read(*self._episode_item(metric, episode, trials))
