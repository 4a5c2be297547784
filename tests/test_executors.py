"""Plan -> execute -> collect: every executor gives the serial rows; collect computes nothing."""

from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ewmbench.data.layout import GroundTruth, write_trial
from ewmbench.data.video import read_video
from ewmbench.errors import ConfigError
from ewmbench.metrics.registry import metric_registry
from ewmbench.run import NotScored, RunConfig, build_plan, chunked, evaluate, run
from tests.helpers.datasets import make_ground_truth
from tests.helpers.motion_trials import generated_track, gt_track

METRICS = ["psnr", "ssim", "trajectory_consistency"]  # the weight-free metrics


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """2 tasks x 2 episodes of 16 frames, 2 trials each, with tracks (traj.npy) on both sides."""
    root = tmp_path_factory.mktemp("executors")
    gt = make_ground_truth(root / "gt", num_frames=16)
    rng = np.random.default_rng(3)
    for episode in GroundTruth(gt).episodes:
        clean = gt_track(rng, 16)
        episode.traj_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(episode.traj_path, clean)
        frames = read_video(episode.video_path()).astype(np.int16)
        for trial in ("1", "2"):
            noisy = np.clip(frames + rng.integers(-20, 21, frames.shape), 0, 255).astype(np.uint8)
            written = write_trial(root / "gen_dataset", episode.task, episode.episode, trial, noisy)
            written.traj_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(written.traj_path, generated_track(rng, clean))
    return gt, root / "gen_dataset"


def _evaluate(tmp_path, pair, name, **kwargs):
    gt, generated = pair
    config = RunConfig(
        output=tmp_path / name,
        gt=gt,
        generated=generated,
        metrics=METRICS,
        cache_dir=tmp_path / "cache",
        **kwargs,
    )
    return evaluate(config, show_progress=False)


def _records(output):
    """Every stored record's values, by metric and trial (trial records are lines of one file
    per writing process) or by file (episode and run records)."""
    found = {}
    for path in sorted((output / "scores").rglob("*.json")):
        found[path.relative_to(output).as_posix()] = json.loads(path.read_text())["values"]
    for path in sorted((output / "scores").rglob("records-*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            found[(path.parent.name, record["task"], record["episode"], record["trial"])] = record["values"]
    return found


def test_serial_and_processes_give_the_same_rows_and_records(tmp_path, pair):
    serial = _evaluate(tmp_path, pair, "serial")
    assert list(serial.rows.columns) == [
        "task_id",
        "episode_id",
        "trial_id",
        "psnr",
        "ssim",
        "dyn",
        "hsd",
        "ndtw",
    ]
    assert len(serial.rows) == 8 and serial.rows[["psnr", "ssim", "hsd", "ndtw", "dyn"]].notna().all().all()
    assert serial.summary["scored_now"] == 3 * 8
    processes = _evaluate(tmp_path, pair, "processes", executor="processes", workers=2)
    pd.testing.assert_frame_equal(processes.rows, serial.rows, check_exact=True)
    assert _records(processes.output) == _records(serial.output)
    assert processes.summary["scored_now"] == 3 * 8
    # resumed: nothing is scored again, the rows stay
    again = _evaluate(tmp_path, pair, "processes", executor="processes", workers=2)
    assert again.summary["scored_now"] == 0
    pd.testing.assert_frame_equal(again.rows, serial.rows, check_exact=True)


@pytest.mark.slow
def test_local_ray_gives_the_serial_rows_even_when_a_worker_dies(tmp_path, pair, monkeypatch):
    ray = pytest.importorskip("ray")
    from ewmbench.run import EXECUTORS, run_chunk
    from ewmbench.run.executors import run_ray

    serial = _evaluate(tmp_path, pair, "serial")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # one local Ray for both runs
    try:
        with_ray = _evaluate(tmp_path, pair, "ray", executor="ray", workers=2)
        pd.testing.assert_frame_equal(with_ray.rows, serial.rows, check_exact=True)
        assert _records(with_ray.output) == _records(serial.output)

        # A worker killed mid-chunk (after its first record): Ray retries the chunk elsewhere,
        # the record written before the kill is reused, and the run completes with the same rows.
        marker = tmp_path / "killed-once"

        def dies_once(job, chunk):
            import os

            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return run_chunk(job, chunk)
            run_chunk(job, chunk[:1])
            os._exit(1)

        monkeypatch.setitem(EXECUTORS.registered, "ray", functools.partial(run_ray, task=dies_once))
        killed = _evaluate(tmp_path, pair, "killed", executor="ray", workers=2)
        assert marker.exists()
        pd.testing.assert_frame_equal(killed.rows, serial.rows, check_exact=True)
        assert _records(killed.output) == _records(serial.output)
    finally:
        ray.shutdown()


def test_batched_motion_records_equal_one_by_one(tmp_path, pair):
    """The runner's batched motion path (a chunk of trials at once) writes the per-trial records."""
    from ewmbench.data.layout import Generated
    from ewmbench.data.video_cache import VideoCache
    from ewmbench.protocols import resolve_protocol
    from ewmbench.run import Scorer

    gt, generated = pair
    episodes = {e.key: e for e in GroundTruth(gt).episodes}
    pairs = [(episodes[(t.task, t.episode)], t) for t in Generated(generated).trials]
    metric = metric_registry()["trajectory_consistency"]()
    for protocol in ("ewmbench-v1", "ewmbench-v2"):
        batched = Scorer(
            tmp_path / f"b-{protocol}", resolve_protocol(protocol), VideoCache(tmp_path / "c"), "cpu"
        ).score_trials(metric, pairs)
        one = Scorer(
            tmp_path / f"o-{protocol}", resolve_protocol(protocol), VideoCache(tmp_path / "c"), "cpu"
        )
        single = [one.score_trial(metric, e, t) for e, t in pairs]
        assert [r["values"] for r in batched] == [r["values"] for r in single]
        assert all(r["status"] == "ok" for r in batched)


def test_collect_reads_only_stored_records(tmp_path, pair):
    from ewmbench.data.video_cache import VideoCache
    from ewmbench.protocols import resolve_protocol
    from ewmbench.run import Scorer

    result = _evaluate(tmp_path, pair, "run")
    gt, _ = pair
    episode = GroundTruth(gt).episodes[0]
    reader = Scorer(result.output, resolve_protocol("ewmbench-v1"), VideoCache(tmp_path / "cache"), "cpu")
    psnr = metric_registry()["psnr"]()
    from ewmbench.data.layout import Generated

    trial = next(t for t in Generated(pair[1]).trials if (t.task, t.episode) == episode.key)
    assert reader.stored_trials(psnr, [(episode, trial)])[0]["values"]["psnr"] == pytest.approx(
        float(result.rows.set_index(["task_id", "episode_id", "trial_id"]).loc[trial.key, "psnr"]), rel=1e-12
    )
    shutil.rmtree(result.output / "scores" / "psnr")
    with pytest.raises(NotScored, match="did not finish"):
        reader.stored_trials(psnr, [(episode, trial)])
    assert not (result.output / "scores" / "psnr").exists()  # reading computed nothing


def test_plan_items_and_chunks(pair):
    gt, generated = pair
    from ewmbench.data.layout import Generated

    episodes = {e.key: e for e in GroundTruth(gt).episodes}
    pairs = [(episodes[(t.task, t.episode)], t) for t in Generated(generated).trials]
    registry = metric_registry()
    items = build_plan([registry["psnr"](), registry["diversity"](), registry["fid"]()], pairs)
    assert [i.level for i in items] == ["trial"] * 8 + ["episode"] * 4 + ["dataset"]
    assert [len(i.pairs) for i in items] == [1] * 8 + [2] * 4 + [8]
    chunks = chunked(items, 3)
    assert [len(c) for c in chunks] == [3, 3, 2, 1, 1, 1, 1, 1]


def test_bad_executor_settings_are_refused_before_anything_runs(tmp_path, pair):
    gt, generated = pair
    for kwargs, message in (
        ({"executor": "threads"}, "not one of serial, processes, ray"),
        ({"executor": "processes", "workers": 0}, "--workers"),
    ):
        with pytest.raises(ConfigError, match=message):
            evaluate(
                RunConfig(output=tmp_path / "x", gt=gt, generated=generated, metrics=METRICS, **kwargs),
                show_progress=False,
            )
        assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_command_line_executors_give_the_serial_rows_on_the_sample(tmp_path):
    """`ewmbench run ... --executor processes` on two episodes of the sample: the serial rows."""
    import os
    import subprocess
    import sys

    from ewmbench.data.datasets import default_sample_path

    sample = default_sample_path()
    if not (sample / "1" / "0").is_dir():
        pytest.skip("the sample dataset is not generated here (ewmbench data sample)")
    gt = tmp_path / "gt"
    for episode in ("0", "1"):
        shutil.copytree(sample / "1" / episode, gt / "1" / episode)
    serial = run(
        RunConfig(
            output=tmp_path / "serial",
            model="static",
            dataset=str(gt),
            trials=1,
            metrics=["psnr", "ssim"],
            cache_dir=tmp_path / "cache",
        ),
        show_progress=False,
    )
    assert len(serial.rows) == 2 and serial.rows[["psnr", "ssim"]].notna().all().all()
    out = tmp_path / "processes"
    command = [
        sys.executable,
        "-m",
        "ewmbench",
        "run",
        "--model",
        "static",
        "--dataset",
        str(gt),
        "--trials",
        "1",
        "--metrics",
        "psnr,ssim",
        "--output",
        str(out),
        "--executor",
        "processes",
        "--workers",
        "2",
    ]
    done = subprocess.run(
        command,
        env={**os.environ, "EWMBENCH_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "rows.parquet"),
        pd.read_parquet(serial.output / "rows.parquet"),
        check_exact=True,
    )
