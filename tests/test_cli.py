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
    result = cli.invoke(app, ["run", "--model", "static", "--dataset", str(gt_dataset), "--output", str(tmp_path / "r"), "--trials", "2"])
    assert result.exit_code == 0, result.output
    assert "psnr" in result.output and "ssim" in result.output
    again = cli.invoke(app, ["evaluate", "--gt", str(gt_dataset), "--generated", str(tmp_path / "r" / "static_dataset"),
                             "--output", str(tmp_path / "e"), "--metrics", "ssim", "--protocol", "ewmbench-v2"])
    assert again.exit_code == 0, again.output
    rows = (tmp_path / "e" / "rows.csv").read_text().splitlines()
    assert rows[0] == "task_id,episode_id,trial_id,ssim" and len(rows) == 1 + 8
    bad = cli.invoke(app, ["run", "--model", "static", "--dataset", str(gt_dataset), "--output", str(tmp_path / "x"), "--model-option", "oops"])
    assert bad.exit_code != 0 and "key=value" in bad.output


def test_metrics_lists_columns_per_protocol_and_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    v1 = {m["name"]: m for m in json.loads(cli.invoke(app, ["metrics", "--json"]).output)}
    v2 = {m["name"]: m for m in json.loads(cli.invoke(app, ["metrics", "--json", "--protocol", "ewmbench-v2"]).output)}
    assert v1["semantics"]["columns"] == ["BLEUScore", "CLIPScore", "logic_constraints"]
    assert v2["semantics"]["columns"][-2:] == ["events_score", "logic_violation"]
    assert v1["psnr"]["status"] == "ready" and v1["fid"]["lower_is_better"] == ["fid"]
    assert v1["diversity"]["status"] == "ewmbench weights download clip-vitb32-openai"
