"""The HTTP client base every remote backend shares: timeouts, retries with backoff, bounded
concurrency, and errors mapped to this package's own.

Small on purpose: remote policies use it now; remote world models and judges extend it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ewmbench.errors import ConfigError, EwmbenchError, require

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RemoteError(EwmbenchError):
    """A remote service failed: unreachable, timed out, refused the request or answered garbage."""


@dataclass
class HTTPSettings:
    timeout: float = 60.0  # seconds per attempt
    retries: int = 2  # further attempts after the first, on connection errors and RETRY_STATUSES
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_concurrency: int = 4  # requests in flight at once from one client

    def __post_init__(self):
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.max_concurrency < 1:
            raise ConfigError(f"invalid HTTP settings {self}: timeout > 0, retries >= 0, backoff >= 0, max_concurrency >= 1")


class HTTPClient:
    """``post_json(path, payload) -> dict`` against one base URL."""

    def __init__(self, base_url: str, settings: HTTPSettings | None = None, headers: dict | None = None):
        httpx = require("httpx", "loop", "the HTTP client")

        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HTTPSettings()
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrency)
        self._client = httpx.Client(base_url=self.base_url, timeout=self.settings.timeout, headers=headers or {})

    def post_json(self, path: str, payload: dict) -> dict:
        import httpx

        url = f"{self.base_url}/{path.lstrip('/')}"
        delay = self.settings.backoff
        last = ""
        for attempt in range(self.settings.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            with self._slots:
                try:
                    response = self._client.post("/" + path.lstrip("/"), json=payload)
                except httpx.TimeoutException:
                    last = f"no answer within {self.settings.timeout} s"
                    continue
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    continue
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise RemoteError(f"{url} refused the request: HTTP {response.status_code}: {response.text[:500]}")
            try:
                data = response.json()
            except ValueError:
                raise RemoteError(f"{url} answered with something that is not JSON: {response.text[:200]!r}") from None
            if not isinstance(data, dict):
                raise RemoteError(f"{url} answered with JSON that is not an object")
            return data
        raise RemoteError(f"{url} failed after {self.settings.retries + 1} attempt(s): {last}")

    def close(self) -> None:
        self._client.close()
