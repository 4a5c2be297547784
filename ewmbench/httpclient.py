"""The HTTP client base every remote backend shares: timeouts, retries with backoff, bounded
concurrency, and errors mapped to this package's own.

Small on purpose: remote policies, the ``remote`` world model and ``ewmbench serve check`` use it.
Retried: dropped connections, timeouts and the statuses in ``RETRY_STATUSES`` (a ``Retry-After``
header, in seconds, replaces the backoff delay when it is longer, up to ``max_retry_after``).
Never retried: any other 4xx (argument, authentication, version, conflict). A service that answers
in the WorldArena error schema (``{"error": {"code", "message", "request_id", "retryable"}}``)
has its code and message carried in the :class:`RemoteError`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ewmbench.errors import ConfigError, EwmbenchError, require

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RemoteError(EwmbenchError):
    """A remote service failed: unreachable, timed out, refused the request or answered garbage.

    ``status`` is the HTTP status (None when no answer came) and ``code`` the service's error code
    when it answered in the error schema.
    """

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        self.status = status
        self.code = code
        super().__init__(message)


@dataclass
class HTTPSettings:
    timeout: float = 60.0  # seconds per attempt
    retries: int = 2  # further attempts after the first, on connection errors and RETRY_STATUSES
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_concurrency: int = 4  # requests in flight at once from one client
    max_retry_after: float = 30.0  # a longer Retry-After is capped to this

    def __post_init__(self):
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.max_concurrency < 1:
            raise ConfigError(
                f"invalid HTTP settings {self}: timeout > 0, retries >= 0, backoff >= 0, max_concurrency >= 1"
            )


def error_text(response) -> tuple[str, str | None]:
    """A short description of an error answer and its error code (WorldArena schema) if any."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]!r}", None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return f"HTTP {response.status_code} {error['code']}: {str(error.get('message', ''))[:300]}", error[
            "code"
        ]
    return f"HTTP {response.status_code}: {str(body)[:200]}", None


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


class HTTPClient:
    """``get_json(path)`` / ``post_json(path, payload)`` against one base URL."""

    def __init__(
        self,
        base_url: str,
        settings: HTTPSettings | None = None,
        headers: dict | None = None,
        extra: str = "serve",
    ):
        httpx = require("httpx", extra, "the HTTP client")

        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HTTPSettings()
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrency)
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=self.settings.timeout,
            headers=headers or {},
            limits=httpx.Limits(max_connections=self.settings.max_concurrency),
        )

    def post_json(self, path: str, payload: dict) -> dict:
        return self._json(self.request("POST", path, json=payload), path)

    def get_json(self, path: str) -> dict:
        return self._json(self.request("GET", path), path)

    def request(self, method: str, path: str, *, retry: bool = True, **kwargs):
        """The response of a successful (< 400) attempt; a RemoteError otherwise.

        ``retry=False`` makes one attempt and returns whatever answer came (for conformance
        checks that look at error answers themselves); only a missing answer raises.
        """
        import httpx

        url = f"{self.base_url}/{path.lstrip('/')}"
        delay = self.settings.backoff
        last, status, code = "", None, None
        attempts = self.settings.retries + 1 if retry else 1
        for attempt in range(attempts):
            if attempt:
                time.sleep(delay)
                delay *= 2
            with self._slots:
                try:
                    response = self._client.request(method, "/" + path.lstrip("/"), **kwargs)
                except httpx.TimeoutException:
                    last, status, code = f"no answer within {self.settings.timeout} s", None, None
                    continue
                except httpx.TransportError as exc:
                    last, status, code = f"{type(exc).__name__}: {exc}", None, None
                    continue
            if not retry:
                return response
            if response.status_code in RETRY_STATUSES:
                (last, code), status = error_text(response), response.status_code
                wait = _retry_after(response)
                if wait is not None:
                    delay = max(delay, min(wait, self.settings.max_retry_after))
                continue
            if response.status_code >= 400:
                text, code = error_text(response)
                raise RemoteError(f"{method} {url} refused: {text}", response.status_code, code)
            return response
        raise RemoteError(f"{method} {url} failed after {attempts} attempt(s): {last}", status, code)

    def _json(self, response, path: str) -> dict:
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            data = response.json()
        except ValueError:
            raise RemoteError(
                f"{url} answered with something that is not JSON: {response.text[:200]!r}"
            ) from None
        if not isinstance(data, dict):
            raise RemoteError(f"{url} answered with JSON that is not an object")
        return data

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
