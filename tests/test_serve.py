"""``ewmbench serve``: the Track 2 API 1.0 on loopback: answers, refusals with the right status and
code (the server keeps serving after each), determinism, idempotency and 409, limits, auth."""

from __future__ import annotations

import base64
import copy
import io
import os
import shutil
import ssl
import struct
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from ewmbench.errors import ConfigError
from ewmbench.models.request import GenerationRequest
from ewmbench.models.wire import (
    ApiError,
    Limits,
    Profile,
    Sample,
    decode_image,
    encode_image,
    png_header,
    request_to_sample,
    sample_to_request,
)
from ewmbench.serve.app import (
    AnswerStore,
    BackgroundServer,
    ServeConfig,
    Service,
    is_loopback,
    scrub,
    serve,
)
from ewmbench.serve.check import make_sample, run_check

ROOT = Path(__file__).resolve().parents[1]
H, W = 24, 32


@pytest.fixture(scope="module")
def server():
    service = Service(
        ServeConfig(
            model="static",
            size=(H, W),
            limits=Limits(max_batch_size=3, max_request_bytes=200_000, max_concurrency=2),
        )
    )
    with BackgroundServer(service) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def body(client, samples, request_id=None) -> dict:
    version = client.get("/v1/capabilities").json()["model_version"]
    return {
        "api_version": "1.0",
        "request_id": request_id or str(uuid.uuid4()),
        "model_version": version,
        "profile_id": "default",
        "samples": samples,
    }


def profile_of(client) -> Profile:
    return Profile.from_json(client.get("/v1/capabilities").json()["profiles"][0])


def frames_of(response) -> list[np.ndarray]:
    return [
        np.stack([decode_image(f, H, W, "answer", 10**7) for f in p["frames"]])
        for p in response.json()["predictions"]
    ]


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def assert_error(response, status: int, code: str, request_id=None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == request_id
    assert error["retryable"] is (code in {"OVERLOADED", "INTERNAL", "NOT_READY", "DEADLINE_EXCEEDED"})
    assert "Traceback" not in response.text and "/site-packages/" not in response.text


def still_serving(client) -> None:
    assert client.get("/v1/health").json()["status"] == "ready"


# ---------------------------------------------------------------------------- answers


def test_health_and_capabilities(client):
    health = client.get("/v1/health").json()
    assert (
        health["status"] == "ready"
        and health["api_version"] == "1.0"
        and health["model_version"].startswith("static-")
    )
    caps = client.get("/v1/capabilities").json()
    profile = caps["profiles"][0]
    assert profile["image"] == {
        "encoding": "png_base64",
        "color_space": "RGB",
        "height": H,
        "width": W,
        "channels": 3,
    }
    # static is image-only: it accepts EWMBench's 14-D rows (the API needs a positive dimension) and ignores them
    assert profile["action"]["dimension"] == 14 and profile["state"]["supported"] is False
    assert "ignored" in profile["action"]["representation"]
    assert caps["limits"] == {
        "max_batch_size": 3,
        "max_request_bytes": 200_000,
        "max_concurrency": 2,
        "recommended_timeout_ms": 120_000,
    }


def test_predict_returns_one_frame_per_action_never_the_context(client):
    profile = profile_of(client)
    sample = make_sample(profile, "x/y/1", 5, 4, 0)
    context = decode_image(sample["context"]["frames"][0], H, W, "c", 10**7)
    payload = body(client, [sample])
    response = client.post("/v1/predict", json=payload)
    assert response.status_code == 200
    answer = response.json()
    assert (
        answer["request_id"] == payload["request_id"] and answer["model_version"] == payload["model_version"]
    )
    assert [p["sample_id"] for p in answer["predictions"]] == ["x/y/1"]
    (frames,) = frames_of(response)
    assert frames.shape == (4, H, W, 3)
    np.testing.assert_array_equal(
        frames, np.repeat(context[None], 4, axis=0)
    )  # static: the current frame, held


def test_samples_come_back_in_request_order_and_independent_of_the_batch(client):
    profile = profile_of(client)
    a, b, c = (make_sample(profile, f"t/{i}/1", i, 2, i) for i in range(3))
    together = frames_of(client.post("/v1/predict", json=body(client, [c, a, b])))
    alone = frames_of(client.post("/v1/predict", json=body(client, [a])))
    assert [p.shape[0] for p in together] == [2, 2, 2]
    np.testing.assert_array_equal(together[1], alone[0])
    assert not np.array_equal(together[0], together[1])


def test_same_request_id_same_payload_returns_the_stored_answer_other_payload_409(client):
    profile = profile_of(client)
    payload = body(client, [make_sample(profile, "a/b/1", 1, 2, 3)])
    first = client.post("/v1/predict", json=payload)
    second = client.post("/v1/predict", json=payload)
    assert first.status_code == second.status_code == 200 and first.content == second.content
    changed = copy.deepcopy(payload)
    changed["samples"][0]["seed"] = 2
    assert_error(client.post("/v1/predict", json=changed), 409, "REQUEST_ID_CONFLICT", payload["request_id"])
    still_serving(client)


def test_serve_check_passes_against_static(server):
    report = run_check(server.url, requests=3)
    failed = [c for c in report.checks if not c.ok]
    assert report.ok, failed
    assert len(report.checks) >= 18 and set(report.latency_ms) >= {"p50", "p95", "p99"}


# ---------------------------------------------------------------------------- refusals


def _bad(client, mutate) -> tuple[dict, httpx.Response]:
    payload = body(client, [make_sample(profile_of(client), "m/n/1", 1, 2, 4)])
    mutate(payload)
    return payload, client.post("/v1/predict", json=payload)


@pytest.mark.parametrize(
    ("name", "mutate", "status", "code"),
    [
        ("unsupported version", lambda p: p.update(api_version="2.0"), 422, "UNSUPPORTED_VERSION"),
        ("other model version", lambda p: p.update(model_version="static-000"), 422, "UNSUPPORTED_VERSION"),
        ("unknown profile", lambda p: p.update(profile_id="hd"), 422, "UNSUPPORTED_VERSION"),
        ("missing samples", lambda p: p.pop("samples"), 400, "INVALID_ARGUMENT"),
        ("missing future actions", lambda p: p["samples"][0].pop("actions"), 400, "INVALID_ARGUMENT"),
        (
            "missing context frames",
            lambda p: p["samples"][0]["context"].pop("frames"),
            400,
            "INVALID_ARGUMENT",
        ),
        ("request_id not a UUID", lambda p: p.update(request_id="abc"), 400, "INVALID_ARGUMENT"),
        ("negative seed", lambda p: p["samples"][0].update(seed=-1), 400, "INVALID_ARGUMENT"),
        ("seed past 2^63-1", lambda p: p["samples"][0].update(seed=2**63), 400, "INVALID_ARGUMENT"),
        (
            "bad base64",
            lambda p: p["samples"][0]["context"]["frames"][0].update(data="@@@not base64"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "data: prefix",
            lambda p: p["samples"][0]["context"]["frames"][0].update(
                data="data:image/png;base64," + p["samples"][0]["context"]["frames"][0]["data"]
            ),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "declared size wrong",
            lambda p: p["samples"][0]["context"]["frames"][0].update(height=H + 1),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "too many context frames",
            lambda p: p["samples"][0]["context"]["frames"].append(p["samples"][0]["context"]["frames"][0]),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "action row of the wrong dimension",
            lambda p: p["samples"][0]["actions"].__setitem__(0, [0.1]),
            400,
            "INVALID_ARGUMENT",
        ),
        ("no future action", lambda p: p["samples"][0].update(actions=[]), 400, "INVALID_ARGUMENT"),
        ("too many samples", lambda p: p.update(samples=p["samples"] * 4), 400, "INVALID_ARGUMENT"),
        ("repeated sample_id", lambda p: p.update(samples=p["samples"] * 2), 400, "INVALID_ARGUMENT"),
    ],
)
def test_malformed_requests_get_their_status_and_code(client, name, mutate, status, code):
    payload, response = _bad(client, mutate)
    request_id = payload.get("request_id") if isinstance(payload.get("request_id"), str) else None
    assert_error(response, status, code, request_id)
    still_serving(client)


def _with_png(client, data: bytes) -> httpx.Response:
    def put(p):
        p["samples"][0]["context"]["frames"][0]["data"] = base64.b64encode(data).decode()

    return _bad(client, put)[1]


def test_only_rgb_png_of_the_profile_size_is_accepted(client):
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    wrong_size = np.zeros((H, W + 2, 3), np.uint8)
    for data, why in [
        (png_bytes(wrong_size), "PNG is 24x34"),
        (png_bytes(np.dstack([rgb, np.full((H, W), 255, np.uint8)]), "RGBA"), "RGBA"),
        (png_bytes(rgb[..., 0], "L"), "grayscale"),
        (png_bytes(rgb).replace(b"IHDR", b"IHDR"), None),  # control: a clean RGB PNG is fine
    ]:
        response = _with_png(client, data)
        if why is None:
            assert response.status_code == 200
        else:
            assert_error(response, 400, "INVALID_ARGUMENT", response.json()["error"]["request_id"])
            assert why in response.json()["error"]["message"]
    palette = Image.fromarray(rgb).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    assert "palette" in _with_png(client, buffer.getvalue()).json()["error"]["message"]
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, format="JPEG")
    assert "not a PNG" in _with_png(client, jpeg.getvalue()).json()["error"]["message"]
    still_serving(client)


def test_animated_png_and_truncated_png_are_refused():
    clean = png_bytes(np.zeros((H, W, 3), np.uint8))
    body_ = struct.pack(">II", 2, 0)
    actl = struct.pack(">I", len(body_)) + b"acTL" + body_ + struct.pack(">I", zlib.crc32(b"acTL" + body_))
    animated = clean[:33] + actl + clean[33:]  # after the 8-byte signature and the 25-byte IHDR chunk
    with pytest.raises(ApiError, match="animated"):
        png_header(animated, "f")
    with pytest.raises(ApiError, match="truncated"):
        png_header(clean[:45], "f")
    assert png_header(clean, "f") == (H, W)


def test_malformed_json_deep_json_and_oversized_bodies(client):
    assert_error(client.post("/v1/predict", content=b'{"api_version": '), 400, "INVALID_ARGUMENT")
    assert_error(client.post("/v1/predict", content=b"[" * 50 + b"]" * 50), 400, "INVALID_ARGUMENT")
    assert_error(client.post("/v1/predict", content=b"[" * 100_000), 400, "INVALID_ARGUMENT")
    assert_error(client.post("/v1/predict", content=b" " * 200_001), 413, "PAYLOAD_TOO_LARGE")

    def chunks():  # no Content-Length: the limit counts the streamed bytes
        for _ in range(30):
            yield b" " * 10_000

    assert_error(client.post("/v1/predict", content=chunks()), 413, "PAYLOAD_TOO_LARGE")
    assert_error(client.get("/v1/nothing"), 404, "NOT_FOUND")
    still_serving(client)


# ---------------------------------------------------------------------------- auth, overload, readiness


def test_bearer_token_on_everything_but_health():
    service = Service(ServeConfig(model="static", size=(H, W), token="t0ken"))
    with BackgroundServer(service) as running, httpx.Client(base_url=running.url) as c:
        assert c.get("/v1/health").status_code == 200
        assert_error(c.get("/v1/capabilities"), 401, "UNAUTHENTICATED")
        assert_error(c.post("/v1/predict", json={}), 401, "UNAUTHENTICATED")
        # the API: 401 for a missing or invalid token; 403 is for a valid token without a permission
        assert_error(
            c.get("/v1/capabilities", headers={"Authorization": "Bearer nope"}), 401, "UNAUTHENTICATED"
        )
        assert_error(
            c.post("/v1/predict", json={}, headers={"Authorization": "Bearer nope"}), 401, "UNAUTHENTICATED"
        )
        assert c.get("/v1/capabilities", headers={"Authorization": "Bearer t0ken"}).status_code == 200


def test_refuses_a_non_loopback_address_without_a_token():
    assert (
        is_loopback("127.0.0.1")
        and is_loopback("::1")
        and is_loopback("localhost")
        and not is_loopback("0.0.0.0")
    )
    with pytest.raises(ConfigError, match="without a token"):
        serve(ServeConfig(model="static"), host="0.0.0.0", port=1)


def test_over_the_declared_concurrency_answers_429_with_retry_after():
    service = Service(ServeConfig(model="static", size=(H, W), limits=Limits(max_concurrency=1)))
    with BackgroundServer(service) as running, httpx.Client(base_url=running.url) as c:
        assert service.enter()  # one request in flight
        try:
            response = c.post("/v1/predict", json={})
            assert_error(response, 429, "OVERLOADED")
            assert response.headers["retry-after"] == "1"
        finally:
            service.leave()
        assert_error(c.post("/v1/predict", json={}), 400, "INVALID_ARGUMENT")  # the slot is free again


def test_not_ready_while_loading_and_degraded_when_loading_fails():
    service = Service(ServeConfig(model="static", size=(H, W)))
    assert service.health()["status"] == "starting"
    with pytest.raises(ApiError) as info:
        service.predict({})
    assert info.value.status == 503 and info.value.retryable
    service.model.check_available = lambda: (_ for _ in ()).throw(
        RuntimeError("/secret/path/weights.bin missing")
    )
    service.load()
    assert service.health()["status"] == "degraded"


def test_oracle_needs_a_dataset_and_unknown_sample_ids_are_named(tmp_path):
    from tests.helpers.datasets import make_ground_truth

    with pytest.raises(ConfigError, match="dataset="):
        Service(ServeConfig(model="ground-truth"))
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=4)
    with pytest.raises(ConfigError, match="--oracle-reads-sample-id"):  # ids are opaque in the API
        Service(ServeConfig(model="ground-truth", dataset=str(gt)))
    service = Service(ServeConfig(model="ground-truth", dataset=str(gt), oracle_reads_sample_id=True))
    service.load()
    with BackgroundServer(service) as running, httpx.Client(base_url=running.url) as c:
        profile = Profile.from_json(c.get("/v1/capabilities").json()["profiles"][0])
        assert (profile.height, profile.width) == (48, 64)  # the dataset's size
        good = make_sample(profile, "1/10/1", 0, 3, 0)
        answer = c.post("/v1/predict", json={**body(c, [good])})
        assert answer.status_code == 200
        unknown = make_sample(profile, "9/99/1", 0, 3, 0)
        response = c.post("/v1/predict", json=body(c, [good, unknown]))  # validated whole: no partial answer
        assert_error(response, 400, "INVALID_ARGUMENT", response.json()["error"]["request_id"])
        assert "'9/99/1'" in response.json()["error"]["message"]


# ---------------------------------------------------------------------------- pieces


def test_answer_store_is_bounded_by_count_bytes_and_age():
    store = AnswerStore(max_entries=2, max_bytes=10, max_age_s=3600)
    store.put("a", "h", b"1234")
    store.put("b", "h", b"1234")
    store.put("c", "h", b"1234")
    assert store.get("a") is None and store.get("c") == ("h", b"1234") and len(store) == 2
    store.put("d", "h", b"12345678")  # 4 + 8 > 10 bytes: the oldest goes
    assert len(store) == 1 and store.bytes == 8
    aged = AnswerStore(max_age_s=0.0)
    aged.put("x", "h", b"1")
    assert aged.get("x") is None


def test_mapping_round_trip_hand_worked():
    """A trial of 4 frames from frame 0: context = frame 0, future actions = rows 1..3, state = row 0."""
    actions = np.arange(4 * 14, dtype=np.float64).reshape(4, 14) / 100
    frame = np.full((H, W, 3), 7, np.uint8)
    request = GenerationRequest(
        task="3",
        episode="0",
        trial="2",
        seed=11,
        num_frames=4,
        height=H,
        width=W,
        memory_frames={"head": frame[None]},
        actions=actions,
        instruction="stack",
    )
    profile = Profile(
        "default", H, W, action_dim=14, state_supported=True, state_dim=14, instruction_supported=True
    )
    sample = request_to_sample(request, profile)
    assert sample["sample_id"] == "3/0/2" and sample["seed"] == 11
    assert sample["context"]["actions"] == [] and sample["context"]["states"] == [actions[0].tolist()]
    assert sample["actions"] == actions[1:].tolist() and sample["context"]["instruction"] == "stack"
    back = sample_to_request(
        Sample(
            "3/0/2",
            11,
            frame[None],
            np.zeros((0, 14)),
            np.asarray(sample["context"]["states"]),
            "stack",
            np.asarray(sample["actions"]),
        ),
        profile,
    )
    assert (back.task, back.episode, back.trial, back.num_frames, back.start_frame) == ("3", "0", "2", 4, 0)
    np.testing.assert_array_equal(back.actions, actions)
    # an image-only profile: empty rows, one per predicted frame
    blind = request_to_sample(request, Profile("default", H, W, action_dim=0))
    assert (
        blind["actions"] == [[], [], []]
        and blind["context"]["states"] is None
        and blind["context"]["instruction"] is None
    )


def test_scrub_removes_paths():
    assert "/home/user" not in scrub("cannot open /home/user/data/x.npz: gone")
    assert scrub("no path here") == "no path here"


def test_encode_decode_round_trip_is_lossless():
    frame = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(encode_image(frame), H, W, "f", 10**6), frame)
    with pytest.raises(ApiError, match="larger than"):
        decode_image(encode_image(frame), H, W, "f", 100)


def test_serve_remote_and_check_run_with_torch_ultralytics_and_pybullet_unimportable():
    """As in a slim install: those imports fail, and a service, its check and the remote adapter still work."""
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'ultralytics', 'pybullet', 'transformers', 'diffusers'):\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "import ewmbench.cli\n"
        "from ewmbench.models.request import GenerationRequest\n"
        "from ewmbench.models.remote import RemoteModel\n"
        "from ewmbench.serve import BackgroundServer, ServeConfig, Service\n"
        "from ewmbench.serve.check import run_check\n"
        "with BackgroundServer(Service(ServeConfig(model='static', size=(8, 8)))) as s:\n"
        "    assert run_check(s.url, requests=1).ok\n"
        "    r = GenerationRequest(task='1', episode='1', trial='1', seed=0, num_frames=3, height=8, width=8, memory_frames={'head': np.zeros((1, 8, 8, 3), np.uint8)}, actions=np.zeros((3, 14)))\n"
        "    assert RemoteModel(url=s.url).generate(r).frames['head'].shape == (3, 8, 8, 3)\n"
        "print(sorted(m for m in ('torch', 'ultralytics', 'pybullet', 'transformers', 'diffusers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_an_internal_failure_answers_500_without_paths_and_logs_only_its_type(caplog):
    service = Service(ServeConfig(model="static", size=(H, W)))

    def broken(request):
        raise RuntimeError("cannot open /home/someone/secret/weights.bin on host gpu-7.internal")

    service.model.generate = broken
    with (
        BackgroundServer(service) as running,
        httpx.Client(base_url=running.url) as c,
        caplog.at_level("INFO", logger="ewmbench.serve"),
    ):
        payload = body(c, [make_sample(profile_of(c), "a/b/1", 0, 2, 0)])
        response = c.post("/v1/predict", json=payload)
        assert_error(response, 500, "INTERNAL", payload["request_id"])
        assert "secret" not in response.text and "gpu-7" not in response.text
        assert c.get("/v1/health").json()["status"] == "ready"  # and it keeps serving
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError" in logged and "secret" not in logged and "gpu-7" not in logged


def test_the_token_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    from ewmbench.serve.app import TOKEN_ENV, read_token

    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert read_token() == "from-env"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert read_token(token_file) == "from-file"
    token_file.write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        read_token(token_file)
    monkeypatch.delenv(TOKEN_ENV)
    assert read_token() is None


def test_past_the_deadline_504_then_the_stored_answer_under_the_same_request_id():
    import threading
    import time as clock

    service = Service(
        ServeConfig(model="static", size=(H, W), limits=Limits(max_concurrency=1, recommended_timeout_ms=300))
    )
    release = threading.Event()
    generate = service.model.generate

    def slow(request):
        release.wait(10)
        return generate(request)

    service.model.generate = slow
    with BackgroundServer(service) as running, httpx.Client(base_url=running.url, timeout=30) as c:
        payload = body(c, [make_sample(profile_of(c), "a/b/1", 0, 2, 0)])
        assert_error(c.post("/v1/predict", json=payload), 504, "DEADLINE_EXCEEDED", payload["request_id"])
        # the generation still holds its slot; the body is read before the gate, so its id is echoed
        assert_error(c.post("/v1/predict", json=payload), 429, "OVERLOADED", payload["request_id"])
        release.set()
        for _ in range(100):
            retry = c.post("/v1/predict", json=payload)
            if retry.status_code != 429:
                break
            clock.sleep(0.05)
        assert retry.status_code == 200 and retry.json()["request_id"] == payload["request_id"]


def test_a_retry_while_the_first_request_runs_waits_for_its_answer_and_a_changed_payload_409():
    import threading

    service = Service(
        ServeConfig(model="static", size=(H, W), limits=Limits(max_concurrency=3, recommended_timeout_ms=300))
    )
    release, calls = threading.Event(), []
    generate = service.model.generate

    def slow(request):
        calls.append(request.seed)
        release.wait(10)
        return generate(request)

    service.model.generate = slow
    with BackgroundServer(service) as running, httpx.Client(base_url=running.url, timeout=30) as c:
        payload = body(c, [make_sample(profile_of(c), "a/b/1", 0, 2, 0)])
        assert_error(c.post("/v1/predict", json=payload), 504, "DEADLINE_EXCEEDED", payload["request_id"])
        changed = copy.deepcopy(payload)
        changed["samples"][0]["seed"] = 1
        assert_error(c.post("/v1/predict", json=changed), 409, "REQUEST_ID_CONFLICT", payload["request_id"])
        threading.Timer(0.1, release.set).start()
        retry = c.post("/v1/predict", json=payload)  # waits for the first computation instead of a second
        assert retry.status_code == 200
    assert calls == [0]  # generated once


def test_adapters_needing_what_the_api_does_not_carry_are_refused_at_start(monkeypatch):
    from ewmbench.models.adapter import WorldModel
    from ewmbench.models.capabilities import Capabilities
    from ewmbench.models.registry import MODELS

    class Calibrated(WorldModel):
        name = "calibrated-test"
        capabilities = Capabilities(
            conditioning=frozenset({"image", "calibration"}), required_views=("head", "hand_left")
        )

    # registered for this test only
    monkeypatch.setitem(MODELS.registered, "calibrated-test", Calibrated)
    with pytest.raises(ConfigError, match="calibration, view 'hand_left'"):
        Service(ServeConfig(model="calibrated-test"))


# ---------------------------------------------------------------------------- the API document's own example


EXAMPLE = ROOT / "tests" / "data" / "worldarena" / "track2_example_request.json"


def test_the_api_documents_example_request_is_accepted_with_its_profile():
    """Section 7.1's request, as written (its image placeholder filled with a real 256x256 PNG),
    against `serve` started with the document's profile and model version."""
    import json

    example = json.loads(EXAMPLE.read_text())
    frame = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert example["samples"][0]["context"]["frames"][0]["data"] == "<BASE64_PNG_BYTES>"
    example["samples"][0]["context"]["frames"][0]["data"] = base64.b64encode(png_bytes(frame)).decode()
    service = Service(
        ServeConfig(
            model="static", size=(256, 256), profile_id="official-profile", model_version="wm-2026-07-01"
        )
    )
    caps = service.capabilities()
    assert caps["profiles"][0]["action"]["dimension"] == 14 and caps["model_version"] == "wm-2026-07-01"
    with BackgroundServer(service) as running, httpx.Client(base_url=running.url, timeout=30) as c:
        response = c.post("/v1/predict", json=example)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["request_id"] == example["request_id"] and answer["model_version"] == "wm-2026-07-01"
        (prediction,) = answer["predictions"]
        assert (
            prediction["sample_id"] == "sample-0" and len(prediction["frames"]) == 1
        )  # one per future action
        np.testing.assert_array_equal(decode_image(prediction["frames"][0], 256, 256, "p", 10**7), frame)


def test_a_model_that_ignores_actions_takes_the_declared_dimension_never_zero():
    service = Service(ServeConfig(model="static", size=(H, W), action_dim=7, action_representation="joints7"))
    action = service.capabilities()["profiles"][0]["action"]
    assert action == {"dtype": "float32", "dimension": 7, "representation": "joints7"}
    with pytest.raises(ConfigError, match="--action-dim"):
        Service(ServeConfig(model="static", size=(H, W), action_dim=0))


def test_the_response_budget_bounds_the_advertised_prediction_frames():
    # a 100x100 frame that does not compress takes 4 * (100 * 301 + 1024) // 3 + 200 = 41_698 bytes
    # in base64; 2 MB holds 2_000_000 // (4 * 41_698) = 11 of them per sample for 4 samples, one of
    # which is the model's own frame 0 (the optional ewmbench_frame_0): 10 predicted frames
    service = Service(ServeConfig(model="static", size=(100, 100), max_response_bytes=2_000_000))
    assert service.profile.prediction_max == 10
    with pytest.raises(ConfigError, match="response budget"):
        Service(ServeConfig(model="static", size=(100, 100), max_response_bytes=1000))


def test_public_binds_refuse_blank_or_short_tokens_and_half_an_https_pair(tmp_path, monkeypatch):
    from ewmbench.serve.app import read_token

    monkeypatch.setenv("EWMBENCH_SERVE_TOKEN", "   ")
    with pytest.raises(ConfigError, match="white space"):
        read_token()
    with pytest.raises(ConfigError, match="fewer than 16"):
        serve(ServeConfig(model="static", token="short"), host="0.0.0.0", port=1)
    with pytest.raises(ConfigError, match="without a token"):
        serve(ServeConfig(model="static", token="  "), host="0.0.0.0", port=1)
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="both --ssl-certfile and --ssl-keyfile"):
        serve(ServeConfig(model="static"), port=1, ssl_certfile=cert)
    with pytest.raises(ConfigError, match="no such file"):
        serve(ServeConfig(model="static"), port=1, ssl_certfile=cert, ssl_keyfile=tmp_path / "key.pem")


def test_serve_check_names_the_checklist_items_and_refuses_action_dimension_zero():
    service = Service(ServeConfig(model="static", size=(H, W), limits=Limits(max_batch_size=2)))
    with BackgroundServer(service) as running:
        report = run_check(running.url, requests=1)
        assert report.ok, [c for c in report.checks if not c.ok]
        numbered = {int(c.name[1 : c.name.index("]")]) for c in report.checks if c.name.startswith("[")}
        assert numbered == set(range(1, 11))
        service.profile = Profile(**{**service.profile.__dict__, "action_dim": 0})
        report = run_check(running.url, requests=1)
        failed = [c for c in report.checks if not c.ok]
        assert (
            not report.ok
            and failed[0].name.startswith("[2] action.dimension")
            and "dimension 0" in failed[0].detail
        )


def test_serve_check_asks_for_401_on_every_endpoint_under_item_1():
    service = Service(ServeConfig(model="static", size=(H, W), token="the-right-token-1234"))
    with BackgroundServer(service) as running:
        report = run_check(running.url, token="the-right-token-1234", requests=1)
        auth = [c for c in report.checks if "invalid token" in c.name]
        assert report.ok and len(auth) == 2 and all(c.name.startswith("[1]") for c in auth)


@pytest.mark.skipif(
    not os.environ.get("EWMBENCH_WORLDARENA_CHECKOUT"),
    reason="set EWMBENCH_WORLDARENA_CHECKOUT to a checkout of WorldArena2/WorldArena-2.0",
)
def test_the_example_kept_here_is_the_one_in_a_real_worldarena_checkout():
    """Opt-in: the API document's section-7.1 example, read from the checkout, is the one the test
    above sends (tested against f6d046f06368a82b9abc6882ec6fc1fe04c5c0de)."""
    import json
    import re

    document = (
        Path(os.environ["EWMBENCH_WORLDARENA_CHECKOUT"]) / "assets" / "track2_world_model_service_api_en.md"
    )
    section = document.read_text(encoding="utf-8").split("### 7.1 Request", 1)[1]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    assert example == json.loads(EXAMPLE.read_text())
    assert "Authentication failure returns `401`" in document.read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_serve_speaks_https_with_a_certificate_and_key(tmp_path):
    from tests.bad_input.hostile import RunningServer

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    server = RunningServer(tmp_path, "--size", "8x8", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    server.url = server.url.replace("http://", "https://")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(
                    server.url + "/v1/health", verify=ssl.create_default_context(cafile=cert), timeout=2
                )
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.process.poll() is None, server.log.read_text()
                time.sleep(0.3)
        assert health.status_code == 200 and health.json()["api_version"] == "1.0"
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not answered as HTTP
            httpx.get(server.url.replace("https://", "http://") + "/v1/health", timeout=5).json()
    finally:
        server.stop()
