"""AgiBot World -> EWMBench GT layout: frames, poses, actions and calibration survive, by the documented mapping."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from ewmbench.cli import app
from ewmbench.data.converters.agibot_world import (
    convert_agibot_world,
    quaternions_to_rpy,
)
from ewmbench.data.converters.common import ConvertSettings
from ewmbench.data.layout import GroundTruth
from ewmbench.data.summary import summarise
from ewmbench.data.video import read_video
from ewmbench.errors import DataError
from tests.helpers.source_formats import (
    frame_pixels,
    tree_digest,
    write_agibot_world,
    write_lossless_mp4,
)

pytest.importorskip("h5py", reason='AgiBot World conversion needs h5py (pip install "ewmbench[convert]")')

TASK, EPISODES, LENGTH = 327, [648642, 648649], 12


@pytest.fixture(scope="module")
def agibot_source(tmp_path_factory):
    return write_agibot_world(tmp_path_factory.mktemp("agibot") / "src", TASK, EPISODES, LENGTH)


def test_poses_actions_calibration_and_frames_survive(agibot_source, tmp_path):
    before = tree_digest(agibot_source)
    report = convert_agibot_world(agibot_source, tmp_path / "gt", progress=False)
    assert tree_digest(agibot_source) == before
    assert report.written == [("327", "648642"), ("327", "648649")]
    item = GroundTruth(tmp_path / "gt").episode("327", "648649")
    sidecar = item.sidecar
    assert sidecar.views == ["head", "hand_left", "hand_right"] and sidecar.fps == 30.0
    for c, view in enumerate(sidecar.views):
        frames = read_video(item.video_path(view))
        assert frames.shape == (LENGTH, 24, 32, 3) and np.array_equal(frames[7], frame_pixels(1, 7, c))
    assert item.instruction == "Pick up the cup"
    assert sidecar.substeps == ["Grasp the cup.", "Lift the cup."]
    assert sidecar.meta["init_scene_text"].startswith("The robot stands")
    # frame 3, worked by hand: left at (0.33, 0.2, 0.1) turned 0.3 rad about z, gripper 36 of 120
    # (high = closed: openness 0.7); right at (0.3, -0.23, 0.5) turned 0.15 rad about x, gripper 102
    # of 120 (nearly closed: openness 0.15)
    assert np.allclose(
        sidecar.eef_pose[3], [0.33, 0.2, 0.1, 0, 0, 0.3, 0.7, 0.3, -0.23, 0.5, 0.15, 0, 0, 0.15]
    )
    # actions at frame 1: orientation of frame 2, effector [0 (open), 1 (closed)] -> openness [1, 0]
    assert np.allclose(sidecar.actions[1], [0.32, 0.2, 0, 0, 0, 0.2, 1, 0.31, -0.2, 0.5, 0.1, 0, 0, 0])
    assert np.allclose(sidecar.actions[0, [6, 13]], [0.75, 0.25])
    assert np.array_equal(sidecar.joint_positions[5], [0.05 + j for j in range(14)])
    assert np.array_equal(sidecar.intrinsics["hand_left"], [[21, 0, 15.5], [0, 22, 11.5], [0, 0, 1]])
    assert sidecar.extrinsics["head"].shape == (LENGTH, 4, 4)
    assert np.allclose(sidecar.extrinsics["hand_right"][4, :3, 3], [0.4, 2.2, 1.5])
    # every HDF5 dataset, exactly, under its own path (also the empty and the non-per-frame ones)
    assert sidecar.source["state/effector/position"][3].tolist() == [36.0, 102.0]
    assert sidecar.source["action/end/index"].tolist() == list(range(0, LENGTH, 2))
    assert (
        sidecar.source["state/joint/effort"].shape == (0,)
        and sidecar.source["state/joint/effort"].dtype == np.float32
    )
    assert sidecar.source["timestamp"].dtype == np.int64
    assert sidecar.meta["mapping_notes"] == []
    assert summarise(tmp_path / "gt")["problems"] == []


def test_rpy_from_quaternions_is_unwrapped():
    angles = np.linspace(0, 4 * np.pi, 9)  # about z, past +-pi twice
    quaternions = np.stack(
        [np.zeros_like(angles), np.zeros_like(angles), np.sin(angles / 2), np.cos(angles / 2)], axis=1
    )
    assert np.allclose(quaternions_to_rpy(quaternions)[:, 2], angles)


def test_resampling_keeps_non_per_frame_arrays_whole(agibot_source, tmp_path):
    convert_agibot_world(
        agibot_source, tmp_path / "gt", episodes={"648642"}, settings=ConvertSettings(fps=15), progress=False
    )
    item = GroundTruth(tmp_path / "gt").episode("327", "648642")
    frames = read_video(item.video_path())
    assert len(frames) == 6 and np.array_equal(frames[4], frame_pixels(0, 8, 0))
    sidecar = item.sidecar
    assert (
        sidecar.fps == 15
        and sidecar.eef_pose.shape == (6, 14)
        and sidecar.extrinsics["head"].shape == (6, 4, 4)
    )
    assert np.allclose(sidecar.eef_pose[4, 0], 0.38)
    assert sidecar.source["action/end/index"].tolist() == list(range(0, LENGTH, 2))  # not per frame: whole
    assert sidecar.source["timestamp"].tolist() == [f * 33333333 for f in range(0, LENGTH, 2)]


def test_missing_camera_and_truncated_video_name_the_episode(tmp_path):
    source = write_agibot_world(tmp_path / "src", TASK, EPISODES, LENGTH)
    (source / f"observations/{TASK}/648649/videos/hand_right_color.mp4").unlink()
    with pytest.raises(DataError, match="episode 648649 \\(task 327\\).*'hand_right_color'.*missing"):
        convert_agibot_world(source, tmp_path / "gt", progress=False)
    assert (tmp_path / "gt" / "327" / "648642").is_dir() and not (tmp_path / "gt" / "327" / "648649").exists()
    head = source / f"observations/{TASK}/648642/videos/head_color.mp4"
    write_lossless_mp4([frame_pixels(0, f, 0) for f in range(8)], head, 30)
    with pytest.raises(DataError, match="episode 648642 .*video has 8 frames, proprio_stats.h5 has 12"):
        convert_agibot_world(source, tmp_path / "gt2", progress=False)


def test_command_line_with_view_choice(agibot_source, tmp_path):
    cli = CliRunner()
    result = cli.invoke(
        app,
        [
            "data",
            "convert",
            "agibot-world",
            "--source",
            str(agibot_source),
            "--output",
            str(tmp_path / "gt"),
            "--views",
            "head=head_color",
            "--episodes",
            "648642",
            "--image-format",
            "jpg",
        ],
    )
    assert result.exit_code == 0, result.output
    item = GroundTruth(tmp_path / "gt").episode("327", "648642")
    assert item.sidecar.views == ["head"] and (item.path / "video" / "frame_00000.jpg").is_file()
    assert list(item.sidecar.intrinsics) == ["head"]
    missing = cli.invoke(
        app,
        [
            "data",
            "convert",
            "agibot-world",
            "--source",
            str(agibot_source),
            "--output",
            str(tmp_path / "x"),
            "--episodes",
            "1",
        ],
    )
    assert missing.exit_code == 2 and "no episode 1" in missing.output


def test_arrays_that_do_not_fit_the_layout_are_left_out_with_the_reason(tmp_path):
    import h5py

    source = write_agibot_world(tmp_path / "src", TASK, [648642], LENGTH)
    with h5py.File(source / f"proprio_stats/{TASK}/648642/proprio_stats.h5", "a") as h5:
        del h5["action/end/position"]
        h5["action/end/position"] = np.zeros((LENGTH + 2, 2, 3))  # action longer than state, as in some tasks
        del h5["state/effector/position"]
        h5["state/effector/position"] = np.zeros((LENGTH, 12))  # a dexterous hand, not a gripper
    convert_agibot_world(source, tmp_path / "gt", progress=False)
    sidecar = GroundTruth(tmp_path / "gt").episode("327", "648642").sidecar
    assert sidecar.eef_pose is None and sidecar.actions is None
    notes = " ".join(sidecar.meta["mapping_notes"])
    assert "eef_pose not filled: state/effector/position is (12, 12), expected (12, 2)" in notes
    assert "actions not filled: action/end/position is (14, 2, 3), expected (12, 2, 3)" in notes
    assert sidecar.source["action/end/position"].shape == (LENGTH + 2, 2, 3)  # kept as the source has it
