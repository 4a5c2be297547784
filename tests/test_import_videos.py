"""``ewmbench import``: mp4s of other sizes, rates and lengths into the generated layout; bad input listed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ewmbench.data.layout import GroundTruth
from ewmbench.data.video import read_video, write_mp4
from ewmbench.data.video_import import import_videos
from ewmbench.errors import ConfigError, DataError
from ewmbench.files import sha256_file
from tests.helpers.datasets import make_ground_truth

ROOT = Path(__file__).resolve().parents[1]


def clip(frames: int, height: int, width: int, value: int) -> np.ndarray:
    out = np.full((frames, height, width, 3), value, np.uint8)
    for t in range(frames):
        out[t, :, : (t + 1) * width // (frames + 1)] = 255 - value  # a bar that grows: frames differ
    return out


@pytest.fixture
def folder(tmp_path):
    gt = make_ground_truth(
        tmp_path / "gt", tasks=("1", "2"), episodes=("10", "11"), num_frames=6
    )  # 6 frames, 48x64, 10 fps
    videos = tmp_path / "videos"
    videos.mkdir()
    write_mp4(clip(12, 96, 128, 40), videos / "1_episode_10.mp4", fps=20)  # twice the rate, twice the size
    write_mp4(clip(3, 48, 80, 60), videos / "1_episode_10_1.mp4", fps=10)  # short, wider: trial 2
    write_mp4(clip(6, 48, 64, 80), videos / "2_episode_011.mp4", fps=10)  # zero-padded episode number
    write_mp4(clip(6, 48, 64, 90), videos / "2_episode_11.mp4", fps=10)  # the same trial again
    write_mp4(clip(6, 48, 64, 100), videos / "9_episode_1.mp4", fps=10)  # no such task
    (videos / "broken_episode_10.mp4").write_bytes(b"not a video")
    (videos / "1_episode_11.mp4").write_bytes(b"\x00" * 100)  # matches, unreadable
    (videos / "notes.txt").write_text("hello")
    return gt, videos


def test_import_by_worldarena_names(folder, tmp_path):
    gt, videos = folder
    before = {p.name: sha256_file(p) for p in videos.iterdir()}
    report = import_videos(videos, gt, "closed", tmp_path / "out")
    assert {(i["task"], i["episode"], i["trial"]) for i in report.imported} == {
        ("1", "10", "1"),
        ("1", "10", "2"),
    }
    assert [d["sources"] for d in report.duplicates] == [["2_episode_011.mp4", "2_episode_11.mp4"]]
    assert {u["source"] for u in report.unmatched} == {
        "9_episode_1.mp4",
        "broken_episode_10.mp4",
        "notes.txt",
    }
    assert [u["source"] for u in report.unreadable] == ["1_episode_11.mp4"]
    assert report.missing == ["1/11", "2/10", "2/11"]
    assert {p.name: sha256_file(p) for p in videos.iterdir()} == before  # sources untouched

    dataset = tmp_path / "out" / "closed_dataset"
    first = read_video(dataset / "1" / "10" / "1" / "video")
    assert first.shape == (6, 48, 64, 3)
    meta = json.loads((dataset / "1" / "10" / "1" / "ewmbench" / "meta.json").read_text())
    assert (
        meta["source"]["file"] == "1_episode_10.mp4"
        and meta["source"]["sha256"] == before["1_episode_10.mp4"]
    )
    assert (
        meta["source"]["frames"],
        meta["source"]["height"],
        meta["source"]["width"],
        meta["source"]["fps"],
    ) == (12, 96, 128, 20.0)
    assert (
        meta["conform"]["head"]["time"] == "by frame rate" and meta["conform"]["head"]["dropped"] == 6
    )  # every other frame
    second = json.loads((dataset / "1" / "10" / "2" / "ewmbench" / "meta.json").read_text())
    assert second["conform"]["head"]["held"] == 3  # 3 frames long: the last one held for 3 more
    assert read_video(dataset / "1" / "10" / "2" / "video").shape == (6, 48, 64, 3)
    saved = json.loads((tmp_path / "out" / "import_report.json").read_text())
    assert len(saved["imported"]) == 2 and len(saved["unmatched"]) == 3


def test_import_by_manifest_and_then_evaluate(folder, tmp_path):
    gt, videos = folder
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "task_id,episode_id,trial_id,path\n"
        "2,11,1,2_episode_11.mp4\n"
        "2,11,2,2_episode_011.mp4\n"
        "2,12,1,2_episode_11.mp4\n"
        "1,10,1,missing.mp4\n"
    )
    report = import_videos(videos, gt, "m", tmp_path / "out", manifest=manifest)
    assert [(i["task"], i["episode"], i["trial"]) for i in report.imported] == [
        ("2", "11", "1"),
        ("2", "11", "2"),
    ]
    assert "no episode 2/12" in report.unmatched[0]["reason"]
    assert report.unreadable[0]["source"] == "missing.mp4"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ewmbench",
            "evaluate",
            "--gt",
            str(gt),
            "--generated",
            str(tmp_path / "out" / "m_dataset"),
            "--output",
            str(tmp_path / "scores"),
            "--metrics",
            "psnr",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "scores" / "rows.csv").is_file()


def test_bad_manifests_and_names_are_refused(folder, tmp_path):
    gt, videos = folder
    bad = tmp_path / "bad.csv"
    bad.write_text("task,episode,path\n1,10,a.mp4\n")
    with pytest.raises(DataError, match="lacks column"):
        import_videos(videos, gt, "x", tmp_path / "o1", manifest=bad)
    with pytest.raises(ConfigError, match="--name"):
        import_videos(videos, gt, "../evil", tmp_path / "o2")
    import_videos(videos, gt, "x", tmp_path / "o3")
    with pytest.raises(ConfigError, match="not empty"):
        import_videos(videos, gt, "x", tmp_path / "o3")
    assert GroundTruth(gt).episodes  # the GT is untouched and still reads
