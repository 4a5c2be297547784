"""The generated sample dataset: layout, determinism, sidecar contents and refusals."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ewmbench.data.datasets import MARKER, resolve_dataset
from ewmbench.data.layout import GroundTruth
from ewmbench.data.summary import summarise
from ewmbench.data.video import read_image, read_video
from ewmbench.errors import ConfigError, DataError
from ewmbench.sim import sample as sample_module
from ewmbench.sim.sample import generate_sample, parse_tasks

# pick_place is the task that stays reliable on the shortest clips, so the byte-level tests use it.
TASK = "pick_place"
FRAMES = 12


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("sample")
    # one run in this process, one in a worker process: the files must not depend on that
    a = generate_sample(
        base / "a", seed=7, tasks=[TASK], episodes_per_task=1, num_frames=FRAMES, progress=False, workers=1
    )
    b = generate_sample(
        base / "b", seed=7, tasks=[TASK], episodes_per_task=1, num_frames=FRAMES, progress=False, workers=2
    )
    return a, b


def test_same_seed_gives_identical_bytes(two_runs):
    a, b = two_runs
    files_a, files_b = _files(a), _files(b)
    assert files_a.keys() == files_b.keys()
    # 12 head frames, 12 per wrist view, init frame, instruction, meta, arrays, marker
    assert len(files_a) == 3 * FRAMES + 5
    different = [name for name in files_a if files_a[name] != files_b[name]]
    assert different == []


def test_layout_is_official_and_data_info_finds_no_problems(two_runs):
    root = two_runs[0]
    episode = root / "1" / "0"  # pick_place has the numeric task id 1; episodes count from 0
    assert (episode / "video" / "frame_00000.jpg").is_file()
    assert (episode / "prompt" / "init_frame.png").is_file()
    assert (episode / "prompt" / "introduction.txt").read_text().startswith("Pick up the ")
    for view in ("hand_left", "hand_right"):
        assert len(read_video(episode / "ewmbench" / "views" / view)) == FRAMES
    summary = summarise(root)
    assert summary["kind"] == "ground-truth"
    assert summary["problems"] == []
    assert summary["resolutions"] == {"640x480": 1}
    assert summary["frames"] == {"min": FRAMES, "max": FRAMES, "total": FRAMES}
    # the init frame is the first frame, losslessly
    frames = read_video(episode / "video")
    assert read_image(episode / "prompt" / "init_frame.png").shape == frames[0].shape == (480, 640, 3)


def test_sidecar_shapes_and_meta(two_runs):
    episode = GroundTruth(two_runs[0]).episode("1", "0")
    sidecar = episode.sidecar
    assert sidecar.fps == 10.0
    assert sidecar.views == ["head", "hand_left", "hand_right"]
    assert sidecar.eef_pose.shape == (FRAMES, 14)
    assert sidecar.actions.shape == (FRAMES, 14)
    assert sidecar.joint_positions.shape == (FRAMES, 18)
    for view in sidecar.views:
        assert sidecar.intrinsics[view].shape == (3, 3)
        assert sidecar.extrinsics[view].shape == (FRAMES, 4, 4)
        # rotations are orthonormal with determinant +1
        rotations = sidecar.extrinsics[view][:, :3, :3]
        np.testing.assert_allclose(
            rotations @ rotations.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rotations.shape), atol=1e-9
        )
        np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)
    # gripper openness within [0, 1], both arms
    assert np.all((sidecar.eef_pose[:, [6, 13]] >= 0) & (sidecar.eef_pose[:, [6, 13]] <= 1))
    # the first action is the initial pose, so position error at frame 0 is zero
    np.testing.assert_allclose(
        sidecar.actions[0, [0, 1, 2, 7, 8, 9]], sidecar.eef_pose[0, [0, 1, 2, 7, 8, 9]], atol=1e-9
    )
    meta = sidecar.meta
    assert meta["task_name"] == TASK and meta["task_id"] == 1 and meta["seed"] == 7
    assert meta["success"] is True
    assert meta["gripper_radius_m"] > 0
    assert {"base_frame", "eef_frame", "scene", "success_condition", "subject"} <= meta.keys()
    assert len(sidecar.substeps) >= 3


def test_sidecar_arrays_carry_a_fixed_timestamp(two_runs):
    with zipfile.ZipFile(two_runs[0] / "1" / "0" / "ewmbench" / "arrays.npz") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_complete_sample_is_not_regenerated(two_runs, monkeypatch):
    root = two_runs[0]
    before = _files(root)

    def boom(*args, **kwargs):
        raise AssertionError("a complete sample must not be regenerated")

    monkeypatch.setattr(sample_module, "_generate_episodes", boom)
    assert (
        generate_sample(root, seed=7, tasks=[TASK], episodes_per_task=1, num_frames=FRAMES, progress=False)
        == root
    )
    assert _files(root) == before


def test_interrupted_sample_is_completed_without_redoing_finished_episodes(two_runs, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "interrupted"
    shutil.copytree(two_runs[0], copy)
    marker = json.loads((copy / MARKER).read_text())
    (copy / MARKER).write_text(json.dumps({**marker, "complete": False}))
    written = []
    monkeypatch.setattr(sample_module, "write_sample_episode", lambda *args: written.append(args))
    generate_sample(
        copy, seed=7, tasks=[TASK], episodes_per_task=1, num_frames=FRAMES, progress=False, workers=1
    )
    assert written == []  # the one episode was already complete
    assert json.loads((copy / MARKER).read_text())["complete"] is True
    # a missing episode is the only one generated
    shutil.rmtree(copy / "1" / "0")
    (copy / MARKER).write_text(json.dumps({**marker, "complete": False}))
    generate_sample(
        copy, seed=7, tasks=[TASK], episodes_per_task=1, num_frames=FRAMES, progress=False, workers=1
    )
    assert written == [(copy, 7, TASK, 0, FRAMES)]


def test_sample_with_other_parameters_is_refused(two_runs):
    with pytest.raises(DataError, match="other parameters"):
        generate_sample(
            two_runs[0], seed=8, tasks=[TASK], episodes_per_task=1, num_frames=FRAMES, progress=False
        )


def test_existing_user_folder_is_never_written(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    with pytest.raises(DataError, match="not a sample dataset"):
        generate_sample(user, tasks=[TASK], episodes_per_task=1, num_frames=FRAMES, progress=False)
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    assert (user / "notes.txt").read_text() == "precious"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        generate_sample(a_file, tasks=[TASK], episodes_per_task=1, num_frames=FRAMES, progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tasks": ["juggle"]}, "unknown task.*juggle.*valid tasks: pick_place, push, stack, handover"),
        ({"tasks": []}, "no tasks"),
        ({"tasks": ["push", "push"]}, "more than once"),
        ({"episodes_per_task": 0}, "positive integer"),
        ({"episodes_per_task": -1}, "positive integer"),
        ({"seed": -1}, "0 <= seed < 2\\*\\*31"),
        ({"seed": 2**31}, "0 <= seed < 2\\*\\*31"),
        ({"seed": 1.5}, "0 <= seed"),
        ({"num_frames": 3}, "frames must be an integer from"),
        ({"num_frames": 100000}, "frames must be an integer from"),
        ({"workers": 0}, "workers must be a positive integer"),
    ],
)
def test_bad_parameters_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        generate_sample(tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_parse_tasks():
    assert parse_tasks("pick_place, push") == ["pick_place", "push"]
    assert parse_tasks(None) is None
    assert parse_tasks("") is None
    with pytest.raises(ConfigError, match="valid tasks"):
        parse_tasks("pick_place,fly")


def test_resolve_dataset_sample_generates_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    calls = []

    def tiny_sample(output, progress=True, workers=None):
        calls.append(Path(output))
        # a stand-in for the default sample: a complete marked folder, fast
        output.mkdir(parents=True)
        (output / MARKER).write_text(json.dumps({"format": sample_module.MARKER_FORMAT, "complete": True}))
        return output

    monkeypatch.setattr(sample_module, "generate_sample", tiny_sample)
    final = tmp_path / "cache" / "datasets" / "sample-v1"
    assert resolve_dataset("sample", progress=False) == final
    assert calls == [final.with_name(".tmp-sample-v1")]  # built beside, then renamed
    assert (final / MARKER).is_file() and not calls[0].exists()
    assert resolve_dataset("sample", progress=False) == final
    assert len(calls) == 1


def test_resolve_dataset_refuses_a_foreign_folder_at_the_sample_place(tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path))
    foreign = tmp_path / "datasets" / "sample-v1"
    foreign.mkdir(parents=True)
    (foreign / "x.txt").write_text("x")
    with pytest.raises(DataError, match="delete it"):
        resolve_dataset("sample", progress=False)
    assert (foreign / "x.txt").read_text() == "x"


def test_resolve_dataset_paths(tmp_path):
    assert resolve_dataset(str(tmp_path)) == tmp_path
    assert resolve_dataset(tmp_path) == tmp_path
    with pytest.raises(DataError, match="does not exist"):
        resolve_dataset(str(tmp_path / "missing"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="is a file, not a dataset folder"):
        resolve_dataset(str(tmp_path / "file.txt"))


def test_cli_reports_bad_input(tmp_path):
    from typer.testing import CliRunner

    from ewmbench.cli import app

    result = CliRunner().invoke(app, ["data", "sample", "--output", str(tmp_path / "o"), "--tasks", "juggle"])
    assert result.exit_code == 2
    assert "unknown task" in result.output and "pick_place" in result.output
    result = CliRunner().invoke(
        app, ["data", "sample", "--output", str(tmp_path / "o"), "--episodes-per-task", "0"]
    )
    assert result.exit_code == 2
    assert "positive integer" in result.output
    assert not (tmp_path / "o").exists()
