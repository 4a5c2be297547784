"""The board's rule: normalisation, aggregates, missing columns, bounds, entry kinds kept apart."""

import json
import math
import shutil
from pathlib import Path

import pytest

from ewmbench.errors import ConfigError, DataError
from ewmbench.leaderboard.entries import entry_from_dict, load_entries
from ewmbench.leaderboard.rule import load_rule
from ewmbench.leaderboard.site import rank_benchmark

BOARD = Path(__file__).resolve().parents[1] / "leaderboards" / "ewmbench"

RULE = """
format: ewmbench-rule/1
name: t
version: "1"
protocol: {name: ewmbench-v1, version: "1.0"}
rank_min_columns: 2
groups: [motion, fidelity]
columns:
  hsd: {group: motion, direction: higher, bounds: [0, 1]}
  ndtw: {group: motion, direction: higher, bounds: [0, 1]}
  psnr: {group: fidelity, direction: higher, bounds: [10, 40]}
  fvd: {group: fidelity, direction: lower, bounds: [0, 2000]}
benchmarks:
  b: {title: B}
"""


@pytest.fixture
def rule(tmp_path):
    (tmp_path / "rule.yaml").write_text(RULE)
    return load_rule(tmp_path)


def test_hand_worked_normalisation_and_aggregate(rule):
    score = rule.score({"hsd": 0.5, "ndtw": 0.25, "psnr": 25.0, "fvd": 500.0})
    # psnr (25 - 10) / 30 = 0.5; fvd lower is better: 1 - 500 / 2000 = 0.75
    assert score.normalised == {"hsd": 0.5, "ndtw": 0.25, "psnr": 0.5, "fvd": 0.75}
    assert score.groups == {"motion": pytest.approx(37.5), "fidelity": pytest.approx(62.5)}
    assert score.aggregate == pytest.approx(100 * (0.5 + 0.25 + 0.5 + 0.75) / 4)  # 50.0
    assert (score.covered, score.total) == (4, 4)


def test_bounds_crossed_are_clipped_and_infinities_are_ends(rule):
    score = rule.score({"hsd": 1.7, "ndtw": -0.2, "psnr": math.inf, "fvd": 5000.0})
    assert score.normalised == {"hsd": 1.0, "ndtw": 0.0, "psnr": 1.0, "fvd": 0.0}


def test_a_missing_column_is_left_out_not_zero(rule):
    score = rule.score({"hsd": 0.5, "psnr": 40.0, "ndtw": None, "fvd": float("nan")})
    assert score.normalised["ndtw"] is None and score.normalised["fvd"] is None
    assert score.aggregate == pytest.approx(100 * (0.5 + 1.0) / 2)
    assert score.groups == {"motion": pytest.approx(50.0), "fidelity": pytest.approx(100.0)}
    assert (score.covered, score.total) == (2, 4)
    nothing = rule.score({})
    assert (
        nothing.aggregate is None
        and nothing.groups == {"motion": None, "fidelity": None}
        and nothing.covered == 0
    )


def test_ranking_ties_and_too_few_columns(rule):
    def entry(i, values, kind="reported"):
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
                "benchmark": "b",
                "provenance": provenance,
                "model": {
                    "model_name": f"m{i}",
                    "version": "1",
                    "organization": "o",
                    "release_year": 2025,
                    "source_type": "open_source",
                    "control_type": "hybrid",
                },
                "metrics": {"overall": values},
            },
            rule,
        )

    ranked = rank_benchmark(
        rule,
        [
            entry(1, {"hsd": 0.5, "ndtw": 0.5}),
            entry(2, {"hsd": 1.0}),
            entry(3, {"hsd": 0.5, "ndtw": 0.5}, "verified"),
            entry(4, {"hsd": 0.9, "ndtw": 0.9}),
        ],
    )
    assert [(r.entry.id, r.rank) for r in ranked] == [("e4", 1), ("e1", 2), ("e3", 2), ("e2", None)]
    # reported and verified entries are kept apart by their kind, never merged
    assert [r.entry.kind for r in ranked[1:3]] == ["reported", "verified"]


def test_bad_rules_are_refused(tmp_path):
    for bad, message in [
        (RULE.replace("direction: lower", "direction: down"), "direction must be higher or lower"),
        (RULE.replace("bounds: [10, 40]", "bounds: [40, 10]"), "high > low"),
        (
            RULE.replace("group: fidelity, direction: lower", "group: style, direction: lower"),
            "group 'style'",
        ),
        (RULE.replace("format: ewmbench-rule/1", "format: other"), "not a board rule"),
    ]:
        (tmp_path / "rule.yaml").write_text(bad)
        with pytest.raises(ConfigError, match=message):
            load_rule(tmp_path)


def test_entries_are_checked(rule):
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
    assert entry_from_dict(good, rule).overall == {"hsd": 0.5}
    cases = [
        ({"metrics": {"overall": {"Motion": 1.6}}}, "keep a paper's own columns under 'reported'"),
        ({"benchmark": "other"}, "benchmark 'other'"),
        ({"provenance": {"kind": "guessed"}}, "provenance.kind"),
        ({"provenance": {"kind": "reported", "source": "paper"}}, "needs table"),
        ({"ci": {"hsd": [0.4, 0.6]}}, "only verified entries carry bootstrap intervals"),
        ({"model": {**good["model"], "release_year": "2025"}}, "release_year"),
        ({"id": "Bad Id"}, "id must be"),
    ]
    for change, message in cases:
        with pytest.raises(DataError, match=message):
            entry_from_dict({**good, **change}, rule)


def test_the_shipped_board_loads_and_keeps_papers_in_their_own_columns(tmp_path):
    rule = load_rule(BOARD)
    entries = {e.id: e for e in load_entries(BOARD, rule)}
    enerverse = entries["ewmbench-paper-enerverse-ft"]
    assert enerverse.kind == "reported" and enerverse.provenance["arxiv"] == "2505.09694v2"
    # Table 2 as printed: the paper's Overall is the sum of SceneC and the two group sums
    printed = {r["label"]: r["value"] for r in enerverse.reported}
    assert printed["Overall"] == pytest.approx(
        printed["SceneC"] + printed["Motion Avg."] + printed["Semantics Avg."], abs=1e-4
    )
    for entry in entries.values():
        if entry.kind == "reported":
            assert not entry.ci and not entry.per_task
            assert all(c in rule.columns for c in entry.overall)
    # GE-Base reports one single metric: listed, not ranked
    official = rank_benchmark(rule, [e for e in entries.values() if e.benchmark == "ewmbench-official"])
    ge_base = next(r for r in official if r.entry.id == "ge-paper-ge-base")
    assert ge_base.rank is None and ge_base.score.covered == 1
    # verified entries must carry the sample's dataset hash and the rule's protocol
    for entry in entries.values():
        if entry.kind == "verified":
            assert entry.provenance["dataset_sha256"] == rule.benchmarks[entry.benchmark].dataset_sha256
            assert (entry.protocol["name"], entry.protocol["version"]) == (
                rule.protocol,
                rule.protocol_version,
            )
    # an entry whose file name and id differ is refused
    copy = tmp_path / "board"
    shutil.copytree(BOARD, copy, ignore=shutil.ignore_patterns("*.py"))
    data = json.loads((copy / "entries" / "ge-paper-ge-base.json").read_text())
    (copy / "entries" / "renamed.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="differs from the file name"):
        load_entries(copy, rule)
