"""`ewmbench validity`: the transformed ground truths, the summary's numbers, the files and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ewmbench.cli import app
from ewmbench.compare.statistics import order_flip_rate
from ewmbench.compare.validity import (
    EXACT,
    Condition,
    ValiditySettings,
    h264,
    jpeg,
    lower_frame_rate,
    lower_resolution,
    run_validity,
    summarise,
)
from ewmbench.errors import ConfigError
from tests.helpers.datasets import make_ground_truth, moving_square_frames
from tests.helpers.sim_loop import write_sim_dataset


def test_transforms_keep_shape_and_lose_what_they_should():
    frames = moving_square_frames(6, seed=0)
    assert lower_frame_rate(frames, 2).shape == frames.shape
    assert [int(k) for k in (np.arange(6) // 2) * 2] == [0, 0, 2, 2, 4, 4]
    np.testing.assert_array_equal(lower_frame_rate(frames, 2)[1], frames[0])
    for transformed in (jpeg(frames, 50), h264(frames, 35, 10.0), lower_resolution(frames, 0.5)):
        assert transformed.shape == frames.shape and transformed.dtype == np.uint8
        assert 0 < np.abs(transformed.astype(int) - frames).mean() < 40
    # a stronger encoding loses more
    assert (
        np.abs(jpeg(frames, 20).astype(int) - frames).mean()
        > np.abs(jpeg(frames, 95).astype(int) - frames).mean()
    )


def _rows(values: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [{"task_id": t, "episode_id": e, "trial_id": "1", "x": v} for (t, e), v in values.items()]
    )


def test_order_flip_rate_by_hand():
    # one task, two episodes: a = (0, 0), b = (1, -3). B - A over the full data is -1 (b worse).
    # Resamples draw 2 of the 2 episodes with replacement: (e1, e1) gives +1 (flip), (e1, e2) and
    # (e2, e1) give -1, (e2, e2) gives -3: a flip rate of 1/4.
    a = _rows({("1", "1"): 0.0, ("1", "2"): 0.0})
    b = _rows({("1", "1"): 1.0, ("1", "2"): -3.0})
    assert order_flip_rate(a, b, "x", resamples=20000, seed=1) == pytest.approx(0.25, abs=0.01)
    # far apart on every episode: never flips; identical: every resample ties (a flip)
    assert order_flip_rate(a, _rows({("1", "1"): 5.0, ("1", "2"): 6.0}), "x", resamples=500) == 0.0
    assert order_flip_rate(a, a, "x", resamples=500) == 1.0
    assert order_flip_rate(a, _rows({("9", "9"): 1.0}), "x") is None


def test_summary_sensitivity_and_ladder_by_hand():
    episodes = [("1", str(e)) for e in range(6)]

    def condition(name, offset, kind="sim"):
        rows = _rows({k: 1.0 - offset - 0.01 * i for i, k in enumerate(episodes)})
        return Condition(name, kind, None, rows, {"x": float(rows.x.mean())}, {"x": "higher"})

    conditions = [
        condition("ground truth", 0.0, "reference"),
        condition(EXACT, 0.0),
        condition("noise 0.01 m", 0.1),
        condition("noise 0.03 m", 0.2),
        condition("noise 0.08 m", 0.3),
    ]
    report = summarise(conditions, ValiditySettings(resamples=200))
    assert report["ladder_in_order"] == {"x": True}
    by_name = {s["perturbation"]: s for s in report["sensitivity"]}
    # every one of the 6 episodes lower by exactly 0.1: p = 2 / 64, interval [-0.1, -0.1]
    first = by_name["noise 0.01 m"]
    assert first["difference"] == pytest.approx(-0.1) and first["p_value"] == 2 / 64
    assert (first["low"], first["high"]) == (pytest.approx(-0.1), pytest.approx(-0.1))
    assert first["verdict"] == "worse"
    assert all(s["flip_rate"] == 0.0 for s in report["rank_stability"])
    assert report["agreement"]["over_trials"]["x"]["x"] == pytest.approx(1.0)


def test_references_end_to_end_with_the_cli(tmp_path):
    gt = make_ground_truth(tmp_path / "gt", num_frames=6)
    out = tmp_path / "validity"
    result = CliRunner().invoke(
        app,
        [
            "validity",
            "--dataset",
            str(gt),
            "--metrics",
            "psnr,ssim",
            "--protocol",
            "ewmbench-v2",
            "--output",
            str(out),
            "--jpeg-quality",
            "50",
            "--crf",
            "35",
            "--perturbations",
            "none",
            "--resamples",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "validity.json").read_text())
    names = [c["name"] for c in report["conditions"]]
    assert names == ["ground truth", "JPEG q50", "H.264 CRF 35", "fps / 2", "resolution x0.5"]
    overall = {c["name"]: c["overall"] for c in report["conditions"]}
    assert overall["ground truth"]["psnr"] == 100.0 and overall["ground truth"]["ssim"] == 1.0
    for name in names[1:]:
        assert overall[name]["psnr"] < 100.0 and overall[name]["ssim"] < 1.0
    html = (out / "validity.html").read_text()
    assert "<h2>Validity</h2>" in html and "JPEG q50" in html and "Kendall tau" in html
    # a second call resumes: the same numbers
    again = run_validity(
        out,
        ValiditySettings(
            dataset=str(gt),
            protocol="ewmbench-v2",
            metrics=("psnr", "ssim"),
            jpeg_qualities=(50,),
            h264_crfs=(35,),
            perturbations=(),
            resamples=100,
        ),
        progress=False,
    )
    assert again["conditions"] == report["conditions"]


@pytest.mark.slow
def test_sim_perturbation_on_a_small_simulated_dataset(tmp_path):
    gt = write_sim_dataset(tmp_path / "gt", tasks=("pick_place", "push"))
    report = run_validity(
        tmp_path / "out",
        ValiditySettings(
            dataset=str(gt),
            metrics=("psnr",),
            jpeg_qualities=(),
            h264_crfs=(),
            frame_rate_divisors=(),
            resolution_scales=(),
            perturbations=("lag 3 frames",),
            resamples=50,
        ),
        progress=False,
    )
    assert [c["name"] for c in report["conditions"]] == ["ground truth", EXACT, "lag 3 frames"]
    (lag,) = report["sensitivity"]
    assert lag["metric"] == "psnr" and lag["difference"] < 0 and lag["episodes"] == 2


def test_bad_settings_are_refused(tmp_path):
    for settings, message in (
        (ValiditySettings(perturbations=("earthquake",)), "unknown perturbation"),
        (ValiditySettings(jpeg_qualities=(0,)), "jpeg-quality"),
        (ValiditySettings(h264_crfs=(60,)), "crf"),
        (ValiditySettings(resolution_scales=(2.0,)), "scale"),
        (ValiditySettings(episodes_per_task=0), "episodes-per-task"),
    ):
        with pytest.raises(ConfigError, match=message):
            run_validity(tmp_path / "out", settings, progress=False)
