"""``ewmbench serve check URL``: a conformance report for any Track 2 world-model service.

It sends inputs of its own (seeded random frames and actions at the profile's size and ranges),
so it checks the contract, not a model's quality. The report runs the API document's section-12
checklist (``CHECKLIST``), each check named ``[n]`` by the item it belongs to: (1) status codes,
401 for a missing or invalid token on every endpoint but health, JSON types; (2) the advertised
ranges accepted at both ends and refused one past them, a positive action dimension; (3) one
sample and a full batch; (4) one predicted frame per future action, context actions aligned;
(5) conforming errors for bad shapes, numbers, images (corrupt, RGBA, grey, 16-bit, wrong size)
and versions; (6) same seed, same pixels, whatever the batch; (7) idempotency and 409; (8) 429
past max_concurrency; (9) no leak in health or error answers (and in the log, when it is given);
(10) the same manifest throughout, and after a restart against a saved manifest. Then latency
percentiles over a fixed number of requests. Any failed check fails the report.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ewmbench.files import write_json
from ewmbench.httpclient import HTTPClient, HTTPSettings, RemoteError
from ewmbench.models.remote import check_answer
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


def make_sample(
    profile: Profile, sample_id: str, seed: int, predictions: int, rng_seed: int, context: int | None = None
) -> dict:
    """A sample of seeded random inputs that fits ``profile`` (``context`` frames: its minimum)."""
    rng = np.random.default_rng(rng_seed)
    frames = rng.integers(
        0, 256, size=(context or profile.context_min, profile.height, profile.width, 3), dtype=np.uint8
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


# Section 12 of the API document, "Minimal Integration Test": the ten items, as it numbers them.
CHECKLIST = {
    1: "status codes, authentication and JSON types are correct for all three endpoints",
    2: "capabilities match the ranges actually accepted by the service",
    3: "both a single sample and a maximum-size batch complete successfully",
    4: "history frames/actions and prediction frames/actions are aligned exactly",
    5: "invalid shapes, corrupt PNG images and incorrect versions return conforming errors",
    6: "pixel results are reproducible for the same input and seed",
    7: "retrying the same request ID is idempotent, while a different payload produces a conflict",
    8: "exceeding concurrency returns an explicit 429",
    9: "logs, health responses and error responses do not leak sensitive information",
    10: "the model version and capability manifest remain unchanged after a service restart",
}
_LEAKS = re.compile(
    r'Traceback|File "|/site-packages/|/home/|/root/|/usr/|/tmp/|[A-Za-z]:\\|'
    r"\b(?:10|127|192\.168)\.\d+\.\d+(?:\.\d+)?\b|cuda:\d|\bGPU-[0-9a-f]"
)


def run_check(
    url: str,
    token: str | None = None,
    requests: int = 20,
    timeout: float = 120.0,
    wait_ready: float = 60.0,
    manifest: Path | None = None,
    log_file: Path | None = None,
) -> Report:
    """Run the API document's section-12 checklist (and latency percentiles) against ``url``.

    ``manifest``: a file holding the manifest saved before a restart (item 10 compares it), or
    where to save it when it does not exist yet. ``log_file``: the service's log, read after the
    checks for the token, payloads and raw control characters (item 9)."""
    report = Report(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = HTTPClient(url, HTTPSettings(timeout=timeout, retries=0, max_concurrency=1), headers)
    try:
        _run(client, report, token, requests, wait_ready, manifest, log_file, (url, headers, timeout))
    except RemoteError as exc:
        report.add("reachable", False, str(exc))
    finally:
        client.close()
    return report


def _run(
    client: HTTPClient,
    report: Report,
    token: str | None,
    count: int,
    wait_ready: float,
    manifest_file: Path | None,
    log_file: Path | None,
    connect: tuple,
) -> None:
    def item(number: int, what: str, ok: bool, detail: str = "") -> bool:
        return report.add(f"[{number}] {what}", ok, detail)

    errors_seen = []

    # 1. health: unauthenticated, JSON types
    deadline = time.monotonic() + wait_ready
    while True:
        response = client.request("GET", "/v1/health", retry=False, headers={"Authorization": ""})
        try:
            health = response.json()
        except ValueError:
            health = {}
        if not isinstance(health, dict):
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
    item(
        1,
        "GET /v1/health: 200, status, api_version, model_version",
        ok,
        f"HTTP {response.status_code} {json.dumps(health)[:200]}",
    )
    if health.get("status") != "ready":
        report.add("ready", False, f"status {health.get('status')!r}")
        return

    # 1, 2. capabilities: JSON types; a positive action dimension
    response = client.request("GET", "/v1/capabilities", retry=False)
    try:
        raw_manifest = response.json()
        version, profiles, limits, determinism = parse_capabilities(raw_manifest)
    except ValueError as exc:
        item(
            1,
            "GET /v1/capabilities: 200 and the manifest schema",
            False,
            f"HTTP {response.status_code}: {exc}",
        )
        return
    item(
        1,
        "GET /v1/capabilities: 200 and the manifest schema",
        response.status_code == 200,
        f"{len(profiles)} profile(s), model_version {version}",
    )
    item(
        1,
        "capabilities model_version matches health",
        version == health.get("model_version"),
        f"{version} vs {health.get('model_version')}",
    )
    zero = [p.profile_id for p in profiles if p.action_dim < 1]
    if not item(
        2,
        "action.dimension is a positive integer in every profile",
        not zero,
        f"dimension 0 in {zero}" if zero else "",
    ):
        return
    profile = profiles[0]

    # 1. authentication on every endpoint but health
    if token:
        for method, path in (("GET", "/v1/capabilities"), ("POST", "/v1/predict")):
            bare = client.request(
                method,
                path,
                retry=False,
                headers={"Authorization": ""},
                **({"json": {}} if method == "POST" else {}),
            )
            item(
                1,
                f"{method} {path} without a token -> 401 UNAUTHENTICATED",
                *error_ok(bare, 401, "UNAUTHENTICATED"),
            )
            wrong = client.request(
                method,
                path,
                retry=False,
                headers={"Authorization": "Bearer not-the-token"},
                **({"json": {}} if method == "POST" else {}),
            )
            item(
                1,
                f"{method} {path} with an invalid token -> 401 UNAUTHENTICATED",
                *error_ok(wrong, 401, "UNAUTHENTICATED"),
            )
            errors_seen += [bare, wrong]
    else:
        item(
            1,
            "authentication (no token given to the check: not exercised)",
            True,
            "pass --token-env to check 401 on every endpoint",
        )

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
            response = client.request(
                "POST",
                "/v1/predict",
                retry=False,
                content=payload,
                headers={"Content-Type": "application/json"},
            )
        else:
            response = client.request("POST", "/v1/predict", retry=False, json=payload)
        if response.status_code >= 400:
            errors_seen.append(response)
        return response

    def answered(payload, counts: list[int]) -> tuple[bool, str]:
        response = post(payload)
        if response.status_code != 200:
            return False, f"HTTP {response.status_code} {response.text[:200]}"
        try:
            ids = [s["sample_id"] for s in payload["samples"]]
            check_answer(response.json(), payload["request_id"], version, ids, counts, profile)
        except (RemoteError, ValueError) as exc:
            return False, str(exc)[:300]
        return True, ""

    predictions = min(profile.prediction_max, max(profile.prediction_min, 3))
    sample_a = make_sample(profile, "check-a", 7, predictions, 1)
    sample_b = make_sample(profile, "check-b", 8, predictions, 2)
    first = body([sample_a])
    start = time.perf_counter()
    answer = post(first)
    first_ms = 1000 * (time.perf_counter() - start)
    a_frames = frames_of(answer)
    if not item(
        1,
        "POST /v1/predict: 200",
        answer.status_code == 200 and a_frames is not None,
        f"HTTP {answer.status_code}",
    ):
        return
    try:
        check_answer(answer.json(), first["request_id"], version, ["check-a"], [predictions], profile)
        item(
            1,
            "predict answer in contract (ids echoed, frame count, RGB PNG at the profile size)",
            True,
            f"{predictions} frames in {first_ms:.0f} ms",
        )
    except RemoteError as exc:
        item(
            1,
            "predict answer in contract (ids echoed, frame count, RGB PNG at the profile size)",
            False,
            str(exc),
        )

    # 2. the advertised ranges are accepted, one past them refused
    for frames, future in dict.fromkeys(
        (
            (profile.context_min, profile.prediction_min),
            (profile.context_max, profile.prediction_min),
            (profile.context_min, profile.prediction_max),
        )
    ):
        sample = make_sample(profile, "check-range", 3, future, 4, context=frames)
        item(
            2,
            f"{frames} context frame(s), {future} prediction(s) (advertised bounds) -> 200",
            *answered(body([sample]), [future]),
        )
    over = make_sample(profile, "check-over", 3, profile.prediction_max + 1, 5)
    item(
        2,
        f"{profile.prediction_max + 1} predictions (past the maximum) -> 400",
        *error_ok(post(body([over])), 400, "INVALID_ARGUMENT"),
    )
    over = make_sample(profile, "check-over", 3, predictions, 5, context=profile.context_max + 1)
    item(
        2,
        f"{profile.context_max + 1} context frames (past the maximum) -> 400",
        *error_ok(post(body([over])), 400, "INVALID_ARGUMENT"),
    )

    # 3. one sample, and the largest batch
    item(3, "a single sample -> 200", a_frames is not None)
    batch = [
        make_sample(profile, f"check-batch-{i}", i, predictions, 10 + i) for i in range(limits.max_batch_size)
    ]
    item(
        3,
        f"a batch of max_batch_size = {limits.max_batch_size} samples -> 200",
        *answered(body(batch), [predictions] * len(batch)),
    )

    # 4. alignment: one predicted frame per future action, never the context; F - 1 context actions
    lengths = [profile.prediction_min, min(profile.prediction_max, profile.prediction_min + 2)]
    mixed = [
        make_sample(profile, f"check-align-{i}", i, n, 20 + i, context=min(profile.context_max, 1 + i))
        for i, n in enumerate(lengths[: max(1, min(2, limits.max_batch_size))])
    ]
    item(
        4,
        "frames per sample = its future actions, in one batch of different lengths",
        *answered(body(mixed), [len(s["actions"]) for s in mixed]),
    )
    if profile.context_max >= 2:
        extra = make_sample(profile, "check-align", 1, predictions, 30, context=2)
        extra["context"]["actions"] = extra["context"]["actions"] + extra["context"]["actions"]
        item(
            4,
            "context actions != context frames - 1 -> 400",
            *error_ok(post(body([extra])), 400, "INVALID_ARGUMENT"),
        )
    none = make_sample(profile, "check-align", 1, predictions, 30)
    none["context"]["actions"] = [none["actions"][0]]  # one context frame takes no context action
    item(
        4,
        "a context action with one context frame -> 400",
        *error_ok(post(body([none])), 400, "INVALID_ARGUMENT"),
    )

    # 5. conforming errors for bad shapes, images and versions
    for name, payload in _bad_requests(profile, body, sample_a, predictions):
        item(5, f"{name} -> 400 INVALID_ARGUMENT", *error_ok(post(payload), 400, "INVALID_ARGUMENT"))
    for field_name, value in (
        ("api_version", "0.9"),
        ("model_version", version + "-other"),
        ("profile_id", "no-such-profile"),
    ):
        wrong = body([sample_a])
        wrong[field_name] = value
        item(
            5,
            f"wrong {field_name} -> 422 UNSUPPORTED_VERSION",
            *error_ok(post(wrong), 422, "UNSUPPORTED_VERSION"),
        )
    item(
        5,
        "too many samples -> 400",
        *error_ok(post(body([sample_a] * (limits.max_batch_size + 1))), 400, "INVALID_ARGUMENT"),
    )
    item(
        5,
        "body over max_request_bytes -> 413",
        *error_ok(post(b" " * (limits.max_request_bytes + 1)), 413, "PAYLOAD_TOO_LARGE"),
    )

    # 6. reproducible pixels
    again = frames_of(post(body([sample_a])))
    if determinism.get("same_seed_same_pixels"):
        item(6, "same input and seed, new request_id -> same pixels", again == a_frames)
    else:
        item(
            6,
            "same seed -> same pixels (not declared; informational)",
            True,
            "identical" if again == a_frames else "differs",
        )
    if limits.max_batch_size >= 2:
        batched = frames_of(post(body([sample_b, sample_a])))
        item(
            6,
            "a sample's pixels do not depend on its batch",
            batched is not None and batched[1] == a_frames[0],
        )

    # 7. idempotency and conflict
    repeat = post(first)
    item(
        7,
        "same request_id, same payload -> the same answer",
        repeat.status_code == 200 and frames_of(repeat) == a_frames,
        f"HTTP {repeat.status_code}",
    )
    changed = copy.deepcopy(first)
    changed["samples"][0]["seed"] = 8
    item(
        7,
        "same request_id, other payload -> 409 REQUEST_ID_CONFLICT",
        *error_ok(post(changed), 409, "REQUEST_ID_CONFLICT"),
    )

    # 8. past max_concurrency: 429
    item(
        8,
        f"more than max_concurrency = {limits.max_concurrency} requests at once -> 429 OVERLOADED",
        *_overload(connect, body, profile, limits),
    )

    # 9. no leaks in health and error answers (and the log, when given)
    post(b"[" * 10_000)
    try:  # a control character in a path must reach the log escaped (read below with --log-file)
        client.request("GET", "/v1/%1B[31mcheck", retry=False)
    except RemoteError:
        pass
    leaks = [r for r in [response, *errors_seen] if _LEAKS.search(r.text) or r.status_code >= 500]
    item(
        9,
        "health and error answers carry no traceback, path, address or device",
        not leaks,
        f"{len(errors_seen)} error answers read" + (f"; e.g. {leaks[0].text[:120]!r}" if leaks else ""),
    )
    if log_file is not None:
        item(
            9,
            "the log holds no token, payload or raw control character",
            *_log_clean(Path(log_file), token, sample_a),
        )
    else:
        item(9, "the log (not visible to a client: pass --log-file to read it)", True, "not read")

    # latency
    times, failures = [], 0
    for i in range(count):
        start = time.perf_counter()
        response = post(body([make_sample(profile, f"check-l{i}", i, predictions, 100 + i)]))
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

    # 10. the same manifest after the checks, and after a restart (against the saved one)
    later = client.request("GET", "/v1/capabilities", retry=False)
    item(
        10,
        "the manifest is unchanged during the checks",
        later.status_code == 200 and later.json() == raw_manifest,
    )
    if manifest_file is None:
        item(
            10,
            "the manifest after a restart (pass --manifest FILE, restart the service, rerun)",
            True,
            "not compared",
        )
    elif not Path(manifest_file).exists():
        write_json(Path(manifest_file), raw_manifest)
        item(
            10,
            "the manifest after a restart",
            True,
            f"saved to {manifest_file}: restart the service and rerun to compare",
        )
    else:
        try:
            saved = json.loads(Path(manifest_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            item(10, "the manifest after a restart", False, f"cannot read {manifest_file}: {exc}")
            return
        item(
            10,
            "the manifest after a restart equals the saved one",
            saved == raw_manifest,
            "" if saved == raw_manifest else "manifests differ",
        )


def _bad_requests(profile: Profile, body, sample: dict, predictions: int) -> list[tuple[str, dict]]:
    """Item 5's malformed requests: shapes, numbers and images."""
    out = []

    def variant(name: str, change) -> None:
        payload = body([copy.deepcopy(sample)])
        change(payload["samples"][0])
        out.append((name, payload))

    variant("missing actions field", lambda s: s.pop("actions"))
    variant("wrong action dimension", lambda s: s["actions"].__setitem__(0, s["actions"][0] + [0.0]))
    variant("no future action", lambda s: s.update(actions=[]))
    variant("a string among the actions", lambda s: s["actions"][0].__setitem__(0, "0.1"))
    variant("bad base64", lambda s: s["context"]["frames"][0].update(data="not base64!"))
    corrupt = bytearray(base64.b64decode(sample["context"]["frames"][0]["data"]))
    corrupt[len(corrupt) // 2 :] = bytes(len(corrupt) - len(corrupt) // 2)
    variant(
        "corrupt PNG in valid base64",
        lambda s: s["context"]["frames"][0].update(data=base64.b64encode(bytes(corrupt)).decode()),
    )
    h, w = profile.height, profile.width
    for name, mode, array in (
        ("RGBA PNG", "RGBA", np.zeros((h, w, 4), np.uint8)),
        ("grey PNG", "L", np.zeros((h, w), np.uint8)),
        ("16-bit PNG", "I;16", np.zeros((h, w), np.uint16)),
    ):
        data = _png(array, mode)
        variant(name, lambda s, d=data: s["context"]["frames"][0].update(data=d))
    small = _png(np.zeros((max(1, h // 2), max(1, w // 2), 3), np.uint8), "RGB")
    variant("PNG smaller than its declared size", lambda s: s["context"]["frames"][0].update(data=small))
    variant("declared size off the profile", lambda s: s["context"]["frames"][0].update(height=h + 1))
    nan = (
        json.dumps(body([sample])).replace(json.dumps(sample["actions"][0][0]), "NaN", 1)
        if sample["actions"][0]
        else None
    )
    if nan is not None:
        out.append(("NaN among the actions", nan.encode()))
    return out


def _png(array: np.ndarray, mode: str) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(array)
    if image.mode != mode:
        raise ValueError(f"expected a {mode} image, got {image.mode}")
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _overload(connect: tuple, body, profile: Profile, limits: Limits) -> tuple[bool, str]:
    """Send more than max_concurrency of the largest requests at once; the excess must get 429."""
    from concurrent.futures import ThreadPoolExecutor

    url, headers, timeout = connect
    many = limits.max_concurrency * 2 + 2
    payloads = [
        body(
            [
                make_sample(profile, f"check-load-{i}-{j}", j, profile.prediction_max, 200 + j)
                for j in range(limits.max_batch_size)
            ]
        )
        for i in range(many)
    ]
    barrier = threading.Barrier(many)

    def send(payload):
        client = HTTPClient(url, HTTPSettings(timeout=timeout, retries=0, max_concurrency=1), headers)
        try:
            barrier.wait(timeout=timeout)
            return client.request("POST", "/v1/predict", retry=False, json=payload)
        finally:
            client.close()

    with ThreadPoolExecutor(many) as pool:
        answers = list(pool.map(send, payloads))
    refused = [a for a in answers if a.status_code == 429]
    conforming = all(error_ok(a, 429, "OVERLOADED")[0] for a in refused)
    others = sorted({a.status_code for a in answers if a.status_code != 429})
    detail = f"{many} at once: {len(refused)} got 429, the rest {others}"
    return bool(refused) and conforming and others in ([], [200]), detail


def _log_clean(path: Path, token: str | None, sample: dict) -> tuple[bool, str]:
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        return False, f"cannot read {path}: {exc.strerror}"
    found = []
    if token and token in text:
        found.append("the token")
    if sample["context"]["frames"][0]["data"][:64] in text:
        found.append("image data")
    if re.search("[\x00-\x08\x0b-\x1f\x7f]", text):
        found.append("a raw control character")
    return not found, ", ".join(found) or f"{len(text.splitlines())} lines read"


def _clean(response) -> bool:
    text = response.text
    return (
        response.status_code < 500
        and "Traceback" not in text
        and 'File "' not in text
        and "/site-packages/" not in text
    )


__all__ = ["Check", "Limits", "Report", "make_sample", "run_check"]
