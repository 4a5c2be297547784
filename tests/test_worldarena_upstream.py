"""WorldArena 2.0's own code on our bundle and our export (opt-in: a checkout of its repository).

    WORLDARENA_CHECKOUT=/path/to/WorldArena-2.0 pytest tests/test_worldarena_upstream.py

Tested against WorldArena2/WorldArena-2.0 commit f6d046f06368a82b9abc6882ec6fc1fe04c5c0de.
``video_quality_ood/preprocess_datasets.py`` runs as its command line (it needs ``cv2`` and
``tqdm``); ``csv_results/aggregate_results.py`` is imported and called; ``JEDi/batch.py``'s
``intersect_pairs`` runs where its imports (torch, decord, videojedi) are installed
(``WORLDARENA_PYTHON`` names an interpreter that has them, e.g. a separate venv), and is skipped
with the reason otherwise.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ewmbench.data.video import write_mp4
from tests.helpers.cli import ewmbench as cli
from tests.helpers.datasets import make_ground_truth, moving_square_frames
from tests.helpers.submission import submit_static_run

CHECKOUT = os.environ.get("WORLDARENA_CHECKOUT")
pytestmark = pytest.mark.skipif(not CHECKOUT, reason="set WORLDARENA_CHECKOUT to a WorldArena-2.0 checkout")
TASKS, EPISODES = ("1", "2"), ("10", "11")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wa")
    env = {**os.environ, "EWMBENCH_CACHE": str(root / "cache")}
    gt = make_ground_truth(root / "gt", tasks=TASKS, episodes=EPISODES)
    bundle = submit_static_run(root, gt, env, target="worldarena")
    with tarfile.open(bundle) as tar:
        tar.extractall(root / "bundle", filter="data")
    # the ground truth as WorldArena's data is laid out: <root>/<task>/a/b/c/episode<N>.mp4
    summary = []
    for index, task in enumerate(TASKS):
        for episode in EPISODES:
            path = root / "wa_gt" / task / "a" / "b" / "c" / f"episode{episode}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_mp4(moving_square_frames(6, seed=index), path, fps=24)
            summary.append({"gt_path": str(path), "image": str(path.with_suffix(".png")), "prompt": ["move"]})
    (root / "summary.json").write_text(json.dumps(summary))
    return root, env


def test_their_preprocessing_finds_every_video(run):
    root, _ = run
    script = Path(CHECKOUT) / "video_quality_ood" / "preprocess_datasets.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--summary_json",
            str(root / "summary.json"),
            "--gen_video_dir",
            str(root / "bundle" / "videos"),
            "--output_base",
            str(root / "pre"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not found" not in result.stdout + result.stderr
    for task in TASKS:
        for episode in EPISODES:
            frames = sorted(
                (root / "pre" / "generated_dataset" / task / f"episode{episode}" / "1" / "video").glob(
                    "*.jpg"
                )
            )
            assert len(frames) == 6, (task, episode)


def test_their_pairing_pairs_every_video(run):
    root, _ = run
    flat = root / "gt_flat"
    flat.mkdir(exist_ok=True)
    for task in TASKS:
        for episode in EPISODES:
            source = root / "wa_gt" / task / "a" / "b" / "c" / f"episode{episode}.mp4"
            (flat / f"{task}_episode{episode}.mp4").write_bytes(source.read_bytes())
    python = os.environ.get("WORLDARENA_PYTHON", sys.executable)
    # batch.py imports videojedi (the JEPA metric, which needs V-JEPA's own code) at its top;
    # intersect_pairs does not use it, so where it cannot be imported an empty module stands in
    # for it. decord, which opens every paired video, is the real one.
    code = (
        "import sys, types\n"
        "try:\n    import videojedi\n"
        "except ImportError:\n    sys.modules['videojedi'] = types.ModuleType('videojedi'); sys.modules['videojedi'].JEDiMetric = None\n"
        "sys.path.insert(0, sys.argv[1]); from pathlib import Path; import batch\n"
        "names, real, gen = batch.intersect_pairs(Path(sys.argv[2]), Path(sys.argv[3])); print(len(names))\n"
    )
    result = subprocess.run(
        [
            python,
            "-c",
            code,
            str(Path(CHECKOUT) / "video_quality_ood" / "JEDi"),
            str(flat),
            str(root / "bundle" / "videos"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if "ModuleNotFoundError" in result.stderr:
        pytest.skip(
            f"JEDi/batch.py's imports are not installed here ({result.stderr.strip().splitlines()[-1]}); set WORLDARENA_PYTHON"
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(len(TASKS) * len(EPISODES))


def test_their_aggregator_reads_our_export(run):
    root, env = run
    cli("export", root / "run", "--format", "worldarena", "--output", root / "base", env=env)
    spec = importlib.util.spec_from_file_location(
        "aggregate_results", Path(CHECKOUT) / "video_quality_ood" / "csv_results" / "aggregate_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    csv_path = module.aggregate_results(base_dir=str(root / "base"), model_name="static")
    import csv

    rows = list(csv.DictReader(open(csv_path, encoding="utf-8")))
    # one row per episode, under the ids of the submitted videos
    assert sorted(r["Video_ID"] for r in rows) == sorted(
        p.stem for p in (root / "bundle" / "videos").glob("*.mp4")
    )
    exported = json.loads((root / "base" / "output" / "generated_results.json").read_text())
    assert set(exported) >= {"psnr", "ssim"} and np.isfinite(exported["ssim"][0])
