"""From a run folder to a site through the command line: submit, validate, add (self-reported and
--rescore), build; and the leaderboard commands without torch."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.datasets import make_ground_truth

ROOT = Path(__file__).resolve().parents[1]
README = """---
model_name: Static baseline
version: "1"
organization: Lab
release_year: 2026
source_type: open_source
control_type: text_driven
---
Repeats the initial frame.
"""


def cli(*args, env=None, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "ewmbench", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def submitted(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("cli")
    env = {**os.environ, "EWMBENCH_CACHE": str(root / "cache")}
    gt = make_ground_truth(root / "gt")
    cli(
        "run",
        "--model",
        "static",
        "--dataset",
        gt,
        "--trials",
        "2",
        "--metrics",
        "psnr,ssim",
        "--output",
        root / "run",
        env=env,
    )
    record = json.loads((root / "run" / "record.json").read_text())
    board = root / "board"
    (board / "entries").mkdir(parents=True)
    rule = (ROOT / "leaderboards" / "ewmbench" / "rule.yaml").read_text()
    rule = rule.replace(
        "dataset_sha256: 35850e055d8113465852085ed983c365a137eefec758b60f124ba166a237beba",
        f"dataset_sha256: {record['dataset']['sha256']}",
    )
    (board / "rule.yaml").write_text(rule)
    shutil.copy(
        ROOT / "leaderboards" / "ewmbench" / "entries" / "ewmbench-paper-enerverse-ft.json", board / "entries"
    )
    (root / "model_readme.md").write_text(README)
    cli(
        "submit",
        root / "run",
        "--readme",
        root / "model_readme.md",
        "--output",
        root / "bundle.tar.gz",
        env=env,
    )
    return root, board, gt, env


def test_submit_writes_a_worldarena_shaped_bundle(submitted):
    import tarfile

    root, _, _, _ = submitted
    with tarfile.open(root / "bundle.tar.gz") as tar:
        names = sorted(tar.getnames())
    assert names[:3] == ["ewmbench/record.json", "ewmbench/rows.csv", "model_readme.md"]
    assert names[3:] == sorted(
        f"videos/{t}__{e}__{r}.mp4" for t in ("1", "2") for e in ("10", "11") for r in ("1", "2")
    )
    assert "valid" in cli("leaderboard", "validate", root / "bundle.tar.gz").stdout


@pytest.mark.slow
def test_add_self_reported_then_verified_then_build(submitted, tmp_path):
    root, board, gt, env = submitted
    added = cli("leaderboard", "add", root / "bundle.tar.gz", "--board", board, env=env)
    assert "self-reported" in added.stdout
    rescored = cli(
        "leaderboard", "add", root / "bundle.tar.gz", "--board", board, "--rescore", "--gt", gt, env=env
    )
    assert "verified" in rescored.stdout
    entries = {p.stem: json.loads(p.read_text()) for p in (board / "entries").glob("*.json")}
    verified = next(e for e in entries.values() if e["provenance"]["kind"] == "verified")
    self_reported = next(e for e in entries.values() if e["provenance"]["kind"] == "self-reported")
    assert set(verified["ci"]) == {"psnr", "ssim"} and "--rescore" in verified["provenance"]["command"]
    for column in ("psnr", "ssim"):
        low, high = verified["ci"][column]
        assert low <= verified["metrics"]["overall"][column] <= high
    # the bundle's videos are lossless: re-scoring them gives the submitter's numbers exactly
    assert verified["metrics"] == self_reported["metrics"]
    # the same bundle again is a duplicate, with its code and exit status 1
    again = cli("leaderboard", "add", root / "bundle.tar.gz", "--board", board, env=env, check=False)
    assert again.returncode == 1 and "duplicate_submission" in again.stdout
    site = tmp_path / "site"
    cli("leaderboard", "build", "--board", board, "--output", site)
    data = json.loads((site / "leaderboard.json").read_text())
    ids = {e["id"] for b in data["benchmarks"] for e in b["entries"]}
    assert ids == set(entries) and (site / "entries" / f"{verified['id']}.html").is_file()


def test_refusals_print_the_code(tmp_path):
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    result = cli("leaderboard", "validate", tmp_path / "junk.tar.gz", check=False)
    assert result.returncode == 1 and "extract_failed" in result.stdout


@pytest.mark.slow
def test_leaderboard_runs_without_torch(submitted, tmp_path):
    root, board, _, _ = submitted
    copy = tmp_path / "board"
    shutil.copytree(board, copy)
    shutil.rmtree(copy / "entries")
    (copy / "entries").mkdir()
    code = (
        "import sys\n"
        "for name in ('torch', 'torchvision', 'transformers', 'ultralytics', 'pybullet'): sys.modules[name] = None\n"
        "from ewmbench.cli import app\n"
        "for args in (['leaderboard', 'validate', sys.argv[1]], ['leaderboard', 'add', sys.argv[1], '--board', sys.argv[2]],\n"
        "             ['leaderboard', 'build', '--board', sys.argv[2], '--output', sys.argv[3]]):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code in (0, None), (args, exit.code)\n"
        "print(sorted(m for m in ('torch', 'pandas') if sys.modules.get(m) is not None))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(root / "bundle.tar.gz"), str(copy), str(tmp_path / "site")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert len(list((copy / "entries").glob("*.json"))) == 1 and (tmp_path / "site" / "index.html").is_file()
