"""The scoring path's shortcuts change no number: stored tracks alone, no frame read for metrics on
tracks, content hashes kept by file signature, trial records appended a chunk at a time (a killed
run resumes), PSNR and SSIM trial by trial, availability without imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ewmbench.data.layout as layout
import ewmbench.data.video as video_module
import ewmbench.data.video_cache as video_cache
import ewmbench.run.runner as runner
import ewmbench.run.score as score_module
from ewmbench.data.layout import Generated, GroundTruth
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import MissingExtra, require_installed
from ewmbench.metrics.registry import metric_registry
from ewmbench.protocols import resolve_protocol
from ewmbench.run import RunConfig, Scorer, build_plan, chunk_size, chunked, evaluate
from ewmbench.run.items import MIN_BATCHED_CHUNK
from tests.bad_input.tools import write_generated
from tests.helpers.datasets import make_ground_truth, moving_square_frames
from tests.helpers.motion_trials import generated_track, gt_track

FRAMES = 12


def _tracks(root: Path, with_videos: bool) -> tuple[Path, Path]:
    """GT of 2 episodes with traj.npy; 2 trials each with traj.npy, and with videos or without."""
    gt = make_ground_truth(root / "gt", tasks=("1",), episodes=("10", "11"), num_frames=FRAMES)
    rng = np.random.default_rng(7)
    generated = root / "gen_dataset"
    for episode in GroundTruth(gt).episodes:
        track = gt_track(rng, FRAMES)
        episode.traj_path.parent.mkdir(parents=True)
        np.save(episode.traj_path, track)
        clean = np.where(track == -1, track.mean(), track)
        for trial in ("1", "2"):
            folder = generated / episode.task / episode.episode / trial
            if with_videos:
                write_generated(
                    generated, episode.task, episode.episode, trial, moving_square_frames(FRAMES, seed=5)
                )
            (folder / "traj").mkdir(parents=True)
            np.save(folder / "traj" / "traj.npy", generated_track(rng, clean))
    return gt, generated


def _config(root: Path, gt: Path, generated: Path, name: str, metrics: list[str]) -> RunConfig:
    return RunConfig(
        output=root / name,
        gt=gt,
        generated=generated,
        metrics=metrics,
        protocol="ewmbench-v1",
        cache_dir=root / "cache",
        device="cpu",
    )


def test_trials_with_only_tracks_score_the_motion_metrics_as_with_videos(tmp_path):
    with_videos = _tracks(tmp_path / "a", with_videos=True)
    tracks_only = _tracks(tmp_path / "b", with_videos=False)
    reference = evaluate(
        _config(tmp_path, *with_videos, "a-out", ["trajectory_consistency"]), show_progress=False
    )
    result = evaluate(
        _config(tmp_path, *tracks_only, "b-out", ["trajectory_consistency"]), show_progress=False
    )
    pd.testing.assert_frame_equal(result.rows, reference.rows, check_exact=True)
    assert len(result.rows) == 4 and result.rows[["hsd", "ndtw", "dyn"]].notna().all().all()
    assert result.summary["problems"] == []  # a track without a video is no problem for motion
    assert (tmp_path / "b-out" / "ewmbm_final_table.csv").read_text() == (
        tmp_path / "a-out" / "ewmbm_final_table.csv"
    ).read_text()


def test_metrics_on_frames_skip_track_only_trials_with_a_warning(tmp_path):
    gt, generated = _tracks(tmp_path, with_videos=False)
    write_generated(generated, "1", "10", "3", moving_square_frames(FRAMES, seed=5))  # one trial with a video
    result = evaluate(
        _config(tmp_path, gt, generated, "out", ["psnr", "trajectory_consistency"]), show_progress=False
    )
    rows = result.rows.set_index(["task_id", "episode_id", "trial_id"])
    assert rows["psnr"].notna().tolist() == [False, False, True, False, False]
    assert rows.loc[("1", "10", "1"), "hsd"] == rows.loc[("1", "10", "1"), "hsd"]  # scored
    warned = [p for p in result.summary["problems"] if "only traj/traj.npy" in p["message"]]
    assert len(warned) == 4 and {p["severity"] for p in warned} == {"warning"}


def test_metrics_on_tracks_read_no_frame_and_probe_no_device(tmp_path, monkeypatch):
    gt, generated = _tracks(tmp_path, with_videos=True)
    reference = evaluate(
        _config(tmp_path, gt, generated, "ref", ["trajectory_consistency"]), show_progress=False
    )

    def refuse(*args, **kwargs):
        raise AssertionError("read a frame")

    for module, name in ((video_module, "read_image"), (video_module, "video_size"), (layout, "video_size")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(score_module, "video_size", refuse)
    monkeypatch.setattr(
        score_module, "default_device", lambda: (_ for _ in ()).throw(AssertionError("probed"))
    )
    config = _config(tmp_path, gt, generated, "again", ["trajectory_consistency"])
    config.device = None
    result = evaluate(config, show_progress=False)
    pd.testing.assert_frame_equal(result.rows, reference.rows, check_exact=True)


def test_content_hashes_are_kept_by_signature_and_redone_when_a_file_changes(tmp_path, monkeypatch):
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=3)
    video = GroundTruth(gt).episodes[0].video_path()
    first = VideoCache(tmp_path / "cache").content_hash(video)
    assert first == video_module.content_hash(video)
    calls = []
    original = video_cache.content_hash
    monkeypatch.setattr(video_cache, "content_hash", lambda v: calls.append(v) or original(v))
    assert VideoCache(tmp_path / "cache").content_hash(video) == first and calls == []  # a new process
    frame = sorted(video.iterdir())[1]
    data = frame.read_bytes()
    frame.write_bytes(data + b"\0")  # other bytes: another signature
    changed = VideoCache(tmp_path / "cache").content_hash(video)
    assert calls == [video] and changed == original(video) != first
    # A damaged index is a cache miss, not an error.
    (tmp_path / "cache" / video_cache.HASH_INDEX).write_bytes(b"not a database")
    for suffix in ("-wal", "-shm"):
        Path(str(tmp_path / "cache" / video_cache.HASH_INDEX) + suffix).unlink(missing_ok=True)
    assert VideoCache(tmp_path / "cache").content_hash(video) == changed


def _motion_scorer(tmp_path, gt, generated):
    episodes = {e.key: e for e in GroundTruth(gt).episodes}
    pairs = [(episodes[(t.task, t.episode)], t) for t in Generated(generated).trials]
    scorer = Scorer(tmp_path / "out", resolve_protocol("ewmbench-v1"), VideoCache(tmp_path / "cache"), "cpu")
    return scorer, metric_registry()["trajectory_consistency"](), pairs


def test_trial_records_are_appended_once_per_chunk_and_a_torn_line_is_scored_again(tmp_path):
    gt, generated = _tracks(tmp_path, with_videos=False)
    scorer, metric, pairs = _motion_scorer(tmp_path, gt, generated)
    records = scorer.score_trials(metric, pairs)
    files = list((tmp_path / "out" / "scores" / metric.name).glob("records-*.jsonl"))
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 4 and scorer.computed == 4
    one_by_one = [
        metric.score_trial(scorer.trial_inputs(e, t), resolve_protocol("ewmbench-v1").settings(metric.name))
        for e, t in pairs
    ]
    assert [r["values"] for r in records] == one_by_one
    # A killed writer leaves a torn last line: that trial alone is scored again, by a new process.
    lines = files[0].read_bytes().splitlines(keepends=True)
    files[0].write_bytes(b"".join(lines[:3]) + lines[3][:20])
    again, _, _ = _motion_scorer(tmp_path, gt, generated)
    assert [r["values"] for r in again.score_trials(metric, pairs)] == one_by_one
    assert again.computed == 1
    reader, _, _ = _motion_scorer(tmp_path, gt, generated)
    reader.read_only = True
    assert [r["values"] for r in reader.score_trials(metric, pairs)] == one_by_one


def test_killed_motion_run_resumes_to_the_same_rows(tmp_path, monkeypatch):
    gt, generated = _tracks(tmp_path, with_videos=False)
    metrics = ["trajectory_consistency", "psnr"]
    reference = evaluate(_config(tmp_path, gt, generated, "reference", metrics), show_progress=False)
    monkeypatch.setattr(runner, "build_record", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # killed after scoring, before the run's files
        evaluate(_config(tmp_path, gt, generated, "killed", metrics), show_progress=False)
    monkeypatch.undo()
    resumed = evaluate(_config(tmp_path, gt, generated, "killed", metrics), show_progress=False)
    pd.testing.assert_frame_equal(resumed.rows, reference.rows, check_exact=True)
    assert resumed.summary["scored_now"] == 0


def test_chunks_of_batched_metrics_hold_at_least_256_trials_and_pixel_metrics_go_trial_by_trial(tmp_path):
    registry = metric_registry()
    motion, psnr, ssim = registry["trajectory_consistency"](), registry["psnr"](), registry["ssim"]()
    assert chunk_size(motion) >= MIN_BATCHED_CHUNK and chunk_size(motion, 300, 2) >= MIN_BATCHED_CHUNK
    assert chunk_size(psnr) < MIN_BATCHED_CHUNK
    gt, generated = _tracks(tmp_path, with_videos=True)
    episodes = {e.key: e for e in GroundTruth(gt).episodes}
    pairs = [(episodes[(t.task, t.episode)], t) for t in Generated(generated).trials]
    items = build_plan([psnr, motion, ssim], pairs)
    assert [i.metric_name for i in items] == ["psnr", "ssim"] * 4 + ["trajectory_consistency"] * 4
    assert [i.pairs[0] for i in items[:8:2]] == pairs
    chunks = chunked(items, lambda m: chunk_size(m))
    assert [len(c) for c in chunks] == [8, 4]


def test_psnr_and_ssim_decode_each_video_once(tmp_path, monkeypatch):
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10", "11"), num_frames=4)
    for episode in ("10", "11"):
        for trial in ("1", "2"):
            write_generated(
                tmp_path / "m_dataset", "1", episode, trial, moving_square_frames(4, seed=int(trial))
            )
    reads = []
    original = video_cache.read_video
    monkeypatch.setattr(video_cache, "read_video", lambda v: reads.append(Path(v)) or original(v))
    result = evaluate(
        _config(tmp_path, gt, tmp_path / "m_dataset", "out", ["psnr", "ssim"]), show_progress=False
    )
    assert len(reads) == len(set(reads)) == 2 + 4
    assert result.rows[["psnr", "ssim"]].notna().all().all()


def test_availability_is_found_without_importing():
    require_installed("json", "all")
    with pytest.raises(MissingExtra, match="no_such_module_here"):
        require_installed("no_such_module_here", "neural", "a test")
    code = (
        "import sys; from ewmbench.metrics.registry import metric_registry; from ewmbench.protocols import resolve_protocol\n"
        "p = resolve_protocol('ewmbench-v1')\n"
        "for name, cls in metric_registry().items():\n"
        "    try: cls().check_available(p.settings(name) if name in p.metrics else {})\n"
        "    except Exception: pass\n"
        "print(sorted(m for m in ('torch', 'open_clip', 'transformers', 'huggingface_hub', 'pandas', 'scipy', 'cv2') if m in sys.modules))"
    )
    env = {**os.environ, "HF_HUB_CACHE": "/nonexistent/hub", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"


def test_listing_and_motion_on_stored_tracks_import_no_heavy_library(tmp_path):
    """``ewmbench metrics`` and ``ewmbench evaluate --metrics trajectory_consistency`` on stored
    tracks, each in a fresh process: neither imports torch, OpenCV or the neural libraries, and
    listing imports no pandas or scipy either."""
    gt, generated = _tracks(tmp_path, with_videos=False)
    heavy = ("torch", "open_clip", "transformers", "huggingface_hub", "cv2", "pandas", "scipy")
    evaluate_args = [
        "evaluate",
        "--gt",
        str(gt),
        "--generated",
        str(generated),
        "--output",
        str(tmp_path / "out"),
    ]
    evaluate_args += ["--metrics", "trajectory_consistency", "--protocol", "ewmbench-v1"]
    env = {**os.environ, "EWMBENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    imported = {}
    for name, args in (("metrics", ["metrics", "--json"]), ("evaluate", evaluate_args)):
        code = (
            "import sys, json\n"
            "from typer.testing import CliRunner\n"
            "from ewmbench.cli import app\n"
            f"done = CliRunner().invoke(app, {args!r})\n"
            "assert done.exit_code == 0, done.output\n"
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        imported[name] = done.stdout.strip().splitlines()[-1]
    assert imported["metrics"] == "[]"
    assert imported["evaluate"] == '["pandas", "scipy"]'  # the run's rows; the official convex hull
    assert (tmp_path / "out" / "rows.csv").is_file()


def test_a_cached_hub_weight_is_found_where_huggingface_hub_finds_it(tmp_path, monkeypatch):
    from huggingface_hub import hf_hub_download

    from ewmbench.perception import weights

    item = next(s for s in weights.weight_specs().values() if s.repo and s.filename)
    monkeypatch.setattr(weights, "_hub_cache_dir", lambda: tmp_path / "hub")
    assert weights._hub_cached(item) is None  # not cached
    folder = tmp_path / "hub" / f"{item.repo_type}s--{item.repo.replace('/', '--')}"
    commit = "a" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / item.revision).write_text(commit)
    target = folder / "snapshots" / commit / item.filename
    target.parent.mkdir(parents=True)
    target.write_bytes(b"weights")
    assert weights._hub_cached(item) == target == weights.resolve(item.id)
    found_by_hub = hf_hub_download(
        item.repo,
        item.filename,
        revision=item.revision,
        repo_type=item.repo_type,
        cache_dir=tmp_path / "hub",
        local_files_only=True,
    )
    assert Path(found_by_hub) == target


@pytest.mark.skipif(
    not os.environ.get("EWMBENCH_OFFICIAL_EWMBENCH"),
    reason="set EWMBENCH_OFFICIAL_EWMBENCH to a checkout of AgibotTech/EWMBench (tested against 3a5531c)",
)
def test_track_only_trials_score_as_the_official_code_does(tmp_path):
    """Opt-in: the official ``compute_trajectory_consistency`` on a folder of track-only trials
    gives exactly our official-format results."""
    import importlib.util
    import json

    checkout = Path(os.environ["EWMBENCH_OFFICIAL_EWMBENCH"])
    spec = importlib.util.spec_from_file_location(
        "official_trajectory", checkout / "EWMBench" / "trajectory_consistency.py"
    )
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)
    gt, generated = _tracks(tmp_path, with_videos=False)
    theirs = official.compute_trajectory_consistency(gt_path=str(gt), data_base=str(generated))
    evaluate(_config(tmp_path, gt, generated, "out", ["trajectory_consistency"]), show_progress=False)
    ours = json.loads((tmp_path / "out" / "gen_results.json").read_text())["trajectory_consistency"]
    assert ours == theirs


def test_v1_video_scores_sum_frames_left_to_right_as_the_official_loop():
    """zip_divide_by_gt adds frame scores one after another (the official ``total += value``),
    not pairwise as ``np.sum`` does from 9 values on: the last bits of a 100-frame video differ."""
    from ewmbench.metrics.fidelity import video_score

    scores = [1.0, 1e16, -1e16, 1.0] * 3
    # Left to right: 1; 1 + 1e16 rounds to 1e16 (the 1 is lost); 0; 1; 2; 1e16 + 2 (exact: even);
    # 2; 3; 4; 1e16 + 4 (exact); 4; 5. numpy's pairwise sum loses other ones and gives 1.
    assert float(np.sum(scores)) == 1.0
    frames = np.zeros((len(scores), 2, 2, 3), np.uint8)
    value = video_score(frames, frames, lambda p, g, it=iter(scores): next(it), "zip_divide_by_gt", threads=1)
    assert value == 5.0 / 12
