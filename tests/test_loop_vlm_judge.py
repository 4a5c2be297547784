"""The vlm judge: prompt from the data file, real generation on a tiny random Qwen2.5-VL, parsing."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from ewmbench.errors import ConfigError
from ewmbench.loop.judges import JudgeError, Rollout
from ewmbench.loop.vlm_judge import (
    VLMJudge,
    load_judge_prompt,
    parse_verdict,
    render_prompt,
)
from ewmbench.perception.captioner import FrameSampling, VideoCaptioner, parse_caption

SUBSTEPS = ["Move above the cube.", "Grasp the cube.", "Place it in the tray."]


def rollout(frames: int = 12) -> Rollout:
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (frames, 56, 84, 3), dtype=np.uint8)
    return Rollout(
        "Pick up the red cube and place it in the tray.",
        SUBSTEPS,
        {"head": video},
        np.zeros((frames, 14)),
        np.zeros((frames, 14)),
    )


@dataclass
class CannedCaptioner(VideoCaptioner):
    """Answers with fixed text and records the prompt it was given."""

    answer: str = ""
    prompts: list | None = None

    def caption(self, videos):
        self.prompts.append(self.instruction)
        return [self.answer for _ in videos]


def canned_judge(answer: str) -> tuple[VLMJudge, list]:
    prompts: list = []
    judge = VLMJudge()
    judge._captioner = CannedCaptioner(
        None, None, "", judge.system, FrameSampling(), answer=answer, prompts=prompts
    )
    return judge, prompts


def test_prompt_file_is_rendered_with_instruction_and_substeps():
    system, template = load_judge_prompt("vlm-judge")
    assert "judge" in system
    text = render_prompt(template, "Stack the cube.", ["a", "b"])
    assert '"Stack the cube."' in text and "1. a\n2. b" in text and '{"substeps": [{"step": 1' in text
    with pytest.raises(ConfigError, match="unknown judge prompt"):
        load_judge_prompt("nope")


def test_custom_prompt_file_must_have_both_parts(tmp_path):
    bad = tmp_path / "p.txt"
    bad.write_text("only a system message")
    with pytest.raises(ConfigError, match="'---'"):
        load_judge_prompt(str(bad))


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            '{"substeps": [{"step": 1, "done": true}, {"step": 2, "done": false}], "success": false, "reward": 0.4}',
            (False, 0.4, [True, False, None]),
        ),
        (
            '```json\n{"substeps": [true, "yes", "no"], "success": "yes", "reward": 7}\n```',
            (True, 1.0, [True, True, False]),
        ),
        ('{"substeps": [{"step": 3, "done": "done"}], "reward": "NaN"}', (None, None, [None, None, True])),
        ('{"success": true, "reward": 0.9,', (True, 0.9, [None, None, None])),  # truncated output is repaired
        ("the robot did fine", (None, None, [None, None, None])),
        ('{"substeps": [{"step": 9, "done": true}], "success": "maybe"}', (None, None, [None, None, None])),
    ],
)
def test_answers_are_parsed_leniently(text, expected):
    success, reward, steps = parse_verdict(parse_caption(text), 3)
    assert (success, steps) == (expected[0], expected[2])
    assert reward == expected[1] or (
        reward is not None and expected[1] is not None and math.isclose(reward, expected[1])
    )


def test_verdict_keeps_its_evidence():
    judge, prompts = canned_judge(
        '{"substeps": [{"step": 1, "done": true}, {"step": 2, "done": true}, {"step": 3, "done": false}], "success": false}'
    )
    verdict = judge.judge(rollout())
    assert verdict.success is False and verdict.substeps == [True, True, False]
    assert verdict.score == pytest.approx(2 / 3)  # no reward given: the share of sub-steps done
    assert verdict.evidence["answer"].startswith('{"substeps"') and verdict.evidence["prompt"] == prompts[0]
    assert "Pick up the red cube" in prompts[0] and "3. Place it in the tray." in prompts[0]
    assert verdict.evidence["frames_seen"] and max(verdict.evidence["frames_seen"]) < 12


def test_unparseable_answer_is_a_judge_error_quoting_it():
    judge, _ = canned_judge("I cannot tell.")
    with pytest.raises(JudgeError, match="I cannot tell"):
        judge.judge(rollout())


def test_real_generation_through_a_tiny_random_qwen():
    from tests.helpers.tiny_vlm import tiny_model, tiny_processor

    processor = tiny_processor()
    seen = []
    original = processor.apply_chat_template

    def recording(messages, **kwargs):
        seen.append(messages)
        return original(messages, **kwargs)

    processor.apply_chat_template = recording
    judge = VLMJudge.from_components(tiny_model(processor), processor, max_new_tokens=4)
    try:
        verdict = judge.judge(rollout())
    except JudgeError as exc:  # a random model answers gibberish: the episode would be marked failed
        assert "holds no verdict" in str(exc)
    else:  # vanishingly unlikely, but then it must be a well-formed verdict
        assert 0.0 <= verdict.score <= 1.0
    system, user = seen[0][0]["content"][0]["text"], seen[0][1]["content"][0]["text"]
    assert system == judge.system and "Pick up the red cube" in user and "2. Grasp the cube." in user
    assert seen[0][1]["content"][1] == {"type": "video"}


def test_judge_loads_a_model_folder_by_path(tmp_path):
    """The `model=PATH` option goes through the captioner's loader (weights manager, local folder)."""
    from tests.helpers.tiny_vlm import tiny_model, tiny_processor

    processor = tiny_processor()
    tiny_model(processor).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    judge = VLMJudge(model=str(tmp_path), dtype="float32", device="cpu", max_new_tokens=4)
    with pytest.raises(JudgeError, match="holds no verdict"):  # a random model answers gibberish
        judge.judge(rollout(8))
    assert judge._captioner is not None and judge._captioner.model.dtype.is_floating_point


def test_openai_compatible_backend_against_a_loopback_server(monkeypatch):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(
                (
                    self.path,
                    self.headers.get("Authorization"),
                    json.loads(self.rfile.read(int(self.headers["Content-Length"]))),
                )
            )
            answer = '```json\\n{"substeps": [true, true, false], "success": false, "reward": 0.5}\\n```'
            body = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("JUDGE_KEY", "secret")
    try:
        judge = VLMJudge(
            backend="openai",
            url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            model="qwen2.5-vl",
            frames=4,
            api_key_env="JUDGE_KEY",
        )
        verdict = judge.judge(rollout(12))
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert (verdict.success, verdict.score, verdict.substeps) == (False, 0.5, [True, True, False])
    assert verdict.evidence["frames_seen"] == [0, 4, 7, 11] and "secret" not in json.dumps(judge.config())
    path, auth, payload = received[0]
    assert path == "/v1/chat/completions" and auth == "Bearer secret" and payload["model"] == "qwen2.5-vl"
    user = payload["messages"][1]["content"]
    assert "Pick up the red cube" in user[0]["text"] and len(user) == 5
    assert all(part["image_url"]["url"].startswith("data:image/jpeg;base64,") for part in user[1:])
    with pytest.raises(ConfigError, match="needs url"):
        VLMJudge(backend="openai")
