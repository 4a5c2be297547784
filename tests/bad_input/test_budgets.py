"""The budgets' pieces, in process: overrides, the template parser, the PNG chunk walk, and the
streaming conform (which must give the very frames the whole-array conform gives)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from ewmbench.data.budgets import FRAME_PIXELS, VIDEO_FRAMES
from ewmbench.data.conform import conform_stream, conform_video, resize_frames, time_indices
from ewmbench.data.converters.lerobot import fill_path_template
from ewmbench.errors import DataError
from ewmbench.models.wire import ApiError, png_header
from tests.bad_input.hostile import png_hiding_a_huge_first_header, png_of, png_with_one_row

INFO = Path("meta/info.json")


def test_a_budget_takes_a_positive_override_and_ignores_anything_else(monkeypatch):
    monkeypatch.setenv("EWMBENCH_MAX_VIDEO_FRAMES", "12")
    assert VIDEO_FRAMES.value() == 12
    for junk in ("0", "-5", "many", ""):
        monkeypatch.setenv("EWMBENCH_MAX_VIDEO_FRAMES", junk)
        assert VIDEO_FRAMES.value() == 3000
    monkeypatch.delenv("EWMBENCH_MAX_FRAME_PIXELS", raising=False)
    assert FRAME_PIXELS.value() == 7680 * 4320


def test_lerobot_templates_take_only_documented_fields_and_short_widths():
    fields = {"episode_chunk": 1, "episode_index": 42}
    template = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    assert fill_path_template(template, fields, INFO, "data_path") == "data/chunk-001/episode_000042.parquet"
    assert fill_path_template("e{episode_index}.parquet", fields, INFO, "data_path") == "e42.parquet"
    for bad, words in (
        ("{episode_index.__class__}", "unknown template field"),
        ("{episode_index[0]}", "unknown template field"),
        ("{file_index}", "unknown template field"),
        ("{episode_index:>400000000}", "at most 2 digits"),
        ("{episode_index:0100d}", "at most 2 digits"),
        ("{episode_index!r}", "at most 2 digits"),
        ("{episode_index", "not a valid path template"),
        ("x" * 600, "1 to 512 characters"),
    ):
        with pytest.raises(DataError, match="data_path") as info:
            fill_path_template(bad, fields, INFO, "data_path")
        assert words in str(info.value) and "info.json" in str(info.value)
    with pytest.raises(DataError, match="at most 2 digits"):  # a camera name takes no format
        fill_path_template("{video_key:>9}", {"video_key": "top"}, INFO, "video_path")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_chunk_walk_needs_one_first_ihdr_and_exactly_its_rows():
    frame = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)
    assert png_header(png_of(frame), "f") == (6, 5)
    with pytest.raises(ApiError, match="exactly one IHDR"):
        png_header(png_hiding_a_huge_first_header(6, 5), "f")
    with pytest.raises(ApiError, match="less than the 6x5 pixels"):
        png_header(png_with_one_row(6, 5), "f")
    clean = png_of(frame)
    longer = zlib.compress(b"".join(b"\x00" + bytes(15) for _ in range(7)))  # 7 rows for a 6-row header
    extra = clean[:33] + _chunk(b"IDAT", longer) + _chunk(b"IEND", b"")
    with pytest.raises(ApiError, match="more than the 6x5 pixels"):
        png_header(extra, "f")
    flood = clean[:33] + _chunk(b"tEXt", b"a\x00b") * 1100 + clean[33:]
    with pytest.raises(ApiError, match="more than 1024 chunks"):
        png_header(flood, "f")
    with pytest.raises(ApiError, match="no IEND"):
        png_header(clean[:-12], "f")


def test_the_streaming_conform_picks_and_resizes_as_the_whole_array_rule_says():
    """Reference: pick frame min(index, T - 1) for each output (``time_indices``), then resize them
    all at once (``resize_frames``), as conform did before it streamed."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (9, 12, 16, 3), dtype=np.uint8)
    for n, h, w, source_fps, target_fps, fit in (
        (5, 12, 16, None, None, "stretch"),
        (14, 6, 8, 10.0, 4.0, "stretch"),
        (7, 9, 20, 30.0, 30.0, "crop"),
        (4, 24, 32, 5.0, 15.0, "stretch"),
    ):
        picked = frames[np.minimum(time_indices(len(frames), n, source_fps, target_fps), len(frames) - 1)]
        expected = resize_frames(picked, h, w, fit)
        streamed, report = conform_stream(iter(frames), n, h, w, source_fps, target_fps, fit)
        np.testing.assert_array_equal(streamed, expected)
        whole, _ = conform_video(frames, n, h, w, source_fps, target_fps, fit)
        np.testing.assert_array_equal(whole, expected)
    _, report = conform_video(frames, 14, 12, 16)
    assert report["held"] == 5 and report["dropped"] == 0 and report["source"]["frames"] == 9
    _, report = conform_video(frames, 4, 12, 16, 10.0, 5.0)  # frames 0, 2, 4, 6 shown
    assert report["held"] == 0 and report["dropped"] == 5
