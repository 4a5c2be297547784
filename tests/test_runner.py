import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ewmbench.metrics.fidelity as fidelity
import ewmbench.run.generate as generate_module
import ewmbench.run.preflight as preflight_module
from ewmbench.data.layout import write_trial
from ewmbench.errors import ConfigError
from ewmbench.run import RunConfig, evaluate, run, trial_seed
from tests.helpers.datasets import make_ground_truth, moving_square_frames


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def config(tmp_path, gt, name="run", **kwargs) -> RunConfig:
    kwargs.setdefault("model", "static")
    return RunConfig(output=tmp_path / name, dataset=str(gt), cache_dir=tmp_path / "cache", **kwargs)


def test_static_run_writes_the_run_folder(tmp_path, gt_dataset):
    before = tree_digest(gt_dataset)
    result = run(config(tmp_path, gt_dataset), show_progress=False)
    assert tree_digest(gt_dataset) == before  # inputs never modified
    out = result.output
    for name in (
        "config.json",
        "provenance.json",
        "rows.csv",
        "rows.parquet",
        "summary.json",
        "ewmbm_final_table.csv",
        "static_results.json",
    ):
        assert (out / name).is_file(), name
    rows = pd.read_parquet(out / "rows.parquet")
    assert len(rows) == 4 * 3 and list(rows.columns) == ["task_id", "episode_id", "trial_id", "psnr", "ssim"]
    table = pd.read_csv(out / "ewmbm_final_table.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == ["task_id", "episode_id", "trial_id", "psnr", "ssim"]
    assert table.iloc[-3]["task_id"] == "MEAN"  # then the official empty row and comment row
    # No trajectories and no detector weights for this embodiment: skipped as a whole, with the fix.
    skipped = result.summary["skipped_metrics"]["trajectory_consistency"]
    assert "weights download" in skipped["fix"] and skipped["reason"]
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["seed"] == 0 and provenance["protocol"]["name"] == "ewmbench-v1"
    # static trials repeat the initial frame: 3 trials x 4 episodes of 6 frames in the generated layout
    trial_video = out / "static_dataset" / "1" / "10" / "2" / "video"
    assert len(list(trial_video.glob("frame_*.png"))) == 6


def test_ground_truth_tops_static(tmp_path, gt_dataset):
    for protocol in ("ewmbench-v1", "ewmbench-v2"):
        best = run(
            config(tmp_path, gt_dataset, f"gt-{protocol}", model="ground-truth", protocol=protocol),
            show_progress=False,
        )
        worst = run(
            config(tmp_path, gt_dataset, f"static-{protocol}", protocol=protocol), show_progress=False
        )
        for metric, value in best.summary["overall"].items():
            assert value >= worst.summary["overall"][metric], (protocol, metric)
    assert best.summary["overall"]["psnr"] == 100  # v2 caps identical frames at 100 dB
    assert best.summary["overall"]["ssim"] == pytest.approx(1.0)


def test_rerunning_a_finished_run_does_no_work(tmp_path, gt_dataset, monkeypatch):
    run(config(tmp_path, gt_dataset), show_progress=False)
    calls = []
    monkeypatch.setattr(generate_module, "write_trial", lambda *a, **k: calls.append(a))
    again = run(config(tmp_path, gt_dataset), show_progress=False)
    assert calls == [] and again.summary["scored_now"] == 0


@pytest.mark.parametrize("stage", ["generate", "score"])
def test_killed_run_resumes_to_the_same_table(tmp_path, gt_dataset, monkeypatch, stage):
    reference = run(config(tmp_path, gt_dataset, "reference"), show_progress=False)

    counter = {"n": 0}
    target = (generate_module, "write_trial") if stage == "generate" else (fidelity, "ssim")
    original = getattr(*target)

    def dies_on_the_fifth_call(*args, **kwargs):
        counter["n"] += 1
        if counter["n"] == 5:
            raise KeyboardInterrupt  # what a killed process leaves behind: a partial run folder
        return original(*args, **kwargs)

    monkeypatch.setattr(*target, dies_on_the_fifth_call)
    with pytest.raises(KeyboardInterrupt):
        run(config(tmp_path, gt_dataset, "killed"), show_progress=False)
    counter["n"] = 0
    monkeypatch.setattr(
        *target, lambda *a, **k: (counter.__setitem__("n", counter["n"] + 1), original(*a, **k))[1]
    )
    resumed = run(config(tmp_path, gt_dataset, "killed"), show_progress=False)
    pd.testing.assert_frame_equal(resumed.rows, reference.rows)
    assert (tmp_path / "killed" / "ewmbm_final_table.csv").read_text() == (
        tmp_path / "reference" / "ewmbm_final_table.csv"
    ).read_text()
    # Only what was missing is redone: 4 of 12 trials were generated, or 4 of 12 SSIM rows scored.
    assert counter["n"] == 12 - 4


def test_other_settings_in_an_existing_run_folder_are_refused(tmp_path, gt_dataset):
    run(config(tmp_path, gt_dataset), show_progress=False)
    with pytest.raises(ConfigError, match="seed"):
        run(config(tmp_path, gt_dataset, seed=1), show_progress=False)
    (tmp_path / "user-folder").mkdir()
    (tmp_path / "user-folder" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a run folder"):
        run(config(tmp_path, gt_dataset, "user-folder"), show_progress=False)


def test_unknown_names_are_config_errors(tmp_path, gt_dataset):
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        run(config(tmp_path, gt_dataset, model="nope"), show_progress=False)
    with pytest.raises(ConfigError, match="unknown metric"):
        run(config(tmp_path, gt_dataset, "m", metrics=["psnr", "fvd2"]), show_progress=False)
    with pytest.raises(ConfigError, match="unknown protocol"):
        run(config(tmp_path, gt_dataset, "p", protocol="ewmbench-v9"), show_progress=False)


def test_trial_seeds_are_stable_and_distinct():
    seeds = {trial_seed(0, "1", "10", t) for t in ("1", "2", "3")}
    assert len(seeds) == 3 and trial_seed(0, "1", "10", "1") == trial_seed(0, "1", "10", "1")
    assert trial_seed(1, "1", "10", "1") != trial_seed(0, "1", "10", "1")
    # Pinned: a change here changes every generated video of every user's run.
    # crc32(b"1/10/1") = 306941821; (0 * 1_000_003 + 306941821) % 2**31
    assert trial_seed(0, "1", "10", "1") == 306941821
    assert trial_seed(2, "1", "10", "1") == 2 * 1_000_003 + 306941821


def _seeded_run(gt: Path, output: Path, seed: int, hash_seed: str) -> dict:
    """A run of the seeded model in a fresh interpreter (its own PYTHONHASHSEED)."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.seeded_run", str(gt), str(output), str(seed)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_generated_trials_are_identical_across_processes_of_the_same_seed(tmp_path, gt_dataset):
    first = _seeded_run(gt_dataset, tmp_path / "first", seed=5, hash_seed="1")
    second = _seeded_run(gt_dataset, tmp_path / "second", seed=5, hash_seed="2")
    other = _seeded_run(gt_dataset, tmp_path / "other", seed=6, hash_seed="1")
    assert len(first["frames"]) == 4 * 2 * 6  # 4 episodes x 2 trials x 6 frames
    assert first == second  # same seed, another process: the same bytes and rows
    assert other["frames"].keys() == first["frames"].keys()
    assert all(
        other["frames"][k] != first["frames"][k] for k in first["frames"]
    )  # another seed: other videos
    assert other["rows"] != first["rows"]


def test_evaluate_scores_what_pairs_and_reports_the_rest(tmp_path):
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10", "11"), num_frames=4)
    generated = tmp_path / "mine_dataset"
    good = moving_square_frames(4, seed=0)
    write_trial(generated, "1", "10", "1", good)
    write_trial(generated, "1", "10", "2", good[:2])  # shorter: diluted in v1
    write_trial(generated, "1", "77", "1", good)  # no ground truth
    broken = generated / "1" / "10" / "3" / "video"
    broken.mkdir(parents=True)
    (broken / "frame_00000.jpg").write_bytes(b"not an image")
    before = tree_digest(generated)
    result = evaluate(
        RunConfig(output=tmp_path / "out", gt=gt, generated=generated, cache_dir=tmp_path / "cache"),
        show_progress=False,
    )
    assert tree_digest(generated) == before
    rows = result.rows.set_index("trial_id")
    assert list(rows.index) == ["1", "2", "3"]
    assert rows.loc["2", "ssim"] < rows.loc["1", "ssim"]  # two of four frames: about half
    assert math.isnan(rows.loc["3", "psnr"])  # unreadable: not scored, never a zero
    failed = [n for n in result.summary["notes"] if n["status"] == "failed"]
    assert failed and "not an image" not in failed[0]["reason"] and "frame_00000.jpg" in failed[0]["reason"]
    messages = " | ".join(p["message"] for p in result.summary["problems"])
    assert "no ground truth" in messages and "no generated trials" in messages


def test_rows_are_identical_across_processes_of_the_same_seed(tmp_path, gt_dataset):
    a = run(config(tmp_path, gt_dataset, "a"), show_progress=False)
    b = run(config(tmp_path, gt_dataset, "b"), show_progress=False)
    pd.testing.assert_frame_equal(a.rows, b.rows)
    assert np.isfinite(a.rows["ssim"]).all()


def test_dataset_level_metrics_are_scored_once_per_run(tmp_path, gt_dataset, monkeypatch):
    from ewmbench.metrics.base import Metric

    calls = []

    class TotalFrames(Metric):
        name, group, columns, level = "total_frames", "fidelity", ("total_frames",), "dataset"

        def score_dataset(self, inputs, settings):
            calls.append(len(inputs))
            return {"total_frames": float(sum(len(i.frames()) for i in inputs))}

    monkeypatch.setattr(preflight_module, "metric_registry", lambda: {"total_frames": TotalFrames})
    protocol = tmp_path / "p.yaml"
    protocol.write_text("name: p\nversion: 1\nmetrics:\n  total_frames: {}\n")
    first = run(config(tmp_path, gt_dataset, protocol=str(protocol)), show_progress=False)
    assert first.summary["overall"] == {"total_frames": 4 * 3 * 6.0}  # 4 episodes x 3 trials x 6 frames
    assert list(first.rows.columns) == ["task_id", "episode_id", "trial_id"]  # no per-row column
    again = run(config(tmp_path, gt_dataset, protocol=str(protocol)), show_progress=False)
    assert again.summary["overall"] == first.summary["overall"] and calls == [12]


def test_a_dataset_level_metric_that_cannot_score_is_reported_as_skipped(tmp_path, gt_dataset, monkeypatch):
    from ewmbench.errors import Unavailable
    from ewmbench.metrics.base import Metric

    class NeedsMore(Metric):
        name, group, columns, level = "needs_more", "fidelity", ("needs_more",), "dataset"

        def score_dataset(self, inputs, settings):
            raise Unavailable("12 videos are too few", "score more videos")

    monkeypatch.setattr(preflight_module, "metric_registry", lambda: {"needs_more": NeedsMore})
    protocol = tmp_path / "p.yaml"
    protocol.write_text("name: p\nversion: 1\nmetrics:\n  needs_more: {}\n")
    result = run(config(tmp_path, gt_dataset, protocol=str(protocol)), show_progress=False)
    assert result.summary["overall"] == {}
    assert result.summary["skipped_metrics"] == {
        "needs_more": {"reason": "12 videos are too few", "fix": "score more videos"}
    }


def test_best_of_n_on_a_lower_is_better_column_keeps_the_lowest_trial(tmp_path, gt_dataset, monkeypatch):
    """A protocol that selects trials by a distance must keep the closest trial, not the farthest."""
    from ewmbench.metrics.base import Metric

    class TrialDistance(Metric):
        name, group, columns = "trial_distance", "fidelity", ("trial_distance",)
        lower_is_better = frozenset(columns)

        def score_trial(self, inputs, settings):
            return {"trial_distance": float(inputs.trial.trial)}  # trial 1 is the closest

    monkeypatch.setattr(preflight_module, "metric_registry", lambda: {"trial_distance": TrialDistance})
    protocol = tmp_path / "p.yaml"
    protocol.write_text(
        "name: p\nversion: 1\naggregation: {trial_selection: best_of_n, selection_column: trial_distance}\n"
        "metrics:\n  trial_distance: {}\n"
    )
    result = run(config(tmp_path, gt_dataset, protocol=str(protocol)), show_progress=False)
    assert result.summary["rows_counted"] == 4  # one trial per episode
    assert result.summary["overall"]["trial_distance"] == 1.0
    assert result.summary["directions"] == {"trial_distance": "lower"}
