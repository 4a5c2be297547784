"""Options, output folders, splits, the machine and interruptions: refused before any work (exit 2,
nothing written), or stopped with the place and a way on (exit 3, 130)."""

from __future__ import annotations

import errno
import json
import os
import shutil

import pytest

import ewmbench
from tests.bad_input.cases import check, parametrize, registry
from tests.bad_input.tools import run_cli

CASES, case = registry()


def run(ws, *extra: str, model: str = "static") -> list[str]:
    return [
        "run",
        "--model",
        model,
        "--dataset",
        str(ws.gt),
        "--output",
        str(ws.out),
        "--trials",
        "1",
        "--metrics",
        "psnr",
        *extra,
    ]


# ---------------------------------------------------------------- model and options


@case(2, "--model", "unknown model 'statik'", "did you mean 'static'")
def misspelled_model(ws):
    return run(ws, model="statik")


@case(2, "--model-option", "has no option 'level'")
def option_the_model_does_not_take(ws):
    return run(ws, "--model-option", "level=3")


@case(2, "--model-option", "not valid YAML")
def option_value_not_yaml(ws):
    return run(ws, "--model-option", "x=[1, 2")


@case(2, "--model-option", "expected key=value")
def option_without_equals(ws):
    return run(ws, "--model-option", "noise")


@case(2, "--model-option", "no key")
def option_without_key(ws):
    return run(ws, "--model-option", "=3")


@case(2, "--model-option", "lag")
def option_out_of_range(ws):
    return run(ws, "--model-option", "lag=-3", model="sim")


@case(2, "--model-option", "action_noise")
def option_of_the_wrong_type(ws):
    return run(ws, "--model-option", "action_noise=loud", model="sim")


@case(2, "scene")
def model_needing_what_the_dataset_lacks(ws):
    return run(ws, model="sim")


@case(2, "--trials must be from 1 to 1000, got 0")
def zero_trials(ws):
    return run(ws, "--trials", "0")


@case(2, "--trials must be from 1 to 1000, got -1")
def negative_trials(ws):
    return run(ws, "--trials", "-1")


@case(2, "--trials must be from 1 to 1000, got 1000000000000")
def absurd_trials(ws):
    return run(ws, "--trials", str(10**12))


@case(2, "--trials", "not a valid int")
def trials_not_a_number(ws):
    return run(ws, "--trials", "three")


@case(2, "--metrics", "unknown metric 'ssmi'")
def misspelled_metric_before_generation(ws):
    args = run(ws)
    args[args.index("psnr")] = "psnr,ssmi"
    return args


@case(2, "--dataset", "dataset folder does not exist")
def dataset_missing(ws):
    args = run(ws)
    args[args.index(str(ws.gt))] = str(ws.root / "nowhere")
    return args


@case(0, "all checks passed", "generate 1 trial(s) per episode for 2 episode(s)", nothing_written=True)
def run_dry_run(ws):
    return run(ws, "--dry-run")


# ---------------------------------------------------------------- device


@case(2, "--device 'tpu'", "not a device")
def device_tpu(ws):
    return ws.evaluate("--device", "tpu")


@case(2, "--device 'cuda:x'", "not a device")
def device_cuda_letter(ws):
    return ws.evaluate("--device", "cuda:x")


@case(2, "--detector-weights", "no such file")
def detector_weights_missing(ws):
    return ws.evaluate("--detector-weights", str(ws.root / "missing.pt"))


# ---------------------------------------------------------------- output folder


@case(2, "--output", "is a file")
def output_is_a_file(ws):
    ws.out.write_text("x")
    return ws.evaluate()


@case(2, "inside the input dataset", "--gt")
def output_inside_ground_truth(ws):
    ws.out = ws.gt / "results"
    return ws.evaluate()


@case(2, "inside the input dataset", "--gt")
def output_is_the_ground_truth(ws):
    ws.out = ws.gt
    return ws.evaluate()


@case(2, "inside the input dataset", "--generated")
def output_inside_generated(ws):
    ws.out = ws.gen / "1" / "scores"
    return ws.evaluate()


@case(2, "inside the input dataset", "--dataset")
def run_output_inside_dataset(ws):
    ws.out = ws.gt / "1" / "run"
    return run(ws)


@case(2, "not a run folder", "notes.txt")
def output_holds_other_files(ws):
    ws.out.mkdir()
    (ws.out / "notes.txt").write_text("mine")
    return ws.evaluate()


@case(0, "results in", nothing_written=False)
def output_with_a_leftover_temporary_file(ws):
    ws.out.mkdir()
    (ws.out / ".tmp-config.json").write_text("{")
    return ws.evaluate()


@case(0, "results in", nothing_written=False)
def output_left_by_a_run_that_did_nothing(ws):
    ws.out.mkdir()
    (ws.out / "config.json").write_text(json.dumps({"identity": {"protocol": "something else"}}))
    return ws.evaluate()


@case(0, "results in", nothing_written=False)
def corrupt_config_of_a_run_that_did_nothing(ws):
    ws.out.mkdir()
    (ws.out / "config.json").write_text("{not json")
    return ws.evaluate()


@case(2, "config.json is unreadable", "cannot be resumed safely")
def corrupt_config_of_a_run_with_scores(ws):
    first = run_cli(ws.evaluate(), ws.inputs())
    assert first.code == 0, first.output
    (ws.out / "config.json").write_text("{not json")
    return ws.evaluate()


@case(2, "holds a run with other settings", "protocol")
def resume_with_another_protocol(ws):
    first = run_cli(ws.evaluate(), ws.inputs())
    assert first.code == 0, first.output
    return ws.evaluate("--protocol", "ewmbench-v2")


@case(2, "holds a run with other settings", "seed")
def resume_with_another_seed(ws):
    first = run_cli(run(ws), ws.inputs())
    assert first.code == 0, first.output
    return run(ws, "--seed", "1")


# ---------------------------------------------------------------- splits


def write_split(ws, tasks: dict, fmt: str = "ewmbench-split/1"):
    path = ws.root / "split.json"
    path.write_text(json.dumps({"format": fmt, "tasks": tasks}))
    return path


@case(2, "missing.json", "split file does not exist")
def split_missing(ws):
    return ws.evaluate("--split", str(ws.root / "missing.json"))


@case(2, "split.json", "not valid JSON")
def split_not_json(ws):
    (ws.root / "split.json").write_text("{tasks:")
    return ws.evaluate("--split", str(ws.root / "split.json"))


@case(2, "split.json", "not a split file", "'ewmbench-split/0'")
def split_of_another_format(ws):
    return ws.evaluate("--split", str(write_split(ws, {"1": {"episodes": ["10"]}}, fmt="ewmbench-split/0")))


@case(2, "split.json", "1 episode(s) of the split are not in", "1/99")
def split_naming_a_missing_episode(ws):
    return ws.evaluate("--split", str(write_split(ws, {"1": {"episodes": ["10", "99"]}})))


@case(2, "split.json", "lists an episode more than once")
def split_with_a_duplicate(ws):
    return ws.evaluate("--split", str(write_split(ws, {"1": {"episodes": ["10", "10"]}})))


@case(2, "split.json", "invalid split file", "tasks")
def split_without_tasks(ws):
    return ws.evaluate("--split", str(write_split(ws, {})))


@case(2, "split.json", "invalid split file", "episodes")
def split_episodes_not_a_list(ws):
    return ws.evaluate("--split", str(write_split(ws, {"1": {"episodes": "10"}})))


@case(0, "scored 1 of 1 episodes", nothing_written=False)
def split_scores_only_its_episodes(ws):
    split = write_split(ws, {"1": {"episodes": ["11"]}})
    return ws.evaluate("--split", str(split))


@case(0, "of split", "generate 1 trial(s) per episode for 1 episode(s)", nothing_written=True)
def run_dry_run_with_a_split(ws):
    return run(ws, "--dry-run", "--split", str(write_split(ws, {"1": {"episodes": ["10"]}})))


# ---------------------------------------------------------------- data commands


@case(2, "--voxel-size must be a positive number", "nan")
def curate_voxel_size_nan(ws):
    return [
        "data",
        "curate",
        "--source",
        str(ws.gt),
        "--per-task",
        "1",
        "--output",
        str(ws.out),
        "--voxel-size",
        "nan",
    ]


@case(2, "--voxel-size must be a positive number", "-1")
def curate_voxel_size_negative(ws):
    return [
        "data",
        "curate",
        "--source",
        str(ws.gt),
        "--per-task",
        "1",
        "--output",
        str(ws.out),
        "--voxel-size",
        "-1",
    ]


@case(2, "is a folder; give the path of the split file", nothing_written=False)
def curate_output_an_existing_folder(ws):
    ws.out.mkdir()
    return ["data", "curate", "--source", str(ws.gt), "--per-task", "1", "--output", str(ws.out)]


@case(2, "--per-task must be at least 1")
def curate_zero_per_task(ws):
    return ["data", "curate", "--source", str(ws.gt), "--per-task", "0", "--output", str(ws.out)]


@case(2, "inside the source dataset")
def curate_output_inside_source(ws):
    ws.out = ws.gt / "split.json"
    return ["data", "curate", "--source", str(ws.gt), "--per-task", "1", "--output", str(ws.out)]


@case(2, "nowhere", "does not exist")
def curate_source_missing(ws):
    return [
        "data",
        "curate",
        "--source",
        str(ws.root / "nowhere"),
        "--per-task",
        "1",
        "--output",
        str(ws.out),
    ]


@case(2, "unknown task(s) bogus")
def sample_unknown_task(ws):
    return ["data", "sample", "--output", str(ws.out), "--tasks", "bogus"]


@case(2, "episodes per task must be a positive integer")
def sample_zero_episodes(ws):
    return ["data", "sample", "--output", str(ws.out), "--episodes-per-task", "0"]


@case(2, "nowhere", "does not exist")
def info_missing_folder(ws):
    return ["data", "info", str(ws.root / "nowhere")]


@case(2, "is a file, not a dataset folder")
def info_of_a_file(ws):
    (ws.root / "f.txt").write_text("x")
    return ["data", "info", str(ws.root / "f.txt")]


@case(2, "nowhere", "does not exist")
def track_missing_dataset(ws):
    return ["detector", "track", "--dataset", str(ws.root / "nowhere")]


@case(2, "--device 'tpu'")
def track_on_a_device_that_is_not_one(ws):
    return ["detector", "track", "--dataset", str(ws.gt), "--device", "tpu"]


@case(0, f"ewmbench {ewmbench.__version__}", nothing_written=False)
def version(ws):
    return ["--version"]


@parametrize(CASES)
def test_option_case(case, ws):
    check(case, ws)


# ---------------------------------------------------------------- cases that need the machine faked


def fake_sample(ws):
    """The cache's sample dataset, stood in for by the tiny GT (generating the real one takes minutes)."""
    from ewmbench.data.datasets import MARKER, MARKER_FORMAT, default_sample_path

    target = default_sample_path()
    shutil.copytree(ws.gt, target)
    (target / MARKER).write_text(json.dumps({"format": MARKER_FORMAT, "complete": True}))
    return target


def test_sample_is_a_dataset_name_wherever_one_is_asked_for(ws):
    fake_sample(ws)
    assert run_cli(["data", "info", "sample"], ws.inputs()).says("ground-truth dataset")
    evaluation = run_cli(
        [
            "evaluate",
            "--gt",
            "sample",
            "--generated",
            str(ws.gen),
            "--output",
            str(ws.out),
            "--metrics",
            "psnr",
        ],
        ws.inputs(),
    )
    assert evaluation.code == 0 and evaluation.says("scored 2 of 2 episodes"), evaluation.output
    curated = run_cli(
        ["data", "curate", "--source", "sample", "--per-task", "1", "--output", str(ws.root / "s.json")],
        ws.inputs(),
    )
    assert curated.code == 0 and (ws.root / "s.json").is_file(), curated.output
    track = run_cli(["detector", "track", "--dataset", "sample", "--device", "tpu"], ws.inputs())
    assert track.code == 2 and "tpu" in track.output  # resolved 'sample', then refused the device


def test_output_not_writable_is_refused(ws, monkeypatch):
    from ewmbench.run import preflight

    real = os.access
    monkeypatch.setattr(
        preflight.os, "access", lambda path, mode: False if str(path) == str(ws.root) else real(path, mode)
    )
    outcome = run_cli(ws.evaluate(), ws.inputs())
    assert outcome.code == 2 and outcome.says(str(ws.root), "is not writable") and not ws.out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_for_real(ws):
    ws.root.joinpath("ro").mkdir()
    ws.root.joinpath("ro").chmod(0o555)
    ws.out = ws.root / "ro" / "out"
    outcome = run_cli(ws.evaluate(), ws.inputs())
    assert outcome.code == 2 and outcome.says("is not writable")


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (errno.ENOSPC, "no space left on"),
        (errno.EROFS, "is on a read-only file system"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_the_machine_stopping_a_run_says_where_and_keeps_it_resumable(ws, monkeypatch, error, words):
    from ewmbench.results import writers

    def full(output, *args, **kwargs):
        raise OSError(error, os.strerror(error), str(output / "rows.csv"))

    monkeypatch.setattr(writers, "write_rows", full)
    outcome = run_cli(ws.evaluate(), ws.inputs())
    assert outcome.code == 3 and outcome.says(words, "rows.csv"), outcome.output
    stored = [
        json.loads(line)
        for path in (ws.out / "scores" / "psnr").glob("records-*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert sorted((r["task"], r["episode"]) for r in stored) == [
        ("1", "10"),
        ("1", "11"),
    ]  # what was scored is kept
    monkeypatch.undo()
    monkeypatch.setenv("EWMBENCH_CACHE", str(ws.root / "cache"))
    again = run_cli(ws.evaluate(), ws.inputs())
    assert again.code == 0 and json.loads((ws.out / "summary.json").read_text())["scored_now"] == 0


def test_ctrl_c_says_how_to_resume(ws, monkeypatch):
    from ewmbench.run import runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "score", interrupted)
    outcome = run_cli(ws.evaluate(), ws.inputs())
    assert outcome.code == 130 and outcome.says("interrupted; rerun the same command to resume")


def test_running_out_of_memory_is_a_message(ws, monkeypatch):
    from ewmbench.run import runner

    def too_big(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(runner, "score", too_big)
    outcome = run_cli(ws.evaluate(), ws.inputs())
    assert outcome.code == 3 and outcome.says("out of memory")


def test_split_provenance_is_recorded(ws):
    split = write_split(ws, {"1": {"episodes": ["11"]}})
    outcome = run_cli(ws.evaluate("--split", str(split)), ws.inputs() + [split])
    assert outcome.code == 0, outcome.output
    import hashlib

    digest = hashlib.sha256(split.read_bytes()).hexdigest()
    config = json.loads((ws.out / "config.json").read_text())
    provenance = json.loads((ws.out / "provenance.json").read_text())
    assert (
        config["split"]["sha256"] == digest == provenance["split"]["sha256"]
        and provenance["split"]["episodes"] == 1
    )
    rows = json.loads((ws.out / "summary.json").read_text())
    assert rows["counts"]["gt_episodes"] == 1 and rows["counts"]["trials"] == 1
    # Another split is another run: refused as other settings.
    other = ws.root / "other.json"
    other.write_text(json.dumps({"format": "ewmbench-split/1", "tasks": {"1": {"episodes": ["10"]}}}))
    assert run_cli(ws.evaluate("--split", str(other)), ws.inputs()).says("other settings", "split")


def test_a_curated_split_can_be_run(ws):
    split = ws.root / "curated.json"
    curated = run_cli(
        ["data", "curate", "--source", str(ws.gt), "--per-task", "1", "--output", str(split)], ws.inputs()
    )
    assert curated.code == 0, curated.output
    chosen = json.loads(split.read_text())["tasks"]["1"]["episodes"]
    outcome = run_cli(run(ws, "--split", str(split)), ws.inputs() + [split])
    assert outcome.code == 0 and outcome.says("scored 1 of 1 episodes"), outcome.output
    trials = sorted(p.name for p in (ws.out / "static_dataset" / "1").iterdir())
    assert trials == chosen


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA device")
def test_a_cuda_device_this_machine_lacks(ws):
    outcome = run_cli(ws.evaluate("--device", "cuda:7"), ws.inputs())
    assert outcome.code == 2 and outcome.says("--device cuda:7", "no CUDA device") and not ws.out.exists()


def test_tracking_a_read_only_dataset_is_refused_before_work(ws, monkeypatch):
    real = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: False if str(path) == str(ws.gt) and mode & os.W_OK else real(path, mode),
    )
    outcome = run_cli(["detector", "track", "--dataset", str(ws.gt)], ws.inputs())
    assert outcome.code == 2 and outcome.says(str(ws.gt), "is not writable", "writable copy"), outcome.output


def test_detector_commands_name_their_own_weights_option(ws):
    outcome = run_cli(
        ["detector", "validate", "--dataset", str(ws.gt), "--weights", str(ws.root / "missing.pt")],
        ws.inputs(),
    )
    assert outcome.code == 2 and outcome.says("--weights", "missing.pt", "no such file"), outcome.output
