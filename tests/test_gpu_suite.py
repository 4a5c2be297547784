"""The GPU suite's full-benchmark projection from measured rates (hand-worked hours)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def suite():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_suite.py"
    spec = importlib.util.spec_from_file_location("gpu_suite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_projection_hours_from_rates(suite):
    rows = [
        {"stage": "DINOv2 ViT-B/14 @518 (scene)", "unit": "frames/s", "rate": 1000.0},
        {"stage": "CLIP ViT-B/32 @224 (diversity)", "unit": "frames/s", "rate": 3500.0},
        {"stage": "captioner language model (28 layers x 3584), batch 1", "unit": "tokens/s", "rate": 40.0},
        {"stage": "captioner language model (28 layers x 3584), batch 4", "unit": "tokens/s", "rate": 128.0},
        # a variant row does not replace the CLIP row's rate; it gets its own scene line
        {
            "stage": "CLIP ViT-B/32 @224, across videos (16 videos x 21 frames)",
            "unit": "frames/s",
            "rate": 7.0,
            "variant": "across videos",
        },  # fmt: skip
        {
            "stage": "DINOv2 (768 wide) @518, bfloat16-autocast",
            "unit": "frames/s",
            "rate": 2100.0,
            "variant": "bfloat16-autocast",
        },  # fmt: skip
    ]
    hours = dict(suite.projection(rows))
    # 4,000 videos x 105 frames = 420,000 frames; 3,000 trials x 105 = 315,000 frames
    assert hours["scene consistency: every frame of 4,000 videos"] == pytest.approx(420_000 / 1000 / 3600)
    assert hours["diversity: every frame of 3,000 trials"] == pytest.approx(315_000 / 3500 / 3600)
    # 4,000 videos x 400 tokens at the best batch's 128 tokens/s
    assert hours["captions: 4,000 videos x ~400 generated tokens (best batch)"] == pytest.approx(
        4000 * 400 / 128 / 3600
    )
    label = "scene consistency at the rate of: DINOv2 (768 wide) @518, bfloat16-autocast"
    assert hours[label] == pytest.approx(420_000 / 2100 / 3600)
    assert not any("across videos" in key for key in hours)  # CLIP variants are not scene lines
    assert "tracks: every frame of 4,000 videos" not in hours  # no detector rate measured
