"""Bounded load test of `ewmbench serve` on loopback: concurrent clients, a fixed number of requests.

Starts `python -m ewmbench serve --model static` on a free 127.0.0.1 port in its own process,
sends ``--requests`` predictions from ``--clients`` threads (each with a new request_id, seeded
random-but-compressible frames), and reports throughput, latency p50/p95/p99, errors by status,
and the server's resident memory after the warm-up tenth and at the end. Stops by itself after
the requests or ``--max-seconds``, whichever comes first, and stops the server.

    python benchmarks/service_load.py --requests 1000 --clients 4
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ewmbench.models.wire import encode_image  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def frame(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth gradient with a square: compressible like a camera frame, different per seed."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.stack(
        [(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), np.full_like(x, seed % 256)], -1
    ).astype(np.uint8)
    top, left = (seed * 7) % max(1, height - 16), (seed * 13) % max(1, width - 16)
    out[top : top + 16, left : left + 16] = 255
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--size", default="240x320", help="HEIGHTxWIDTH of the profile")
    parser.add_argument("--predictions", type=int, default=4, help="frames predicted per request")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "EWMBENCH_SERVE_TOKEN"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ewmbench",
            "serve",
            "--model",
            "static",
            "--port",
            str(port),
            "--size",
            args.size,
            "--max-concurrency",
            str(args.clients),
            "--max-batch-size",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/v1/health", timeout=2).json().get("status") == "ready":
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        caps = httpx.get(url + "/v1/capabilities").json()
        version = caps["model_version"]
        dimension = caps["profiles"][0]["action"]["dimension"]  # static accepts and ignores the rows
        images = [encode_image(frame(height, width, s)) for s in range(16)]
        latencies: list[float] = []
        statuses: Counter = Counter()
        lock = threading.Lock()
        counter = iter(range(args.requests))
        warm_rss: list[float] = []
        deadline = time.monotonic() + args.max_seconds

        def client() -> None:
            with httpx.Client(base_url=url, timeout=120) as http:
                while time.monotonic() < deadline:
                    with lock:
                        index = next(counter, None)
                    if index is None:
                        return
                    payload = {
                        "api_version": "1.0",
                        "request_id": str(uuid.uuid4()),
                        "model_version": version,
                        "profile_id": "default",
                        "samples": [
                            {
                                "sample_id": f"load/{index}/1",
                                "seed": index,
                                "context": {
                                    "frames": [images[index % 16]],
                                    "actions": [],
                                    "states": None,
                                    "instruction": None,
                                },
                                "actions": [[0.0] * dimension for _ in range(args.predictions)],
                            }
                        ],
                    }
                    start = time.perf_counter()
                    try:
                        status = http.post("/v1/predict", json=payload).status_code
                    except httpx.TransportError as exc:
                        status = type(exc).__name__
                    elapsed = 1000 * (time.perf_counter() - start)
                    with lock:
                        latencies.append(elapsed)
                        statuses[status] += 1
                        if len(latencies) == max(1, args.requests // 10):
                            warm_rss.append(rss_mib(server.pid))

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        end_rss = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    done = len(latencies)
    errors = {str(k): v for k, v in statuses.items() if k != 200}
    report = {
        "requests": done,
        "clients": args.clients,
        "size": args.size,
        "predictions_per_request": args.predictions,
        "seconds": round(wall, 2),
        "requests_per_s": round(done / wall, 1),
        "frames_per_s": round(done * args.predictions / wall, 1),
        "latency_ms": {f"p{q}": round(float(np.percentile(latencies, q)), 1) for q in (50, 95, 99)}
        if latencies
        else {},
        "errors": errors,
        "server_rss_mib": {
            "after_warmup": round(warm_rss[0], 1) if warm_rss else None,
            "end": round(end_rss, 1),
        },
    }
    print(json.dumps(report, indent=2))
    return 0 if not errors and done == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
