"""Hostile inputs that attack resources (memory, time, connections), each run as a user meets it:
the command line in a subprocess, or a real ``ewmbench serve`` on 127.0.0.1. Every case returns
what it cost (peak resident memory of the process that read the input, wall time) and what was
answered; ``tests/bad_input/test_hostile_resources.py`` asserts the bounds and
``benchmarks/hostile_inputs.py`` prints the figures.

Peak memory of a command: the process runs as the only child of a small wrapper whose
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is then that child's peak. Peak memory of the server:
``VmHWM`` of its process, read after the attacks.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FILES = Path(__file__).resolve().parent / "hostile_files"
MEMORY_BOUND_MIB = 500
TIME_BOUND_S = 10.0
TOKEN = "hostile-suite-token-0123456789"

_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[2:], capture_output=True, timeout=120)
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
text = (done.stdout + done.stderr).decode("utf-8", "backslashreplace")
with open(sys.argv[1], "w") as fh:
    json.dump({"code": done.returncode, "peak_mib": peak_kib / 1024, "seconds": seconds, "output": text}, fh)
"""


@dataclass
class Outcome:
    name: str
    code: int | None  # exit status, or HTTP status
    peak_mib: float
    seconds: float
    output: str

    def within_bounds(self) -> bool:
        return self.peak_mib <= MEMORY_BOUND_MIB and self.seconds <= TIME_BOUND_S


def command_env(extra: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "NO_COLOR": "1"}
    return env | (extra or {})


def measured(name: str, args: list[str], workdir: Path, env: dict | None = None) -> Outcome:
    """``python -m ewmbench ARGS`` (or ``python ARGS`` when ARGS start with ``-c``) with its peak
    memory and wall time."""
    report = Path(workdir) / f".{name}.measure.json"
    command = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-m", "ewmbench", *args]
    subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(report), *command],
        env=command_env(env),
        cwd=workdir,
        check=True,
        timeout=180,
    )
    data = json.loads(report.read_text())
    return Outcome(name, data["code"], data["peak_mib"], data["seconds"], " ".join(data["output"].split()))


# ---------------------------------------------------------------------------- files: import


def make_hostile_videos(folder: Path) -> None:
    """Regenerates the two committed videos of ``hostile_files/`` (ffmpeg, about 20 s)."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    for size, frames, name in (("8192x8192", 6, "huge_frames.mp4"), ("320x240", 6000, "many_frames.mp4")):
        subprocess.run(
            [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"color=black:s={size}:r=30,format=yuv420p"]
            + ["-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", str(folder / name)],
            check=True,
        )


def import_cases(workdir: Path) -> list[Outcome]:
    """``ewmbench import`` of a 6-frame 8192x8192 mp4 and of a 6000-frame 320x240 mp4."""
    from tests.helpers.datasets import make_ground_truth

    workdir = Path(workdir)
    gt = make_ground_truth(workdir / "gt", tasks=("1",), episodes=("10",), num_frames=4)
    out = []
    for case, video in (
        ("import_8192x8192_frames", "huge_frames.mp4"),
        ("import_6000_frames", "many_frames.mp4"),
    ):
        videos = workdir / case
        videos.mkdir()
        shutil.copy(FILES / video, videos / "1_episode_10.mp4")
        args = [
            "import",
            "--videos",
            str(videos),
            "--gt",
            str(gt),
            "--name",
            case,
            "--output",
            str(workdir / f"{case}_out"),
        ]
        out.append(measured(case, args, workdir))
    return out


_READ = """
import sys
from ewmbench.data.video import read_video
from ewmbench.errors import EwmbenchError
try:
    read_video(sys.argv[1])
except EwmbenchError as exc:
    print(exc)
    sys.exit(2)
"""


def reader_cases(workdir: Path) -> list[Outcome]:
    """The one video reader (what evaluate, the datasets and the baselines call) on those two videos."""
    return [
        measured(f"read_video_{name}", ["-c", _READ, str(FILES / video)], workdir)
        for name, video in (("8192x8192_frames", "huge_frames.mp4"), ("6000_frames", "many_frames.mp4"))
    ]


def evaluate_cases(workdir: Path) -> list[Outcome]:
    """``ewmbench evaluate`` of generated trials that are those two videos (each run imports torch,
    about 25 s and 870 MiB before it reads anything: the benchmark runs these, the tests run
    :func:`reader_cases`)."""
    from tests.helpers.datasets import make_ground_truth

    workdir = Path(workdir)
    gt = make_ground_truth(workdir / "gt", tasks=("1",), episodes=("10",), num_frames=4)
    out = []
    for case, video in (
        ("evaluate_8192x8192_frames", "huge_frames.mp4"),
        ("evaluate_6000_frames", "many_frames.mp4"),
    ):
        trial = workdir / case / "mine_dataset" / "1" / "10" / "1"
        trial.mkdir(parents=True)
        shutil.copy(FILES / video, trial / "video.mp4")
        args = [
            "evaluate",
            "--gt",
            str(gt),
            "--generated",
            str(trial.parents[2]),
            "--output",
            str(workdir / case / "out"),
        ]
        out.append(measured(case, args + ["--metrics", "psnr"], workdir))
    return out


# ---------------------------------------------------------------------------- files: LeRobot metadata

LEROBOT_CASES = {
    # name: (what to change in info.json or the first episode, words the refusal must hold)
    "lerobot_chunks_size_0": ({"chunks_size": 0}, None, ("info.json", "chunks_size")),
    "lerobot_episode_index_path": (None, {"episode_index": "../../x"}, ("episodes.jsonl", "episode_index")),
    "lerobot_width_400000000": (
        {"data_path": "data/{episode_index:>400000000}.parquet"},
        None,
        ("info.json", "data_path", "width of at most 2 digits"),
    ),
    "lerobot_attribute_access": (
        {"data_path": "data/{episode_index.__class__}.parquet"},
        None,
        ("info.json", "data_path", "unknown template field"),
    ),
    "lerobot_path_outside_source": (
        {"data_path": "../../outside/episode_{episode_index:06d}.parquet"},
        None,
        ("info.json", "data_path", "outside the dataset folder"),
    ),
    "lerobot_fps_0": ({"fps": 0}, None, ("info.json", "fps")),
}


def lerobot_cases(workdir: Path) -> list[tuple[Outcome, tuple[str, ...]]]:
    """``ewmbench data convert lerobot`` of a one-episode v2.1 dataset with one metadata value changed."""
    from tests.helpers.source_formats import write_lerobot

    workdir = Path(workdir)
    pristine = write_lerobot(workdir / "pristine", "v2.1", [4])
    out = []
    for name, (info_change, episode_change, words) in LEROBOT_CASES.items():
        source = workdir / name / "src"
        shutil.copytree(pristine, source)
        if info_change:
            info = json.loads((source / "meta" / "info.json").read_text())
            (source / "meta" / "info.json").write_text(json.dumps(info | info_change))
        if episode_change:
            path = source / "meta" / "episodes.jsonl"
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            rows[0] |= episode_change
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        args = [
            "data",
            "convert",
            "lerobot",
            "--source",
            str(source),
            "--output",
            str(workdir / name / "out"),
        ]
        out.append((measured(name, args, workdir), words))
    return out


# ---------------------------------------------------------------------------- the server


class RunningServer:
    """``python -m ewmbench serve --model static`` on a free loopback port, its log in a file."""

    def __init__(self, workdir: Path, *options: str):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(workdir) / "serve.log"
        self._log = open(self.log, "wb")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ewmbench",
                "serve",
                "--model",
                "static",
                "--port",
                str(self.port),
                *options,
            ],
            env=command_env({"EWMBENCH_SERVE_TOKEN": TOKEN}),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=2).json().get("status") == "ready":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def peak_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_hiding_a_huge_first_header(height: int, width: int) -> bytes:
    """A first IHDR of 13000x13000 with the start of its image data, then a second IHDR of the
    profile's size: a reader that trusts the last header lets the decoder allocate 507 MB."""
    huge = 13000
    deflate, row = zlib.compressobj(9), bytes(1 + 3 * huge)
    data = b"".join(deflate.compress(row) for _ in range(64)) + deflate.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", huge, huge, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", data)
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _chunk(b"IEND", b"")
    )


def png_with_one_row(height: int, width: int) -> bytes:
    """A whole, valid zlib stream that holds only the first of ``height`` rows."""
    row = b"\x00" + bytes(range(256)) * (3 * width // 256) + bytes(3 * width % 256)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(row))
        + _chunk(b"IEND", b"")
    )


def png_of(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def predict_body(caps: dict, frame_png: bytes, predictions: int = 2, extra: dict | None = None) -> dict:
    profile = caps["profiles"][0]
    dim = profile["action"]["dimension"]
    image = {
        "encoding": "png_base64",
        "color_space": "RGB",
        "height": profile["image"]["height"],
        "width": profile["image"]["width"],
        "channels": 3,
        "data": base64.b64encode(frame_png).decode(),
    }
    return {
        "api_version": "1.0",
        "request_id": str(uuid.uuid4()),
        "model_version": caps["model_version"],
        "profile_id": profile["profile_id"],
        "samples": [
            {
                "sample_id": "s0",
                "seed": 1,
                "context": {"frames": [image], "actions": [], "states": None, "instruction": None},
                "actions": [[0.0] * dim for _ in range(predictions)],
            }
        ],
    } | (extra or {})


def _raw_exchange(
    port: int, data: bytes, pause: float = 0.0, timeout: float = 30, head: bytes = b""
) -> bytes:
    """Send ``head`` at once, then ``data`` (one byte every ``pause`` seconds, when given, from a
    thread of its own) on a fresh connection; return what the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:

        def send() -> None:
            try:
                sock.sendall(head)
                if pause:
                    for byte in data:
                        sock.sendall(bytes([byte]))
                        time.sleep(pause)
                else:
                    sock.sendall(data)
            except OSError:
                pass  # the server answered and closed: the reader has the answer

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            chunks.append(b"<reset>")
        return b"".join(chunks)


def _status(raw: bytes) -> int | None:
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def server_cases(workdir: Path) -> tuple[list[Outcome], float, str]:
    """The attacks on one running server; (outcomes, the server's peak MiB, its log)."""
    import httpx

    server = RunningServer(
        workdir,
        "--size",
        "48x48",
        "--body-timeout-s",
        "5",
        "--header-timeout-s",
        "3",
        "--max-concurrency",
        "2",
    )
    outcomes: list[Outcome] = []
    try:
        server.wait_ready()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        client = httpx.Client(base_url=server.url, headers=auth, timeout=60)
        caps = client.get("/v1/capabilities").json()
        frame = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
        valid = lambda: client.post("/v1/predict", json=predict_body(caps, png_of(frame)))  # noqa: E731

        def case(name: str, attack) -> None:
            start = time.perf_counter()
            code, text = attack()
            outcomes.append(Outcome(name, code, 0.0, time.perf_counter() - start, text))

        def post(body: dict) -> tuple[int, str]:
            response = client.post("/v1/predict", json=body)
            return response.status_code, response.text

        hidden = predict_body(caps, png_hiding_a_huge_first_header(48, 48))  # built before the clock starts
        case("serve_png_second_ihdr_13000x13000", lambda: post(hidden))
        short = predict_body(caps, png_with_one_row(48, 48))
        case("serve_png_1_of_48_rows", lambda: post(short))

        def slow_bodies() -> tuple[int, str]:
            head = (
                f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            ).encode()
            answers: list[bytes] = []
            slow = [
                threading.Thread(
                    target=lambda: answers.append(_raw_exchange(server.port, b"{" * 60, pause=0.2, head=head))
                )
                for _ in range(2)
            ]
            for thread in slow:
                thread.start()
            time.sleep(0.5)
            codes = [valid().status_code for _ in range(30)]
            for thread in slow:
                thread.join()
            slow_codes = sorted(_status(a) for a in answers)
            said = answers[0].rsplit(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace") if answers else ""
            return (200 if codes == [200] * 30 else 500), (
                f"30 valid requests during 2 slow bodies: {sorted(set(codes))}; slow clients got {slow_codes}: {said}"
            )

        case("serve_two_slow_bodies_5_bytes_per_s", slow_bodies)

        def slow_headers() -> tuple[int, str]:
            answer: list[bytes] = []
            thread = threading.Thread(
                target=lambda: answer.append(
                    _raw_exchange(
                        server.port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40, pause=0.2
                    )
                )
            )
            thread.start()
            time.sleep(0.5)
            codes = [valid().status_code for _ in range(5)]
            thread.join()
            return _status(
                answer[0]
            ) or 0, f"valid requests meanwhile: {sorted(set(codes))}; {answer[0][:200]!r}"

        case("serve_slow_headers", slow_headers)

        def oversized_json() -> tuple[int, str]:
            junk = b'{"api_version": "1.0", "junk": [' + b"{}," * (20 * 2**20) + b"{}]}"  # 60 MiB
            result: list = []
            thread = threading.Thread(
                target=lambda: result.append(
                    httpx.post(
                        server.url + "/v1/predict",
                        content=junk,
                        headers=auth | {"Content-Type": "application/json"},
                        timeout=60,
                    )
                )
            )
            thread.start()
            codes = [valid().status_code for _ in range(5)]
            thread.join()
            response = result[0]
            return (
                response.status_code,
                f"{response.text[:300]} (valid requests meanwhile: {sorted(set(codes))})",
            )

        case("serve_60_MiB_of_empty_objects", oversized_json)

        def large_response() -> tuple[int, str]:
            noise = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
            asked = caps["profiles"][0]["prediction_frames"]["max"] + 1
            code, text = post(predict_body(caps, png_of(noise), predictions=asked))
            return code, f"{asked} predictions asked: {text[:300]}"

        case("serve_response_past_the_budget", large_response)

        def escape_in_path() -> tuple[int, str]:
            raw = _raw_exchange(
                server.port,
                b"GET /v1/%1B[2J%1B]0;owned%07health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            return _status(raw) or 0, raw[-200:].decode("utf-8", "replace")

        case("serve_escape_characters_in_the_path", escape_in_path)

        def wrong_token_large_body() -> tuple[int, str]:
            body = json.dumps(predict_body(caps, png_of(frame)) | {"pad": "x" * (8 * 2**20)}).encode()
            head = (
                "POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            raw = _raw_exchange(server.port, head + body)
            return _status(raw) or 0, raw[-300:].decode("utf-8", "replace")

        case("serve_wrong_token_8_MiB_body", wrong_token_large_body)
        client.close()
        peak = server.peak_mib()
    finally:
        server.stop()
    return outcomes, peak, server.log.read_text(encoding="utf-8", errors="backslashreplace")


def blank_token_case(workdir: Path) -> Outcome:
    return measured(
        "serve_blank_token_public_bind",
        ["serve", "--model", "static", "--host", "0.0.0.0", "--port", "1"],
        workdir,
        {"EWMBENCH_SERVE_TOKEN": "   "},
    )
