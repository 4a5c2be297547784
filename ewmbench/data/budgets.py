"""Every input budget in one place: how large, how long and how deep any input may be.

Each reader checks its input against these before it spends memory or time on it: a frame's
pixels from its header, a video's size, frame count and duration from its container before any
frame is decoded (then counted again while streaming, since headers can lie), a PNG's chunks
before its pixels, a request's bytes and JSON values before they are parsed, and how long a
client may take to send its headers and body. A refusal names the input and the budget. The
environment variables below raise (or lower) a budget for one process; the server's own limits
(request and response bytes, timeouts) are also ``ewmbench serve`` options.

``docs/bad-input.md`` lists them with what each one stops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    name: str
    default: int | float
    env: str | None
    what: str

    def value(self) -> int | float:
        """The budget for this process: the environment variable when it holds a positive number."""
        raw = os.environ.get(self.env, "") if self.env else ""
        try:
            number = type(self.default)(raw)
        except ValueError:
            return self.default
        return number if number > 0 else self.default


# Frames and videos (every reader: evaluate, import, data convert, the datasets' readers)
FRAME_PIXELS = Budget(
    "frame pixels", 7680 * 4320, "EWMBENCH_MAX_FRAME_PIXELS", "largest frame, width x height (8K UHD)"
)
VIDEO_FRAMES = Budget(
    "video frames", 3000, "EWMBENCH_MAX_VIDEO_FRAMES", "longest video read, in frames (100 s at 30 fps)"
)
VIDEO_SECONDS = Budget(
    "video seconds", 600.0, "EWMBENCH_MAX_VIDEO_SECONDS", "longest video read, in seconds of its container"
)
VIDEO_BYTES = Budget(
    "decoded video bytes",
    2 * 2**30,
    "EWMBENCH_MAX_VIDEO_BYTES",
    "largest video held whole in memory once decoded (frames x height x width x 3)",
)

# The Track 2 service (ewmbench serve); request and response bytes are also serve options
REQUEST_BYTES = Budget("request bytes", 64 * 2**20, None, "largest request body (--max-request-mb)")
RESPONSE_BYTES = Budget("response bytes", 128 * 2**20, None, "largest response body (--max-response-mb)")
JSON_DEPTH = Budget("JSON depth", 12, None, "deepest nesting of a request's JSON")
JSON_VALUES = Budget(
    "JSON values",
    1_000_000,
    "EWMBENCH_MAX_JSON_VALUES",
    "most values (numbers, strings, objects, lists) in a request, counted before it is parsed",
)
PNG_CHUNKS = Budget("PNG chunks", 1024, None, "most chunks in one PNG (exactly one IHDR, before any IDAT)")
HEADER_SECONDS = Budget(
    "header seconds", 10.0, None, "time a client has to send its request headers (then 408)"
)
BODY_SECONDS = Budget(
    "body seconds",
    10.0,
    None,
    "time a client has to start its body, after which it must keep up BODY_RATE (then 408; --body-timeout-s)",
)
BODY_RATE = Budget(
    "body rate", 64 * 1024, None, "bytes a second a body must average past its first BODY_SECONDS (then 408)"
)
BODY_READERS = Budget(
    "body readers",
    16,
    None,
    "requests whose bodies are read at once (more get 429); compute slots are separate",
)
CONNECTIONS = Budget("connections", 64, None, "open connections the server keeps (more get 503)")

ALL = (
    FRAME_PIXELS,
    VIDEO_FRAMES,
    VIDEO_SECONDS,
    VIDEO_BYTES,
    REQUEST_BYTES,
    RESPONSE_BYTES,
    JSON_DEPTH,
    JSON_VALUES,
    PNG_CHUNKS,
    HEADER_SECONDS,
    BODY_SECONDS,
    BODY_RATE,
    BODY_READERS,
    CONNECTIONS,
)


def how_to_raise(budget: Budget) -> str:
    """The end of a refusal: how to raise the budget, when it can be raised."""
    return f"; set {budget.env} to raise it" if budget.env else ""
