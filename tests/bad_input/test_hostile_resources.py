"""Inputs that attack memory, time and connections (issue: bounded under attack). Each case runs as
a user meets it, in a subprocess or against a real ``ewmbench serve`` on 127.0.0.1, and must be
refused or handled within 500 MiB of peak memory and 10 s, with a message naming the input and
the limit; the server must keep answering valid requests meanwhile, and its log must hold no raw
control character. ``benchmarks/hostile_inputs.py`` prints the same cases' figures."""

from __future__ import annotations

import re

import pytest

from tests.bad_input.hostile import (
    MEMORY_BOUND_MIB,
    TIME_BOUND_S,
    blank_token_case,
    import_cases,
    lerobot_cases,
    reader_cases,
    server_cases,
)

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def assert_bounded(outcome) -> None:
    assert outcome.peak_mib <= MEMORY_BOUND_MIB, f"{outcome.name}: {outcome.peak_mib:.0f} MiB"
    assert outcome.seconds <= TIME_BOUND_S, f"{outcome.name}: {outcome.seconds:.1f} s"
    assert "Traceback" not in outcome.output and not CONTROL.search(outcome.output), outcome.output


def test_import_refuses_huge_and_long_videos_from_their_headers(tmp_path):
    huge, long = import_cases(tmp_path)
    for outcome in (huge, long):
        assert_bounded(outcome)
        assert outcome.code == 1 and "1_episode_10.mp4" in outcome.output, outcome.output
    assert "8192x8192" in huge.output and "EWMBENCH_MAX_FRAME_PIXELS" in huge.output, huge.output
    assert "6000 frames" in long.output and "3000-frame budget" in long.output, long.output


def test_the_video_reader_refuses_huge_and_long_videos_from_their_headers(tmp_path):
    """What evaluate reads trials with (evaluate's own process imports torch first: measured by
    benchmarks/hostile_inputs.py, not here)."""
    huge, long = reader_cases(tmp_path)
    for outcome in (huge, long):
        assert_bounded(outcome)
        assert outcome.code == 2, outcome.output
    assert "huge_frames.mp4" in huge.output and "8192x8192" in huge.output, huge.output
    assert "many_frames.mp4" in long.output and "3000-frame budget" in long.output, long.output


def test_lerobot_metadata_is_read_as_data_and_checked(tmp_path):
    for outcome, words in lerobot_cases(tmp_path):
        assert_bounded(outcome)
        assert outcome.code == 2, (outcome.name, outcome.output)
        assert all(w in outcome.output for w in words), (outcome.name, words, outcome.output)
    assert not (tmp_path / "outside").exists()


def test_the_server_stays_bounded_and_answering_under_attack(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    outcomes, peak_mib, log = server_cases(tmp_path)
    by_name = {o.name: o for o in outcomes}
    assert peak_mib <= MEMORY_BOUND_MIB, f"server peak {peak_mib:.0f} MiB"
    for outcome in outcomes:
        assert outcome.seconds <= TIME_BOUND_S, f"{outcome.name}: {outcome.seconds:.1f} s"
    hidden = by_name["serve_png_second_ihdr_13000x13000"]
    assert hidden.code == 400 and "exactly one IHDR" in hidden.output and "frames[0]" in hidden.output
    short = by_name["serve_png_1_of_48_rows"]
    assert short.code == 400 and "less than the 48x48 pixels" in short.output
    slow = by_name["serve_two_slow_bodies_5_bytes_per_s"]
    assert slow.code == 200 and "[200]" in slow.output and "[408, 408]" in slow.output, slow.output
    assert "the body did not arrive within 5 s and then at 64 KiB/s" in slow.output, slow.output
    headers = by_name["serve_slow_headers"]
    assert headers.code == 408 and "[200]" in headers.output and "headers did not arrive" in headers.output
    json_bomb = by_name["serve_60_MiB_of_empty_objects"]
    assert json_bomb.code == 400 and "JSON values" in json_bomb.output and "[200]" in json_bomb.output
    response = by_name["serve_response_past_the_budget"]
    assert response.code == 400 and "samples[0].actions" in response.output
    assert by_name["serve_escape_characters_in_the_path"].code == 404
    assert by_name["serve_wrong_token_8_MiB_body"].code == 401  # answered, not reset
    assert "<reset>" not in by_name["serve_wrong_token_8_MiB_body"].output
    assert "GET /v1/\\x1b[2J\\x1b]0;owned\\x07health 404" in log
    assert not CONTROL.search(log) and "hostile-suite-token" not in log


def test_a_blank_token_is_refused_for_a_public_bind(tmp_path):
    outcome = blank_token_case(tmp_path)
    assert_bounded(outcome)
    assert outcome.code == 2 and "EWMBENCH_SERVE_TOKEN holds only white space" in outcome.output
