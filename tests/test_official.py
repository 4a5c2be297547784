"""The official output files: a hand-written golden table, a round trip through a reader written
from the reference's output rules, and the runner writing them under v1 (ours under v2)."""

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ewmbench.run.preflight as preflight_module
from ewmbench.errors import ConfigError
from ewmbench.metrics.base import Metric
from ewmbench.protocols import load_protocol
from ewmbench.results.official import (
    OfficialValues,
    results_json,
    table_text,
    write_official_files,
)
from ewmbench.run import RunConfig, run

V1 = load_protocol("ewmbench-v1")
V2 = load_protocol("ewmbench-v2")
GOLDEN = Path(__file__).parent / "data" / "official" / "ewmbm_final_table.csv"
NOTE = (  # the official comment row, as the reference gives it
    "# Diversity is calculated based on the generation results of different trails within the same episode. "
    "Only shown in trial_id=1. Others are marked with '-'."
)
TRAJECTORY = ("hsd", "dyn", "ndtw")

# Per-trial values behind tests/data/official/ewmbm_final_table.csv, in folder (not table) order.
GOLDEN_ROWS = pd.DataFrame(
    [
        # task, episode, trial, BLEU, CLIP, diversity, dyn, hsd, logic, ndtw, psnr, scene, ssim
        ("2", "0007", "1", 0.1234567, 70.25, 2e-05, 0.1, 0.1234, 1.0, 0.2, 21.25, 0.95, 0.8),
        ("2", "0007", "2", 0.125, 77.75, 2e-05, 0.25, 0.5, 1.0, 0.4, 22.0, 0.75, 0.5),
        ("2", "0007", "10", 0.0, 80.0, 2e-05, 0.0, 0.0004, 1.0, 0.3, 18.0, 0.8, 0.9),
        (
            "10",
            "0003",
            "1",
            0.5,
            85.0,
            0.0001,
            0.02849,
            0.78812,
            1.0,
            0.6394,
            19.664908821639646,
            0.9123456789012345,
            0.6,
        ),
        ("10", "0003", "2", 0.25, 90.5, 0.0001, 0.5, 0.9999, 0.0, 0.6386, 20.5, 0.85, 0.7),
    ],
    columns=[
        "task_id",
        "episode_id",
        "trial_id",
        "BLEUScore",
        "CLIPScore",
        "diversity",
        "dyn",
        "hsd",
        "logic_constraints",
        "ndtw",
        "psnr",
        "scene_consistency",
        "ssim",
    ],
)


# ------------------------------------------------------------------ a reader written from the reference


def read_table(path: Path) -> tuple[dict, dict]:
    """Per-trial cells and the MEAN row of an official ``ewmbm_final_table.csv``.

    Checks the layout the reference describes: ids then sorted metric columns; rows sorted by
    id text; trajectory cells 3-decimal strings; logic an int; MEAN, an empty row, the comment.
    """
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")  # Excel dialect line endings
    records = list(csv.reader(io.StringIO(text, newline="")))
    header, *body = records
    assert header[:3] == ["task_id", "episode_id", "trial_id"] and header[3:] == sorted(header[3:])
    assert body[-1] == [NOTE] + [""] * (len(header) - 1)
    assert body[-2] == [""] * len(header)
    mean_record, rows = body[-3], body[:-3]
    assert mean_record[:3] == ["MEAN", "", ""]

    def cell(column: str, text: str):
        if text in ("", "-"):
            return None
        if column in TRAJECTORY:
            assert re.fullmatch(r"-?\d+\.\d{3}", text), text
        if column == "logic_constraints":  # True/False as the official writer leaves them, or 1/0
            assert text in ("0", "1", "True", "False"), text
            return text == "True" if text in ("True", "False") else int(text)
        return float(text)

    cells = {}
    for record in rows:
        ids = tuple(record[:3])
        cells[ids] = {c: cell(c, v) for c, v in zip(header[3:], record[3:])}
    keys = list(cells)
    assert keys == sorted(keys, key=lambda k: (k[0], k[1], k[2]))  # as text
    mean = {c: (float(v) if v else None) for c, v in zip(header[3:], mean_record[3:])}
    return cells, mean


def read_results(path: Path, name: str) -> tuple[dict, dict, float | None]:
    """Per-trial values, per-episode diversity and the scene mean of ``<name>_results.json``."""
    data = json.loads(path.read_text())
    trials: dict = {}
    for task, episodes in data.get("trajectory_consistency", {}).items():
        for episode, by_trial in episodes.items():
            for trial, scores in by_trial.items():
                assert list(scores) == list(TRAJECTORY)
                for key, text in scores.items():
                    assert isinstance(text, str) and re.fullmatch(r"-?\d+\.\d{3}", text), text
                    trials.setdefault((task, episode, trial), {})[key] = float(text)
    for dimension in ("psnr", "ssim"):
        for task, episodes in data.get(dimension, {}).items():
            for episode, by_trial in episodes.items():
                for trial, value in by_trial.items():
                    trials.setdefault((task, episode, trial), {})[dimension] = value
    for task, episodes in data.get("semantics", {}).items():
        for episode, by_trial in episodes.items():
            for trial, scores in by_trial.items():
                trials.setdefault((task, episode, trial), {}).update(scores)
    for key, flag in data.get("logics", {}).items():
        assert key.startswith(f"{name}_dataset_")
        task, *episode, trial = key.removeprefix(f"{name}_dataset_").split("_")
        trials.setdefault((task, "_".join(episode), trial), {})["logic_constraints"] = flag
    scene_mean = None
    if "scene_consistency" in data:
        scene_mean, videos = data["scene_consistency"]
        for video in videos:
            *_, task, episode, trial, leaf = video["video_path"].split("/")
            assert leaf == "video"
            trials.setdefault((task, episode, trial), {})["scene_consistency"] = video["video_results"]
    diversity = {(t, e): v for t, episodes in data.get("diversity", {}).items() for e, v in episodes.items()}
    return trials, diversity, scene_mean


# ------------------------------------------------------------------ golden


def test_golden_table_byte_for_byte(tmp_path):
    write_official_files(tmp_path, GOLDEN_ROWS, "mine", tmp_path / "mine_dataset", V1)
    written, expected = (tmp_path / "ewmbm_final_table.csv").read_bytes(), GOLDEN.read_bytes()
    for number, (ours, theirs) in enumerate(
        zip(written.split(b"\r\n"), expected.split(b"\r\n"), strict=True)
    ):
        assert ours == theirs, f"line {number + 1}"
    assert written == expected


def test_golden_results_json_is_the_official_nested_shape(tmp_path):
    write_official_files(tmp_path, GOLDEN_ROWS, "mine", "out/mine_dataset", V1)
    text = (tmp_path / "mine_results.json").read_text()
    assert not text.endswith("\n") and text.startswith(
        '{\n  "diversity": {\n    "10": {\n      "0003": 0.0001'
    )
    f32 = 0.12345699965953827  # float32 nearest 0.123457
    assert json.loads(text) == {
        "diversity": {"10": {"0003": 0.0001}, "2": {"0007": 2e-05}},
        "scene_consistency": [
            (0.9123456789012345 + 0.85 + 0.95 + 0.8 + 0.75) / 5,
            [
                {"video_path": "out/mine_dataset/10/0003/1/video", "video_results": 0.9123456789012345},
                {"video_path": "out/mine_dataset/10/0003/2/video", "video_results": 0.85},
                {"video_path": "out/mine_dataset/2/0007/1/video", "video_results": 0.95},
                {"video_path": "out/mine_dataset/2/0007/10/video", "video_results": 0.8},
                {"video_path": "out/mine_dataset/2/0007/2/video", "video_results": 0.75},
            ],
        ],
        "trajectory_consistency": {
            "10": {
                "0003": {
                    "1": {"hsd": "0.788", "dyn": "0.028", "ndtw": "0.639"},
                    "2": {"hsd": "1.000", "dyn": "0.500", "ndtw": "0.639"},
                }
            },
            "2": {
                "0007": {
                    "1": {"hsd": "0.123", "dyn": "0.100", "ndtw": "0.200"},
                    "10": {"hsd": "0.000", "dyn": "0.000", "ndtw": "0.300"},
                    "2": {"hsd": "0.500", "dyn": "0.250", "ndtw": "0.400"},
                }
            },
        },
        "logics": {
            "mine_dataset_10_0003_1": True,
            "mine_dataset_10_0003_2": False,
            "mine_dataset_2_0007_1": True,
            "mine_dataset_2_0007_10": True,
            "mine_dataset_2_0007_2": True,
        },
        "semantics": {
            "10": {
                "0003": {
                    "1": {"BLEUScore": 0.5, "CLIPScore": 85.0},
                    "2": {"BLEUScore": 0.25, "CLIPScore": 90.5},
                }
            },
            "2": {
                "0007": {
                    "1": {"BLEUScore": f32, "CLIPScore": 70.25},
                    "10": {"BLEUScore": 0.0, "CLIPScore": 80.0},
                    "2": {"BLEUScore": 0.125, "CLIPScore": 77.75},
                }
            },
        },
        "psnr": {
            "10": {"0003": {"1": 19.664908821639646, "2": 20.5}},
            "2": {"0007": {"1": 21.25, "10": 18.0, "2": 22.0}},
        },
        "ssim": {"10": {"0003": {"1": 0.6, "2": 0.7}}, "2": {"0007": {"1": 0.8, "10": 0.9, "2": 0.5}}},
    }


# ------------------------------------------------------------------ round trip and edge cases


def random_rows(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = [(t, e, r) for t in ("1", "2", "10") for e in ("3", "12") for r in ("1", "2", "3")]
    n = len(ids)
    rows = pd.DataFrame(ids, columns=["task_id", "episode_id", "trial_id"])
    for column in ("hsd", "dyn", "ndtw", "ssim", "scene_consistency", "BLEUScore"):
        rows[column] = rng.uniform(0, 1, n)
    rows["CLIPScore"] = rng.uniform(50, 100, n)
    rows["psnr"] = rng.uniform(10, 40, n)
    rows["logic_constraints"] = rng.integers(0, 2, n).astype(float)
    per_episode = {key: rng.uniform(0, 0.01) for key in {(t, e) for t, e, _ in ids}}
    rows["diversity"] = [per_episode[(t, e)] for t, e, _ in ids]
    rows.loc[4, "psnr"] = math.inf  # one identical frame pair: the official PSNR is infinite
    rows.loc[7, "ssim"] = math.nan  # not scored
    return rows


def test_round_trip_through_a_reference_reader(tmp_path):
    rows = random_rows()
    write_official_files(tmp_path, rows, "mine", tmp_path / "mine_dataset", V1)
    table, mean = read_table(tmp_path / "ewmbm_final_table.csv")
    results, diversity, scene_mean = read_results(tmp_path / "mine_results.json", "mine")
    assert len(table) == len(rows)
    for row in rows.itertuples(index=False):
        key = (row.task_id, row.episode_id, row.trial_id)
        cells, stored = table[key], results[key]
        for column in TRAJECTORY:
            value = getattr(row, column)
            assert (
                cells[column] == stored[column] == float(f"{value:.3f}")
                and abs(cells[column] - value) <= 0.0005
            )
        for column in ("psnr", "ssim", "scene_consistency"):
            value = getattr(row, column)
            if math.isnan(value):
                assert cells[column] is None and column not in stored
            else:
                assert cells[column] == stored[column] == value  # full precision, inf included
        for column in ("BLEUScore", "CLIPScore"):
            assert cells[column] == stored[column] == pytest.approx(getattr(row, column), rel=1e-6, abs=1e-6)
        # JSON: every trial's own flag. Table (official writer): flags only on rows of the last
        # scene video's trial id ("3"), each the flag of its episode's last trial, i.e. its own here.
        assert stored["logic_constraints"] is bool(row.logic_constraints)
        assert cells["logic_constraints"] == (bool(row.logic_constraints) if row.trial_id == "3" else None)
        shown = cells["diversity"]
        assert shown == (row.diversity if row.trial_id == "1" else None)
        assert diversity[(row.task_id, row.episode_id)] == row.diversity
    assert mean["psnr"] == math.inf
    flags = [c["logic_constraints"] for c in table.values() if c["logic_constraints"] is not None]
    assert len(flags) == 6 and mean["logic_constraints"] == round(sum(flags) / 6, 6)
    assert (
        mean["ssim"]
        == round(rows["ssim"].dropna().sum() / 17, 6)
        == pytest.approx(rows["ssim"].mean(), abs=1e-6)
    )
    assert mean["diversity"] == pytest.approx(np.mean(list(diversity.values())), abs=1e-6)
    assert mean["hsd"] == pytest.approx(np.mean([c["hsd"] for c in table.values()]), abs=1e-6)
    assert scene_mean == pytest.approx(rows["scene_consistency"].mean(), rel=1e-12)


def test_missing_values_odd_ids_and_episode_rows():
    rows = pd.DataFrame(
        {
            "task_id": ["a", "a", "a"],
            "episode_id": ["e_1", "e_1", "e_2"],
            "trial_id": ["2", "3", "2"],
            "hsd": [0.5, math.nan, 0.25],
            "psnr": [math.nan, math.nan, math.nan],
            "diversity": [0.5, 0.5, math.nan],
        }
    )
    text = table_text(OfficialValues.from_rows(rows), ["diversity"])
    lines = text.split("\r\n")
    # psnr never scored: no column. Diversity of e_1 gets a trial-1 row although no trial 1 exists,
    # as in the official table; e_2's diversity failed: '-'. Non-integer ids stay as written.
    assert lines[:6] == [
        "task_id,episode_id,trial_id,diversity,hsd",
        "a,e_1,1,0.5,",
        "a,e_1,2,-,0.500",
        "a,e_2,2,-,0.250",
        "MEAN,,,0.5,0.375",
        ",,,,",
    ]
    assert "a,e_1,3" not in text  # a trial with nothing scored is not a row
    results = results_json(OfficialValues.from_rows(rows), "m", "m_dataset")
    assert results["psnr"] == {} and results["diversity"] == {"a": {"e_1": 0.5}}


def test_logic_flags_as_the_official_writer_places_them_or_per_trial():
    rows = pd.DataFrame(
        {
            "task_id": ["1"] * 4,
            "episode_id": ["5", "5", "5", "6"],
            "trial_id": ["1", "2", "3", "1"],
            "logic_constraints": [1.0, 1.0, 0.0, 1.0],
            "scene_consistency": [0.5, 0.5, 0.5, 0.5],
        }
    )
    values = OfficialValues.from_rows(rows)
    lines = table_text(values, ["diversity"], "official_writer").split("\r\n")
    # Last scene video: (1, 6, 1), so flags go to trial-1 rows: episode 5's last flag (trial 3,
    # False) on its trial-1 row; episode 6's own flag on its trial-1 row.
    assert lines[:6] == [
        "task_id,episode_id,trial_id,logic_constraints,scene_consistency",
        "1,5,1,False,0.5",
        "1,5,2,,0.5",
        "1,5,3,,0.5",
        "1,6,1,True,0.5",
        "MEAN,,,0.5,0.5",
    ]
    assert table_text(values, ["diversity"], "per_trial").split("\r\n")[1:6] == [
        "1,5,1,1,0.5",
        "1,5,2,1,0.5",
        "1,5,3,0,0.5",
        "1,6,1,1,0.5",
        "MEAN,,,0.75,0.5",
    ]
    # Without scene consistency the official writer drops every flag: no logic column.
    no_scene = OfficialValues.from_rows(rows.drop(columns="scene_consistency"))
    assert table_text(no_scene, ["diversity"], "official_writer").split("\r\n")[:2] == [
        "task_id,episode_id,trial_id",
        "MEAN,,",
    ]
    assert results_json(no_scene, "m", "m_dataset", "per_trial")["logics"]["m_dataset_1_5_3"] == 0


def test_the_protocols_layout_orders_columns_and_places_diversity():
    rows = GOLDEN_ROWS[["task_id", "episode_id", "trial_id", "psnr", "diversity", "hsd"]]
    values = OfficialValues.from_rows(rows, ["psnr", "diversity"])  # hsd not in the layout: left out
    lines = table_text(values, first_trial_only=()).split("\r\n")
    assert lines[0] == "task_id,episode_id,trial_id,psnr,diversity"
    assert lines[1:3] == ["10,0003,1,19.664908821639646,0.0001", "10,0003,2,20.5,0.0001"]  # on every row


def test_numpy_floats_are_written_as_python_floats():
    rows = GOLDEN_ROWS.copy()
    rows["psnr"] = rows["psnr"].astype(np.float32).astype(np.float64)  # numpy scalars in, plain repr out
    assert "np.float" not in table_text(OfficialValues.from_rows(rows), ["diversity"])


# ------------------------------------------------------------------ protocol setting


def test_output_format_is_a_protocol_setting(tmp_path):
    assert V1.output_format == "official" and V2.output_format == "ewmbench"
    assert (
        V1.official_table["first_trial_only"] == ["diversity"]
        and V1.official_table["logic_flags"] == "official_writer"
    )
    assert V1.decimals == {"dyn": 3, "hsd": 3, "ndtw": 3} and V2.decimals == {}
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: plain\nversion: 1\nmetrics:\n  psnr: {}\n")
    assert load_protocol(str(plain)).output_format == "ewmbench"
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "name: ewmbench-v1\nversion: 1\noutput_format: official\nofficial_table: {columns: [psnr, lpips]}\n"
        "metrics:\n  psnr: {}\n"
    )
    with pytest.raises(ConfigError, match="mine.yaml: official_table columns lpips are not official columns"):
        write_official_files(tmp_path, GOLDEN_ROWS, "m", "m_dataset", load_protocol(str(mine)))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nversion: 1\noutput_format: vbench\nmetrics:\n  psnr: {}\n")
    with pytest.raises(
        ConfigError,
        match="bad.yaml: output_format: Input should be 'official' or 'ewmbench' \\(got 'vbench'\\)",
    ):
        load_protocol(str(bad))
    bad.write_text("name: bad\nversion: 1\nofficial_table: {logic_flags: sometimes}\nmetrics:\n  psnr: {}\n")
    with pytest.raises(
        ConfigError,
        match="bad.yaml: official_table.logic_flags: Input should be 'official_writer' or 'per_trial'",
    ):
        load_protocol(str(bad))


# ------------------------------------------------------------------ the runner end to end


def test_runner_writes_the_official_files_under_v1_and_ours_under_v2(tmp_path, gt_dataset):
    for protocol in ("ewmbench-v1", "ewmbench-v2"):
        out = tmp_path / protocol
        result = run(
            RunConfig(
                output=out,
                dataset=str(gt_dataset),
                model="static",
                protocol=protocol,
                trials=2,
                metrics=["psnr", "ssim"],
                cache_dir=tmp_path / "cache",
            ),
            show_progress=False,
        )
        rows = result.rows
        if protocol == "ewmbench-v1":
            table, mean = read_table(out / "ewmbm_final_table.csv")
            results, _, _ = read_results(out / "static_results.json", "static")
            assert len(table) == len(rows) == 8
            for row in rows.itertuples(index=False):
                key = (row.task_id, row.episode_id, row.trial_id)
                assert table[key] == {"psnr": row.psnr, "ssim": row.ssim} == results[key]
            assert mean["psnr"] == round(sum(table[k]["psnr"] for k in table) / 8, 6)
            assert result.summary["overall"]["psnr"] == pytest.approx(mean["psnr"], abs=1e-6)
        else:
            table = pd.read_csv(out / "ewmbm_final_table.csv", dtype=str, keep_default_na=False)
            assert table["psnr"].tolist()[:-1] == [repr(float(v)) for v in rows["psnr"]]  # full precision
            assert table.iloc[-1]["task_id"] == "MEAN"
            assert json.loads((out / "static_results.json").read_text()) == result.summary["overall"]


class FakeScene(Metric):
    name, group, columns, level = "scene_consistency", "scene", ("scene_consistency",), "trial"

    def score_trial(self, inputs, settings):
        return {"scene_consistency": int(inputs.trial.trial) / 8}


class FakeDiversity(Metric):
    name, group, columns, level = "diversity", "diversity", ("diversity",), "episode"

    def score_episode(self, inputs, settings):
        return {"diversity": len(inputs.trials) / 100 + int(inputs.episode.episode) / 1000}


def test_runner_writes_episode_and_scene_values_in_the_official_shapes(tmp_path, gt_dataset, monkeypatch):
    monkeypatch.setattr(
        preflight_module,
        "metric_registry",
        lambda: {"scene_consistency": FakeScene, "diversity": FakeDiversity},
    )
    protocol = tmp_path / "p.yaml"
    protocol.write_text(
        "name: p\nversion: 1\noutput_format: official\nofficial_table: {first_trial_only: [diversity]}\n"
        "metrics:\n  scene_consistency: {}\n  diversity: {}\n"
    )
    out = tmp_path / "run"
    run(
        RunConfig(
            output=out,
            dataset=str(gt_dataset),
            model="static",
            protocol=str(protocol),
            trials=3,
            cache_dir=tmp_path / "cache",
        ),
        show_progress=False,
    )
    table, mean = read_table(out / "ewmbm_final_table.csv")
    results, diversity, scene_mean = read_results(out / "static_results.json", "static")
    assert {k: v["scene_consistency"] for k, v in results.items()} == {
        k: v["scene_consistency"] for k, v in table.items()
    }
    assert list(table)[:4] == [("1", "10", "1"), ("1", "10", "2"), ("1", "10", "3"), ("1", "11", "1")]
    assert table[("1", "10", "1")] == {"diversity": 3 / 100 + 10 / 1000, "scene_consistency": 0.125}
    assert table[("1", "10", "2")] == {"diversity": None, "scene_consistency": 0.25}
    d10, d11 = 3 / 100 + 10 / 1000, 3 / 100 + 11 / 1000  # 3 trials, episode ids 10 and 11
    assert diversity == {("1", "10"): d10, ("1", "11"): d11, ("2", "10"): d10, ("2", "11"): d11}
    assert mean == {"diversity": round((d10 + d11 + d10 + d11) / 4, 6), "scene_consistency": 0.25}
    assert scene_mean == 0.25
    video = json.loads((out / "static_results.json").read_text())["scene_consistency"][1][0]["video_path"]
    assert video == str(out / "static_dataset" / "1" / "10" / "1" / "video")
