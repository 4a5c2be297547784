"""``http``: a policy behind a JSON-over-HTTP service.

``POST {url}/reset`` with ``{"instruction": str, "state": [14 floats], "frames": {view: nested
uint8 lists}}`` (answer ignored, any JSON object), then per step ``POST {url}/act`` with the same
keys plus ``"step"``, answered with ``{"actions": [[14 floats], ...]}``. Frames travel as plain
lists, so keep them small (``--size``) or use the ``openpi`` websocket policy for real cameras.
"""

from __future__ import annotations

import numpy as np

from ewmbench.errors import ConfigError
from ewmbench.httpclient import HTTPClient, HTTPSettings, RemoteError
from ewmbench.loop.policies import Observation, Policy, PolicyError


class HTTPPolicy(Policy):
    name = "http"
    description = "JSON-over-HTTP policy service"

    def __init__(
        self,
        url: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
        send_frames: bool = True,
        **options,
    ):
        if options:
            raise ConfigError(
                f"unknown http policy option(s) {sorted(options)}; known: url, timeout, retries, backoff, send_frames"
            )
        if not url:
            raise ConfigError("the http policy needs url=http://HOST:PORT/PATH")
        try:
            settings = HTTPSettings(
                timeout=float(timeout), retries=int(retries), backoff=float(backoff), max_concurrency=1
            )
        except (TypeError, ValueError):
            raise ConfigError(
                f"http policy timeout, retries and backoff must be numbers, got {timeout!r}, {retries!r}, {backoff!r}"
            ) from None
        self.client = HTTPClient(str(url), settings)
        self.send_frames = bool(send_frames)
        self._instruction = ""

    def config(self) -> dict:
        return {
            "url": self.client.base_url,
            "timeout": self.client.settings.timeout,
            "retries": self.client.settings.retries,
        }

    def _payload(self, observation: Observation) -> dict:
        payload = {
            "instruction": self._instruction,
            "state": [float(v) for v in observation.state],
            "step": int(observation.step),
        }
        if self.send_frames:
            payload["frames"] = {view: frame.tolist() for view, frame in observation.frames.items()}
        return payload

    def reset(self, instruction: str, observation: Observation) -> None:
        self._instruction = instruction
        try:
            self.client.post_json("reset", self._payload(observation))
        except RemoteError as exc:
            raise PolicyError(f"http policy reset failed: {exc}") from None

    def act(self, observation: Observation) -> np.ndarray:
        try:
            answer = self.client.post_json("act", self._payload(observation))
        except RemoteError as exc:
            raise PolicyError(f"http policy failed: {exc}") from None
        if "actions" not in answer:
            raise PolicyError(f"http policy answer has no 'actions' (keys: {sorted(answer)})")
        return answer["actions"]

    def close(self) -> None:
        self.client.close()
