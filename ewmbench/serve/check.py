"""``ewmbench serve check URL``: a conformance report for any Track 2 world-model service.

It sends inputs of its own (seeded random frames and actions at the profile's size and ranges),
so it checks the contract, not a model's quality: health, the capabilities schema, authentication
(when a token is given), a valid prediction and its answer's contract, same seed -> same pixels,
a sample's pixels independent of its batch, idempotency by request_id and 409 on a changed
payload, the error schema and codes for malformed requests, the body size and batch limits, and
latency percentiles over a fixed number of requests. Any failed check fails the report.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ewmbench.httpclient import HTTPClient, HTTPSettings, RemoteError
from ewmbench.models.wire import (
    API_VERSION,
    Limits,
    Profile,
    encode_image,
    parse_capabilities,
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    url: str
    checks: list[Check] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def to_json(self) -> dict:
        return {
            "url": self.url,
            "ok": self.ok,
            "checks": [c.__dict__ for c in self.checks],
            "latency_ms": self.latency_ms,
        }


def make_sample(profile: Profile, sample_id: str, seed: int, predictions: int, rng_seed: int) -> dict:
    """A sample of seeded random inputs that fits ``profile``."""
    rng = np.random.default_rng(rng_seed)
    frames = rng.integers(
        0, 256, size=(profile.context_min, profile.height, profile.width, 3), dtype=np.uint8
    )
    dim = profile.action_dim
    row = lambda: [round(float(x), 4) for x in rng.uniform(-0.1, 0.1, dim)]  # noqa: E731
    return {
        "sample_id": sample_id,
        "seed": seed,
        "context": {
            "frames": [encode_image(f) for f in frames],
            "actions": [row() for _ in range(len(frames) - 1)],
            "states": [
                [round(float(x), 4) for x in rng.uniform(-0.1, 0.1, profile.state_dim)] for _ in frames
            ]
            if profile.state_supported
            else None,
            "instruction": "pick up the block" if profile.instruction_supported else None,
        },
        "actions": [row() for _ in range(predictions)],
    }


def error_ok(response, status: int, code: str) -> tuple[bool, str]:
    """Whether ``response`` is the error schema with ``status`` and ``code``; and what it was."""
    try:
        body = response.json()
        error = body["error"]
        schema = (
            isinstance(error.get("message"), str)
            and isinstance(error.get("retryable"), bool)
            and (error.get("request_id") is None or isinstance(error.get("request_id"), str))
        )
        got = error.get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False, f"HTTP {response.status_code}, not the error schema"
    ok = response.status_code == status and got == code and schema
    return ok, f"HTTP {response.status_code} {got}" + ("" if schema else " (error object incomplete)")


def frames_of(response) -> list[list[str]] | None:
    try:
        return [[f["data"] for f in p["frames"]] for p in response.json()["predictions"]]
    except (ValueError, KeyError, TypeError):
        return None


def run_check(
    url: str, token: str | None = None, requests: int = 20, timeout: float = 120.0, wait_ready: float = 60.0
) -> Report:
    report = Report(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = HTTPClient(url, HTTPSettings(timeout=timeout, retries=0, max_concurrency=1), headers)
    try:
        _run(client, report, token, requests, wait_ready)
    except RemoteError as exc:
        report.add("reachable", False, str(exc))
    finally:
        client.close()
    return report


def _run(client: HTTPClient, report: Report, token: str | None, count: int, wait_ready: float) -> None:
    # health
    deadline = time.monotonic() + wait_ready
    while True:
        response = client.request("GET", "/v1/health", retry=False, headers={"Authorization": ""})
        try:
            health = response.json()
        except ValueError:
            health = {}
        if health.get("status") != "starting" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    ok = (
        response.status_code == 200
        and health.get("status") in ("ready", "degraded", "starting")
        and health.get("api_version") == API_VERSION
        and isinstance(health.get("model_version"), str)
    )
    report.add("health", ok, f"HTTP {response.status_code} {json.dumps(health)[:200]}")
    if health.get("status") != "ready":
        report.add("ready", False, f"status {health.get('status')!r}")
        return

    # capabilities
    response = client.request("GET", "/v1/capabilities", retry=False)
    try:
        version, profiles, limits, determinism = parse_capabilities(response.json())
        ok, detail = response.status_code == 200, f"{len(profiles)} profile(s), model_version {version}"
    except ValueError as exc:
        report.add("capabilities schema", False, f"HTTP {response.status_code}: {exc}")
        return
    report.add("capabilities schema", ok, detail)
    report.add(
        "capabilities model_version matches health",
        version == health.get("model_version"),
        f"{version} vs {health.get('model_version')}",
    )
    profile = profiles[0]

    if token:
        bare = client.request("GET", "/v1/capabilities", retry=False, headers={"Authorization": ""})
        report.add("no token -> 401 UNAUTHENTICATED", *error_ok(bare, 401, "UNAUTHENTICATED"))
        wrong = client.request(
            "GET", "/v1/capabilities", retry=False, headers={"Authorization": "Bearer not-the-token"}
        )
        report.add("wrong token -> 403 PERMISSION_DENIED", *error_ok(wrong, 403, "PERMISSION_DENIED"))

    predictions = min(profile.prediction_max, max(profile.prediction_min, 3))

    def body(samples: list[dict], request_id: str | None = None) -> dict:
        return {
            "api_version": API_VERSION,
            "request_id": request_id or str(uuid.uuid4()),
            "model_version": version,
            "profile_id": profile.profile_id,
            "samples": samples,
        }

    def post(payload) -> object:
        if isinstance(payload, (bytes, str)):
            return client.request(
                "POST",
                "/v1/predict",
                retry=False,
                content=payload,
                headers={"Content-Type": "application/json"},
            )
        return client.request("POST", "/v1/predict", retry=False, json=payload)

    sample_a = make_sample(profile, "check/a/1", 7, predictions, 1)
    sample_b = make_sample(profile, "check/b/1", 8, predictions, 2)
    first = body([sample_a])
    start = time.perf_counter()
    answer = post(first)
    first_ms = 1000 * (time.perf_counter() - start)
    a_frames = frames_of(answer)
    if not report.add(
        "predict answers 200",
        answer.status_code == 200 and a_frames is not None,
        f"HTTP {answer.status_code}",
    ):
        return
    from ewmbench.models.remote import check_answer

    try:
        check_answer(answer.json(), first["request_id"], version, ["check/a/1"], [predictions], profile)
        report.add(
            "answer in contract (ids echoed, frame count, RGB PNG at the profile size)",
            True,
            f"{predictions} frames in {first_ms:.0f} ms",
        )
    except RemoteError as exc:
        report.add(
            "answer in contract (ids echoed, frame count, RGB PNG at the profile size)", False, str(exc)
        )

    again = frames_of(post(body([sample_a])))
    if determinism.get("same_seed_same_pixels"):
        report.add("same seed, new request_id -> same pixels", again == a_frames)
    else:
        report.add(
            "same seed -> same pixels (not declared; informational)",
            True,
            "identical" if again == a_frames else "differs",
        )
    if limits.max_batch_size >= 2:
        batch = frames_of(post(body([sample_b, sample_a])))
        report.add(
            "a sample's pixels do not depend on its batch", batch is not None and batch[1] == a_frames[0]
        )

    repeat = post(first)
    report.add(
        "same request_id, same payload -> same answer",
        repeat.status_code == 200 and frames_of(repeat) == a_frames,
        f"HTTP {repeat.status_code}",
    )
    changed = copy.deepcopy(first)
    changed["samples"][0]["seed"] = 8
    report.add(
        "same request_id, other payload -> 409 REQUEST_ID_CONFLICT",
        *error_ok(post(changed), 409, "REQUEST_ID_CONFLICT"),
    )

    # error schema and codes
    report.add(
        "malformed JSON -> 400 INVALID_ARGUMENT",
        *error_ok(post(b'{"api_version": "1.0", '), 400, "INVALID_ARGUMENT"),
    )
    old = body([sample_a])
    old["api_version"] = "0.9"
    report.add(
        "unsupported api_version -> 422 UNSUPPORTED_VERSION", *error_ok(post(old), 422, "UNSUPPORTED_VERSION")
    )
    other = body([sample_a])
    other["profile_id"] = "no-such-profile"
    report.add(
        "unknown profile -> 422 UNSUPPORTED_VERSION", *error_ok(post(other), 422, "UNSUPPORTED_VERSION")
    )
    missing = body([sample_a])
    del missing["samples"][0]["actions"]
    report.add("missing field -> 400 INVALID_ARGUMENT", *error_ok(post(missing), 400, "INVALID_ARGUMENT"))
    bad64 = body([copy.deepcopy(sample_a)])
    bad64["samples"][0]["context"]["frames"][0]["data"] = "not base64!"
    report.add("bad base64 -> 400 INVALID_ARGUMENT", *error_ok(post(bad64), 400, "INVALID_ARGUMENT"))
    small = Profile(
        **{**profile.__dict__, "height": max(1, profile.height // 2), "width": max(1, profile.width // 2)}
    )
    wrong_size = body([make_sample(small, "check/c/1", 7, predictions, 3)])
    for image in wrong_size["samples"][0]["context"]["frames"]:
        image["height"], image["width"] = profile.height, profile.width  # the header lies; the PNG is smaller
    report.add(
        "wrong image size -> 400 INVALID_ARGUMENT", *error_ok(post(wrong_size), 400, "INVALID_ARGUMENT")
    )
    report.add(
        "too many samples -> 400 INVALID_ARGUMENT",
        *error_ok(post(body([sample_a] * (limits.max_batch_size + 1))), 400, "INVALID_ARGUMENT"),
    )
    report.add(
        "body over max_request_bytes -> 413 PAYLOAD_TOO_LARGE",
        *error_ok(post(b" " * (limits.max_request_bytes + 1)), 413, "PAYLOAD_TOO_LARGE"),
    )
    report.add("no traceback or path in error answers", _clean(post(b"[" * 10_000)))

    # latency
    times = []
    failures = 0
    for i in range(count):
        start = time.perf_counter()
        response = post(body([make_sample(profile, f"check/l{i}/1", i, predictions, 100 + i)]))
        times.append(1000 * (time.perf_counter() - start))
        failures += response.status_code != 200
    if times:
        report.latency_ms = {f"p{q}": round(float(np.percentile(times, q)), 1) for q in (50, 95, 99)} | {
            "requests": count,
            "frames_per_request": predictions,
        }
    report.add(f"{count} sequential predictions without error", failures == 0, f"{failures} failed")
    final = client.request("GET", "/v1/health", retry=False)
    report.add(
        "still healthy after the checks", final.status_code == 200 and final.json().get("status") == "ready"
    )


def _clean(response) -> bool:
    text = response.text
    return (
        response.status_code < 500
        and "Traceback" not in text
        and 'File "' not in text
        and "/site-packages/" not in text
    )


__all__ = ["Check", "Limits", "Report", "make_sample", "run_check"]
