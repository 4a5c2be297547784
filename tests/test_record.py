"""The run record (ewmbench-run/1): written by the runner, read back exactly, old folders read or refused."""

import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from ewmbench import load_run
from ewmbench.errors import DataError
from ewmbench.protocols import load_protocol
from ewmbench.results.record import SCHEMA, RunRecord, dataset_hash, sha256_text
from ewmbench.run import RunConfig, run


@pytest.fixture(scope="module")
def static_run(tmp_path_factory):
    from tests.helpers.datasets import make_ground_truth

    root = tmp_path_factory.mktemp("record")
    gt = make_ground_truth(root / "gt")
    config = RunConfig(
        output=root / "run",
        dataset=str(gt),
        model="static",
        trials=2,
        protocol="ewmbench-v2",
        cache_dir=root / "cache",
        metrics=["psnr", "ssim", "trajectory_consistency"],
    )
    return run(config, show_progress=False)


def test_runner_writes_a_record_that_matches_the_summary_and_rows(static_run):
    out = static_run.output
    record = load_run(out)
    data = json.loads((out / "record.json").read_text())
    assert data["schema"] == SCHEMA and record.legacy is False
    # the whole protocol file is hashed, not only its metric settings
    protocol = load_protocol("ewmbench-v2")
    from importlib import resources

    text = (resources.files("ewmbench.protocols") / "ewmbench-v2.yaml").read_text()
    assert record.protocol.sha256 == sha256_text(text) == protocol.sha256
    assert (record.protocol.name, record.protocol.version) == ("ewmbench-v2", "2.1")
    assert record.model.name == "static" and record.model.config == {} and record.model.options == {}
    assert (
        record.counts.tasks,
        record.counts.episodes,
        record.counts.trials,
        record.counts.rows_counted,
    ) == (2, 4, 8, 8)  # no hsd: best-of-N keeps every row
    assert record.dataset.tasks == 2 and record.dataset.episodes == 4 and len(record.dataset.sha256) == 64
    assert set(record.columns) == {"psnr", "ssim"}
    assert record.columns["psnr"].direction == "higher" and record.columns["psnr"].group == "fidelity"
    assert record.overall == pytest.approx(static_run.summary["overall"])
    assert record.per_task["ssim"] == pytest.approx(static_run.summary["per_task"]["ssim"])
    assert set(record.skipped) == {"trajectory_consistency"} and record.skipped["trajectory_consistency"].fix
    rows = record.rows_frame()
    expected = pd.read_csv(out / "rows.csv", dtype={"task_id": str, "episode_id": str, "trial_id": str})
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False)
    prov = record.provenance
    assert prov.ewmbench_version and prov.seed == 0 and prov.created and prov.weights == ()
    assert json.loads((out / "provenance.json").read_text())["protocol"]["sha256"] == protocol.sha256


def test_record_round_trips_exactly_and_its_hash_is_stable(static_run, tmp_path):
    record = load_run(static_run.output / "record.json")
    record.rows[0]["psnr"] = math.inf  # infinities and missing values survive as "inf" and null
    record.rows[1]["ssim"] = math.nan
    record.overall["psnr"] = math.inf
    saved = record.save(tmp_path)
    assert saved == tmp_path / "record.json"
    text = saved.read_text()

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    json.loads(text, parse_constant=refuse)  # no NaN/Infinity tokens (the embedded protocol may name them)
    again = load_run(saved)
    assert again.rows[0]["psnr"] == math.inf and math.isnan(again.rows[1]["ssim"])
    assert again.overall["psnr"] == math.inf
    assert again.sha256() == record.sha256()
    again.overall["ssim"] += 1e-9
    assert again.sha256() != record.sha256()


def test_dataset_hash_depends_on_content_not_order():
    a = [("1", "10", "aa"), ("2", "11", "bb")]
    assert dataset_hash(a) == dataset_hash(list(reversed(a)))
    assert dataset_hash(a) != dataset_hash([("1", "10", "aa"), ("2", "11", "bc")])


def test_a_changed_aggregation_changes_the_protocol_hash(tmp_path):
    from importlib import resources

    text = (resources.files("ewmbench.protocols") / "ewmbench-v2.yaml").read_text()
    mine = tmp_path / "mine.yaml"
    mine.write_text(text.replace("overall: mean_of_task_means", "overall: mean_of_rows"))
    assert load_protocol(str(mine)).metrics == load_protocol("ewmbench-v2").metrics
    assert load_protocol(str(mine)).sha256 != load_protocol("ewmbench-v2").sha256


def test_old_run_folders_are_read_with_unknown_hashes(static_run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(
        static_run.output, old, ignore=shutil.ignore_patterns("record.json", "*_dataset", "scores")
    )
    record = load_run(old)
    assert (
        record.legacy
        and record.protocol.sha256 is None
        and record.dataset.sha256 is None
        and record.model.config is None
    )
    assert record.overall == pytest.approx(static_run.summary["overall"])
    assert record.columns["ssim"].direction == "higher" and len(record.rows) == 8
    assert record.columns["ssim"].metric is None  # old files do not say which metric wrote a column
    # older still: no directions in the summary
    summary = json.loads((old / "summary.json").read_text())
    del summary["directions"]
    (old / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(DataError, match="before column directions were recorded"):
        load_run(old)


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "neither record.json nor summary.json"),
        ("summary_without_keys", "lacks model, protocol"),
        ("no_rows", "without rows.csv"),
        ("newer_schema", "'ewmbench-run/9' is not one this version reads"),
        ("foreign_json", "must be a JSON object"),
        ("other_schema", "not an ewmbench run record"),
        ("bad_direction", "direction must be 'higher' or 'lower'"),
        ("bad_value", "expected a number"),
    ],
)
def test_what_is_not_a_run_is_refused_with_the_reason(static_run, tmp_path, case, message):
    folder = tmp_path / case
    folder.mkdir()
    data = json.loads((static_run.output / "record.json").read_text())
    if case == "summary_without_keys":
        (folder / "summary.json").write_text('{"overall": {}}')
    elif case == "no_rows":
        (folder / "summary.json").write_text((static_run.output / "summary.json").read_text())
    elif case == "newer_schema":
        (folder / "record.json").write_text(json.dumps({**data, "schema": "ewmbench-run/9"}))
    elif case == "foreign_json":
        (folder / "record.json").write_text("[1, 2]")
    elif case == "other_schema":
        (folder / "record.json").write_text(json.dumps({**data, "schema": "vbench"}))
    elif case == "bad_direction":
        data["columns"]["psnr"]["direction"] = "up"
        (folder / "record.json").write_text(json.dumps(data))
    elif case == "bad_value":
        data["overall"]["psnr"] = "high"
        (folder / "record.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as caught:
        load_run(folder)
    assert str(folder) in str(caught.value)


def test_load_run_imports_neither_torch_nor_pandas(static_run):
    code = (
        "import sys, ewmbench; r = ewmbench.load_run(sys.argv[1]); "
        "assert r.overall; print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(static_run.output)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_from_dict_rejects_rows_with_undescribed_columns(static_run):
    data = json.loads((static_run.output / "record.json").read_text())
    data["rows"]["columns"].append("mystery")
    for row in data["rows"]["data"]:
        row.append(1.0)
    with pytest.raises(DataError, match="mystery"):
        RunRecord.from_dict(data, "x.json")


def test_weights_used_names_the_detector_file_and_its_hash(tmp_path):
    from types import SimpleNamespace

    from ewmbench.files import sha256_file
    from ewmbench.metrics.registry import metric_registry
    from ewmbench.perception.detector_weights import DetectorChoice
    from ewmbench.run import weights_used

    weights = tmp_path / "my-gripper.pt"
    weights.write_bytes(b"not really a checkpoint")
    episode = SimpleNamespace(
        video_path=lambda: tmp_path / "gt.mp4", traj_path=tmp_path / "missing" / "traj.npy"
    )
    trial = SimpleNamespace(traj_path=tmp_path / "missing" / "traj.npy")
    metric = metric_registry()["trajectory_consistency"]()
    found = weights_used(
        [metric], load_protocol("ewmbench-v1"), {}, [(episode, trial)], DetectorChoice(weights=weights)
    )
    assert [(w.id, w.sha256) for w in found] == [("detector:my-gripper.pt", sha256_file(weights))]
    # a skipped metric used no weights; tracks already on disk need no detector
    assert (
        weights_used(
            [metric],
            load_protocol("ewmbench-v1"),
            {"trajectory_consistency": {}},
            [(episode, trial)],
            DetectorChoice(weights=weights),
        )
        == ()
    )
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "traj.npy").write_bytes(b"")
    tracked = SimpleNamespace(video_path=lambda: tmp_path / "gt.mp4", traj_path=tmp_path / "t" / "traj.npy")
    assert (
        weights_used(
            [metric], load_protocol("ewmbench-v1"), {}, [(tracked, tracked)], DetectorChoice(weights=weights)
        )
        == ()
    )
