"""Captions from any OpenAI-compatible server (``vllm serve``, SGLang, ...): the captioner's
prompt and sampled frames sent through the chat-completions API, many videos at once.

vLLM is not our dependency: it runs in its own environment, for example::

    vllm serve Qwen/Qwen2.5-VL-7B-Instruct --limit-mm-per-prompt '{"image": 64}'
    EWMBENCH_CAPTIONER_URL=http://127.0.0.1:8000 ewmbench evaluate ...

Frames are sampled and resized as for the in-process captioner (:func:`prepare_video`), rounded
to 8 bits and sent as PNG images (lossless) in one user message, with the instruction after them
and the system message first; the server's own processor then sees them as images, not as one
video, so its answers are not assumed equal to the in-process model's. Answers
are greedy (``temperature`` 0). Requests go through :class:`ewmbench.httpclient.HTTPClient`:
bounded concurrency, timeouts, retries with backoff. Captions are cached like the in-process
ones, under a key naming the backend and the served model.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ewmbench.errors import ConfigError
from ewmbench.httpclient import HTTPClient, HTTPSettings, RemoteError
from ewmbench.perception.captioner import FrameSampling, prepare_video

URL_ENV, MODEL_ENV, KEY_ENV, CONCURRENCY_ENV = (
    "EWMBENCH_CAPTIONER_URL",
    "EWMBENCH_CAPTIONER_MODEL",
    "EWMBENCH_CAPTIONER_API_KEY",
    "EWMBENCH_CAPTIONER_CONCURRENCY",
)


def png_data_url(frame: np.ndarray) -> str:
    """One (H, W, 3) uint8 frame as a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass
class OpenAICaptioner:
    """The :class:`~ewmbench.perception.captioner.VideoCaptioner` interface over a chat-completions server."""

    client: HTTPClient
    model: str  # the served model's name
    instruction: str
    system_message: str
    sampling: FrameSampling = FrameSampling()
    max_new_tokens: int = 2048

    def request(self, frames: np.ndarray) -> dict:
        """The chat-completions payload of one decoded (T, H, W, 3) uint8 video."""
        import torch

        resized, _ = prepare_video(
            frames, self.sampling
        )  # float32 in 0..255, as the in-process model gets them
        images = resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        content = [{"type": "image_url", "image_url": {"url": png_data_url(image)}} for image in images]
        content.append({"type": "text", "text": self.instruction})
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": self.system_message},
                {"role": "user", "content": content},
            ],
            "max_tokens": self.max_new_tokens,
            "temperature": 0,
        }

    def _one(self, frames: np.ndarray) -> str:
        answer = self.client.post_json("/v1/chat/completions", self.request(frames))
        try:
            text = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RemoteError(
                f"{self.client.base_url}: a chat completion without choices[0].message.content: {str(answer)[:200]}"
            ) from None
        if not isinstance(text, str):
            raise RemoteError(f"{self.client.base_url}: message content is not text")
        return text

    def caption(self, videos: Sequence[np.ndarray]) -> list[str]:
        """Answers in the order of ``videos``; at most the client's ``max_concurrency`` in flight."""
        with ThreadPoolExecutor(self.client.settings.max_concurrency) as pool:
            return list(pool.map(self._one, videos))


def server_from_env() -> tuple[str, str | None] | None:
    """(URL, served model name or None) when ``EWMBENCH_CAPTIONER_URL`` names a server."""
    url = os.environ.get(URL_ENV, "").strip()
    return (url, os.environ.get(MODEL_ENV) or None) if url else None


def backend_identity(default_model: str) -> str:
    """What the caption cache key names as the backend: in-process transformers, or the server's model."""
    server = server_from_env()
    if server is None:
        return "transformers"
    return f"openai:{server[1] or default_model}"


def load_openai_captioner(
    url: str,
    model: str,
    *,
    instruction: str,
    system_message: str,
    sampling: FrameSampling,
    max_new_tokens: int,
    concurrency: int | None = None,
    settings: HTTPSettings | None = None,
) -> OpenAICaptioner:
    if concurrency is None:
        try:
            concurrency = int(os.environ.get(CONCURRENCY_ENV, "8"))
        except ValueError:
            raise ConfigError(
                f"{CONCURRENCY_ENV} must be a whole number, got {os.environ[CONCURRENCY_ENV]!r}"
            ) from None
    settings = settings or HTTPSettings(timeout=600.0, retries=3, max_concurrency=concurrency)
    key = os.environ.get(KEY_ENV)
    client = HTTPClient(url, settings, headers={"Authorization": f"Bearer {key}"} if key else None)
    return OpenAICaptioner(client, model, instruction, system_message, sampling, max_new_tokens)
