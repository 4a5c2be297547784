"""Exports in VBench's and WorldArena's results shapes, with hand-worked values."""

import math

import pytest

from ewmbench.leaderboard.bundle import first_trials, worldarena_stem
from ewmbench.leaderboard.export import vbench_results, worldarena_results
from ewmbench.results.record import Column
from tests.test_leaderboard_intake import make_record


def _record():
    record = make_record(values=(0.2, 0.4, 0.9))
    record.columns["CLIPScore"] = Column("CLIPScore", "semantics", "semantics", "trial", "higher")
    # a second trial for episode 1/10, and CLIPScore on every row (one missing)
    record.rows.append({"task_id": "1", "episode_id": "10", "trial_id": "2", "hsd": 0.6})
    for row, clip in zip(record.rows, (80.0, 60.0, math.nan, 90.0)):
        row["CLIPScore"] = clip
    return record


def test_vbench_lists_every_trial_with_its_value():
    data = vbench_results(_record())
    average, items = data["hsd"]
    assert [i["video_path"] for i in items] == [
        "test_dataset/1/10/1/video",
        "test_dataset/1/11/1/video",
        "test_dataset/2/20/1/video",
        "test_dataset/1/10/2/video",
    ]
    assert average == pytest.approx((0.2 + 0.4 + 0.9 + 0.6) / 4)
    average, items = data["CLIPScore"]
    assert len(items) == 3 and average == pytest.approx((80 + 60 + 90) / 3)  # the missing one left out


def test_worldarena_one_video_per_episode_its_first_trial_and_semantic_alignment():
    data = worldarena_results(_record())
    average, items = data["hsd"]
    assert [i["video_path"] for i in items] == [
        "generated_dataset/1/episode10/1/video",
        "generated_dataset/1/episode11/1/video",
        "generated_dataset/2/episode20/1/video",
    ]
    assert average == pytest.approx((0.2 + 0.4 + 0.9) / 3)
    assert all(i["video_results_normalized"] == i["video_results"] for i in items)
    assert "CLIPScore" not in data
    average, items = data["semantic_alignment"]
    assert [i["video_results"] for i in items] == [pytest.approx(0.8), pytest.approx(0.6)]
    assert average == pytest.approx(0.7)


def test_names_and_first_trials():
    assert worldarena_stem("adjust_bottle", "40") == "adjust_bottle_episode40"
    assert worldarena_stem("adjust_bottle", "episode40") == "adjust_bottle_episode40"
    keys = [("t", "e", "10"), ("t", "e", "2"), ("t", "f", "b"), ("t", "f", "a")]
    assert first_trials(keys) == {("t", "e"): ("t", "e", "2"), ("t", "f"): ("t", "f", "a")}
    with pytest.raises(Exception, match="cannot be written"):
        worldarena_stem("a/b", "1")
