"""Fixtures of the bad-input suite: a pristine tiny dataset, copied afresh for every case."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bad_input.tools import FRAMES, Workspace, write_generated
from tests.helpers.datasets import make_ground_truth, moving_square_frames


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Path:
    """GT: task 1, episodes 10 and 11, 4 frames of 64x48 with sidecars; one trial per episode."""
    root = tmp_path_factory.mktemp("pristine")
    make_ground_truth(root / "gt", tasks=("1",), episodes=("10", "11"), num_frames=FRAMES)
    for index, episode in enumerate(("10", "11")):
        write_generated(root / "mine_dataset", "1", episode, "1", moving_square_frames(FRAMES, seed=index))
    return root


@pytest.fixture
def ws(pristine, tmp_path, monkeypatch) -> Workspace:
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    shutil.copytree(pristine / "gt", tmp_path / "gt", symlinks=True)
    shutil.copytree(pristine / "mine_dataset", tmp_path / "mine_dataset", symlinks=True)
    return Workspace(tmp_path)
