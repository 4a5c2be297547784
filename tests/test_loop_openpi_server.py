"""``ewmbench policy-eval --policy openpi:...`` against openpi's own server (PyPI ``openpi-server``).

Opt-in: ``openpi-server`` and ``openpi-client`` pin numpy below 2, so they live in their own
environment; point ``EWMBENCH_OPENPI_SERVER_PYTHON`` at its Python::

    python3 -m venv .venv-openpi
    .venv-openpi/bin/pip install openpi-server==0.1.0 openpi-client==0.1.2
    EWMBENCH_OPENPI_SERVER_PYTHON=.venv-openpi/bin/python pytest tests/test_loop_openpi_server.py

The server runs ``tests/openpi_dummy_server.py``, a scripted dummy policy, as a subprocess.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ewmbench.loop.openpi_layout import build_request, load_layout

SERVER_PYTHON = os.environ.get("EWMBENCH_OPENPI_SERVER_PYTHON")
needs_server = pytest.mark.skipif(
    not SERVER_PYTHON,
    reason="set EWMBENCH_OPENPI_SERVER_PYTHON to a Python with openpi-server and openpi-client installed",
)
ROOT = Path(__file__).resolve().parents[1]
FK = "fk=tests.openpi_toy_kinematics:fk"
WIDTH, HEIGHT = 64, 48

# layout -> (reply width, state keys the dummy echoes or None for zeros, extra policy options)
LAYOUTS = {
    "ge-act": (16, "state", ""),
    "ge-act-eef14": (14, "state", ""),
    "gesim-pi05": (16, "observation.state", FK),
    "droid": (8, None, FK),
    "libero": (7, None, ""),
    "aloha": (14, "state", FK),
}


class DummyServer:
    def __init__(self, tmp_path: Path, width: int, state_keys: str | None, *script: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = tmp_path / "requests.jsonl"
        command = [SERVER_PYTHON, str(ROOT / "tests" / "openpi_dummy_server.py"), "--port", str(self.port)]
        command += ["--width", str(width), "--log", str(self.log), *script]
        command += ["--state-keys", state_keys] if state_keys else ["--mode", "zeros"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"openpi-server did not start: {self.process.communicate()[1]}"
                    ) from None
                time.sleep(0.2)

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from tests.helpers.datasets import sample_dataset

    return sample_dataset(tmp_path_factory.mktemp("openpi-sample"))


def policy_eval(dataset: Path, output: Path, policy: str, episodes: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ewmbench", "policy-eval", "--policy", policy, "--world-model", "sim"]
    command += ["--dataset", str(dataset), "--episodes", str(episodes), "--horizon", "5"]
    command += ["--size", f"{WIDTH}x{HEIGHT}", "--output", str(output)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)


def expected_keys(name: str) -> dict:
    """Flattened request keys -> shape, from the layout itself (the layouts' own tests pin those keys)."""
    layout = load_layout(name)
    frames = {v: np.zeros((HEIGHT, WIDTH, 3), np.uint8) for v in ("head", "hand_left", "hand_right")}
    request = build_request(layout, frames, np.zeros(14), np.zeros(18), "x", 0, layout.views)
    flat = {}
    for key, value in request.items():
        for sub, item in value.items() if isinstance(value, dict) else [(None, value)]:
            flat[f"{key}.{sub}" if sub else key] = list(item.shape) if isinstance(item, np.ndarray) else None
    return flat


@needs_server
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_policy_eval_drives_openpi_server_in_each_layout(name, dataset, tmp_path):
    width, state_keys, options = LAYOUTS[name]
    server = DummyServer(tmp_path, width, state_keys)
    try:
        policy = f"openpi:host=ws://127.0.0.1,port={server.port},layout={name}" + (
            f",{options}" if options else ""
        )
        result = policy_eval(dataset, tmp_path / "out", policy)
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["judged"] == 2 and summary["counts"]["failed"] == 0, summary["failures"]
    requests = server.requests()
    assert len(requests) == 2  # horizon 5 = the initial frame + one chunk of 4 per episode
    for logged in requests:
        sent = logged["request"]
        assert {k: v[0] if isinstance(v[0], list) else None for k, v in sent.items()} == expected_keys(name)
        assert all(v[1] == "|u1" for k, v in sent.items() if isinstance(v[0], list) and len(v[0]) == 3)
    if load_layout(name).prompt.key:
        prompts = [r["request"]["prompt"][1] for r in requests]
        prefix = "<reset>" if name.startswith("ge-act") else ""
        assert all(p.startswith(prefix) and len(p) > len(prefix) for p in prompts)
    record = summary["episodes"][0]
    meta = json.loads((tmp_path / "out" / record["rollout"] / "ewmbench" / "meta.json").read_text())
    assert meta["policy_config"]["layout"] == name
    assert meta["policy_config"]["server_metadata"]["server"] == "openpi-server dummy"
    if name.startswith("ge-act"):  # the dummy echoes the state: the arms hold their initial pose
        with np.load(tmp_path / "out" / record["rollout"] / "ewmbench" / "arrays.npz") as arrays:
            actions, states = arrays["actions"], arrays["eef_pose"]
        assert actions.shape == (5, 14) and np.allclose(actions[1:], states[0], atol=1e-4)


@needs_server
@pytest.mark.parametrize(
    "script, options, reason",
    [
        (["--fail-on", "1"], "", "dummy policy failed on call 1 as scripted"),
        # the first call takes 3 s against a 2 s timeout; the next episode's connection is answered
        # once the server's event loop is free again, within its own 2 s
        (["--sleep-on", "1", "--sleep", "3"], ",timeout=2", "did not answer within 2.0 s"),
    ],
)
def test_policy_eval_survives_a_server_error_and_a_timeout(script, options, reason, dataset, tmp_path):
    server = DummyServer(tmp_path, 14, "state", *script)
    try:
        policy = f"openpi:port={server.port},layout=ge-act-eef14{options}"
        result = policy_eval(dataset, tmp_path / "out", policy, episodes=3)
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["status"] for r in summary["episodes"]] == ["failed", "ok", "ok"]
    assert reason in summary["failures"][0]["reason"]
    assert len(server.requests()) == 3


def test_policy_eval_stops_when_the_server_is_unreachable(dataset, tmp_path):
    """Needs no server: the run stops before its first episode, naming the address and the fix."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = policy_eval(dataset, tmp_path / "out", f"openpi:port={port},timeout=2")
    assert result.returncode != 0
    text = " ".join((result.stdout + result.stderr).split())
    assert f"ws://127.0.0.1:{port}" in text and "start the policy server" in text
    assert not (tmp_path / "out").exists()
