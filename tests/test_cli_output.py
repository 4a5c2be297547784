"""What a new user reads: help, tables at 80 columns, task names, special values, skipped metrics."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ewmbench.cli import app

cli = CliRunner()


def test_flags_show_no_value_placeholder_in_help():
    result = cli.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    dry_run = next(line for line in result.output.splitlines() if "--dry-run" in line)
    assert "<bool>" not in dry_run and "BOOLEAN" not in dry_run
    assert "<bool>" not in cli.invoke(app, ["--help"], env={"COLUMNS": "200"}).output


def test_listings_at_80_columns_keep_every_name_whole():
    result = cli.invoke(app, ["models"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "…" not in result.output
    for name in ("cosmos-predict2", "ltx-video", "ge-base", "static"):
        assert name in lines  # each record's heading is the whole name, on a line of its own
    assert any(line.startswith("  views: ") for line in lines)
    weights = cli.invoke(app, ["weights", "list"], env={"COLUMNS": "80"})
    assert weights.exit_code == 0 and "…" not in weights.output
    assert "clip-vitb32-openai" in weights.output.splitlines()


def test_wide_terminal_keeps_the_table():
    result = cli.invoke(app, ["weights", "list"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert "┃ id" in result.output  # the table's header row


def test_run_table_names_tasks_explains_inf_and_summarises_skips(gt_dataset, tmp_path, monkeypatch):
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
            "1",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1 task1" in out and "2 task2" in out  # the sidecars' task names beside the ids
    assert "inf" in out and "inf: PSNR of identical frames" in out
    skipped = [line for line in out.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and "ewmbench metrics" in skipped[0]
    assert out.count("weights not downloaded") <= 1


def test_record_and_summary_carry_task_names(gt_dataset, tmp_path, monkeypatch):
    import json

    from ewmbench import load_run

    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    output = tmp_path / "r"
    result = cli.invoke(
        app,
        ["run", "--model", "static", "--dataset", str(gt_dataset), "--output", str(output), "--trials", "1",
         "--metrics", "psnr", "--protocol", "ewmbench-v2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((output / "summary.json").read_text())["task_names"] == {"1": "task1", "2": "task2"}
    assert load_run(output).dataset.task_names == {"1": "task1", "2": "task2"}
    assert "inf:" not in result.output  # v2 caps PSNR: nothing to explain


def test_pybullet_prints_no_banner():
    code = "from ewmbench.sim.execute import _connect; _connect(); print('connected')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "connected"
    assert "pybullet build time" not in done.stderr + done.stdout


def test_import_accepts_sample_as_ground_truth(sample_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(sample_cache))
    videos = tmp_path / "videos"
    videos.mkdir()
    result = cli.invoke(
        app,
        ["import", "--videos", str(videos), "--gt", "sample", "--name", "m", "--output", str(tmp_path / "o")],
    )
    assert "does not exist" not in result.output
    assert result.exit_code == 0, result.output
    assert "imported 0 trial(s)" in result.output and "8 GT episode(s) received no video" in result.output


@pytest.mark.slow
def test_models_try_runs_a_tiny_pipeline_on_the_sample(sample_cache, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    cache = tmp_path / "cache"
    (cache / "datasets").mkdir(parents=True)
    for entry in (sample_cache / "datasets").iterdir():
        (cache / "datasets" / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
    monkeypatch.setenv("EWMBENCH_CACHE", str(cache))
    result = cli.invoke(app, ["models", "try", "ltx-video"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "ltx-video runs here: 8 trial(s) generated and scored" in result.output
    assert "1 pick_place" in result.output
    assert (cache / "tiny-pipelines" / "ltx-video" / "model_index.json").is_file()
    rows = (cache / "tiny-runs" / "ltx-video" / "rows.csv").read_text().splitlines()
    assert rows[0].split(",")[3:] == ["psnr", "ssim"] and len(rows) == 9


def test_models_try_refuses_what_needs_a_checkout():
    result = cli.invoke(app, ["models", "try", "ge-base"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "Genie-Envisioner checkout" in result.output and "ltx-video" in result.output


def test_a_refusal_lists_every_problem_at_once(tmp_path):
    result = cli.invoke(
        app,
        ["run", "--model", "ge-base", "--dataset", str(tmp_path / "nowhere"), "--metrics", "psnr,foo",
         "--device", "cuda:3", "--trials", "0", "--output", str(tmp_path / "o"), "--dry-run"],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 5, result.output
    for needle in (
        "--dataset",
        "--model-option",
        "--metrics: unknown metric 'foo'",
        "--device cuda:3",
        "--trials",
    ):
        assert sum(needle in line for line in errors) == 1, needle
    assert not (tmp_path / "o").exists()


def test_dry_run_says_which_metrics_will_be_skipped(gt_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    result = cli.invoke(
        app,
        ["run", "--model", "static", "--dataset", str(gt_dataset), "--output", str(tmp_path / "o"), "--dry-run",
         "--metrics", "psnr,diversity"],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "score under ewmbench-v1: psnr\n" in result.output
    assert "will skip 1 metric(s): diversity (weights not downloaded)" in result.output
    assert not (tmp_path / "o").exists()
