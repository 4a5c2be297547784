"""LeRobot v2.1 / v3.0 -> EWMBench GT layout: frames, instruction, arrays and calibration survive exactly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from ewmbench.cli import app
from ewmbench.data.converters.common import (
    ConvertSettings,
    parse_id_list,
    parse_views,
    resample_indices,
    scale_intrinsics,
)
from ewmbench.data.converters.lerobot import LeRobotMapping, convert_lerobot
from ewmbench.data.converters.mapping import parse_selection
from ewmbench.data.layout import GroundTruth
from ewmbench.data.summary import summarise
from ewmbench.data.video import read_video
from ewmbench.errors import ConfigError, DataError
from tests.helpers.source_formats import (
    LEROBOT_TASKS,
    action_value,
    frame_pixels,
    state_value,
    tree_digest,
    write_lerobot,
    write_lossless_mp4,
)

LENGTHS = [5, 7, 6]
TASKS_OF = [0, 1, 0]
TOP, WRIST = "observation.images.top", "observation.images.wrist_left"


def full_mapping() -> LeRobotMapping:
    return LeRobotMapping(
        views={"head": TOP, "hand_left": WRIST},
        actions=parse_selection("action", "--actions"),
        eef_pose=parse_selection("observation.state[0:14]", "--eef-pose"),
        intrinsics={"head": "observation.intrinsics.top"},
        extrinsics={"head": "observation.extrinsics.top"},
    )


@pytest.fixture(scope="module", params=["v2.1", "v3.0"])
def lerobot_source(request, tmp_path_factory):
    return write_lerobot(
        tmp_path_factory.mktemp(request.param) / "src", request.param, LENGTHS, tasks_of=TASKS_OF
    )


def test_everything_survives_exactly_and_the_source_is_untouched(lerobot_source, tmp_path):
    before = tree_digest(lerobot_source)
    out = tmp_path / "gt"
    report = convert_lerobot(lerobot_source, out, full_mapping(), progress=False)
    assert tree_digest(lerobot_source) == before
    # OUTPUT/<task index>/<episode index>/, the source's own indices
    assert report.written == [("0", "0"), ("1", "1"), ("0", "2")] and report.frames == sum(LENGTHS)
    gt = GroundTruth(out)
    for episode, length in enumerate(LENGTHS):
        item = gt.episode(str(TASKS_OF[episode]), str(episode))
        head, wrist = read_video(item.video_path()), read_video(item.video_path("hand_left"))
        assert head.shape == (length, 24, 32, 3)
        for f in range(length):  # lossless source, PNG output: pixel-exact
            assert np.array_equal(head[f], frame_pixels(episode, f, 0))
            assert np.array_equal(wrist[f], frame_pixels(episode, f, 1))
        assert item.instruction == LEROBOT_TASKS[TASKS_OF[episode]]
        sidecar = item.sidecar
        assert sidecar.views == ["head", "hand_left"] and sidecar.fps == 10.0
        # the source's arrays, under their own names, with their own dtype
        assert sidecar.source["action"].dtype == np.float32
        assert sidecar.source["action"][2, 3] == np.float32(action_value(episode, 2, 3))
        assert sidecar.source["observation.state"].shape == (length, 16)
        assert sidecar.source["observation.state"][4, 15] == np.float32(state_value(episode, 4, 15))
        assert list(sidecar.source["frame_index"]) == list(range(length))
        # the 14-D arrays through the mapping asked for, nothing else
        assert np.array_equal(sidecar.actions, sidecar.source["action"].astype(np.float64))
        assert np.array_equal(
            sidecar.eef_pose, sidecar.source["observation.state"][:, :14].astype(np.float64)
        )
        assert sidecar.joint_positions is None
        assert np.array_equal(sidecar.intrinsics["head"], [[20, 0, 15.5], [0, 21, 11.5], [0, 0, 1]])
        assert sidecar.extrinsics["head"].shape == (length, 4, 4)
        assert (
            np.allclose(sidecar.extrinsics["head"][3, :3, 3], [0.3, 0.2, 1.5])
            and sidecar.extrinsics["head"][3, 3, 3] == 1
        )
        assert sidecar.meta["source"]["format"] == "lerobot" and sidecar.meta["source_episode"] == str(
            episode
        )
    assert summarise(out)["problems"] == []


def test_views_map_as_asked_and_episodes_are_selected(lerobot_source, tmp_path):
    mapping = LeRobotMapping(views={"head": WRIST})
    report = convert_lerobot(
        lerobot_source, tmp_path / "gt", mapping, episodes=parse_id_list("1-2"), progress=False
    )
    assert report.written == [("1", "1"), ("0", "2")]
    item = GroundTruth(tmp_path / "gt").episode("0", "2")
    assert np.array_equal(
        read_video(item.video_path())[5], frame_pixels(2, 5, 1)
    )  # the wrist camera is now head
    assert item.sidecar.views == ["head"] and item.sidecar.eef_pose is None and item.sidecar.actions is None


def test_resampling_and_resizing_follow_the_stated_rules(lerobot_source, tmp_path):
    assert resample_indices(7, 10, 5) == [0, 2, 4]
    assert resample_indices(5, 10, 4) == [0, 3]  # 2.5 rounds up
    assert resample_indices(4, 10, None) == [0, 1, 2, 3]
    assert resample_indices(5, 10, 20) == [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]  # a higher rate repeats frames
    k = np.array([[20.0, 0, 15.5], [0, 21.0, 11.5], [0, 0, 1]])
    assert np.allclose(scale_intrinsics(k, (32, 24), (16, 12)), [[10, 0, 7.5], [0, 10.5, 5.5], [0, 0, 1]])
    out = tmp_path / "gt"
    convert_lerobot(
        lerobot_source,
        out,
        full_mapping(),
        episodes={"1"},
        settings=ConvertSettings(fps=5, size=(16, 12)),
        progress=False,
    )
    item = GroundTruth(out).episode("1", "1")
    frames = read_video(item.video_path())
    assert frames.shape == (3, 12, 16, 3)
    import cv2

    assert np.array_equal(
        frames[2], cv2.resize(frame_pixels(1, 4, 0), (16, 12), interpolation=cv2.INTER_AREA)
    )
    sidecar = item.sidecar
    assert sidecar.fps == 5 and sidecar.meta["source_frame_indices"] == [0, 2, 4]
    assert list(sidecar.source["frame_index"]) == [0, 2, 4]
    assert sidecar.actions[1, 0] == np.float32(action_value(1, 2, 0))
    assert np.allclose(sidecar.intrinsics["head"], [[10, 0, 7.5], [0, 10.5, 5.5], [0, 0, 1]])
    assert np.allclose(sidecar.extrinsics["head"][2, :3, 3], [0.4, 0.2, 1.5])


def test_cameras_stored_as_images_in_the_rows(tmp_path):
    from tests.helpers.source_formats import add_image_camera

    for version in ("v2.1", "v3.0"):
        source = add_image_camera(
            write_lerobot(tmp_path / f"src{version}", version, LENGTHS, tasks_of=TASKS_OF)
        )
        mapping = LeRobotMapping(views={"head": "observation.image", "hand_left": TOP})
        convert_lerobot(
            source,
            tmp_path / f"gt{version}",
            mapping,
            episodes={"1", "2"},
            settings=ConvertSettings(fps=5),
            progress=False,
        )
        item = GroundTruth(tmp_path / f"gt{version}").episode("1", "1")
        head, wrist = read_video(item.video_path()), read_video(item.video_path("hand_left"))
        assert len(head) == len(wrist) == 3
        for k, f in enumerate([0, 2, 4]):
            assert np.array_equal(head[k], frame_pixels(1, f, 2)) and np.array_equal(
                wrist[k], frame_pixels(1, f, 0)
            )
        assert "observation.image" not in item.sidecar.source  # images are frames, not arrays


def test_a_higher_rate_repeats_frames_and_rows_alike(lerobot_source, tmp_path):
    convert_lerobot(
        lerobot_source,
        tmp_path / "gt",
        full_mapping(),
        episodes={"0"},
        settings=ConvertSettings(fps=20),
        progress=False,
    )
    item = GroundTruth(tmp_path / "gt").episode("0", "0")
    frames = read_video(item.video_path())
    keep = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    assert len(frames) == len(keep) == len(item.sidecar.actions)
    for k, source_frame in enumerate(keep):
        assert np.array_equal(frames[k], frame_pixels(0, source_frame, 0))
    assert list(item.sidecar.source["frame_index"]) == keep


def test_forward_kinematics_hook_fills_eef_pose_from_joints(lerobot_source, tmp_path):
    from tests.helpers.source_formats import doubled_first_14

    mapping = LeRobotMapping(
        views={"head": TOP},
        joints="observation.state",
        fk=doubled_first_14,
        fk_name="tests.helpers.source_formats:doubled_first_14",
    )
    convert_lerobot(lerobot_source, tmp_path / "gt", mapping, episodes={"0"}, progress=False)
    sidecar = GroundTruth(tmp_path / "gt").episode("0", "0").sidecar
    assert sidecar.joint_positions.shape == (5, 16)
    assert sidecar.eef_pose[3, 2] == 2 * np.float64(np.float32(state_value(0, 3, 2)))


def test_mapping_mistakes_are_refused_before_anything_is_written(lerobot_source, tmp_path):
    with pytest.raises(ConfigError, match="13 columns"):
        parse_selection("action[0:13]", "--actions")
    with pytest.raises(ConfigError, match="head"):
        parse_views("hand_left=x")
    with pytest.raises(ConfigError, match="no camera 'observation.images.nope'"):
        convert_lerobot(
            lerobot_source,
            tmp_path / "gt",
            LeRobotMapping(views={"head": "observation.images.nope"}),
            progress=False,
        )
    with pytest.raises(ConfigError, match="2 cameras"):  # two cameras and no mapping: no guessing
        convert_lerobot(lerobot_source, tmp_path / "gt2", progress=False)
    with pytest.raises(DataError, match="gives 16 columns"):
        convert_lerobot(
            lerobot_source,
            tmp_path / "gt3",
            LeRobotMapping(views={"head": TOP}, eef_pose=parse_selection("observation.state", "x")),
            progress=False,
        )
    assert not (tmp_path / "gt" / "0").exists()


def _copy(source, tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(source, copy)
    return copy


def test_missing_camera_is_an_error_naming_the_episode(tmp_path):
    source = write_lerobot(tmp_path / "src", "v2.1", LENGTHS, tasks_of=TASKS_OF)
    (source / f"videos/chunk-000/{WRIST}/episode_000001.mp4").unlink()
    out = tmp_path / "gt"
    with pytest.raises(DataError, match="episode 1 .*missing") as caught:
        convert_lerobot(source, out, LeRobotMapping(views={"head": TOP, "hand_left": WRIST}), progress=False)
    assert "episode_000001.mp4" in str(caught.value.path)
    assert (out / "0" / "0").is_dir() and not (out / "1" / "1").exists()  # episodes before it are complete
    assert not list(out.rglob(".tmp-*"))  # no half-written episode left behind


def test_truncated_video_is_an_error_naming_the_episode(tmp_path):
    source = write_lerobot(tmp_path / "src", "v2.1", LENGTHS, tasks_of=TASKS_OF)
    video = source / f"videos/chunk-000/{TOP}/episode_000002.mp4"
    write_lossless_mp4([frame_pixels(2, f, 0) for f in range(3)], video, 10)  # 3 of 6 frames
    with pytest.raises(DataError, match="episode 2 .*ends after 3 of the episode's 6 frames"):
        convert_lerobot(source, tmp_path / "gt", LeRobotMapping(views={"head": TOP}), progress=False)
    video.write_bytes(video.read_bytes()[:200])  # cut mid-file
    with pytest.raises(DataError, match="episode 2"):
        convert_lerobot(source, tmp_path / "gt", LeRobotMapping(views={"head": TOP}), progress=False)


def test_v3_truncated_shared_video_names_the_episode(tmp_path):
    source = write_lerobot(tmp_path / "src", "v3.0", LENGTHS, tasks_of=TASKS_OF)
    # file-001 holds episodes 1 and 2 (7 + 6 frames); keep only 10 of its 13 frames
    video = source / f"videos/{TOP}/chunk-000/file-001.mp4"
    write_lossless_mp4(
        [frame_pixels(1, f, 0) for f in range(7)] + [frame_pixels(2, f, 0) for f in range(3)], video, 10
    )
    with pytest.raises(DataError, match="episode 2 .*ends after 3 of the episode's 6 frames"):
        convert_lerobot(source, tmp_path / "gt", LeRobotMapping(views={"head": TOP}), progress=False)
    assert (tmp_path / "gt" / "1" / "1").is_dir()


def test_conversion_resumes_and_refuses_other_settings(tmp_path):
    source = write_lerobot(tmp_path / "src", "v3.0", LENGTHS, tasks_of=TASKS_OF)
    out = tmp_path / "gt"
    mapping = LeRobotMapping(views={"head": TOP})
    convert_lerobot(source, out, mapping, progress=False)
    shutil.rmtree(out / "1" / "1")
    first = (out / "0" / "0" / "video" / "frame_00000.png").stat().st_mtime_ns
    again = convert_lerobot(source, out, mapping, progress=False)
    assert again.written == [("1", "1")] and again.skipped == [("0", "0"), ("0", "2")]
    assert (out / "0" / "0" / "video" / "frame_00000.png").stat().st_mtime_ns == first
    with pytest.raises(ConfigError, match="other settings .*fps"):
        convert_lerobot(source, out, mapping, settings=ConvertSettings(fps=5), progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        convert_lerobot(source, tmp_path / "busy", mapping, progress=False)


def test_command_line_convert_then_info_and_curate(tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    source = write_lerobot(tmp_path / "src", "v2.1", LENGTHS, tasks_of=TASKS_OF)
    out = tmp_path / "gt"
    cli = CliRunner()
    result = cli.invoke(
        app,
        [
            "data",
            "convert",
            "lerobot",
            "--source",
            str(source),
            "--output",
            str(out),
            "--views",
            f"head={TOP},hand_left={WRIST}",
            "--eef-pose",
            "observation.state[0:14]",
            "--actions",
            "action",
            "--intrinsics",
            "head=observation.intrinsics.top",
            "--extrinsics",
            "head=observation.extrinsics.top",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "converted 3 episode(s), 18 frames" in result.output
    info = cli.invoke(app, ["data", "info", str(out)])
    assert info.exit_code == 0 and "no problems found" in info.output, info.output
    split = tmp_path / "split.json"
    curated = cli.invoke(
        app, ["data", "curate", "--source", str(out), "--per-task", "1", "--output", str(split)]
    )
    assert curated.exit_code == 0, curated.output
    tasks = json.loads(split.read_text())["tasks"]
    assert sorted(tasks) == ["0", "1"] and tasks["0"]["available"] == 2 and len(tasks["0"]["episodes"]) == 1
    # then the benchmark runs on it, as the README says
    run = cli.invoke(
        app,
        [
            "run",
            "--model",
            "static",
            "--dataset",
            str(out),
            "--output",
            str(tmp_path / "run"),
            "--trials",
            "1",
            "--metrics",
            "psnr,ssim",
        ],
    )
    assert run.exit_code == 0, run.output
    assert len((tmp_path / "run" / "rows.csv").read_text().splitlines()) == 1 + 3
    bad = cli.invoke(
        app,
        [
            "data",
            "convert",
            "lerobot",
            "--source",
            str(tmp_path / "nowhere"),
            "--output",
            str(tmp_path / "x"),
        ],
    )
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_a_repo_id_that_is_not_here_offline_names_the_fix(tmp_path, monkeypatch):
    from ewmbench.data.converters.lerobot import resolve_source
    from ewmbench.errors import Unavailable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Unavailable) as caught:
        resolve_source("someone/robot_data")
    assert (
        caught.value.fix
        == "hf download someone/robot_data --repo-type dataset --local-dir DIR, then --source DIR"
    )


def test_converting_and_downloading_import_no_heavy_library(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    source = write_lerobot(tmp_path / "src", "v3.0", [4], tasks_of=[0])
    script = (
        "import sys\nfrom pathlib import Path\n"
        "import ewmbench.cli.convert, ewmbench.data.download, ewmbench.data.converters.agibot_world\n"
        "from ewmbench.data.converters.lerobot import LeRobotMapping, convert_lerobot\n"
        f"convert_lerobot(Path({str(source)!r}), Path({str(tmp_path / 'gt')!r}), LeRobotMapping(views={{'head': {TOP!r}}}), progress=False)\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'transformers', 'ultralytics', 'pybullet', 'diffusers') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[1],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_view_with_the_wrong_number_of_frames_fails_the_episode_atomically(tmp_path):
    from ewmbench.data.converters.common import SourceEpisode, write_converted

    def stream(count):
        return lambda keep: (frame_pixels(0, f, 0) for f in range(count))

    for count, message in ((2, "gave 2 frames where 3"), (4, "gave 4 frames where 3")):
        episode = SourceEpisode(
            task="0",
            episode="0",
            where="episode 0 of test",
            instruction="x",
            num_frames=3,
            fps=10,
            views={"head": stream(3), "hand_left": stream(count)},
        )
        with pytest.raises(DataError, match=message):
            write_converted(episode, tmp_path, ConvertSettings(), {})
        assert not (tmp_path / "0" / "0").exists() and not list(tmp_path.rglob(".tmp-*"))
