"""Opt-in: ge-base and ge-sim end to end on the real Genie-Envisioner code.

Set ``EWMBENCH_GE_REPO`` to a checkout of AgibotTech/Genie-Envisioner (with ``pip install
"ewmbench[ge]"``). Tiny random weights are built from the checkout's own classes
(``tests/helpers/ge_tiny.py``); ``ewmbench run`` then runs each model on one episode of the sample
from a folder outside the checkout, twice with one seed, and the two runs must give the same frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ewmbench.data.video import read_video

GE_REPO = os.environ.get("EWMBENCH_GE_REPO")
pytestmark = pytest.mark.skipif(
    not GE_REPO, reason="set EWMBENCH_GE_REPO to a Genie-Envisioner checkout to run GE's real code"
)
ROOT = Path(__file__).resolve().parents[1]
VIEWS = ("hand_left", "hand_right")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.helpers.ge_tiny import build_ge_base, build_ge_sim

    out = tmp_path_factory.mktemp("ge-tiny")
    repo = Path(GE_REPO).resolve()
    return {"ge-base": build_ge_base(repo, out), "ge-sim": build_ge_sim(repo, out)}


def run_cli(model: str, config: Path, output: Path, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    split = cwd / "one-episode.json"
    split.write_text(json.dumps({"format": "ewmbench-split/1", "tasks": {"1": {"episodes": ["0"]}}}))
    env = {**os.environ, "EWMBENCH_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "ewmbench", "run", "--model", model, "--dataset", "sample"]
    command += ["--model-option", f"repo={GE_REPO}", "--model-option", f"config={config}"]
    command += ["--split", str(split), "--trials", "1", "--seed", "3", "--metrics", "psnr"]
    command += ["--device", "cpu", "--output", str(output)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)


@pytest.mark.parametrize("model, fps", [("ge-base", 5.0), ("ge-sim", 30.0)])
def test_real_ge_runs_the_sample_from_another_folder_and_is_seeded(model, fps, tiny, sample_cache, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert not outside.resolve().is_relative_to(Path(GE_REPO).resolve())
    frames = []
    for attempt in ("a", "b"):
        done = run_cli(model, tiny[model], outside / attempt, outside, sample_cache)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "scored 1 of 1 episodes" in done.stdout
        trial = outside / attempt / f"{model}_dataset" / "1" / "0" / "1"
        meta = json.loads((trial / "ewmbench" / "meta.json").read_text())
        assert meta["info"]["fps"] == fps and meta["model_config"]["sample_size"] == [48, 64]
        views = {"head": read_video(trial / "video")}
        views.update({v: read_video(trial / "ewmbench" / "views" / v) for v in VIEWS})
        frames.append(views)
    for view, first in frames[0].items():
        assert first.shape[0] > 1 and first.std() > 0
        np.testing.assert_array_equal(first, frames[1][view])
