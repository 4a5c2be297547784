"""The board's rules: the EWMBench paper's own score, EWMScore, missing columns, directions,
infinite values, ranges, and the shipped board reproducing the paper's Table 2 exactly."""

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest

from ewmbench.errors import ConfigError, DataError
from ewmbench.leaderboard.entries import entry_from_dict, load_entries
from ewmbench.leaderboard.rule import load_rule, rule_names
from ewmbench.leaderboard.site import rank_benchmark

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "leaderboards" / "ewmbench"

SUM_RULE = """
format: ewmbench-rule/2
name: t-sum
version: "1"
score: {method: sum, label: Overall, decimals: 4, summary: sums}
protocol: {name: ewmbench-v1, version: "1.0"}
groups: {scene: {label: Scene}, motion: {label: Motion}}
columns:
  scene_consistency: {group: scene, direction: higher, range: [0, 1]}
  hsd: {group: motion, direction: higher, range: [0, 1]}
  CLIPScore: {group: motion, direction: higher, range: [0, 100], scale: 0.01}
  diversity: {group: motion, direction: higher, range: [0, 2], bounds: [0, 1]}
shown:
  psnr: {direction: higher, range: [0, .inf], allow_infinite: true}
benchmarks:
  b: {title: B}
  low-div: {title: L, directions: {diversity: lower}}
"""

MEAN_RULE = """
format: ewmbench-rule/2
name: t-mean
version: "1"
score: {method: normalised_mean, normalise: per_video, label: EWMScore, decimals: 2}
protocol: {name: ewmbench-v1, version: "1.0"}
rank_min_columns: 2
groups: {motion: {label: Motion}, fidelity: {label: Fidelity}}
columns:
  hsd: {group: motion, direction: higher, range: [0, 1]}
  ndtw: {group: motion, direction: higher, range: [0, 1]}
  psnr: {group: fidelity, direction: higher, range: [0, .inf], bounds: [10, 40], allow_infinite: true}
  fvd: {group: fidelity, direction: lower, range: [0, 1.0e6], bounds: [0, 2000]}
benchmarks:
  b: {title: B}
"""


def _rule(tmp_path, text, name="rule.yaml"):
    (tmp_path / name).write_text(text)
    return load_rule(tmp_path / name)


@pytest.fixture
def sum_rule(tmp_path):
    return _rule(tmp_path, SUM_RULE)


@pytest.fixture
def mean_rule(tmp_path):
    return _rule(tmp_path, MEAN_RULE, "mean.yaml")


def test_sum_rule_hand_worked(sum_rule):
    score = sum_rule.score({"scene_consistency": 0.9, "hsd": 0.5, "CLIPScore": 80.0, "diversity": 0.1}, "b")
    # scene 0.9; motion 0.5 + 80 * 0.01 + 0.1 = 1.4; overall 2.3
    assert score.groups == {"scene": pytest.approx(0.9), "motion": pytest.approx(1.4)}
    assert score.overall == pytest.approx(2.3) and sum_rule.ranked(score)
    # on a benchmark where diversity is lower-is-better it adds 1 - 0.1
    low = sum_rule.score(
        {"scene_consistency": 0.9, "hsd": 0.5, "CLIPScore": 80.0, "diversity": 0.1}, "low-div"
    )
    assert low.groups["motion"] == pytest.approx(0.5 + 0.8 + 0.9)


def test_sum_rule_uses_reported_groups_only_where_columns_are_missing(sum_rule):
    score = sum_rule.score({"scene_consistency": 0.9}, "b", reported_groups={"motion": 1.25, "scene": 0.1})
    assert score.groups == {"scene": pytest.approx(0.9), "motion": 1.25}
    assert score.group_sources == {"scene": "columns", "motion": "reported"}
    assert score.overall == pytest.approx(2.15)
    incomplete = sum_rule.score({"scene_consistency": 0.9, "hsd": 0.5}, "b")
    assert incomplete.overall is None and not sum_rule.ranked(incomplete)
    assert "Motion" in incomplete.problems[0]


def test_fidelity_is_shown_never_scored(sum_rule):
    values = {"scene_consistency": 0.9, "hsd": 0.5, "CLIPScore": 80.0, "diversity": 0.1}
    assert sum_rule.score({**values, "psnr": 40.0}, "b").overall == sum_rule.score(values, "b").overall
    assert sum_rule.score({**values, "psnr": math.inf}, "b").problems == ()
    assert "psnr" not in sum_rule.aggregated and "psnr" in sum_rule.shown


def test_normalised_mean_hand_worked(mean_rule):
    score = mean_rule.score({"hsd": 0.5, "ndtw": 0.25, "psnr": 25.0, "fvd": 500.0})
    # psnr (25 - 10) / 30 = 0.5; fvd lower is better: 1 - 500 / 2000 = 0.75
    assert score.normalised == {"hsd": 0.5, "ndtw": 0.25, "psnr": 0.5, "fvd": 0.75}
    assert score.groups == {"motion": pytest.approx(37.5), "fidelity": pytest.approx(62.5)}
    assert score.overall == pytest.approx(50.0)
    assert (score.covered, score.total) == (4, 4)


def test_per_video_normalisation_differs_from_normalising_the_mean(mean_rule):
    # psnr videos 5 and 45 dB: mean 25 -> 0.5 normalised; per video: clip(-1/6)=0 and clip(7/6)=1 -> 0.5;
    # 10 and 30: mean 20 -> 1/3; per video 0 and 2/3 -> 1/3. Where clipping bites they differ:
    videos = {"psnr": [5.0, 45.0, 40.0], "hsd": [0.2, 0.4, 0.6]}
    per_video = mean_rule.score({"psnr": 30.0, "hsd": 0.4}, per_video=videos)
    assert per_video.normalised_from == "per_video"
    assert per_video.normalised["psnr"] == pytest.approx((0 + 1 + 1) / 3)
    from_mean = mean_rule.score({"psnr": 30.0, "hsd": 0.4})
    assert from_mean.normalised["psnr"] == pytest.approx(20 / 30)
    assert per_video.normalised["hsd"] == pytest.approx(0.4) == from_mean.normalised["hsd"]


def test_infinite_values_are_handled_by_the_rule_never_silently_best(tmp_path, mean_rule):
    score = mean_rule.score({"hsd": 0.5, "ndtw": 0.5, "psnr": math.inf})
    assert not mean_rule.ranked(score) and "PSNR" in score.problems[0].upper()
    assert score.normalised["psnr"] is None
    best = _rule(
        tmp_path,
        MEAN_RULE.replace("allow_infinite: true}", "allow_infinite: true, infinite: best}"),
        "b.yaml",
    )
    assert best.score({"hsd": 0.5, "psnr": math.inf}).normalised["psnr"] == 1.0
    worst = _rule(
        tmp_path,
        MEAN_RULE.replace("allow_infinite: true}", "allow_infinite: true, infinite: worst}"),
        "w.yaml",
    )
    assert worst.score({"hsd": 0.5, "psnr": math.inf}).normalised["psnr"] == 0.0


def test_a_missing_column_is_left_out_not_zero(mean_rule):
    score = mean_rule.score({"hsd": 0.5, "psnr": 40.0, "ndtw": None, "fvd": float("nan")})
    assert score.normalised["ndtw"] is None and score.normalised["fvd"] is None
    assert score.overall == pytest.approx(100 * (0.5 + 1.0) / 2)
    assert (score.covered, score.total) == (2, 4)
    nothing = mean_rule.score({})
    assert nothing.overall is None and nothing.covered == 0 and not mean_rule.ranked(nothing)


def test_value_ranges(sum_rule, mean_rule):
    assert sum_rule.value_problems({"hsd": 0.5, "psnr": math.inf}, "x") == []
    for values, message in [
        ({"hsd": 7.5}, "outside the metric's range"),
        ({"hsd": -3.0}, "outside"),
        ({"CLIPScore": 1e308}, "outside"),
        ({"hsd": math.inf}, "only a finite value"),
        ({"hsd": float("nan")}, "NaN"),
    ]:
        assert message in sum_rule.value_problems(values, "x")[0]


def _entry(rule, i, values, kind="reported", benchmark="b", groups=None):
    provenance = (
        {"kind": kind, "source": "s", "table": "t"}
        if kind == "reported"
        else {
            "kind": kind,
            "ewmbench_version": "x",
            "protocol_sha256": "p",
            "dataset_sha256": "d",
            "record_sha256": "r",
        }
    )
    return entry_from_dict(
        {
            "format": "ewmbench-entry/1",
            "id": f"e{i}",
            "benchmark": benchmark,
            "provenance": provenance,
            "model": {
                "model_name": f"m{i}",
                "version": "1",
                "organization": "o",
                "release_year": 2025,
                "source_type": "open_source",
                "control_type": "hybrid",
            },
            "metrics": {"overall": values, **({"groups": groups} if groups else {})},
        },
        rule,
    )


def test_ranking_ties_at_printed_precision_and_unranked_apart(sum_rule):
    full = {"hsd": 0.5, "CLIPScore": 50.0, "diversity": 0.1}
    ranked = rank_benchmark(
        sum_rule,
        [
            _entry(sum_rule, 1, {"scene_consistency": 0.4, **full}),
            _entry(sum_rule, 2, {"hsd": 1.0}),
            # 0.4 + 1.1 = 1.5 from columns; 0.4 + 1.10000001 rounds to the same 4 decimals: a tie
            _entry(sum_rule, 3, {"scene_consistency": 0.4}, "verified", groups={"motion": 1.10000001}),
            _entry(sum_rule, 4, {"scene_consistency": 0.9, **full}),
        ],
    )
    assert [(r.entry.id, r.rank) for r in ranked] == [("e4", 1), ("e1", 2), ("e3", 2), ("e2", None)]
    assert [r.entry.kind for r in ranked[1:3]] == ["reported", "verified"]


def test_bad_rules_are_refused(tmp_path):
    for bad, message in [
        (MEAN_RULE.replace("direction: lower", "direction: down"), "direction must be higher or lower"),
        (MEAN_RULE.replace("bounds: [10, 40]", "bounds: [40, 10]"), "high > low"),
        (
            MEAN_RULE.replace("group: fidelity, direction: lower", "group: style, direction: lower"),
            "group 'style'",
        ),
        (MEAN_RULE.replace("format: ewmbench-rule/2", "format: other"), "not a board rule"),
        (MEAN_RULE.replace("method: normalised_mean", "method: median"), "score.method"),
        (MEAN_RULE.replace("bounds: [0, 2000]", "bounds: [0, .inf]"), "finite bounds"),
        (SUM_RULE.replace("directions: {diversity: lower}", "directions: {diversity: up}"), "directions"),
    ]:
        (tmp_path / "rule.yaml").write_text(bad)
        with pytest.raises(ConfigError, match=message):
            load_rule(tmp_path)


def test_entries_are_checked(mean_rule):
    good = {
        "format": "ewmbench-entry/1",
        "id": "x",
        "benchmark": "b",
        "provenance": {"kind": "reported", "source": "paper", "table": "Table 1"},
        "model": {
            "model_name": "m",
            "version": "1",
            "organization": "o",
            "release_year": 2025,
            "source_type": "open_source",
            "control_type": "hybrid",
        },
        "metrics": {"overall": {"hsd": 0.5}},
    }
    assert entry_from_dict(good, mean_rule).overall == {"hsd": 0.5}
    cases = [
        ({"metrics": {"overall": {"Motion": 1.6}}}, "keep a paper's own columns under 'reported'"),
        ({"metrics": {"overall": {"hsd": 7.5}}}, "outside the metric's range"),
        ({"metrics": {"overall": {"hsd": "inf"}}}, "only a finite value"),
        ({"metrics": {"overall": {}, "groups": {"style": 1.0}}}, "metrics.groups"),
        ({"metrics": {"overall": {}, "groups": {"motion": "inf"}}}, "finite number"),
        ({"metrics": {"overall": {}, "per_video": {"hsd": [0.5, 2.0]}}}, "per_video.hsd"),
        ({"benchmark": "other"}, "benchmark 'other'"),
        ({"provenance": {"kind": "guessed"}}, "provenance.kind"),
        ({"provenance": {"kind": "reported", "source": "paper"}}, "needs table"),
        ({"ci": {"hsd": [0.4, 0.6]}}, "only verified entries carry bootstrap intervals"),
        ({"model": {**good["model"], "release_year": "2025"}}, "release_year"),
        ({"id": "Bad Id"}, "id must be"),
    ]
    for change, message in cases:
        with pytest.raises(DataError, match=message):
            entry_from_dict({**good, **change}, mean_rule)


# ---------------------------------------------------------------- the shipped board


def _printed(entry) -> dict:
    return {r["label"]: r["value"] for r in entry.reported}


TABLE_2_ORDER = [
    "ewmbench-paper-enerverse-ft",
    "ewmbench-paper-ltx-ft",
    "ewmbench-paper-kling-1-6",
    "ewmbench-paper-hailuo-i2v-01-live",
    "ewmbench-paper-cosmos-7b",
    "ewmbench-paper-open-sora-2-0",
    "ewmbench-paper-ltx-video",
]


def test_the_default_rule_is_the_papers_own_score():
    rule = load_rule(BOARD)
    assert rule.method == "sum" and rule.score_label == "Overall"
    # Table 2's columns, in its order (the official tool's metric_keys), in three summed groups
    assert list(rule.aggregated) == [
        "scene_consistency",
        "hsd",
        "dyn",
        "ndtw",
        "diversity",
        "BLEUScore",
        "CLIPScore",
        "logic_constraints",
    ]
    assert [c.group for c in rule.aggregated.values()] == ["scene"] + ["motion"] * 3 + ["semantics"] * 4
    assert rule.columns["CLIPScore"].scale == 0.01  # the tool's x100 onto the paper's 0-1
    assert set(rule.shown) == {"psnr", "ssim", "lpips", "fid", "fvd"}
    assert rule_names(BOARD) == ["ewmbench-paper", "ewmscore"]
    assert "Overall" in rule.summary and "0-8" in rule.summary


def test_every_paper_entry_computes_its_printed_overall_and_table_2_order():
    rule = load_rule(BOARD)
    entries = {e.id: e for e in load_entries(BOARD, rule)}
    papers = [e for e in entries.values() if e.id.startswith("ewmbench-paper-")]
    assert len(papers) == 7
    for entry in papers:
        printed = _printed(entry)
        score = rule.score(entry.overall, entry.benchmark, entry.groups, entry.per_video)
        assert score.group_sources == {"scene": "columns", "motion": "columns", "semantics": "columns"}
        # computed equals printed, to the printed precision (4 decimals)
        assert round(score.overall, 4) == printed["Overall"], entry.id
        # the paper sums unrounded values: a group of four printed (rounded) values may differ from
        # its printed sum by one unit in the last place (Open-Sora's Semantics: 1.8740 vs 1.8739)
        assert score.groups["motion"] == pytest.approx(printed["Motion Avg."], abs=1.01e-4), entry.id
        assert score.groups["semantics"] == pytest.approx(printed["Semantics Avg."], abs=1.01e-4), entry.id
        assert entry.overall["CLIPScore"] / 100 == pytest.approx(printed["CLIP"])
    official = rank_benchmark(rule, [e for e in entries.values() if e.benchmark == "ewmbench-official"])
    papers_ranked = [r.entry.id for r in official if r.entry.id in TABLE_2_ORDER]
    assert papers_ranked == TABLE_2_ORDER


def test_ge_base_is_ranked_by_its_printed_groups_level_with_enerverse():
    rule = load_rule(BOARD)
    entries = {e.id: e for e in load_entries(BOARD, rule)}
    official = rank_benchmark(rule, [e for e in entries.values() if e.benchmark == "ewmbench-official"])
    top = [(r.entry.id, r.rank, round(r.score.overall, 4)) for r in official[:2]]
    assert top == [("ewmbench-paper-enerverse-ft", 1, 4.701), ("ge-paper-ge-base", 1, 4.701)]
    ge_base = official[1].score
    assert ge_base.group_sources == {"scene": "columns", "motion": "reported", "semantics": "reported"}


def test_ge_sim_maps_sa_and_ta_and_reads_low_diversity_as_good():
    rule = load_rule(BOARD)
    entries = {e.id: e for e in load_entries(BOARD, rule)}
    for entry_id in ("ge-paper-ge-sim-ltx", "ge-paper-ge-sim-cosmos"):
        entry = entries[entry_id]
        printed = _printed(entry)
        assert entry.overall["hsd"] == printed["SA"] and entry.overall["ndtw"] == printed["TA"]
        assert rule.direction("diversity", entry.benchmark) == "lower"
    ltx = entries["ge-paper-ge-sim-ltx"]
    score = rule.score(ltx.overall, ltx.benchmark)
    # 0.90 + (0.94 + 0.78 + 0.98) + ((1 - 0.011) + 0.33 + 0.908 + 0.97)
    assert score.overall == pytest.approx(0.90 + 2.70 + 0.989 + 0.33 + 0.908 + 0.97)


def test_the_rule_names_todays_protocol_file_and_entries_carry_it():
    """Verified entries are regenerated from today's code by make_verified.py; a full regeneration
    runs the simulator for six models (minutes), too slow for CI, so CI checks what drifts: the
    protocol file's hash against the rule's and the entries', and the entries against their own
    record hashes and intervals."""
    for name in rule_names(BOARD):
        rule = load_rule(BOARD, name)
        protocol = ROOT / "ewmbench" / "protocols" / f"{rule.protocol}.yaml"
        assert rule.protocol_sha256 == hashlib.sha256(protocol.read_bytes()).hexdigest(), (
            f"{protocol.name} changed: update protocol.sha256 in the rule and regenerate the verified "
            "entries (python leaderboards/ewmbench/make_verified.py)"
        )
    rule = load_rule(BOARD)
    for entry in load_entries(BOARD, rule):
        if entry.kind == "verified":
            assert entry.protocol["sha256"] == rule.protocol_sha256, entry.id
            assert entry.provenance["protocol_sha256"] == rule.protocol_sha256, entry.id
            assert entry.provenance["dataset_sha256"] == rule.benchmarks[entry.benchmark].dataset_sha256
            assert len(entry.provenance["record_sha256"]) == 64
            command = entry.provenance["command"]
            assert " runs/" in command  # relative: what a user types, not a path on one machine
            assert not any(part.startswith(("/", "~")) for part in command.split()), command
            # the per-video values are the rows the overall was computed from (the counted rows)
            for column, values in entry.per_video.items():
                counted = [v for v in values if v is not None]
                assert sum(counted) / len(counted) == pytest.approx(entry.overall[column]), (entry.id, column)


def test_ewmscore_rule_ranks_the_paper_entries_too():
    rule = load_rule(BOARD, "ewmscore")
    assert rule.method == "normalised_mean" and rule.normalise_mode == "per_video"
    entries = load_entries(BOARD, rule)
    official = rank_benchmark(rule, [e for e in entries if e.benchmark == "ewmbench-official"])
    enerverse = next(r for r in official if r.entry.id == "ewmbench-paper-enerverse-ft")
    # mean of the eight normalised columns x 100 (diversity on [0, 1], CLIP / 100)
    values = [0.9427, 0.5356, 0.5363, 0.5957, 0.0691, 0.18, 0.8638, 0.9778]
    assert enerverse.score.overall == pytest.approx(100 * sum(values) / 8)
    # GE-Base prints only groups: EWMScore cannot use them, so it is listed, not ranked
    ge_base = next(r for r in official if r.entry.id == "ge-paper-ge-base")
    assert ge_base.rank is None


def test_shipped_entries_keep_ids_and_files_together(tmp_path):
    rule = load_rule(BOARD)
    copy = tmp_path / "board"
    shutil.copytree(BOARD, copy, ignore=shutil.ignore_patterns("*.py"))
    data = json.loads((copy / "entries" / "ge-paper-ge-base.json").read_text())
    (copy / "entries" / "renamed.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="differs from the file name"):
        load_entries(copy, rule)
