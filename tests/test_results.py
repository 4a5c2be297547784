import json
import math

import numpy as np
import pandas as pd
import pytest

from ewmbench.errors import ConfigError
from ewmbench.files import json_safe
from ewmbench.metrics.registry import higher_is_better
from ewmbench.protocols import Protocol, available_protocols, load_protocol
from ewmbench.results import aggregate, best_of_n_positions, select_trials, table

V1 = load_protocol("ewmbench-v1")


def rows_frame():
    return pd.DataFrame(
        {
            "task_id": ["1", "1", "1", "2"],
            "episode_id": ["5", "5", "6", "7"],
            "trial_id": ["1", "2", "1", "1"],
            "hsd": [0.2004, 0.6, 0.4, 0.8],
            "diversity": [0.1, 0.1, 0.3, np.nan],
        }
    )


def test_our_table_has_full_precision_and_the_protocols_layout():
    v2 = load_protocol("ewmbench-v2")
    rows = rows_frame().assign(lpips=0.5)  # not in v2's table columns: rows.csv and summary only
    shown = table(rows, v2)
    assert list(shown.columns) == ["task_id", "episode_id", "trial_id", "diversity", "hsd"]
    assert shown["hsd"].tolist() == ["0.2004", "0.6", "0.4", "0.8", repr((0.2004 + 0.6 + 0.4 + 0.8) / 4)]
    # diversity (first_trial_only) on trial 1 rows, '-' elsewhere; MEAN over the shown values
    assert shown["diversity"].tolist() == ["0.1", "-", "0.3", "-", "0.2"]
    assert shown.iloc[-1][["task_id", "episode_id", "trial_id"]].tolist() == ["MEAN", "", ""]
    # Without a layout: every metric column, sorted, each on every row; a missing value is '-'.
    plain = Protocol("x", "1", "", {}, {}, {})
    every_row = table(rows, plain)
    assert list(every_row.columns)[3:] == ["diversity", "hsd", "lpips"]
    assert every_row["diversity"].tolist() == ["0.1", "0.1", "0.3", "-", repr((0.1 + 0.1 + 0.3) / 3)]


def test_v1_aggregation_is_the_mean_of_rows_v2_the_mean_of_task_means():
    v1 = aggregate(rows_frame(), V1, higher_is_better)
    assert v1["overall"]["hsd"] == pytest.approx((0.2 + 0.6 + 0.4 + 0.8) / 4)  # hsd stored as 3 decimals
    assert v1["overall"]["diversity"] == pytest.approx((0.1 + 0.1 + 0.3) / 3)  # others at full precision
    v2 = Protocol("x", "1", "", {}, {"trial_selection": "all", "overall": "mean_of_task_means"}, {})
    result = aggregate(rows_frame(), v2, higher_is_better)
    assert result["per_task"]["hsd"] == {"1": pytest.approx((0.2004 + 0.6 + 0.4) / 3), "2": 0.8}
    assert result["overall"]["hsd"] == pytest.approx(((0.2004 + 0.6 + 0.4) / 3 + 0.8) / 2)


def test_best_of_n_keeps_the_best_trial_per_episode_first_on_ties():
    protocol = Protocol("x", "1", "", {}, {"trial_selection": "best_of_n", "selection_column": "hsd"}, {})
    rows = rows_frame()
    rows.loc[3, "episode_id"] = "6"
    rows.loc[3, "task_id"] = "1"
    rows.loc[3, "hsd"] = 0.4  # tie with trial 1 of episode 6
    selected = select_trials(rows, protocol, higher_is_better)
    assert selected[["episode_id", "trial_id"]].values.tolist() == [["5", "2"], ["6", "1"]]


def test_json_safe_has_no_nan_or_infinity_tokens():
    text = json.dumps(json_safe({"a": math.inf, "b": float("nan"), "c": np.float32(0.5), "d": [np.int64(2)]}))
    assert text == '{"a": "inf", "b": null, "c": 0.5, "d": [2]}'


def test_protocols_are_data(tmp_path):
    assert {"ewmbench-v1", "ewmbench-v2"} <= set(available_protocols())
    assert (
        V1.decimals == {"dyn": 3, "hsd": 3, "ndtw": 3}
        and V1.settings("psnr")["frame_matching"] == "zip_divide_by_gt"
    )
    custom = tmp_path / "mine.yaml"
    custom.write_text(
        "name: mine\nversion: 1\nmetrics:\n  psnr: {data_range: 1, frame_matching: mean_over_matched}\n"
    )
    assert load_protocol(str(custom)).settings("psnr") == {
        "data_range": 1,
        "frame_matching": "mean_over_matched",
    }
    with pytest.raises(ConfigError, match="no settings for metric 'ssim'"):
        load_protocol(str(custom)).settings("ssim")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\n")
    with pytest.raises(
        ConfigError, match=r"version: required key is missing\n.*metrics: required key is missing"
    ):
        load_protocol(str(bad))


def test_best_of_n_follows_the_direction_of_the_selection_column():
    protocol = Protocol("x", "1", "", {}, {"trial_selection": "best_of_n", "selection_column": "lpips"}, {})
    rows = pd.DataFrame(
        {
            "task_id": ["1", "1", "1", "1"],
            "episode_id": ["5", "5", "5", "6"],
            "trial_id": ["1", "2", "3", "1"],
            "lpips": [0.30, 0.10, np.nan, 0.5],
        }
    )
    # lpips is a distance: the best trial of episode 5 is the one with the smallest value (trial 2).
    assert higher_is_better("lpips") is False and higher_is_better("hsd") is True
    assert select_trials(rows, protocol, higher_is_better)["trial_id"].tolist() == ["2", "1"]
    assert aggregate(rows, protocol, higher_is_better)["overall"]["lpips"] == pytest.approx((0.10 + 0.5) / 2)


def test_best_of_n_positions_hand_worked():
    episodes = ["a", "a", "b", "a", "b", "c", "c"]
    values = [0.2, 0.9, np.nan, 0.9, 0.1, np.nan, np.nan]
    assert best_of_n_positions(episodes, values, higher_is_better=True) == [
        1,
        4,
        5,
    ]  # tie: first; all-NaN: first
    assert best_of_n_positions(episodes, values, higher_is_better=False) == [0, 4, 5]


def test_every_column_has_one_direction():
    from ewmbench.metrics import metric_registry

    for name, cls in metric_registry().items():
        assert cls.lower_is_better <= set(cls.columns), name
    assert [higher_is_better(c) for c in ("fid", "fvd", "lpips", "logic_violation")] == [False] * 4
    assert all(
        higher_is_better(c)
        for c in ("psnr", "ssim", "hsd", "ndtw", "dyn", "scene_consistency", "diversity", "CLIPScore")
    )
    with pytest.raises(ConfigError, match="no metric writes a column 'nope'"):
        higher_is_better("nope")
