"""Tracking: the per-class selection rule, frame preparation, the full code path on an untrained
detector, weight choice and bad checkpoints, and writing outputs into a dataset."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ewmbench.data.layout import write_trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, Unavailable
from ewmbench.perception import detector_weights
from ewmbench.perception.detector import (
    TrackingSettings,
    _record_of_result,
    load_detector,
    prepare_frame,
    select_grippers,
)
from ewmbench.perception.detector_weights import DetectorChoice, choose_weights
from ewmbench.perception.track_dataset import track_dataset
from ewmbench.perception.trajectories import track_video
from ewmbench.protocols import load_protocol
from tests.helpers.detector import make_episode, untrained_detector

V1 = TrackingSettings.from_protocol(load_protocol("ewmbench-v1"))
V2 = TrackingSettings.from_protocol(load_protocol("ewmbench-v2"))


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    return untrained_detector(tmp_path_factory.mktemp("weights") / "untrained.pt")


def test_v1_settings_are_the_official_ones():
    # imgsz None: the checkpoint's own size, as ultralytics does when the caller passes none.
    assert (V1.tracker, V1.conf, V1.imgsz, V1.frame_width, V1.frame_height) == (
        "botsort.yaml",
        0.8,
        None,
        640,
        480,
    )
    assert (V1.left_class, V1.right_class, V1.channel_order) == (0, 1, "swapped")
    assert V2.channel_order == "correct"


def test_unknown_protocol_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown protocol 'nope'"):
        TrackingSettings.from_protocol(load_protocol("nope"))


def test_a_custom_protocol_file_carries_its_own_tracking_settings(tmp_path):
    import yaml

    data = yaml.safe_load((Path(__file__).parents[1] / "ewmbench/protocols/ewmbench-v2.yaml").read_text())
    data["name"] = "mine"
    data["metrics"]["trajectory_consistency"]["tracking"]["conf"] = 0.5
    custom = tmp_path / "mine.yaml"
    custom.write_text(yaml.safe_dump(data))
    settings = TrackingSettings.from_protocol(load_protocol(str(custom)))
    assert (settings.protocol, settings.conf, settings.channel_order) == ("mine", 0.5, "correct")
    del data["metrics"]["trajectory_consistency"]["tracking"]
    untracked = tmp_path / "untracked.yaml"  # protocols are cached per path within a process
    untracked.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="no tracking settings"):
        TrackingSettings.from_protocol(load_protocol(str(untracked)))


def test_highest_confidence_box_per_class():
    classes = np.array([0, 1, 0, 1, 2])
    conf = np.array([0.85, 0.9, 0.95, 0.81, 0.99])
    boxes = np.array(
        [[0, 0, 10, 10], [100, 100, 120, 140], [64, 48, 128, 96], [0, 0, 1, 1], [5, 5, 6, 6]], float
    )
    record = select_grippers(classes, conf, boxes, np.arange(5), V1)
    # Left: box 2 (0.95 > 0.85): centre ((64 + 128) / 2 / 640, (48 + 96) / 2 / 480) = (0.15, 0.15).
    # Right: box 1 (0.9 > 0.81): centre (110 / 640, 120 / 480) = (0.171875, 0.25). Class 2 ignored.
    np.testing.assert_allclose(record[:, :2], [[0.15, 0.15], [0.171875, 0.25]])
    np.testing.assert_allclose(record[:, 6], [0.95, 0.9])


def test_ties_keep_the_first_box_and_missing_class_is_minus_one():
    record = select_grippers(
        np.array([0, 0]),
        np.array([0.9, 0.9]),
        np.array([[0, 0, 64, 48], [640, 480, 640, 480]], float),
        np.array([1, 2]),
        V1,
    )
    np.testing.assert_allclose(record[0, :2], [32 / 640, 24 / 480])
    assert (record[1] == -1).all()


def test_no_track_ids_means_both_missing():
    record = select_grippers(np.array([0, 1]), np.array([0.9, 0.9]), np.ones((2, 4)), None, V1)
    assert (record == -1).all()


def fake_result(cls, conf, xyxy, ids):
    def tensor(values):
        return torch.tensor(values, dtype=torch.float32)

    boxes = SimpleNamespace(
        cls=tensor(cls), conf=tensor(conf), xyxy=tensor(xyxy), id=None if ids is None else tensor(ids)
    )
    return SimpleNamespace(boxes=_Sized(boxes, len(cls)))


class _Sized:
    """An ultralytics-like Boxes object: attributes plus len()."""

    def __init__(self, inner, n):
        self._inner, self._n = inner, n

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __len__(self):
        return self._n


def test_record_of_ultralytics_like_result():
    result = fake_result([1, 1], [0.8, 0.97], [[0, 0, 64, 96], [320, 240, 384, 288]], [7, 8])
    record = _record_of_result(result, V1)
    assert (record[0] == -1).all()
    # Right: the 0.97 box: centre (352 / 640, 264 / 480) = (0.55, 0.55).
    np.testing.assert_allclose(record[1, :2], [0.55, 0.55])
    empty = fake_result([], [], np.zeros((0, 4)), None)
    assert (_record_of_result(empty, V1) == -1).all()


def test_prepare_frame_resizes_and_keeps_v1_channel_quirk():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[..., 0] = 200  # red
    v1 = prepare_frame(frame, V1)
    v2 = prepare_frame(frame, V2)
    assert v1.shape == v2.shape == (480, 640, 3)
    assert v1[0, 0].tolist() == [200, 0, 0]  # RGB handed over as-is (read as BGR: blue)
    assert v2[0, 0].tolist() == [0, 0, 200]  # true BGR: the network sees red


def test_untrained_detector_full_code_path(tmp_path, untrained):
    episode = make_episode(tmp_path / "gt", "1", "1", frames=3)
    pre = VideoCache(tmp_path / "cache")
    choice = DetectorChoice(weights=untrained)
    trajectory = track_video(episode.video_path(), pre, V1, choice, "cpu")
    assert trajectory.shape == (3, 2, 2) and trajectory.dtype == np.float32
    # An untrained network never reaches confidence 0.8: every point missing, no crash.
    assert (trajectory == -1).all()
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 1 and cached[0].parent.parent.name == "eef-track"
    np.testing.assert_array_equal(track_video(episode.video_path(), pre, V1, choice, "cpu"), trajectory)


def test_weights_that_do_not_exist_are_unavailable(tmp_path):
    with pytest.raises(Unavailable, match="do not exist"):
        choose_weights(None, DetectorChoice(weights=tmp_path / "missing.pt"))


def test_no_weights_anywhere_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("EWMBENCH_WEIGHTS_EWMBENCH_YOLOWORLD_GRIPPER", raising=False)
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(Unavailable) as info:
        choose_weights(None, DetectorChoice(embodiment="some-real-robot"))
    assert "some-real-robot" in info.value.reason
    assert "ewmbench weights download ewmbench-yoloworld-gripper" in info.value.fix


def test_shipped_detector_is_chosen_by_embodiment(tmp_path, monkeypatch, untrained):
    monkeypatch.setattr(
        detector_weights, "shipped_detector", lambda name: untrained if name == "ewmbench.sim/1" else None
    )
    episode = make_episode(tmp_path, "1", "1", frames=2, embodiment="ewmbench.sim/1")
    assert choose_weights(episode.video_path(), DetectorChoice()) == untrained
    # A simulator that names itself as the generator (no embodiment key) selects it too.
    generated = make_episode(tmp_path, "1", "2", frames=2, meta={"generator": "ewmbench.sim/1"})
    assert choose_weights(generated.video_path(), DetectorChoice()) == untrained
    # A path the user gave wins over the shipped detector.
    other = untrained_detector(tmp_path / "other.pt")
    assert choose_weights(episode.video_path(), DetectorChoice(weights=other)) == other


def test_wrong_class_count_is_rejected(tmp_path):
    one_class = untrained_detector(tmp_path / "one.pt", classes=1)
    with pytest.raises(ConfigError, match="needs class 0 .* and 1"):
        load_detector(one_class, V1)


def test_checkpoint_that_is_not_a_detector_is_rejected(tmp_path):
    from ultralytics.nn.tasks import ClassificationModel

    path = tmp_path / "cls.pt"
    torch.save(
        {
            "model": ClassificationModel("yolov8n-cls.yaml", nc=2, verbose=False),
            "train_args": {"task": "classify"},
        },
        path,
    )
    with pytest.raises(ConfigError, match="not a detector"):
        load_detector(path, V1)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a loadable ultralytics checkpoint"):
        load_detector(garbage, V1)


def test_track_dataset_writes_missing_outputs_and_never_overwrites(tmp_path, untrained):
    gt_root = tmp_path / "data" / "gt_dataset"
    first = make_episode(gt_root, "1", "1", frames=2)
    second = make_episode(gt_root, "1", "2", frames=2, seed=1)
    trial = write_trial(
        tmp_path / "data" / "static_dataset", "1", "1", "1", np.zeros((2, 480, 640, 3), np.uint8)
    )
    existing = second.path / "traj" / "traj.npy"
    existing.parent.mkdir()
    existing.write_bytes(b"user file")
    pre = VideoCache(tmp_path / "cache")
    report = track_dataset(tmp_path / "data", pre, V1, DetectorChoice(weights=untrained), "cpu")
    assert sorted(report.written) == sorted(map(str, (first.path, second.path, trial.path)))
    assert existing.read_bytes() == b"user file"
    for folder in (first.path, second.path, trial.path):
        assert (folder / "gripper_detection" / "video.mp4").stat().st_size > 0
    assert np.load(first.path / "traj" / "traj.npy").shape == (2, 2, 2)
    again = track_dataset(tmp_path / "data", pre, V1, DetectorChoice(weights=untrained), "cpu")
    assert again.written == [] and len(again.skipped) == 3


def test_generated_trials_are_tracked_with_their_episodes_embodiment(tmp_path, monkeypatch):
    """A generated trial has no sidecar: the detector is chosen by its GT episode's embodiment."""
    from ewmbench.data.layout import GroundTruth, Sidecar, write_episode, write_trial
    from ewmbench.errors import Unavailable
    from ewmbench.metrics.base import TrialInputs
    from ewmbench.perception import trajectories
    from tests.helpers.datasets import moving_square_frames

    seen = []

    def record_choice(video, choice):
        seen.append(choice.embodiment)
        raise Unavailable("stop here", "")

    monkeypatch.setattr(trajectories, "choose_weights", record_choice)
    write_episode(
        tmp_path / "gt",
        "1",
        "1",
        moving_square_frames(3),
        "x",
        sidecar=Sidecar(meta={"generator": "ewmbench.sim/1"}),
    )
    trial = write_trial(tmp_path / "m_dataset", "1", "1", "1", moving_square_frames(3))
    inputs = TrialInputs(GroundTruth(tmp_path / "gt").episodes[0], trial, VideoCache(tmp_path / "cache"))
    for track in (inputs.trajectory, inputs.gt_trajectory):
        with pytest.raises(Unavailable):
            track(V1)
    assert seen == ["ewmbench.sim/1", "ewmbench.sim/1"]
