"""The auto-labelled YOLO dataset (split by episode), validation arithmetic and a tiny training run."""

from __future__ import annotations

import numpy as np
import pytest

from ewmbench.errors import ConfigError, DataError
from ewmbench.perception.autolabel import project_grippers
from ewmbench.perception.training import label_lines, split_by_episode, write_yolo_dataset
from ewmbench.perception.validation import compare_tracks, summarise
from tests.helpers.detector import K, make_episode


def test_label_lines_by_hand():
    # Left box (350, 220, 390, 260) in 640x480: centre (370 / 640, 240 / 480) = (0.578125, 0.5),
    # size (40 / 640, 40 / 480) = (0.0625, 0.083333). Right invisible: no line.
    boxes = np.array([[350, 220, 390, 260], [np.nan] * 4])
    assert label_lines(boxes, np.array([True, False]), 640, 480) == ["0 0.578125 0.500000 0.062500 0.083333"]


def test_split_is_by_whole_episode_and_seeded(tmp_path):
    episodes = [make_episode(tmp_path / "gt", "1", str(i), frames=1, seed=i) for i in range(5)]
    train, val = split_by_episode(episodes, 0.2, seed=4)
    # ceil(0.2 * 5) = 1 validation episode, the other 4 train; the same seed gives the same split.
    assert len(val) == 1 and len(train) == 4
    assert {e.key for e in train}.isdisjoint({e.key for e in val})
    assert split_by_episode(episodes, 0.2, seed=4) == (train, val)
    # Same task/episode ids in two datasets are different episodes.
    other = [make_episode(tmp_path / "other", "1", str(i), frames=1, seed=i) for i in range(5)]
    train, val = split_by_episode(episodes + other, 0.2, seed=4)
    assert (len(train), len(val)) == (8, 2)
    with pytest.raises(ConfigError):
        split_by_episode(episodes[:1], 0.2, seed=0)
    with pytest.raises(ConfigError, match="twice"):
        split_by_episode(episodes + episodes[:1], 0.2, seed=0)
    with pytest.raises(ConfigError):
        split_by_episode(episodes, 1.0, seed=0)


def test_yolo_dataset_writer(tmp_path):
    episodes = [make_episode(tmp_path / "gt", "1", str(i), frames=3, seed=i) for i in range(3)]
    dataset = write_yolo_dataset(episodes, tmp_path / "yolo", val_fraction=0.3, seed=0)
    assert len(dataset.val_episodes) == 1 and len(dataset.train_episodes) == 2
    assert (dataset.train_images, dataset.val_images) == (6, 3)
    train_stems = {p.stem for p in (tmp_path / "yolo" / "images" / "train").iterdir()}
    val_stems = {p.stem for p in (tmp_path / "yolo" / "images" / "val").iterdir()}
    # Every frame of an episode sits on one side only.
    assert {s.rsplit("_", 1)[0] for s in train_stems}.isdisjoint({s.rsplit("_", 1)[0] for s in val_stems})
    assert {p.stem for p in (tmp_path / "yolo" / "labels" / "val").iterdir()} == val_stems
    # One label file checked against the projection of its episode's pose.
    root_name, task, number = dataset.val_episodes[0].split("/")
    assert root_name == "gt"
    episode = next(e for e in episodes if e.episode == number)
    gt = project_grippers(episode.sidecar.eef_pose, K, np.eye(4), 0.04, 640, 480)
    lines = (tmp_path / "yolo" / "labels" / "val" / f"gt_{task}_{number}_00001.txt").read_text().splitlines()
    cls, cx, cy, w, h = lines[0].split()
    assert cls == "0"
    np.testing.assert_allclose([float(cx) * 640, float(cy) * 480], gt.centres[1, 0], atol=1e-3)
    np.testing.assert_allclose(
        [float(w) * 640, float(h) * 480], gt.boxes[1, 0, 2:] - gt.boxes[1, 0, :2], atol=1e-3
    )
    assert lines[1].startswith("1 ")
    with pytest.raises(DataError, match="not empty"):
        write_yolo_dataset(episodes, tmp_path / "yolo")


def test_compare_tracks_by_hand():
    # GT: frame 0 left at (320, 240), right at (100, 100); frame 1 left visible at (64, 48),
    # right not in the image. Track: frame 0 left at (0.5, 0.5) -> (320, 240), error 0; right
    # missing; frame 1 left at (0.2, 0.15) -> (128, 72): error sqrt(64^2 + 24^2) = 68.35;
    # right detected although invisible -> spurious.
    gt = project_grippers(
        np.array([[0, 0, 1, 0, 0, 0, 0, (100 - 320) / 500, (100 - 240) / 500, 1, 0, 0, 0, 0],
                  [(64 - 320) / 500, (48 - 240) / 500, 1, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0]]),
        K, np.eye(4), 0.04, 640, 480,
    )  # fmt: skip
    trajectory = np.array([[[0.5, 0.5], [-1, -1]], [[0.2, 0.15], [0.3, 0.3]]], dtype=np.float32)
    comparison = compare_tracks(trajectory, gt)
    assert (comparison.visible, comparison.detected, comparison.spurious) == (3, 2, 1)
    np.testing.assert_allclose(sorted(comparison.errors_px), [0.0, np.hypot(64, 24)], atol=1e-4)
    report = summarise({"1/1": comparison}, 640)
    # recall 2 / 3; median of (0, 68.35) = 34.18 px -> / 640 = 0.05340.
    assert report["recall"] == pytest.approx(2 / 3)
    assert report["median_error_frac"] == pytest.approx(np.hypot(64, 24) / 2 / 640, rel=1e-5)
