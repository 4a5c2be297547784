"""The detector commands end to end on synthetic episodes: track, validate, and a tiny training run."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from ewmbench.cli import app
from ewmbench.perception.detector import TrackingSettings, load_detector
from ewmbench.protocols import DEFAULT_PROTOCOL, load_protocol
from tests.helpers.detector import make_episode, untrained_detector

runner = CliRunner()


def test_track_and_validate_commands(tmp_path):
    gt = tmp_path / "gt"
    episode = make_episode(gt, "1", "1", frames=2)
    weights = untrained_detector(tmp_path / "untrained.pt")
    cache = tmp_path / "cache"
    result = runner.invoke(
        app,
        [
            "detector",
            "track",
            "--dataset",
            str(gt),
            "--weights",
            str(weights),
            "--cache-dir",
            str(cache),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (np.load(episode.traj_path) == -1).all()
    assert (episode.path / "gripper_detection" / "video.mp4").is_file()
    result = runner.invoke(
        app,
        [
            "detector",
            "validate",
            "--dataset",
            str(gt),
            "--weights",
            str(weights),
            "--cache-dir",
            str(cache),
            "--device",
            "cpu",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Both grippers visible in both frames (4 points), none detected by an untrained network.
    assert (report["visible"], report["detected"], report["recall"], report["median_error_frac"]) == (
        4,
        0,
        0.0,
        None,
    )


def test_missing_weights_file_is_a_clear_cli_error(tmp_path):
    make_episode(tmp_path / "gt", "1", "1", frames=1)
    result = runner.invoke(
        app,
        [
            "detector",
            "track",
            "--dataset",
            str(tmp_path / "gt"),
            "--weights",
            str(tmp_path / "none.pt"),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 2
    assert "none.pt: no such file" in " ".join(result.output.split())


def test_train_command_tiny_run(tmp_path):
    gt = tmp_path / "gt"
    for i in range(3):
        make_episode(gt, "1", str(i), frames=3, seed=i)
    output = tmp_path / "out" / "det.pt"
    result = runner.invoke(app, [
        "detector", "train", "--dataset", str(gt), "--output", str(output), "--epochs", "1", "--imgsz", "64",
        "--batch", "4", "--workers", "0", "--val-fraction", "0.3",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["val_episodes"] and 0.0 <= summary["val_map50"] <= 1.0
    model = load_detector(output, TrackingSettings.from_protocol(load_protocol(DEFAULT_PROTOCOL)))
    assert model.names == {0: "left_gripper", 1: "right_gripper"}
    report = json.loads(output.with_suffix(".pt.json").read_text())
    assert report["train_images"] == 6 and report["val_images"] == 3
