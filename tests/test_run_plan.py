"""The run as one plan: the protocol file is read once per command, and a finished run carries its
protocol in its record, so compare and the leaderboard read it without looking it up by name."""

import builtins
import io
import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ewmbench
import ewmbench.protocols as protocols
from ewmbench.cli import app
from ewmbench.leaderboard.entries import entry_from_record
from ewmbench.leaderboard.intake import check_record
from ewmbench.leaderboard.rule import load_rule
from ewmbench.results.record import load_run
from tests.helpers.datasets import make_ground_truth

ROOT = Path(__file__).resolve().parents[1]
V1 = (ROOT / "ewmbench" / "protocols" / "ewmbench-v1.yaml").read_text()


def custom_protocol(folder: Path) -> Path:
    """ewmbench-v1 under another name, its overall the mean of task means: a protocol no
    installation knows by name."""
    text = V1.replace("name: ewmbench-v1", "name: lab-protocol", 1).replace(
        "  overall: mean_of_rows", "  overall: mean_of_task_means", 1
    )
    assert text.count("lab-protocol") == 1 and "mean_of_task_means" in text
    path = folder / "lab-protocol.yaml"
    path.write_text(text)
    return path


def cli(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture
def scored(tmp_path, monkeypatch):
    """``ewmbench run`` and ``ewmbench evaluate`` under a custom protocol file, each command's
    reads of it counted (the lookup made uncached, so a second lookup by name would read the file
    again; every open of a file seen); the file is removed afterwards."""
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "cache"))
    gt = make_ground_truth(tmp_path / "gt")
    protocol = custom_protocol(tmp_path)
    common = ["--protocol", protocol, "--metrics", "psnr,ssim", "--device", "cpu"]
    reads = {}
    for command, args in (
        ("run", ["--model", "static", "--dataset", gt, "--trials", "2", "--output", tmp_path / "run"]),
        (
            "evaluate",
            ["--gt", gt, "--generated", tmp_path / "run" / "static_dataset", "--output", tmp_path / "eval"],
        ),
    ):
        with pytest.MonkeyPatch.context() as patch:
            counted: list[str] = []
            real_open = io.open

            def counting_open(file, *a, _counted=counted, _open=real_open, **k):
                if isinstance(file, (str, Path)) and str(file).endswith(".yaml"):
                    _counted.append(str(Path(file).resolve()))
                return _open(file, *a, **k)

            patch.setattr(protocols, "load_protocol", protocols.load_protocol.__wrapped__)
            patch.setattr(io, "open", counting_open)
            patch.setattr(builtins, "open", counting_open)
            cli(command, *args, *common)
        reads[command] = counted.count(str(protocol.resolve()))
    protocol.unlink()  # a finished run needs its protocol file no more
    return tmp_path, gt, reads


def test_the_protocol_file_is_read_once_per_command(scored):
    _, _, reads = scored
    assert reads == {"run": 1, "evaluate": 1}


def test_the_record_embeds_its_protocol(scored):
    tmp_path, _, _ = scored
    record = load_run(tmp_path / "run")
    assert record.protocol.name == "lab-protocol"
    used = record.protocol_used()  # the file is gone: read from the record
    assert used.aggregation["overall"] == "mean_of_task_means" and used.sha256 == record.protocol.sha256
    # the record says where its videos are, and the run's numbers follow the embedded rule
    assert Path(record.model.videos) == (tmp_path / "run" / "static_dataset").resolve()
    frame = record.rows_frame()
    task_means = frame.groupby("task_id")["psnr"].mean()
    assert record.overall["psnr"] == pytest.approx(task_means.mean())


def test_a_tampered_embedded_protocol_is_refused(scored):
    tmp_path, _, _ = scored
    data = json.loads((tmp_path / "run" / "record.json").read_text())
    data["protocol"]["text"] = data["protocol"]["text"].replace("mean_of_task_means", "mean_of_rows")
    (tmp_path / "tampered.json").write_text(json.dumps(data))
    with pytest.raises(ewmbench.errors.DataError, match="does not match the protocol's sha256"):
        load_run(tmp_path / "tampered.json")


def test_compare_reads_a_custom_protocol_run_from_its_record(scored):
    tmp_path, _, _ = scored
    comparison = ewmbench.compare([tmp_path / "run", tmp_path / "eval"], figures=False)
    record = load_run(tmp_path / "run")
    interval = comparison.values[("overall", "psnr", "run")]
    # the comparison's estimate is the protocol's overall rule (mean of task means) on the same rows
    assert interval.estimate == pytest.approx(record.overall["psnr"])
    assert comparison.runs[0].protocol.aggregation["overall"] == "mean_of_task_means"


def test_the_leaderboard_takes_a_custom_protocol_run(scored):
    tmp_path, _, _ = scored
    record = load_run(tmp_path / "run")
    rule = (ROOT / "leaderboards" / "ewmbench" / "rule.yaml").read_text()
    rule = re.sub(
        r"protocol:\n  name: ewmbench-v1\n  version: \"1.0\"\n  sha256: \w+",
        f'protocol:\n  name: lab-protocol\n  version: "1.0"\n  sha256: {record.protocol.sha256}',
        rule,
    )
    rule = rule.replace(
        "dataset_sha256: 35850e055d8113465852085ed983c365a137eefec758b60f124ba166a237beba",
        f"dataset_sha256: {record.dataset.sha256}",
    )
    assert "lab-protocol" in rule and record.dataset.sha256 in rule
    (tmp_path / "rule.yaml").write_text(rule)
    board_rule = load_rule(tmp_path / "rule.yaml")
    check_record(record, board_rule)  # its values follow from its rows under the embedded protocol
    metadata = {"model_name": "Static", "version": "1"}
    entry = entry_from_record(record, board_rule, metadata, "self-reported", "static-1", {})
    assert entry.protocol["name"] == "lab-protocol"
    assert math.isclose(entry.overall["psnr"], record.overall["psnr"])
