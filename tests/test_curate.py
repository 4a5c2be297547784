"""IoU-diverse split curation: voxels, IoU, greedy order, datasets and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ewmbench.cli import app
from ewmbench.data import select_diverse
from ewmbench.data.curate import (
    curate_split,
    densify,
    greedy_diverse,
    mean_pairwise_iou,
    pairwise_iou,
    voxel_keys,
)
from ewmbench.data.layout import Sidecar, write_episode
from ewmbench.errors import ConfigError, DataError


def _traj(left, right=None):
    left = np.asarray(left, dtype=float)
    right = left + [0.0, 1.0, 0.0] if right is None else np.asarray(right, dtype=float)
    return np.stack([left, right], axis=1)


def _segment(start, end, frames=5):
    return np.linspace(start, end, frames)


def test_densify_fills_fast_motion():
    dense = densify(np.array([[0.0, 0, 0], [0.1, 0, 0]]), 0.025)
    # 0.1 / 0.025 = 4 pieces: 0, 0.025, 0.05, 0.075 and the end point 0.1.
    np.testing.assert_allclose(dense[:, 0], [0, 0.025, 0.05, 0.075, 0.1])


def test_voxel_keys_hand_worked():
    # Left arm from x = 0.01 to 0.05 (voxel 0.02): sampled every 0.01 -> x voxels 0, 1, 2;
    # right arm static at (0.5, 0.5, 0.5) -> voxel (25, 25, 25). Arms are kept apart.
    trajectory = _traj(_segment([0.01, 0.01, 0.01], [0.05, 0.01, 0.01], 2), [[0.5, 0.5, 0.5]] * 2)
    keys = voxel_keys(trajectory, 0.02)
    assert keys.tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 2, 0, 0], [1, 25, 25, 25]]


def test_pairwise_iou_hand_worked():
    voxel = 1.0
    a = _traj([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5]], [[0.5, 9.5, 0.5]] * 2)  # left {0,1}, right {R}
    b = _traj([[1.5, 0.5, 0.5], [2.5, 0.5, 0.5]], [[0.5, 9.5, 0.5]] * 2)  # left {1,2}, right {R}
    c = _traj([[0.5, 9.5, 0.5]] * 2, [[0.5, 0.5, 0.5]] * 2)  # arms swapped: shares no (arm, voxel)
    iou = pairwise_iou([a, b, c], voxel)
    # a, b: each 3 (arm, voxel) cells; shared: left 1 and right R = 2; union 4 -> 0.5.
    np.testing.assert_allclose(iou, [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]])


def test_first_pick_and_tie_breaking():
    iou = np.array(
        [
            [1.0, 0.5, 0.5, 0.0],
            [0.5, 1.0, 0.5, 0.0],
            [0.5, 0.5, 1.0, 0.2],
            [0.0, 0.0, 0.2, 1.0],
        ]
    )
    # Overlap with all others: 1.0, 1.0, 1.2, 0.2 -> first pick 3 (least overall overlap).
    # Then overlap with {3}: 0, 0, 0.2 -> 0 and 1 tie on both keys -> the lower index, 0.
    # Then with {3, 0}: 1: 0.5, 2: 0.7 -> 1. Then 2.
    assert greedy_diverse(iou, 4) == [3, 0, 1, 2]
    assert greedy_diverse(iou, 2) == [3, 0]
    # All-equal overlaps: pure index order.
    assert greedy_diverse(np.eye(4), 3) == [0, 1, 2]


def test_k_at_least_n_returns_all_in_pick_order():
    trajectories = [_traj(_segment([0.1 * k, 0, 0], [0.1 * k + 0.05, 0.05, 0])) for k in range(4)]
    assert sorted(select_diverse(trajectories, 10)) == [0, 1, 2, 3]
    assert select_diverse(trajectories, 10) == select_diverse(trajectories, 4)
    assert select_diverse(trajectories, 0) == []
    assert select_diverse([], 3) == []


def test_selection_is_deterministic_and_lengths_may_differ():
    rng = np.random.default_rng(0)
    trajectories = [
        _traj(np.cumsum(rng.normal(0, 0.01, (int(rng.integers(5, 40)), 3)), axis=0)) for _ in range(12)
    ]
    assert select_diverse(trajectories, 5) == select_diverse(trajectories, 5)
    assert len(set(select_diverse(trajectories, 5))) == 5


def test_curated_subset_overlaps_less_than_random_subsets():
    rng = np.random.default_rng(1)
    # Clusters of near-duplicate demonstrations (as in teleoperated datasets) plus a few outliers.
    centres = rng.uniform(-0.3, 0.3, (4, 3))
    trajectories = []
    for k in range(40):
        start = centres[k % 4] + rng.normal(0, 0.01, 3)
        trajectories.append(
            _traj(_segment(start, start + [0.2, 0.1, 0.05], 30) + rng.normal(0, 0.003, (30, 3)))
        )
    iou = pairwise_iou(trajectories, 0.02)
    picked = select_diverse(trajectories, 8, voxel_size=0.02)
    curated = mean_pairwise_iou(iou, picked)
    random_means = [mean_pairwise_iou(iou, rng.choice(40, 8, replace=False)) for _ in range(200)]
    assert curated < min(random_means)


def test_bad_inputs():
    with pytest.raises(DataError, match=r"trajectories\[1\]"):
        select_diverse([_traj(_segment([0, 0, 0], [1, 1, 1])), np.zeros((5, 3))], 1)
    with pytest.raises(DataError, match="NaN"):
        select_diverse([_traj([[np.nan, 0, 0]])], 1)
    with pytest.raises(DataError, match="no frames"):
        select_diverse([np.zeros((0, 2, 3))], 1)
    with pytest.raises(ConfigError):
        select_diverse([_traj([[0, 0, 0]])], 1, voxel_size=0)
    with pytest.raises(DataError, match="too far"):
        select_diverse([_traj([[1e5, 0, 0]])], 1)  # 5e6 voxels of 2 cm: beyond the grid


def _dataset(root, poses_of):
    frames = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    for (task, episode), pose in poses_of.items():
        sidecar = None if pose is None else Sidecar(fps=30.0, eef_pose=pose)
        write_episode(root, task, episode, frames, "pick the cup", sidecar=sidecar)


def _pose(left, right):
    pose = np.zeros((len(left), 14))
    pose[:, 0:3], pose[:, 7:10] = left, right
    pose[:, 6] = pose[:, 13] = 1.0  # gripper openness: ignored by curation
    return pose


def test_cli_writes_a_split_file(tmp_path):
    right = np.full((6, 3), 0.5)
    poses = {
        ("1", "1"): _pose(_segment([0, 0, 0], [0.1, 0, 0], 6), right),
        ("1", "2"): _pose(_segment([0, 0, 0], [0.1, 0, 0], 6) + 0.001, right),  # near-duplicate of 1
        ("1", "3"): _pose(_segment([0, 0.3, 0], [0.1, 0.3, 0], 6), right),
        ("2", "1"): _pose(_segment([0, 0, 0], [0, 0, 0.1], 6), right),
    }
    _dataset(tmp_path / "gt", poses)
    output = tmp_path / "datasets" / "splits" / "split.json"
    result = CliRunner().invoke(
        app, ["data", "curate", "--source", str(tmp_path / "gt"), "--per-task", "2", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    split = json.loads(output.read_text())
    assert split["format"] == "ewmbench-split/1"
    assert split["parameters"]["per_task"] == 2 and split["parameters"]["voxel_size"] == 0.02
    assert len(split["source"]["sha256"]) == 64
    # Task 1: episodes 1 and 2 overlap almost fully; 3 shares only the right arm's voxel.
    assert split["tasks"]["1"]["episodes"] == ["3", "1"]
    assert split["tasks"]["2"]["episodes"] == ["1"] and split["tasks"]["2"]["available"] == 1
    assert curate_split(tmp_path / "gt", 2) == split  # deterministic, same hash


def test_missing_poses_name_the_episode(tmp_path):
    _dataset(tmp_path / "gt", {("1", "1"): _pose(np.zeros((3, 3)), np.zeros((3, 3))), ("1", "9"): None})
    with pytest.raises(DataError, match="1/9") as info:
        curate_split(tmp_path / "gt", 1)
    assert info.value.path.name == "9"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "curate",
            "--source",
            str(tmp_path / "gt"),
            "--per-task",
            "1",
            "--output",
            str(tmp_path / "s.json"),
        ],
    )
    assert result.exit_code == 2 and "eef_pose" in result.output
    assert not (tmp_path / "s.json").exists()
