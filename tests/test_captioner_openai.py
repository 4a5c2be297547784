"""The OpenAI-compatible captioning backend against a loopback chat-completions server."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

pytest.importorskip("httpx")
pytest.importorskip("torch")

from ewmbench.httpclient import HTTPSettings, RemoteError  # noqa: E402
from ewmbench.perception.captioner import FrameSampling, sample_frame_count  # noqa: E402
from ewmbench.perception.captioner_openai import load_openai_captioner  # noqa: E402


class ChatServer:
    """Answers each chat completion with the number of images it got and their first pixel;
    refuses the first request with 503 (to be retried); records the most requests in flight."""

    def __init__(self, delay: float = 0.05):
        self.requests: list[dict] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with server.lock:
                    server.requests.append(body)
                    first = len(server.requests) == 1
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    time.sleep(delay)
                    if first:
                        self.send_response(503)
                        self.send_header("content-type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"error": {"code": "busy", "message": "try again"}}')
                        return
                    images = [c for c in body["messages"][1]["content"] if c["type"] == "image_url"]
                    from PIL import Image

                    first_image = Image.open(
                        io.BytesIO(base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1]))
                    )
                    text = f"{len(images)} images, first pixel {np.asarray(first_image)[0, 0].tolist()}"
                    answer = json.dumps(
                        {"choices": [{"message": {"role": "assistant", "content": text}}]}
                    ).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_captions_in_order_with_bounded_concurrency_and_a_retry():
    sampling = FrameSampling()
    videos = [np.full((24, 56, 84, 3), 10 * k, dtype=np.uint8) for k in range(6)]
    with ChatServer() as server:
        captioner = load_openai_captioner(
            server.url,
            "Qwen/Qwen2.5-VL-7B-Instruct",
            instruction="Describe the video.",
            system_message="You are helpful.",
            sampling=sampling,
            max_new_tokens=64,
            settings=HTTPSettings(timeout=10, retries=2, backoff=0.01, max_concurrency=2),
        )
        answers = captioner.caption(videos)
    expected_images = sample_frame_count(24, sampling)
    assert answers == [f"{expected_images} images, first pixel {[10 * k] * 3}" for k in range(6)]
    assert len(server.requests) == 7  # one refused with 503, retried
    assert 1 <= server.most_in_flight <= 2
    body = server.requests[-1]
    assert (
        body["model"] == "Qwen/Qwen2.5-VL-7B-Instruct"
        and body["max_tokens"] == 64
        and body["temperature"] == 0
    )
    assert body["messages"][0] == {"role": "system", "content": "You are helpful."}
    assert body["messages"][1]["content"][-1] == {"type": "text", "text": "Describe the video."}


def test_a_refused_request_without_retries_is_an_error_naming_the_server():
    with ChatServer(delay=0) as server:
        captioner = load_openai_captioner(
            server.url,
            "m",
            instruction="x",
            system_message="y",
            sampling=FrameSampling(),
            max_new_tokens=8,
            settings=HTTPSettings(timeout=5, retries=0, max_concurrency=1),
        )
        with pytest.raises(RemoteError, match="busy") as info:
            captioner.caption(
                [np.zeros((8, 28, 28, 3), np.uint8)]
            )  # the first answer is the 503, not retried
        assert server.url in str(info.value) and info.value.status == 503


def test_the_backend_names_itself_in_the_caption_key(monkeypatch):
    from ewmbench.metrics.semantics import caption_stage_key
    from ewmbench.protocols import load_protocol

    settings = load_protocol("ewmbench-v1").settings("semantics")
    monkeypatch.delenv("EWMBENCH_CAPTIONER_URL", raising=False)
    local = caption_stage_key(settings).folder
    monkeypatch.setenv("EWMBENCH_CAPTIONER_URL", "http://127.0.0.1:9")
    served = caption_stage_key(settings).folder
    monkeypatch.setenv("EWMBENCH_CAPTIONER_MODEL", "other-model")
    assert len({local, served, caption_stage_key(settings).folder}) == 3
