"""`ewmbench data download`: a local folder laid out like the hub snapshot, verification, offline."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ewmbench.cli import app
from ewmbench.data import download as dl
from ewmbench.data.datasets import resolve_dataset
from ewmbench.data.download import DatasetFile, DatasetSpec, download, resolve
from ewmbench.data.layout import write_episode
from ewmbench.errors import DataError, Unavailable


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EWMBENCH_DATASET_EWMBENCH", raising=False)


def make_snapshot(folder: Path, episodes=(("1", "1"), ("1", "2"), ("2", "1"))) -> Path:
    """A folder like the hub snapshot of agibot-world/EWMBench: README.md and gt_dataset.tar."""
    staging = folder.parent / f"{folder.name}-staging" / "gt_dataset"
    for task, episode in episodes:
        frames = np.full((3, 16, 16, 3), int(task) * 50 + int(episode), dtype=np.uint8)
        write_episode(staging, task, episode, frames, instruction=f"task {task}")
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("EWMBench benchmark data\n")
    with tarfile.open(folder / "gt_dataset.tar", "w") as tar:
        tar.add(staging, arcname="gt_dataset")
    return folder


def test_download_from_a_local_snapshot_verifies_and_resolves(tmp_path):
    snapshot = make_snapshot(tmp_path / "snap")
    before = {p: p.stat().st_mtime_ns for p in snapshot.rglob("*")}
    root = download("ewmbench", output=tmp_path / "data", from_dir=snapshot, progress=False)
    assert root == tmp_path / "data" / "gt_dataset"
    assert (
        sorted(p.name for p in root.iterdir()) == ["1", "2"]
        and (root / "2" / "1" / "video" / "frame_00002.jpg").is_file()
    )
    marker = json.loads((tmp_path / "data" / "ewmbench_dataset.json").read_text())
    expected = hashlib.sha256((snapshot / "gt_dataset.tar").read_bytes()).hexdigest()
    assert marker["sha256"] == {"gt_dataset.tar": expected} and marker["episodes"] == 3 and marker["complete"]
    assert marker["repo"] == "agibot-world/EWMBench" and marker["commit"] is None
    assert {p: p.stat().st_mtime_ns for p in snapshot.rglob("*")} == before  # the copy is only read
    # `--dataset ewmbench` finds it, outside the cache too
    assert resolve("ewmbench") == root and resolve_dataset("ewmbench") == root
    # a second call reuses it
    (snapshot / "gt_dataset.tar").unlink()
    assert download("ewmbench", output=tmp_path / "data", from_dir=snapshot, progress=False) == root


def test_download_through_the_hub_path_records_the_commit(tmp_path, monkeypatch):
    snapshot = make_snapshot(tmp_path / "hub" / "snapshots" / ("a" * 40))
    calls = []
    monkeypatch.setattr(
        dl, "_hub_snapshot", lambda item: calls.append(item.source) or (snapshot, snapshot.name)
    )
    root = download("ewmbench", progress=False)
    assert calls == ["agibot-world/EWMBench@main"]
    assert root == tmp_path / "cache" / "datasets" / "ewmbench" / "gt_dataset"
    assert json.loads((root.parent / "ewmbench_dataset.json").read_text())["commit"] == "a" * 40
    assert resolve("ewmbench") == root


def with_spec(monkeypatch, **changes):
    base = dl.spec("ewmbench")
    fields = {**base.__dict__, **changes}
    monkeypatch.setattr(dl, "dataset_specs", lambda: {"ewmbench": DatasetSpec(**fields)})


def test_hash_mismatch_corrupt_and_unsafe_archives_leave_nothing(tmp_path, monkeypatch):
    snapshot = make_snapshot(tmp_path / "snap")
    with_spec(monkeypatch, files=(DatasetFile("gt_dataset.tar", "0" * 64),))
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        download("ewmbench", output=tmp_path / "a", from_dir=snapshot, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / ".tmp-a").exists()
    monkeypatch.undo()
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    data = (snapshot / "gt_dataset.tar").read_bytes()
    (snapshot / "gt_dataset.tar").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="corrupt or truncated archive"):
        download("ewmbench", output=tmp_path / "b", from_dir=snapshot, progress=False)
    assert not (tmp_path / "b").exists() and not (tmp_path / ".tmp-b").exists()
    with tarfile.open(snapshot / "gt_dataset.tar", "w") as tar:
        member = tarfile.TarInfo("../escaped.txt")
        member.size = 2
        tar.addfile(member, io.BytesIO(b"hi"))
    with pytest.raises(DataError, match="unsafe"):
        download("ewmbench", output=tmp_path / "c", from_dir=snapshot, progress=False)
    assert not (tmp_path / "escaped.txt").exists()


def test_a_snapshot_holding_the_folder_unpacked_is_copied(tmp_path):
    snapshot = make_snapshot(tmp_path / "snap")
    with tarfile.open(snapshot / "gt_dataset.tar") as tar:
        tar.extractall(snapshot, filter="data")
    (snapshot / "gt_dataset.tar").unlink()
    root = download("ewmbench", output=tmp_path / "data", from_dir=snapshot, progress=False)
    assert sorted(p.name for p in (root / "1").iterdir()) == ["1", "2"]
    assert json.loads((root.parent / "ewmbench_dataset.json").read_text())["sha256"] == {}
    assert (snapshot / "gt_dataset" / "1" / "1" / "video").is_dir()  # copied, not moved


def test_a_folder_that_is_not_the_snapshot_is_named(tmp_path):
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "README.md").write_text("x")
    with pytest.raises(DataError, match="gt_dataset.tar is missing .*README.md"):
        download("ewmbench", output=tmp_path / "a", from_dir=tmp_path / "snap", progress=False)


def test_offline_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(Unavailable) as missing:
        resolve("ewmbench")
    assert missing.value.fix == "ewmbench data download ewmbench"
    with pytest.raises(Unavailable) as offline:
        download("ewmbench", progress=False)
    assert "ewmbench data download ewmbench --from SNAPSHOT" in offline.value.reason
    assert "hf download agibot-world/EWMBench --repo-type dataset --revision main" in offline.value.reason
    cli = CliRunner()
    result = cli.invoke(app, ["data", "download", "ewmbench"])
    assert result.exit_code == 2 and "--from SNAPSHOT" in result.output
    run = cli.invoke(
        app, ["run", "--model", "static", "--dataset", "ewmbench", "--output", str(tmp_path / "run")]
    )
    assert run.exit_code == 2 and "ewmbench data download ewmbench" in run.output
    unknown = cli.invoke(app, ["data", "download", "imagenet"])
    assert unknown.exit_code == 2 and "unknown dataset 'imagenet'" in unknown.output


def test_cli_download_from_a_copy(tmp_path):
    snapshot = make_snapshot(tmp_path / "snap")
    result = CliRunner().invoke(app, ["data", "download", "ewmbench", "--from", str(snapshot)])
    assert result.exit_code == 0, result.output
    assert (
        "3 episodes" in result.output
        and resolve("ewmbench") == tmp_path / "cache" / "datasets" / "ewmbench" / "gt_dataset"
    )
