"""A report's frame strips draw the gripper tracks the run stored, and never run the tracker."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ewmbench.compare import figures
from ewmbench.data.layout import Episode, Trial
from ewmbench.data.video import save_image
from ewmbench.data.video_cache import VideoCache
from ewmbench.perception import trajectories
from ewmbench.perception.detector import TrackingSettings
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.trajectories import stored_trajectory, track_stage_key
from ewmbench.protocols import load_protocol

V1 = TrackingSettings.from_protocol(load_protocol("ewmbench-v1"))
V2 = TrackingSettings.from_protocol(load_protocol("ewmbench-v2"))


def _video(folder, level: int):
    """A three-frame frame-folder video whose content depends on ``level``."""
    (folder / "video").mkdir(parents=True)
    for i in range(3):
        save_image(np.full((8, 8, 3), level + i, np.uint8), folder / "video" / f"frame_{i:05d}.png")
    return folder / "video"


def _records(cx: float, cy: float) -> np.ndarray:
    """(3, 2, 7) records: the left gripper at (cx, cy) in every frame, the right one missing."""
    records = np.full((3, 2, 7), -1.0, np.float32)
    records[:, 0, :2] = (cx, cy)
    records[:, 0, 2:] = (10, 20, 30, 40, 0.9)
    return records


@pytest.fixture
def never_track(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the tracker ran")

    monkeypatch.setattr(trajectories, "track_frames", refuse)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "detector.pt"
    path.write_bytes(b"a detector checkpoint")
    return path


def test_stored_tracks_are_read_and_nothing_else(tmp_path, weights, never_track):
    video = _video(tmp_path / "episode", 10)
    videos = VideoCache(tmp_path / "cache")
    choice = DetectorChoice(weights=weights)
    traj = tmp_path / "episode" / "traj" / "traj.npy"
    assert stored_trajectory(traj, video, videos, V1, choice) is None  # nothing stored: no track
    videos.derived.array(track_stage_key(V1, weights), video, lambda: _records(0.25, 0.5))
    got = stored_trajectory(traj, video, videos, V1, choice)
    np.testing.assert_array_equal(got, [[[0.25, 0.5], [-1, -1]]] * 3)
    # tracks cached under other settings are not these settings' tracks
    assert stored_trajectory(traj, video, videos, V2, choice) is None
    # the official traj.npy wins
    traj.parent.mkdir()
    np.save(traj, np.full((3, 2, 2), 0.75, np.float32))
    np.testing.assert_array_equal(
        stored_trajectory(traj, video, videos, V2, choice), np.full((3, 2, 2), 0.75)
    )


def test_a_missing_detector_file_means_no_stored_track(tmp_path, never_track):
    video = _video(tmp_path / "episode", 10)
    choice = DetectorChoice(weights=tmp_path / "gone.pt")
    assert stored_trajectory(tmp_path / "traj.npy", video, VideoCache(tmp_path / "cache"), V1, choice) is None


def test_figure_tracks_come_from_the_run_store(tmp_path, weights, never_track):
    episode = Episode("1", "0", tmp_path / "gt" / "1" / "0")
    trial = Trial("1", "0", "1", tmp_path / "run" / "1" / "0" / "1")
    _video(episode.path, 10)
    _video(trial.path, 50)
    run = SimpleNamespace(protocol="ewmbench-v2", cache_dir=tmp_path / "cache", detector_weights=weights)
    comparison = SimpleNamespace(run=lambda label: run)
    case = SimpleNamespace(run="a", task_id="1", episode_id="0", trial_id="1")
    assert figures._tracks(comparison, case, episode, trial) is None  # not stored: said, not tracked
    videos = VideoCache(run.cache_dir)
    videos.derived.array(track_stage_key(V2, weights), episode.video_path(), lambda: _records(0.25, 0.5))
    assert figures._tracks(comparison, case, episode, trial) is None  # the trial's track is missing
    videos.derived.array(track_stage_key(V2, weights), trial.video_path(), lambda: _records(0.5, 0.125))
    gt_track, generated = figures._tracks(comparison, case, episode, trial)
    np.testing.assert_array_equal(gt_track, [[[0.25, 0.5], [-1, -1]]] * 3)
    np.testing.assert_array_equal(generated, [[[0.5, 0.125], [-1, -1]]] * 3)
    # a run scored under a protocol file that is gone: its tracks cannot be found
    run.protocol = str(tmp_path / "gone.yaml")
    assert figures._tracks(comparison, case, episode, trial) is None
