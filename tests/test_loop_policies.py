"""Remote policies against servers written here: openpi's websocket protocol and JSON over HTTP."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from ewmbench.errors import ConfigError, Unavailable
from ewmbench.loop.openpi import OpenPIPolicy, pack, unpack
from ewmbench.loop.policies import Observation, PolicyError

STATE = np.arange(14, dtype=np.float64) / 10


def observation(step=0, views=("head", "hand_left")):
    frames = {v: np.full((6, 8, 3), i * 40, dtype=np.uint8) for i, v in enumerate(views)}
    return Observation(frames, STATE.copy(), step, "pick up the cube")


class OpenPIServer:
    """A loopback openpi-style server: metadata first, then one reply per request.

    Like openpi's own server, a failing call is answered with the traceback as text, then the
    connection is closed with code 1011. ``fail_on``: the call numbers (over all connections,
    from 1) that fail; ``mode``: ``hang`` (no answer for 1.5 s), ``close`` (closes after the
    metadata), ``narrow`` (13-wide actions), else an echo of the state, three rows.
    """

    def __init__(self, mode: str = "ok", fail_on: tuple[int, ...] = (), ssl_context=None):
        from websockets.sync.server import serve

        self.mode = mode
        self.fail_on = set(fail_on) | ({1, 2, 3, 4, 5, 6, 7, 8} if mode == "error" else set())
        self.requests: list[dict] = []
        self.authorization: list[str | None] = []
        self.connections = 0
        self.server = serve(self.handle, "127.0.0.1", 0, max_size=None, compression=None, ssl=ssl_context)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, websocket):
        from websockets.frames import CloseCode

        self.connections += 1
        self.authorization.append(websocket.request.headers.get("Authorization"))
        websocket.send(pack({"action_dim": 14, "chunk": 3}))
        if self.mode == "close":
            websocket.close()
            return
        for message in websocket:
            request = unpack(message)
            self.requests.append(request)
            if self.mode == "hang":
                threading.Event().wait(1.5)
                return
            if len(self.requests) in self.fail_on:
                websocket.send("Traceback (most recent call last):\nRuntimeError: model exploded")
                websocket.close(code=CloseCode.INTERNAL_ERROR, reason="Internal server error.")
                return
            width = 13 if self.mode == "narrow" else len(request["state"])
            actions = np.tile(request["state"][:width].astype(np.float64), (3, 1))
            if width == 14:
                actions += np.arange(3)[:, None] * 0.01
            websocket.send(pack({"actions": actions}))

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def server(request):
    srv = OpenPIServer(getattr(request, "param", "ok"))
    yield srv
    srv.stop()


def test_openpi_client_speaks_the_protocol(server):
    policy = OpenPIPolicy(port=server.port, views="head,hand_left", timeout=5)
    policy.reset("pick up the cube", observation())
    assert policy.metadata == {"action_dim": 14, "chunk": 3}
    first = policy.act(observation(0))
    second = policy.act(observation(3))
    policy.close()
    assert (
        first.shape == (3, 14)
        and np.allclose(first[1], STATE + 0.01, atol=1e-6)
        and np.allclose(second, first)
    )
    one, two = server.requests
    assert one["prompt"] == "<reset>pick up the cube" and two["prompt"] == "pick up the cube"
    assert one["obs"].shape == (2, 6, 8, 3) and one["obs"].dtype == np.uint8 and one["obs"][1].max() == 40
    assert one["state"].dtype == np.float32 and np.allclose(one["state"], STATE)
    assert (one["execution_step"], two["execution_step"]) == (0, 3)
    assert server.authorization == [None]


def test_openpi_quaternion_layout_round_trips(server):
    """GE-Act's 16-D layout: [xyz, quaternion x y z w, gripper 0..120] per arm."""
    from scipy.spatial.transform import Rotation

    state = STATE.copy()
    state[[6, 13]] = (0.25, 1.0)
    policy = OpenPIPolicy(port=server.port, views="head", timeout=5, layout="ge-act")
    obs = observation(0)
    obs.state = state
    policy.reset("x", obs)
    actions = policy.act(obs)  # the server echoes the state it was sent, three times
    policy.close()
    sent = server.requests[0]["state"]
    assert sent.shape == (16,) and np.allclose(
        sent[3:7], Rotation.from_euler("xyz", state[3:6]).as_quat(), atol=1e-6
    )
    assert sent[7] == pytest.approx(30.0) and sent[15] == pytest.approx(120.0)
    assert actions.shape == (3, 14) and np.allclose(actions[0], state, atol=1e-5)
    with pytest.raises(ConfigError, match="became layouts"):
        OpenPIPolicy(action_space="eef16-quat")


@pytest.mark.parametrize(
    "server, message",
    [("hang", "did not answer within"), ("close", "closed the connection"), ("error", "model exploded")],
    indirect=["server"],
)
def test_openpi_failures_become_policy_errors(server, message):
    policy = OpenPIPolicy(port=server.port, views="head", timeout=0.5)
    policy.reset("x", observation())
    with pytest.raises(PolicyError, match=message):
        policy.act(observation())
    policy.close()


def test_openpi_server_error_then_the_next_call_reconnects():
    """openpi's server reports an error as text and closes with 1011: the client must reconnect."""
    server = OpenPIServer(fail_on=(2,))
    try:
        policy = OpenPIPolicy(port=server.port, views="head", timeout=5)
        policy.start()
        policy.reset("x", observation())
        policy.act(observation())
        with pytest.raises(PolicyError, match="RuntimeError: model exploded"):
            policy.act(observation(3))
        policy.reset("x", observation())  # the next episode
        actions = policy.act(observation())
        policy.close()
    finally:
        server.stop()
    assert actions.shape == (3, 14) and server.connections == 2
    assert [r["prompt"] for r in server.requests] == ["<reset>x", "x", "<reset>x"]


def test_openpi_timed_out_call_is_abandoned_and_the_next_episode_reconnects():
    server = OpenPIServer("hang")
    try:
        policy = OpenPIPolicy(port=server.port, views="head", timeout=0.3)
        policy.reset("x", observation())
        with pytest.raises(PolicyError, match="did not answer"):
            policy.act(observation())
        assert policy._socket is None  # abandoned: a late reply cannot answer the next request
        server.mode = "ok"
        policy.reset("x", observation())
        actions = policy.act(observation())
        policy.close()
    finally:
        server.stop()
    assert actions.shape == (3, 14) and server.connections == 2


def test_openpi_api_key_is_sent_as_openpi_does_and_never_recorded(server, monkeypatch):
    monkeypatch.setenv("MY_OPENPI_KEY", "s3cret")
    policy = OpenPIPolicy(port=server.port, views="head", timeout=5, api_key_env="MY_OPENPI_KEY")
    policy.start()
    config = policy.config()
    policy.close()
    assert server.authorization == ["Api-Key s3cret"]
    assert "s3cret" not in json.dumps(config) and config["api_key"] == "from $MY_OPENPI_KEY"
    with pytest.raises(ConfigError, match="environment variable"):
        OpenPIPolicy(api_key="s3cret")


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate"
)
def test_openpi_wss_url_speaks_tls(tmp_path, monkeypatch):
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = OpenPIServer(ssl_context=context)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test certificate, as a user's CA
    try:
        policy = OpenPIPolicy(host=f"wss://localhost:{server.port}", views="head", timeout=5)
        policy.reset("x", observation())
        actions = policy.act(observation())
        policy.close()
        with pytest.raises(PolicyError, match="cannot connect"):  # plain ws:// to a TLS server
            OpenPIPolicy(host=f"ws://localhost:{server.port}", views="head", timeout=2).reset(
                "x", observation()
            )
    finally:
        server.stop()
    assert actions.shape == (3, 14) and policy.config()["url"] == f"wss://localhost:{server.port}"


@pytest.mark.parametrize(
    "host, port, url",
    [
        ("127.0.0.1", None, "ws://127.0.0.1:8000"),
        ("gpu-host", 8001, "ws://gpu-host:8001"),
        ("ws://gpu-host", 8001, "ws://gpu-host:8001"),
        ("ws://gpu-host:9000", None, "ws://gpu-host:9000"),
        ("wss://policy.example.org/pi05", 443, "wss://policy.example.org:443/pi05"),
        ("gpu-host:8002", None, "ws://gpu-host:8002"),
    ],
)
def test_openpi_host_takes_a_host_or_a_url(host, port, url):
    from ewmbench.loop.openpi import server_url

    assert server_url(host, port) == url


@pytest.mark.parametrize(
    "host, port, message",
    [
        ("ws://gpu-host:9000", 8001, "names port 9000 and port=8001"),
        ("http://gpu-host", None, "ws:// or wss://"),
        ("gpu-host", 70000, "1-65535"),
        ("gpu-host", "eight", "integer"),
    ],
)
def test_openpi_bad_addresses_are_refused(host, port, message):
    with pytest.raises(ConfigError, match=message):
        OpenPIPolicy(host=host, port=port)


def test_openpi_unreachable_server_is_a_policy_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PolicyError, match="cannot connect"):
        OpenPIPolicy(port=port, timeout=1).reset("x", observation())
    with pytest.raises(Unavailable, match=f"ws://127.0.0.1:{port}.*fix: start the policy server"):
        OpenPIPolicy(port=port, timeout=1).start()


def test_msgpack_numpy_round_trip_and_refusals():
    data = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "b": np.float32(1.5), "c": "text"}
    back = unpack(pack(data))
    assert (
        np.array_equal(back["a"], data["a"])
        and back["a"].dtype == np.int16
        and back["b"] == np.float32(1.5)
        and back["c"] == "text"
    )
    with pytest.raises(TypeError):
        pack({"x": np.array([object()])})
    evil = pack({"x": {"__ndarray__": True, "data": b"", "dtype": "|O", "shape": [0]}})
    with pytest.raises(ValueError, match="refusing"):
        unpack(evil)


class _Handler(BaseHTTPRequestHandler):
    calls: list = []
    fail_first = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, body))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        answer = (
            {"ok": True} if self.path == "/reset" else {"actions": [[v + 0.5 for v in body["state"]]] * 2}
        )
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    _Handler.calls, _Handler.fail_first = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)


def test_http_policy_with_a_retry(http_server):
    from ewmbench.loop.http_policy import HTTPPolicy

    policy = HTTPPolicy(url=f"http://127.0.0.1:{http_server.server_address[1]}", timeout=5, backoff=0.01)
    policy.reset("push it", observation())
    _Handler.fail_first = 1  # one 503, retried
    actions = np.asarray(policy.act(observation(2)))
    policy.close()
    assert actions.shape == (2, 14) and np.allclose(actions[0], STATE + 0.5)
    paths = [p for p, _ in _Handler.calls]
    assert paths == ["/reset", "/act", "/act"]
    body = _Handler.calls[-1][1]
    assert (
        body["instruction"] == "push it"
        and body["step"] == 2
        and np.array(body["frames"]["head"]).shape == (6, 8, 3)
    )


def test_http_policy_unreachable_is_a_policy_error():
    from ewmbench.loop.http_policy import HTTPPolicy

    policy = HTTPPolicy(url="http://127.0.0.1:9", timeout=0.5, retries=1, backoff=0.01)
    with pytest.raises(PolicyError, match="failed after 2 attempt"):
        policy.reset("x", observation())
