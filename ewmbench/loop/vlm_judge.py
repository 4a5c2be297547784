"""``vlm``: a video-language model judges a rollout against its instruction and sub-steps.

The prompt is a data file (``prompts/vlm-judge.txt``: a system message, a ``---`` line, then the
user message with ``{instruction}`` and ``{substeps}``; pass ``prompt=PATH.txt`` for your own).
The model (Qwen2.5-VL by default; any chat VLM that transformers loads, as for the semantics
metric's captioner) sees the rollout's head-view frames, sampled as the captioner samples them,
and answers with JSON: per sub-step done or not, an overall success and a reward in [0, 1].

Parsing is lenient (code fences, trailing commas, truncated output are repaired). A sub-step the
answer does not cover is ``None``; a missing reward is the share of sub-steps done, or the success
itself. An answer with neither a success nor any sub-step verdict is not a verdict: the episode is
marked failed with the answer quoted, rather than silently counted as a failure of the policy.
Every verdict keeps the prompt, the raw answer and the indices of the frames the model saw.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ewmbench.errors import ConfigError
from ewmbench.httpclient import HTTPClient, HTTPSettings, RemoteError
from ewmbench.loop.judges import Judge, JudgeError, Rollout, Verdict
from ewmbench.perception.captioner import (
    FrameSampling,
    VideoCaptioner,
    load_captioner,
    parse_caption,
    sample_indices,
)
from ewmbench.perception.device import default_device

DEFAULT_MODEL = "qwen2.5-vl-7b-instruct"
DEFAULT_PROMPT = "vlm-judge"


def load_judge_prompt(name_or_path: str) -> tuple[str, str]:
    """(system message, user template) from a built-in prompt name or a ``.txt`` path."""
    path = Path(name_or_path)
    if path.suffix == ".txt" and path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files(__package__) / "prompts" / f"{name_or_path}.txt"
        if not resource.is_file():
            raise ConfigError(
                f"unknown judge prompt {name_or_path!r} (a name under ewmbench/loop/prompts/ or a .txt path)"
            )
        text = resource.read_text(encoding="utf-8")
    if "\n---\n" not in text:
        raise ConfigError(
            f"judge prompt {name_or_path!r} must hold a system message, a line '---', then the user message"
        )
    system, user = text.split("\n---\n", 1)
    if "{instruction}" not in user:
        raise ConfigError(f"judge prompt {name_or_path!r} must mention {{instruction}} in its user message")
    return system.strip(), user.strip()


def render_prompt(template: str, instruction: str, substeps: list[str]) -> str:
    listed = "\n".join(f"{i}. {step}" for i, step in enumerate(substeps, 1)) or "(none given)"
    return template.format(instruction=instruction, substeps=listed)


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in {"true", "yes", "done", "success", "succeeded", "1"}:
            return True
        if word in {"false", "no", "not done", "failure", "failed", "0"}:
            return False
    return None


def parse_verdict(answer: dict, substeps: int) -> tuple[bool | None, float | None, list[bool | None]]:
    """(success, reward, per sub-step done) from a parsed answer; ``None`` where it says nothing usable."""
    steps: list[bool | None] = [None] * substeps
    raw_steps = answer.get("substeps")
    if isinstance(raw_steps, list):
        for position, item in enumerate(raw_steps):
            index, done = position, None
            if isinstance(item, dict):
                done = _boolean(item.get("done"))
                if "step" in item:  # a numbered step counts only when its number names a sub-step
                    step = item["step"]
                    if not (isinstance(step, int) and not isinstance(step, bool) and 1 <= step <= substeps):
                        continue
                    index = step - 1
            else:
                done = _boolean(item)
            if index < substeps and done is not None:
                steps[index] = done
    success = _boolean(answer.get("success"))
    reward = answer.get("reward")
    try:
        reward = float(reward) if reward is not None and not isinstance(reward, bool) else None
    except (TypeError, ValueError):
        reward = None
    if reward is not None and reward != reward:  # NaN
        reward = None
    if reward is not None:
        reward = min(1.0, max(0.0, reward))
    return success, reward, steps


class VLMJudge(Judge):
    name = "vlm"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        prompt: str = DEFAULT_PROMPT,
        device: str | None = None,
        dtype: str = "bfloat16",
        max_new_tokens: int = 512,
        view: str = "head",
        backend: str = "transformers",
        url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        frames: int = 8,
        timeout: float = 120.0,
        captioner=None,
        **options,
    ):
        if options:
            raise ConfigError(
                f"unknown vlm judge option(s) {sorted(options)}; known: model, prompt, device, dtype, max_new_tokens, view, "
                "backend, url, api_key_env, frames, timeout"
            )
        if backend not in ("transformers", "openai"):
            raise ConfigError(f"vlm judge backend must be transformers or openai, got {backend!r}")
        if backend == "openai" and not url:
            raise ConfigError(
                "the openai backend needs url=http://HOST:PORT/v1 (any OpenAI-compatible chat completions server)"
            )
        self.backend, self.url, self.api_key_env = backend, url, str(api_key_env)
        self.frames, self.timeout = int(frames), float(timeout)
        if self.frames < 1:
            raise ConfigError(f"vlm judge frames must be at least 1, got {frames!r}")
        self.model_source = str(model)
        self.prompt_name = str(prompt)
        self.system, self.template = load_judge_prompt(self.prompt_name)
        self.device, self.dtype = device, str(dtype)
        self.max_new_tokens = int(max_new_tokens)
        self.view = str(view)
        self._captioner = captioner  # a loaded VideoCaptioner (tests pass a tiny one)

    @classmethod
    def from_components(cls, model, processor, max_new_tokens: int = 64, **options) -> VLMJudge:
        """A judge over an already-loaded model and processor."""

        judge = cls(max_new_tokens=max_new_tokens, **options)
        judge._captioner = VideoCaptioner(
            model, processor, "", judge.system, FrameSampling(), max_new_tokens, batch_size=1
        )
        return judge

    def config(self) -> dict:  # the API key is read from the environment at each call and never recorded
        return {
            "model": self.model_source,
            "prompt": self.prompt_name,
            "max_new_tokens": self.max_new_tokens,
            "view": self.view,
            "backend": self.backend,
            "url": self.url,
            "frames": self.frames,
        }

    def _load(self):
        if self._captioner is None:
            self._captioner = load_captioner(
                self.model_source,
                instruction="",
                system_message=self.system,
                sampling=FrameSampling(),
                max_new_tokens=self.max_new_tokens,
                batch_size=1,
                device=self.device or default_device(),
                dtype=self.dtype,
            )
        return self._captioner

    def judge(self, rollout: Rollout) -> Verdict:
        from dataclasses import replace

        frames = rollout.frames.get(self.view)
        if frames is None or len(frames) == 0:
            raise JudgeError(
                f"the vlm judge reads the {self.view!r} view; the rollout has {sorted(rollout.frames)}"
            )
        prompt = render_prompt(self.template, rollout.instruction, rollout.substeps)
        if self.backend == "openai":
            answer_text, seen = self._ask_server(prompt, frames)
        else:
            captioner = self._load()
            answer_text = replace(captioner, instruction=prompt).caption([frames])[0]
            seen = [int(i) for i in sample_indices(len(frames), captioner.sampling)]
        parsed = parse_caption(answer_text)
        success, reward, steps = parse_verdict(parsed, len(rollout.substeps))
        if success is None and all(s is None for s in steps):
            raise JudgeError(
                f"the vlm judge's answer holds no verdict (no success, no sub-step): {answer_text[:300]!r}"
            )
        if success is None:  # judged from the sub-steps alone: all done
            success = all(s is True for s in steps)
        if reward is None:
            judged = [s for s in steps if s is not None]
            reward = sum(judged) / len(judged) if judged else float(success)
        evidence = {
            "judge": "vlm",
            "model": self.model_source,
            "prompt": prompt,
            "answer": answer_text,
            "frames_seen": seen,
            "view": self.view,
            "backend": self.backend,
        }
        return Verdict(bool(success), float(reward), steps, evidence)

    def _ask_server(self, prompt: str, frames) -> tuple[str, list[int]]:
        """Ask an OpenAI-compatible chat completions server; the frames travel as JPEG data URLs."""
        import base64
        import io
        import os

        import numpy as np
        from PIL import Image

        seen = sorted({int(round(i)) for i in np.linspace(0, len(frames) - 1, min(self.frames, len(frames)))})
        content: list[dict] = [{"type": "text", "text": prompt}]
        for index in seen:
            buffer = io.BytesIO()
            Image.fromarray(np.asarray(frames[index], dtype=np.uint8)).save(buffer, format="JPEG", quality=90)
            url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
            content.append({"type": "image_url", "image_url": {"url": url}})
        key = os.environ.get(self.api_key_env)
        client = HTTPClient(
            self.url,
            HTTPSettings(timeout=self.timeout, retries=2, max_concurrency=1),
            headers={"Authorization": f"Bearer {key}"} if key else None,
        )
        payload = {
            "model": self.model_source,
            "temperature": 0,
            "max_tokens": self.max_new_tokens,
            "messages": [{"role": "system", "content": self.system}, {"role": "user", "content": content}],
        }
        try:
            answer = client.post_json("chat/completions", payload)
        except RemoteError as exc:
            raise JudgeError(f"the vlm judge's server failed: {exc}") from None
        finally:
            client.close()
        try:
            text = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise JudgeError(
                f"the vlm judge's server answered without choices[0].message.content: {str(answer)[:300]}"
            ) from None
        if not isinstance(text, str):
            raise JudgeError("the vlm judge's server answered with a non-text message")
        return text, seen
