import numpy as np
import pytest
from PIL import Image

from ewmbench.data.layout import Generated, GroundTruth, Sidecar, pairing_problems, write_episode, write_trial
from ewmbench.data.summary import summarise
from ewmbench.data.video import read_video, write_mp4
from ewmbench.errors import DataError
from tests.helpers.datasets import make_ground_truth, moving_square_frames


def test_ground_truth_round_trip(gt_dataset):
    gt = GroundTruth(gt_dataset)
    assert [e.key for e in gt.episodes] == [("1", "10"), ("1", "11"), ("2", "10"), ("2", "11")]
    episode = gt.episodes[0]
    assert episode.instruction == "move the red block (task 1)"
    assert episode.sidecar.fps == 10 and episode.sidecar.substeps == ["reach", "push"]
    assert episode.sidecar.eef_pose.shape == (6, 14)
    frames = read_video(episode.video_path())
    assert frames.shape == (6, 48, 64, 3) and frames.dtype == np.uint8
    assert gt.problems() == []


def test_ids_sort_numerically(tmp_path):
    make_ground_truth(tmp_path, tasks=("10", "9"), episodes=("2",), num_frames=2)
    assert [e.task for e in GroundTruth(tmp_path).episodes] == ["9", "10"]


def test_generated_skips_png_and_json_entries(tmp_path):
    root = tmp_path / "m_dataset"
    write_trial(root, "1", "10", "1", moving_square_frames(3))
    write_trial(root, "1", "10", "2", moving_square_frames(3))
    (root / "1" / "10" / "preview.png").mkdir()  # official tool skips .png/.json entries
    (root / "1" / "10" / "meta.json").write_text("{}")
    generated = Generated(root)
    assert generated.name == "m"
    assert [t.trial for t in generated.trials] == ["1", "2"]
    assert (root / "1" / "10" / "1" / "video" / "frame_00000.png").is_file()


def test_mp4_videos_are_accepted(tmp_path):
    # Smooth content: H.264's chroma subsampling cannot keep per-pixel noise.
    gradient = np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None].repeat(48, 0).repeat(3, 2)
    frames = np.stack([np.roll(gradient, 4 * t, axis=1) for t in range(5)])
    write_mp4(frames, tmp_path / "gt" / "1" / "10" / "video.mp4", fps=5)
    episode = GroundTruth(tmp_path / "gt").episodes[0]
    decoded = read_video(episode.video_path())
    assert decoded.shape == (5, 48, 64, 3)
    assert np.abs(decoded.astype(int) - frames).mean() < 6  # lossy, but the same video


def test_problems_name_paths(tmp_path):
    gt_root = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10", "x_1"), num_frames=2)
    (gt_root / "2").mkdir()  # empty task
    empty = gt_root / "1" / "12" / "video"
    empty.mkdir(parents=True)
    truncated = gt_root / "1" / "10" / "video" / "frame_00001.jpg"
    truncated.write_bytes(truncated.read_bytes()[:40])
    problems = {(p.path.relative_to(gt_root).as_posix(), p.severity) for p in GroundTruth(gt_root).problems()}
    assert ("2", "error") in problems
    assert ("1/12/video", "error") in problems
    assert ("1/x_1", "warning") in problems  # non-numeric id
    with pytest.raises(DataError, match="frame_00001.jpg: unreadable image"):
        read_video(gt_root / "1" / "10")


def test_generated_folder_name_and_pairing(tmp_path):
    gt = GroundTruth(make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10", "11"), num_frames=3))
    root = tmp_path / "mymodel"
    write_trial(root, "1", "10", "1", moving_square_frames(3))
    write_trial(root, "1", "10", "2", moving_square_frames(4))
    write_trial(root, "1", "99", "1", moving_square_frames(3))
    generated = Generated(root)
    assert any("does not end in '_dataset'" in p.message for p in generated.problems())
    messages = {(p.path.name, p.message.split(";")[0]) for p in pairing_problems(gt, generated)}
    assert ("99", "generated episode has no ground truth") in messages
    assert ("11", "ground-truth episode has no generated trials") in messages
    assert any("different frame counts" in m for _, m in messages)


def test_write_episode_refuses_to_overwrite(gt_dataset):
    with pytest.raises(DataError, match="already exists"):
        write_episode(gt_dataset, "1", "10", moving_square_frames(2), "x")


def test_sidecar_validation(tmp_path):
    with pytest.raises(DataError, match="eef_pose must be"):
        write_episode(
            tmp_path, "1", "1", moving_square_frames(2), "x", sidecar=Sidecar(eef_pose=np.zeros((2, 7)))
        )
    episode_dir = tmp_path / "1" / "2"
    write_episode(tmp_path, "1", "2", moving_square_frames(2), "x", sidecar=Sidecar(fps=5))
    (episode_dir / "ewmbench" / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="meta.json: sidecar is not valid JSON"):
        _ = GroundTruth(tmp_path).episode("1", "2").sidecar


def test_sidecar_round_trip_with_calibration(tmp_path):
    k = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    extrinsics = np.repeat(np.eye(4)[None], 2, axis=0)
    sidecar = Sidecar(
        fps=10,
        views=["head", "hand_left"],
        intrinsics={"head": k},
        extrinsics={"head": extrinsics},
        meta={"seed": 3},
    )
    frames = moving_square_frames(2)
    write_episode(tmp_path, "1", "1", frames, "x", sidecar=sidecar, extra_views={"hand_left": frames})
    loaded = GroundTruth(tmp_path).episodes[0].sidecar
    np.testing.assert_array_equal(loaded.intrinsics["head"], k)
    assert loaded.extrinsics["head"].shape == (2, 4, 4) and loaded.meta["seed"] == 3
    assert read_video(GroundTruth(tmp_path).episodes[0].video_path("hand_left")).shape == (2, 48, 64, 3)


def test_data_info_summary(gt_dataset, tmp_path):
    summary = summarise(gt_dataset)
    assert summary["kind"] == "ground-truth"
    assert (summary["tasks"], summary["episodes"]) == (2, 4)
    assert summary["frames"] == {"min": 6, "max": 6, "total": 24}
    assert summary["resolutions"] == {"64x48": 4}
    assert summary["extensions"]["eef_pose"] == 4
    write_trial(tmp_path / "m_dataset", "1", "10", "1", moving_square_frames(3))
    generated = summarise(tmp_path / "m_dataset")
    assert (generated["kind"], generated["trials"]) == ("generated", 1)


def test_frame_size_mismatch_is_reported(tmp_path):
    folder = tmp_path / "video"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "frame_00000.png")
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(folder / "frame_00001.png")
    with pytest.raises(DataError, match="frames have different sizes"):
        read_video(folder)
