import json

from typer.testing import CliRunner

from ewmbench.cli import app

cli = CliRunner()


def test_models_lists_baselines_with_their_needs():
    result = cli.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    models = {m["name"]: m for m in json.loads(result.output)}
    assert models["static"]["conditioning"] == ["image"] and not models["static"]["needs_weights"]
    assert models["ground-truth"]["conditioning"] == []


def test_data_info_exit_codes(gt_dataset, tmp_path):
    ok = cli.invoke(app, ["data", "info", str(gt_dataset), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["episodes"] == 4
    (gt_dataset / "3").mkdir()
    bad = cli.invoke(app, ["data", "info", str(gt_dataset)])
    assert bad.exit_code == 1 and "task folder has no episodes" in bad.output
    missing = cli.invoke(app, ["data", "info", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_run_and_evaluate_from_the_command_line(gt_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    result = cli.invoke(
        app,
        [
            "run",
            "--model",
            "static",
            "--dataset",
            str(gt_dataset),
            "--output",
            str(tmp_path / "r"),
            "--trials",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "psnr" in result.output and "ssim" in result.output
    again = cli.invoke(
        app,
        [
            "evaluate",
            "--gt",
            str(gt_dataset),
            "--generated",
            str(tmp_path / "r" / "static_dataset"),
            "--output",
            str(tmp_path / "e"),
            "--metrics",
            "ssim",
            "--protocol",
            "ewmbench-v2",
        ],
    )
    assert again.exit_code == 0, again.output
    rows = (tmp_path / "e" / "rows.csv").read_text().splitlines()
    assert rows[0] == "task_id,episode_id,trial_id,ssim" and len(rows) == 1 + 8
    bad = cli.invoke(
        app,
        [
            "run",
            "--model",
            "static",
            "--dataset",
            str(gt_dataset),
            "--output",
            str(tmp_path / "x"),
            "--model-option",
            "oops",
        ],
    )
    assert bad.exit_code != 0 and "key=value" in bad.output


def test_metrics_lists_columns_per_protocol_and_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    v1 = {m["name"]: m for m in json.loads(cli.invoke(app, ["metrics", "--json"]).output)}
    v2 = {
        m["name"]: m
        for m in json.loads(cli.invoke(app, ["metrics", "--json", "--protocol", "ewmbench-v2"]).output)
    }
    assert v1["semantics"]["columns"] == ["BLEUScore", "CLIPScore", "logic_constraints"]
    assert v2["semantics"]["columns"][-2:] == ["events_score", "logic_violation"]
    assert v1["psnr"]["status"] == "ready" and v1["fid"]["lower_is_better"] == ["fid"]
    assert v1["diversity"]["status"] == "ewmbench weights download clip-vitb32-openai"


def test_evaluate_from_the_official_preprocessed_layout(tmp_path, monkeypatch):
    """traj/traj.npy next to GT episodes and generated trials are used directly (no detector)."""
    import numpy as np
    import pandas as pd

    from ewmbench.data.layout import write_trial
    from ewmbench.metrics import trajectory_scores
    from tests.helpers.datasets import make_ground_truth, moving_square_frames

    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    gt_root = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=6)
    t = np.linspace(0, 1, 6, dtype=np.float32)
    gt_track = np.stack(
        [np.stack([0.2 + 0.3 * t, 0.5 + 0.2 * t * t], -1), np.stack([0.7 - 0.2 * t, 0.4 + 0.1 * t], -1)], 1
    )
    (gt_root / "1" / "10" / "traj").mkdir()
    np.save(gt_root / "1" / "10" / "traj" / "traj.npy", gt_track)
    generated = tmp_path / "mine_dataset"
    preds = {}
    for trial, shift in (("1", 0.01), ("2", 0.05)):
        write_trial(generated, "1", "10", trial, moving_square_frames(6))
        preds[trial] = (gt_track + np.float32(shift)).astype(np.float32)
        (generated / "1" / "10" / trial / "traj").mkdir()
        np.save(generated / "1" / "10" / trial / "traj" / "traj.npy", preds[trial])
    result = cli.invoke(
        app,
        [
            "evaluate",
            "--gt",
            str(gt_root),
            "--generated",
            str(generated),
            "--output",
            str(tmp_path / "out"),
            "--metrics",
            "trajectory_consistency",
            "--protocol",
            "ewmbench-v1",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "ewmbm_final_table.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == ["task_id", "episode_id", "trial_id", "dyn", "hsd", "ndtw"]
    expected = {
        trial: trajectory_scores(pred, gt_track, protocol="ewmbench-v1") for trial, pred in preds.items()
    }
    for row, trial in zip(table.itertuples(), ("1", "2")):
        assert [row.dyn, row.hsd, row.ndtw] == [f"{expected[trial][k]:.3f}" for k in ("dyn", "hsd", "ndtw")]
    # The official table ends with MEAN (round(mean, 6) of the 3-decimal cells), an empty row and a comment.
    mean, comment = table.iloc[-3], table.iloc[-1]
    assert mean["task_id"] == "MEAN" and comment["task_id"].startswith("# Diversity is calculated")
    assert mean["hsd"] == repr(
        round((float(f"{expected['1']['hsd']:.3f}") + float(f"{expected['2']['hsd']:.3f}")) / 2, 6)
    )


def test_every_size_option_reads_width_by_height():
    import pytest
    import typer

    from ewmbench.cli.common import parse_size

    assert parse_size("640x480") == (640, 480)
    assert parse_size("64X48") == (64, 48)
    assert parse_size(None) is None and parse_size("") is None
    for bad, message in (("640", "WIDTHxHEIGHT"), ("axb", "WIDTHxHEIGHT"), ("4x480", "at least 8x8")):
        with pytest.raises(typer.BadParameter, match=message):
            parse_size(bad)


def test_serve_size_is_width_by_height(monkeypatch):
    from ewmbench.serve import app as service

    started = []
    monkeypatch.setattr(service, "serve", lambda config, *address: started.append(config))
    result = CliRunner().invoke(app, ["serve", "--model", "static", "--size", "64x48"])
    assert result.exit_code == 0, result.output
    assert started[0].size == (48, 64)  # the profile keeps (height, width)
