"""From a run folder to a site through the command line: submit, validate, add (self-reported and
--rescore), build; and the leaderboard commands without torch."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import ewmbench as cli
from tests.helpers.datasets import make_ground_truth
from tests.helpers.submission import MODEL_README, submit_static_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def submitted(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("cli")
    env = {**os.environ, "EWMBENCH_CACHE": str(root / "cache")}
    gt = make_ground_truth(root / "gt")
    submit_static_run(root, gt, env)  # root / 'bundle.tar.gz'
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
    self_reported = next(
        json.loads(p.read_text()) for p in (board / "entries").glob("*.json") if "paper" not in p.name
    )
    rescored = cli(
        "leaderboard",
        "add",
        root / "bundle.tar.gz",
        "--board",
        board,
        "--rescore",
        "--gt",
        gt,
        "--published-at",
        "https://huggingface.co/datasets/lab/static-1",
        env=env,
    )
    assert "verified" in rescored.stdout and "replaces" in rescored.stdout
    entries = {p.stem: json.loads(p.read_text()) for p in (board / "entries").glob("*.json")}
    # one bundle, one entry: the verified entry replaced the self-reported one in place
    assert len(entries) == 2 and self_reported["id"] in entries
    verified = entries[self_reported["id"]]
    assert verified["provenance"]["kind"] == "verified"
    assert set(verified["ci"]) == {"psnr", "ssim"} and "--rescore" in verified["provenance"]["command"]
    # the reproduce command is portable: the bundle's file name, no local folder
    assert str(root) not in verified["provenance"]["command"]
    assert verified["provenance"]["bundle_url"].startswith("https://")
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
    # task names from the ground truth's sidecars reach the entry and its page
    assert verified["task_names"] == {"1": "task1", "2": "task2"}
    assert "task1" in (site / "entries" / f"{verified['id']}.html").read_text()


def test_submit_for_worldarena_names_videos_as_its_code_reads_them(submitted, tmp_path):
    """The fixture is laid out as WorldArena 2.0's code expects (commit f6d046f): a summary.json
    whose ``gt_path`` is ``<root>/<task>/<a>/<b>/<c>/episode<N>.mp4``; ``preprocess_datasets.py``
    looks for ``<gen_dir>/{parts[-5]}_{stem}.mp4``, and ``JEDi/batch.py`` pairs ``*.mp4`` of the
    generated and ground-truth folders by identical stem."""
    import tarfile

    import cv2

    root, _, _, env = submitted
    bundle = tmp_path / "wa.tar.gz"
    cli(
        "submit",
        root / "run",
        "--readme",
        root / "model_readme.md",
        "--output",
        bundle,
        "--target",
        "worldarena",
        env=env,
    )
    with tarfile.open(bundle) as tar:
        names = sorted(tar.getnames())
        readme = tar.extractfile("model_readme.md").read().decode()
        tar.extractall(tmp_path / "wa", filter="data")
    assert names == ["model_readme.md"] + [
        f"videos/{t}_episode{e}.mp4" for t in ("1", "2") for e in ("10", "11")
    ]
    assert "first trial" in readme and "24 fps" in readme
    capture = cv2.VideoCapture(str(tmp_path / "wa" / "videos" / "1_episode10.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == 24 and capture.read()[0]
    capture.release()
    # their preprocessing's lookup and their pairing, on a fixture laid out as they expect
    gen_dir = tmp_path / "wa" / "videos"
    summary, gt_flat = [], tmp_path / "gt_flat"
    gt_flat.mkdir()
    for task in ("1", "2"):
        for episode in ("10", "11"):
            gt_path = tmp_path / "gt" / task / "a" / "b" / "c" / f"episode{episode}.mp4"
            summary.append({"gt_path": str(gt_path), "image": "", "prompt": ["p"]})
            (gt_flat / f"{task}_episode{episode}.mp4").write_bytes(b"")
    for item in summary:
        parts = Path(item["gt_path"]).parts
        assert (gen_dir / f"{parts[-5]}_{parts[-1].split('.')[0]}.mp4").is_file()
    assert {p.stem for p in gen_dir.glob("*.mp4")} == {p.stem for p in gt_flat.glob("*.mp4")}
    assert "valid" in cli("leaderboard", "validate", bundle, "--target", "worldarena").stdout
    # front-matter fields WorldArena does not define are refused before anything is packed
    (tmp_path / "extra.md").write_text(MODEL_README.replace("version:", "params: 2B\nversion:"))
    refused = cli(
        "submit",
        root / "run",
        "--readme",
        tmp_path / "extra.md",
        "--output",
        tmp_path / "x.tar.gz",
        "--target",
        "worldarena",
        env=env,
        check=False,
    )
    assert refused.returncode != 0 and "params" in refused.stdout + refused.stderr
    assert not (tmp_path / "x.tar.gz").exists()


def test_export_vbench_and_worldarena(submitted, tmp_path):
    root, _, _, env = submitted
    cli("export", root / "run", "--format", "vbench", "--output", tmp_path / "vb", env=env)
    (vbench,) = (tmp_path / "vb").glob("*_eval_results.json")
    data = json.loads(vbench.read_text())
    record = json.loads((root / "run" / "record.json").read_text())
    average, items = data["ssim"]
    assert len(items) == 8 and items[0]["video_path"].endswith("/1/10/1/video")
    assert average == pytest.approx(sum(i["video_results"] for i in items) / 8)
    cli("export", root / "run", "--format", "worldarena", "--output", tmp_path / "wa", env=env)
    data = json.loads((tmp_path / "wa" / "output" / "generated_results.json").read_text())
    _, items = data["ssim"]
    # one video per episode (its first trial), a path from which their aggregator parses the id
    assert [i["video_path"] for i in items] == [
        f"generated_dataset/{t}/episode{e}/1/video" for t in ("1", "2") for e in ("10", "11")
    ]
    rows = {(r[0], r[1], r[2]): r for r in record["rows"]["data"]}
    ssim_at = record["rows"]["columns"].index("ssim")
    assert items[0]["video_results"] == pytest.approx(rows[("1", "10", "1")][ssim_at])
    assert items[0]["video_results_normalized"] == items[0]["video_results"]


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
        # pandas is used: the record is recomputed from its rows through the protocol's aggregation
        "print(sorted(m for m in ('torch', 'torchvision', 'transformers') if sys.modules.get(m) is not None))\n"
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
