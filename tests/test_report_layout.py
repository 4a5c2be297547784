"""The report page: worst episodes only below a metric's best possible value, a one-run report that
reads as one, a radar only where it says something, task names, collapsible sections."""

from __future__ import annotations

import json
import re

import numpy as np

from ewmbench.compare.report import OVERALL, below_ceiling, compare_runs, radar_informative
from ewmbench.compare.writer import write_report
from ewmbench.metrics.registry import metric_registry
from ewmbench.protocols import load_protocol
from tests.test_compare_report import EPISODES, FAST, values, write_record

NAMES = {"1": "pick_place", "2": "push"}


def _best(metric: str, column: str, protocol: str) -> float | None:
    cls = metric_registry()[metric]
    return cls.best_value(column, load_protocol(protocol).metrics.get(metric) or {})


def test_metrics_declare_their_best_possible_values():
    for protocol in ("ewmbench-v1", "ewmbench-v2"):
        for column in ("hsd", "ndtw", "dyn"):  # min(raw / bound, cap) with cap 1
            assert _best("trajectory_consistency", column, protocol) == 1.0
        assert _best("ssim", "ssim", protocol) == 1.0
        assert _best("lpips", "lpips", protocol) == 0.0
    assert _best("psnr", "psnr", "ewmbench-v1") is None  # identical frames: infinite, no finite best
    assert _best("psnr", "psnr", "ewmbench-v2") == 100.0  # v2 caps PSNR at max_db 100


def test_below_ceiling_is_direction_aware():
    scores = np.array([1.0, 0.5, 1.0 - 1e-12, np.nan, np.inf, 1.2])
    assert below_ceiling(scores, 1.0, "higher").tolist() == [False, True, False, False, False, False]
    distances = np.array([0.0, 0.2, 1e-12, -0.1])
    assert below_ceiling(distances, 0.0, "lower").tolist() == [False, True, False, False]
    # no best value known: every finite score may be a worst one
    assert below_ceiling(scores, None, "higher").tolist() == [True, True, True, False, False, True]


def _hsd(per_episode: list[float]) -> dict:
    """``values()`` with the given hsd per episode of EPISODES."""
    out = values()
    for key, hsd in zip(EPISODES, per_episode):
        out[key]["hsd"] = hsd
    return out


def test_worst_episodes_only_below_the_best_possible_value(tmp_path):
    exact = write_record(tmp_path / "exact", _hsd([1.0] * 8))
    noisy = write_record(tmp_path / "noisy", _hsd([1.0, 0.9, 1.0, 0.4, 1.0, 1.0, 0.95, 1.0]))
    comparison = compare_runs([exact, noisy], settings=FAST)
    assert comparison.ceilings == {"hsd": 1.0, "psnr": 100.0, "lpips": 0.0}
    hsd = [(w.run, w.task_id, w.episode_id, w.value) for w in comparison.worst if w.metric == "hsd"]
    # exact replay: none; noisy: its two lowest, worst first (episode 1/3 at 0.4, then 1/1 at 0.9)
    assert hsd == [("noisy", "1", "3", 0.4), ("noisy", "1", "1", 0.9)]
    # psnr (20..27 dB) and lpips (0.23..0.30) are below their best everywhere: both runs show two
    assert sum(w.metric == "psnr" and w.run == "exact" for w in comparison.worst) == 2
    out = write_report(comparison, tmp_path / "report")
    data = json.loads((out / "report.json").read_text())
    assert next(m for m in data["metrics"] if m["column"] == "hsd")["best_possible"] == 1.0
    assert set(data["figures"]["worst"]["hsd"]) == {"noisy"}
    html = (out / "report.html").read_text()
    assert "No worst episode to show for hsd: every episode of exact scores the best possible 1." in html
    assert 'href="figures/worst-hsd-2.jpg"' in html and "worst-hsd-1" not in html


def test_single_run_report_reads_as_one(tmp_path):
    run = write_record(tmp_path / "mine", _hsd([1.0, 0.5] * 4))
    comparison = compare_runs([run], settings=FAST)
    assert comparison.single and comparison.differences == {}
    out = write_report(comparison, tmp_path / "report")
    html = (out / "report.html").read_text()
    assert "(baseline)" not in html and "baseline" not in html
    assert "Difference columns" not in html and "&minus;" not in html and "&#9650;" not in html
    assert "Radar" not in html and not (out / "figures" / "radar.svg").exists()  # one run: its own best
    assert "<h1>ewmbench report: mine</h1>" in html
    # the same run twice is a comparison again: a baseline, a difference column
    twice = write_report(compare_runs([run, run], settings=FAST), tmp_path / "twice")
    text = (twice / "report.html").read_text()
    assert "mine (baseline)" in text and "mine-2 &minus; mine" in text


def test_radar_only_where_it_says_something(tmp_path):
    a = write_record(tmp_path / "a", values())
    b = write_record(tmp_path / "b", values(psnr_shift=-3.0, hsd_shift=-0.2, lpips_shift=0.1))
    a_again = write_record(tmp_path / "x" / "a", values())
    # three metrics in two groups: three column axes
    assert radar_informative(compare_runs([a, b], settings=FAST))
    assert not radar_informative(compare_runs([a], settings=FAST))  # one run
    assert not radar_informative(compare_runs([a, a_again], settings=FAST))  # every axis at 1 for both
    two_axes = {k: {"psnr": v["psnr"], "hsd": v["hsd"]} for k, v in values().items()}
    c = write_record(tmp_path / "c", two_axes)
    d = write_record(tmp_path / "d", {k: {**v, "psnr": v["psnr"] - 1} for k, v in two_axes.items()})
    assert not radar_informative(compare_runs([c, d], settings=FAST))  # two axes are a line, not a shape


def test_tasks_by_name_and_sections_fold(tmp_path):
    a = write_record(tmp_path / "a", values(), task_names=NAMES)
    b = write_record(tmp_path / "b", values(psnr_shift=1.0), task_names=NAMES)
    comparison = compare_runs([a, b], settings=FAST)
    assert comparison.task_names == NAMES
    assert [comparison.task_label(s) for s in comparison.scopes] == [OVERALL, "pick_place", "push"]
    out = write_report(comparison, tmp_path / "report")
    html = (out / "report.html").read_text()
    assert '<h3>pick_place <span class="muted">task 1</span></h3>' in html
    assert re.search(r"<text[^>]*>[^<]*pick_place", (out / "figures" / "tasks.svg").read_text())
    assert json.loads((out / "report.json").read_text())["task_names"] == NAMES
    # overall, figures and worst episodes open; the per-task tables folded
    sections = re.findall(r'<details class="section"( open)?><summary><h2>([^<]+)</h2>', html)
    assert sections == [
        (" open", "Overall"),
        (" open", "Figures"),
        ("", "Per task (2)"),
        (" open", "Worst episodes"),
    ]
    # a dataset that names no task: ids as before
    plain = compare_runs([write_record(tmp_path / "plain", values())], settings=FAST)
    assert plain.task_names == {} and plain.task_label("1") == "task 1"
