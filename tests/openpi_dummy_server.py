"""A scripted dummy policy behind openpi's own server (PyPI ``openpi-server``), for the opt-in tests.

Run with a Python that has ``openpi-server`` and ``openpi-client`` installed (their numpy pin
conflicts with ours, so they live in their own environment)::

    python tests/openpi_dummy_server.py --port 8000 --width 14 --log requests.jsonl

Each request is logged as one JSON line (key -> shape and dtype, the prompt, the step). The reply
is ``{"actions": (chunk, width)}``: the request's state vectors concatenated and cut or padded
to ``width`` (``--mode echo``: an absolute layout then holds its pose) or zeros (``--mode zeros``:
a delta layout then holds still). ``--fail-on 2`` raises inside the policy on the 2nd call (the
server then sends the traceback as text and closes with 1011); ``--sleep-on 3 --sleep 4`` makes
the 3rd call take 4 s.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from openpi_client import base_policy
from openpi_server.websocket_policy_server import WebsocketPolicyServer


def describe(request: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in request.items():
        if isinstance(value, dict):
            out.update(describe(value, f"{prefix}{key}."))
        elif isinstance(value, np.ndarray):
            out[prefix + key] = [list(value.shape), value.dtype.str, float(value.astype(np.float64).sum())]
        else:
            out[prefix + key] = [type(value).__name__, value]
    return out


class DummyPolicy(base_policy.BasePolicy):
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.calls = 0

    def infer(self, obs: dict) -> dict:
        self.calls += 1
        with open(self.args.log, "a") as handle:
            handle.write(json.dumps({"call": self.calls, "request": describe(obs)}) + "\n")
        if self.calls in self.args.fail_on:
            raise RuntimeError(f"dummy policy failed on call {self.calls} as scripted")
        if self.calls in self.args.sleep_on:
            time.sleep(self.args.sleep)
        row = np.zeros(self.args.width)
        if self.args.mode == "echo":
            state = np.concatenate(
                [np.asarray(obs[k], dtype=np.float64).ravel() for k in self.args.state_keys]
            )
            row[: min(len(state), self.args.width)] = state[: self.args.width]
        return {"actions": np.tile(row, (self.args.chunk, 1))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--mode", choices=("echo", "zeros"), default="echo")
    parser.add_argument("--state-keys", type=lambda s: s.split(","), default=["state"])
    parser.add_argument("--fail-on", type=lambda s: {int(v) for v in s.split(",") if v}, default=set())
    parser.add_argument("--sleep-on", type=lambda s: {int(v) for v in s.split(",") if v}, default=set())
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    metadata = {"server": "openpi-server dummy", "action_width": args.width}
    WebsocketPolicyServer(
        DummyPolicy(args), host="127.0.0.1", port=args.port, metadata=metadata
    ).serve_forever()


if __name__ == "__main__":
    main()
