"""The comparison report: comparability checks, missing metrics, direction, determinism, CLI and API."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import ewmbench
from ewmbench.compare.report import OVERALL, Settings, compare_runs
from ewmbench.compare.writer import write_report
from ewmbench.errors import ConfigError
from ewmbench.results.record import (
    Column,
    Counts,
    DatasetRef,
    ModelRef,
    ProtocolRef,
    Provenance,
    RunRecord,
    Skipped,
)

FAST = Settings(resamples=300)
COLUMNS = {
    "psnr": Column("psnr", "psnr", "fidelity", "trial", "higher"),
    "hsd": Column("hsd", "trajectory_consistency", "motion", "trial", "higher"),
    "lpips": Column("lpips", "lpips", "fidelity", "trial", "lower"),
    "fid": Column("fid", "fid", "fidelity", "dataset", "lower"),
}


def write_record(
    folder: Path,
    values: dict[tuple[str, str], dict[str, float]],
    *,
    protocol_sha: str = "p" * 64,
    dataset_sha: str = "d" * 64,
    protocol: str = "ewmbench-v2",
    run_level: dict | None = None,
    skipped: dict | None = None,
    task_names: dict | None = None,
) -> Path:
    """A run folder holding only a record: one trial per (task, episode) with the given columns,
    and ``run_level`` values of dataset-level columns (FID: one value per run)."""
    rows = [{"task_id": t, "episode_id": e, "trial_id": "1", **cols} for (t, e), cols in values.items()]
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    record = RunRecord(
        protocol=ProtocolRef(protocol, "2.0" if protocol == "ewmbench-v2" else "1.0", "", protocol_sha),
        dataset=DatasetRef(
            "synthetic", None, dataset_sha, len({t for t, _ in values}), len(values), task_names or {}
        ),
        model=ModelRef(folder.name),
        columns={c: COLUMNS[c] for c in names + list(run_level or {})},
        overall={**{c: float(pd.DataFrame(rows)[c].mean()) for c in names}, **(run_level or {})},
        per_task={},
        counts=Counts(len({t for t, _ in values}), len(values), len(rows), len(rows)),
        skipped=skipped or {},
        provenance=Provenance(ewmbench_version="test"),
        rows=rows,
    )
    record.save(folder)
    return folder


EPISODES = [(t, e) for t in ("1", "2") for e in ("0", "1", "2", "3")]


def values(
    psnr_shift: float = 0.0, hsd_shift: float = 0.0, lpips_shift: float | None = 0.0, episodes=EPISODES
) -> dict:
    out = {}
    for i, key in enumerate(episodes):
        cols = {"psnr": 20.0 + i + psnr_shift, "hsd": 0.5 + 0.05 * i + hsd_shift}
        if lpips_shift is not None:
            cols["lpips"] = 0.3 - 0.01 * i + lpips_shift
        out[key] = cols
    return out


def test_identical_runs_differ_by_exactly_zero(tmp_path):
    a = write_record(tmp_path / "a", values())
    b = write_record(tmp_path / "b", values())
    comparison = compare_runs([a, b], settings=FAST)
    assert comparison.baseline == "a" and comparison.labels == ["a", "b"]
    for scope in comparison.scopes:
        # the interval is inverted from the sign-flip test: 8 episodes reject every shift but 0;
        # a task's 4 episodes cannot reject any (2 / 2**4 > 0.05), so its interval is unbounded
        bound = 0.0 if scope == OVERALL else math.inf
        for column in ("psnr", "hsd", "lpips"):
            diff = comparison.differences[(scope, column, "b")]
            assert (diff.difference, diff.low, diff.high, diff.p_value, diff.p_adjusted) == (
                0.0,
                -bound,
                bound,
                1.0,
                1.0,
            )
            assert comparison.significant(scope, column, "b") == "n.s."


def test_planted_difference_is_direction_aware(tmp_path):
    a = write_record(tmp_path / "a", values())
    # b: psnr up (better), hsd down (worse), lpips down (lower is better: better)
    b = write_record(tmp_path / "b", values(psnr_shift=2.0, hsd_shift=-0.1, lpips_shift=-0.05))
    comparison = compare_runs([a, b], settings=FAST)
    overall = {c: comparison.differences[(OVERALL, c, "b")] for c in ("psnr", "hsd", "lpips")}
    assert overall["psnr"].difference == pytest.approx(2.0) and overall["psnr"].verdict() == "better"
    assert overall["hsd"].difference == pytest.approx(-0.1) and overall["hsd"].verdict() == "worse"
    assert overall["lpips"].difference == pytest.approx(-0.05) and overall["lpips"].verdict() == "better"
    # every one of the 8 episodes moved the same way: exact p = 2/256, Holm over 3 metrics
    assert overall["psnr"].p_value == 2 / 256 and overall["psnr"].p_adjusted == pytest.approx(3 * 2 / 256)
    # per task: 4 episodes can never reach p < 0.05 (2/16), and the report says so
    assert comparison.differences[("1", "psnr", "b")].p_value == 2 / 16
    assert comparison.significant("1", "psnr", "b") == "n.s."
    # the baseline can be any run: swapping turns better into worse
    swapped = compare_runs([a, b], baseline="b", settings=FAST)
    assert swapped.baseline == "b" and swapped.significant(OVERALL, "psnr", "a") == "worse"


def test_values_are_the_protocol_overall(tmp_path):
    # v2 averages task means: task 1 holds 4 episodes with psnr 20..23, task 2 one episode of 40
    few = {**{("1", str(e)): {"psnr": 20.0 + e} for e in range(4)}, ("2", "0"): {"psnr": 40.0}}
    run = write_record(tmp_path / "a", few)
    interval = compare_runs([run], settings=FAST).values[(OVERALL, "psnr", "a")]
    assert interval.estimate == pytest.approx((21.5 + 40.0) / 2)
    v1 = write_record(tmp_path / "b", few, protocol="ewmbench-v1")
    assert compare_runs([v1], settings=FAST).values[(OVERALL, "psnr", "b")].estimate == pytest.approx(
        (86 + 40) / 5
    )


def test_protocol_mismatch_is_refused_with_the_difference_named(tmp_path):
    a = write_record(tmp_path / "a", values())
    b = write_record(tmp_path / "b", values(), protocol_sha="q" * 64)
    with pytest.raises(
        ConfigError,
        match=r"protocol differs: a used ewmbench-v2 \(sha256 pppppppppppp\), b used ewmbench-v2 \(sha256 qqqqqqqqqqqq\)",
    ):
        compare_runs([a, b], settings=FAST)


def test_dataset_mismatch_is_refused(tmp_path):
    a = write_record(tmp_path / "a", values())
    b = write_record(tmp_path / "b", values(), dataset_sha="e" * 64)
    with pytest.raises(
        ConfigError, match=r"dataset differs: a has ground truth sha256 dddddddddddd, b has eeeeeeeeeeee"
    ):
        compare_runs([a, b], settings=FAST)


def test_episode_mismatch_is_refused_or_compared_on_common_episodes(tmp_path):
    a = write_record(tmp_path / "a", values())
    b = write_record(tmp_path / "b", values(episodes=EPISODES[1:] + [("3", "0")]))
    with pytest.raises(ConfigError, match=r"episode set differs: 1 only in a \(1/0\); 1 only in b \(3/0\)"):
        compare_runs([a, b], settings=FAST)
    comparison = compare_runs([a, b], allow_mismatch=True, settings=FAST)
    assert len(comparison.episodes) == 7 and ("1", "0") not in comparison.episodes
    assert any("episode set differs" in n for n in comparison.notes)
    assert any("compared on the 7 episode(s)" in n for n in comparison.notes)
    out = write_report(comparison, tmp_path / "report", figures=False)
    html = (out / "report.html").read_text()
    # the note comes before the first table
    assert html.index("Runs differ.") < html.index("<table>")
    assert json.loads((out / "report.json").read_text())["comparability"]["notes"] == comparison.notes


def test_missing_metric_is_shown_as_missing(tmp_path):
    a = write_record(tmp_path / "a", values())
    b = write_record(tmp_path / "b", values(lpips_shift=None))  # b never scored lpips
    comparison = compare_runs([a, b], settings=FAST)
    assert comparison.values[(OVERALL, "lpips", "b")] is None
    assert (OVERALL, "lpips", "b") not in comparison.differences
    out = write_report(comparison, tmp_path / "report", figures=False)
    data = json.loads((out / "report.json").read_text())
    entry = next(v for v in data["values"] if (v["scope"], v["metric"], v["run"]) == (OVERALL, "lpips", "b"))
    assert entry == {"scope": OVERALL, "metric": "lpips", "run": "b", "missing": True}
    assert next(r for r in data["runs"] if r["label"] == "b")["missing_columns"] == ["lpips"]
    table = pd.read_csv(out / "report.csv")
    row = table[(table.scope == OVERALL) & (table.metric == "lpips") & (table.run == "b")].iloc[0]
    assert row.verdict == "missing" and math.isnan(row.estimate)
    html = (out / "report.html").read_text()
    lpips_row = re.search(r"<tr><td class=\"name\">lpips.*?</tr>", html).group(0)
    assert 'class="missing">missing</td>' in lpips_row


def test_run_level_metrics_are_shown_without_an_interval(tmp_path):
    a = write_record(tmp_path / "a", values(), run_level={"fid": 30.0})
    b = write_record(tmp_path / "b", values())  # b has no FID
    comparison = compare_runs([a, b], settings=FAST)
    assert comparison.run_level == {("fid", "a"): 30.0, ("fid", "b"): None}
    assert (OVERALL, "fid", "a") not in comparison.values and (
        OVERALL,
        "fid",
        "b",
    ) not in comparison.differences
    assert next(m for m in comparison.metrics if m.column == "fid").direction == "lower"
    out = write_report(comparison, tmp_path / "report", figures=False)
    table = pd.read_csv(out / "report.csv")
    fid = table[(table.scope == OVERALL) & (table.metric == "fid")].set_index("run")
    assert (
        fid.loc["a", "estimate"] == 30.0
        and math.isnan(fid.loc["a", "low"])
        and fid.loc["b", "verdict"] == "missing"
    )
    assert "(run-level, no CI)" in (out / "report.html").read_text()


def test_report_json_names_no_local_path_of_a_skip_reason(tmp_path):
    why = Skipped(
        "weight 'x' is not in /home/someone/.cache/torch/hub/checkpoints", "ewmbench weights download x"
    )
    a = write_record(tmp_path / "a", values(), skipped={"lpips": why})
    out = write_report(compare_runs([a], settings=FAST), tmp_path / "report", figures=False)
    text = (out / "report.json").read_text()
    assert "/home/someone" not in text
    assert json.loads(text)["runs"][0]["skipped_metrics"] == {"lpips": "ewmbench weights download x"}


def test_baseline_must_be_a_compared_run(tmp_path):
    a = write_record(tmp_path / "a", values())
    with pytest.raises(ConfigError, match="baseline 'zzz' is none of the compared runs"):
        compare_runs([a, a], baseline="zzz", settings=FAST)


def test_same_folder_name_gets_distinct_labels(tmp_path):
    a = write_record(tmp_path / "x" / "run", values())
    b = write_record(tmp_path / "y" / "run", values(psnr_shift=1.0))
    assert compare_runs([a, b], settings=FAST).labels == ["run", "run-2"]


# ---------------------------------------------------------------- real (tiny) runs: files, figures, API, CLI


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two runs of the shared tiny dataset (4 episodes, 6 frames): ground-truth and static."""
    from ewmbench.run import RunConfig, run
    from tests.helpers.datasets import make_ground_truth

    root = tmp_path_factory.mktemp("compare")
    gt = make_ground_truth(root / "gt")
    runs = {}
    for model in ("ground-truth", "static"):
        config = RunConfig(
            output=root / model,
            dataset=str(gt),
            model=model,
            trials=2,
            protocol="ewmbench-v2",
            cache_dir=root / "cache",
            metrics=["psnr", "ssim"],
        )
        runs[model] = run(config, show_progress=False).output
    return root, gt, runs


@pytest.fixture(scope="module")
def tiny_report(tiny_runs, tmp_path_factory):
    _, _, runs = tiny_runs
    out = tmp_path_factory.mktemp("report") / "one"
    comparison = ewmbench.compare([runs["ground-truth"], runs["static"]], output=out, resamples=300)
    return comparison, out


def test_report_files_are_identical_wherever_written(tiny_runs, tiny_report, tmp_path):
    _, _, runs = tiny_runs
    first, out = tiny_report
    ewmbench.compare(
        [runs["ground-truth"], runs["static"]], output=tmp_path / "deeper" / "two", resamples=300
    )
    one, two = (out / "report.json").read_bytes(), (tmp_path / "deeper" / "two" / "report.json").read_bytes()
    assert one == two
    assert (out / "report.csv").read_bytes() == (tmp_path / "deeper" / "two" / "report.csv").read_bytes()
    text = one.decode()
    assert (
        str(out) not in text
        and str(tmp_path) not in text
        and "/tmp" not in text
        and str(runs["static"].parent) not in text
    )
    assert not re.search(r"\d{4}-\d{2}-\d{2}T", text)  # no times
    data = json.loads(text)
    assert data["format"] == "ewmbench-report/1"
    # every figure it names exists, relative to the report folder
    figures = data["figures"]
    for name in ("tasks", "agreement"):
        assert (out / figures[name]).is_file(), name
    assert "radar" not in figures  # two metrics are two axes: no radar
    strips = [p for per in figures["worst"].values() for p in per.values()]
    assert strips and all((out / p).is_file() for p in strips)
    thumbnails = [p for per in figures["thumbnails"].values() for p in per.values()]
    assert len(thumbnails) == len(strips) and all((out / p).is_file() for p in thumbnails)
    # every number in the overall table is in report.json
    assert first.values[(OVERALL, "psnr", "static")].estimate == next(
        v["estimate"]
        for v in data["values"]
        if (v["scope"], v["metric"], v["run"]) == (OVERALL, "psnr", "static")
    )


def test_report_folder_is_self_contained(tiny_report):
    _, out = tiny_report
    html = (out / "report.html").read_text()
    strips = sorted(p.relative_to(out).as_posix() for p in (out / "figures").glob("worst-*.jpg"))
    assert strips
    # each strip is a small JPEG thumbnail on the page, linking to the full-size image beside it
    for strip in strips:
        thumb = "figures/thumbnails/" + Path(strip).name
        assert f'<a href="{strip}"><img src="{thumb}"' in html
        with Image.open(out / thumb) as image:
            assert image.format == "JPEG" and image.width <= 400
        assert (out / thumb).stat().st_size < (out / strip).stat().st_size
    assert '<img src="data:' not in html  # no image is inlined
    for chart in ("tasks", "agreement"):
        assert f'<img src="figures/{chart}.svg"' in html
    # every link and source is a file of the report folder; nothing is fetched; no script
    for target in re.findall(r"""(?:src|href)=["']([^"']+)["']""", html):
        assert not re.match(r"(https?:|//|file:|/|data:)", target) and (out / target).is_file(), target
    assert "<script" not in html


def test_python_api_returns_typed_results(tiny_runs, tmp_path):
    _, gt, runs = tiny_runs
    record = ewmbench.evaluate(
        gt=gt,
        generated=runs["static"] / "static_dataset",
        metrics=["psnr"],
        protocol="ewmbench-v2",
        output=tmp_path / "evaluated",
    )
    assert isinstance(record, RunRecord) and set(record.columns) == {"psnr"}
    assert record.overall["psnr"] == pytest.approx(ewmbench.load_run(runs["static"]).overall["psnr"])
    comparison = ewmbench.compare([runs["static"], record], baseline="static", resamples=200, figures=False)
    assert comparison.labels == ["static", "evaluated"]
    diff = comparison.differences[(OVERALL, "psnr", "evaluated")]
    assert diff.difference == 0.0 and diff.p_value == 1.0  # the same videos, scored twice


def test_single_run_report(tiny_runs, tmp_path):
    _, _, runs = tiny_runs
    comparison = ewmbench.compare(
        [runs["static"]], output=tmp_path / "r", resamples=200, figures=False, worst=1
    )
    assert comparison.differences == {} and comparison.notes == []
    # one worst case per metric column, the lowest psnr of the run's counted rows
    assert sorted(w.metric for w in comparison.worst) == ["psnr", "ssim"]
    rows = comparison.selected_rows["static"]
    assert next(w for w in comparison.worst if w.metric == "psnr").value == rows["psnr"].min()
    interval = comparison.values[(OVERALL, "ssim", "static")]
    assert interval.estimate == pytest.approx(ewmbench.load_run(runs["static"]).overall["ssim"])
    assert interval.low <= interval.estimate <= interval.high


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ewmbench", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_compare_prints_the_difference_table_and_refuses_mismatches(tiny_runs, tmp_path):
    _, _, runs = tiny_runs
    done = _cli(
        "compare",
        str(runs["ground-truth"]),
        str(runs["static"]),
        "--output",
        str(tmp_path / "r"),
        "--resamples",
        "200",
        "--no-figures",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "static - ground-truth" in done.stdout and "▼" in done.stdout and "psnr ↑" in done.stdout
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "report.csv").is_file()
    other = write_record(tmp_path / "other", values())
    refused = _cli("compare", str(runs["static"]), str(other), "--output", str(tmp_path / "r2"))
    refusal = refused.stdout + refused.stderr  # errors are printed on stderr
    assert refused.returncode == 2 and "runs are not comparable" in refusal and "protocol differs" in refusal
    assert not (tmp_path / "r2").exists()
    single = _cli(
        "report", str(runs["static"]), "--output", str(tmp_path / "r3"), "--resamples", "100", "--no-figures"
    )
    assert single.returncode == 0 and (tmp_path / "r3" / "report.json").is_file()
    # a folder that is not a run is named, without a traceback
    (tmp_path / "empty").mkdir()
    bad = _cli("compare", str(runs["static"]), str(tmp_path / "empty"), "--output", str(tmp_path / "r4"))
    message = bad.stdout + bad.stderr
    assert (
        bad.returncode == 2
        and "empty" in message
        and "not a run folder" in message
        and "Traceback" not in message
    )


def test_the_same_run_gets_the_same_interval_in_report_and_in_any_compare(tmp_path):
    a = write_record(tmp_path / "a", values())
    b = write_record(tmp_path / "b", values(psnr_shift=2.0, hsd_shift=-0.1))
    alone = compare_runs([b], settings=FAST)
    second = compare_runs([a, b], settings=FAST)
    first = compare_runs([b, a], settings=FAST)
    for scope in alone.scopes:
        for column in ("psnr", "hsd", "lpips"):
            key = (scope, column, "b")
            assert alone.values[key] == second.values[key] == first.values[key]


def test_no_difference_interval_contradicts_its_p_value(tmp_path):
    # ties (shift 0 on some episodes), small and large shifts, per task and overall
    a = write_record(tmp_path / "a", values())
    mixed = values(psnr_shift=0.3, hsd_shift=0.0, lpips_shift=0.01)
    mixed[("1", "0")]["psnr"] -= 0.5
    b = write_record(tmp_path / "b", mixed)
    comparison = compare_runs([a, b], settings=FAST)
    assert comparison.differences
    for diff in comparison.differences.values():
        excludes_zero = diff.low > 0 or diff.high < 0
        assert excludes_zero == (diff.p_value < 1 - FAST.level)


def test_signed_numbers_have_no_stray_plus_zero():
    from ewmbench.compare.report import signed

    assert [signed(v) for v in (0.0, -0.0, 0.0159, -0.0159, math.inf, -math.inf, math.nan)] == [
        "0",
        "0",
        "+0.0159",
        "-0.0159",
        "+inf",
        "-inf",
        "-",
    ]
