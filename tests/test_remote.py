"""The ``remote`` adapter against ``ewmbench serve`` on loopback: the same rows as in process,
chunking, batching, retries under one request_id, and answers out of contract named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from ewmbench.errors import ConfigError, Unavailable
from ewmbench.httpclient import RemoteError
from ewmbench.models.remote import RemoteModel
from ewmbench.models.request import GenerationRequest
from ewmbench.models.wire import ApiError, Limits
from ewmbench.runner import RunConfig, run
from ewmbench.serve.app import BackgroundServer, ServeConfig, Service
from tests.helpers.datasets import make_ground_truth, moving_square_frames

ROOT = Path(__file__).resolve().parents[1]


def rows(tmp_path: Path, name: str, gt: Path, model: str, options: dict, trials: int = 2) -> pd.DataFrame:
    config = RunConfig(
        output=tmp_path / name,
        dataset=str(gt),
        cache_dir=tmp_path / "cache",
        model=model,
        model_options=options,
        metrics=["psnr", "ssim"],
        trials=trials,
        seed=3,
    )
    return run(config, show_progress=False).rows


def test_remote_static_gives_the_in_process_rows(tmp_path):
    # a served static accepts (and ignores) 14-D actions: the API has no action-free profile
    gt = make_ground_truth(tmp_path / "gt", actions=True)
    local = rows(tmp_path, "local", gt, "static", {})
    with BackgroundServer(Service(ServeConfig(model="static", size=(48, 64)))) as server:
        remote = rows(tmp_path, "remote", gt, "remote", {"url": server.url})
    pd.testing.assert_frame_equal(local, remote)
    meta = json.loads(
        (tmp_path / "remote" / "remote_dataset" / "1" / "10" / "1" / "ewmbench" / "meta.json").read_text()
    )
    assert meta["info"]["remote"]["model_version"].startswith("static-") and meta["model"] == "remote"


@pytest.mark.slow
def test_remote_sim_gives_the_in_process_rows(tmp_path):
    """A served simulator finds each episode from sample_id; seeds travel with the samples."""
    pytest.importorskip("pybullet")
    from ewmbench.data.layout import write_episode
    from ewmbench.sim.record import episode_sidecar, record_episode

    gt = tmp_path / "gt"
    recorded = record_episode(3, "pick_place", 0, 12, width=96, height=72)
    head = recorded.recording.frames["head"]
    # Frame 0 is the simulator's own render in process and served (ewmbench_frame_0); the initial
    # frame differing from it is tests/test_invoke.py's case.
    write_episode(
        gt,
        "1",
        "0",
        head,
        recorded.plan.instruction,
        init_frame=head[0],
        sidecar=episode_sidecar(recorded, 3),
    )
    options = {"action_noise": 0.02}
    local = rows(tmp_path, "local", gt, "sim", options)
    with BackgroundServer(
        Service(ServeConfig(model="sim", model_options=options, dataset=str(gt), oracle_reads_sample_id=True))
    ) as server:
        remote = rows(tmp_path, "remote", gt, "remote", {"url": server.url})
    pd.testing.assert_frame_equal(local, remote)
    assert (
        local["psnr"].iloc[0] != local["psnr"].iloc[1]
    )  # the two trials' seeds differ and both sides used them


@pytest.mark.slow
def test_cli_serve_and_run_remote_in_two_processes(tmp_path):
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), actions=True)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "EWMBENCH_CACHE": str(tmp_path / "cache")}
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
            "64x48",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/v1/health").json()["status"] == "ready":
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        common = ["--dataset", str(gt), "--metrics", "psnr", "--trials", "1"]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ewmbench",
                "run",
                "--model",
                "remote",
                "--model-option",
                f"url={url}",
                "--output",
                str(tmp_path / "r"),
                *common,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        check = subprocess.run(
            [sys.executable, "-m", "ewmbench", "serve", "check", url, "--requests", "2", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert json.loads(check.stdout)["ok"] is True
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=30)
    # SIGTERM: a graceful shutdown (uvicorn re-raises the signal once it has shut down)
    assert server.returncode in (0, -15) and "Application shutdown complete" in log, log
    assert "Traceback" not in log and "POST /v1/predict 200" in log
    local = run(
        RunConfig(
            output=tmp_path / "local",
            dataset=str(gt),
            cache_dir=tmp_path / "cache",
            model="static",
            metrics=["psnr"],
            trials=1,
        ),
        show_progress=False,
    ).rows
    remote = pd.read_parquet(tmp_path / "r" / "rows.parquet")
    pd.testing.assert_frame_equal(
        local.reset_index(drop=True), remote.reset_index(drop=True), check_dtype=False
    )


# ---------------------------------------------------------------------------- chunks, batches, retries


def _request(num_frames: int, seed: int = 0, trial: str = "1") -> GenerationRequest:
    frame = moving_square_frames(1)[0]
    return GenerationRequest(
        task="1",
        episode="10",
        trial=trial,
        seed=seed,
        num_frames=num_frames,
        height=48,
        width=64,
        memory_frames={"head": frame[None]},
        actions=np.zeros((num_frames, 14)),  # a served static accepts and ignores 14-D rows
    )


class Recording(Service):
    """A static service that records the requests it answers and can fail or tamper on cue."""

    def __init__(self, *args, fail_first: int = 0, tamper=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[dict] = []
        self.fail_first = fail_first
        self.tamper = tamper

    def predict(self, payload) -> bytes:
        self.seen.append(payload)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ApiError("NOT_READY", "warming up")
        body = super().predict(payload)
        if self.tamper is None:
            return body
        answer = json.loads(body)
        self.tamper(answer)
        return json.dumps(answer).encode()


def serve_static(**kwargs) -> tuple[Recording, BackgroundServer]:
    service = Recording(
        ServeConfig(model="static", size=(48, 64), max_prediction_frames=4, limits=Limits(max_batch_size=2)),
        **kwargs,
    )
    service.load()
    return service, BackgroundServer(service)


def test_long_trials_are_chunked_and_batches_respect_the_limit():
    service, server = serve_static()
    with server:
        model = RemoteModel(url=server.url, concurrency=1)
        caps = model.capabilities_now()
        assert (
            caps.native_size == (48, 64)
            and caps.conditioning == frozenset({"image", "actions"})
            and caps.max_batch == 2
        )
        results = model.generate_batch(
            [_request(10), _request(3, trial="2"), _request(4, trial="3"), _request(2, trial="4")]
        )
    assert [len(r.frames["head"]) for r in results] == [10, 3, 4, 2]
    expected = np.repeat(moving_square_frames(1), 10, axis=0)
    np.testing.assert_array_equal(results[0].frames["head"], expected)
    sizes = [len(p["samples"]) for p in service.seen]
    assert max(sizes) <= 2
    # 10 frames = 9 predictions with at most 4 a request: three full windows (the shared chunking
    # asks whole windows and cuts the end), each a stateless sample continuing from the last frame
    long = [len(p["samples"][0]["actions"]) for p in service.seen if p["samples"][0]["sample_id"] == "1/10/1"]
    assert long == [4, 4, 4]


def test_retryable_errors_are_retried_under_the_same_request_id():
    service, server = serve_static(fail_first=2)
    with server:
        result = RemoteModel(url=server.url, backoff=0.01).generate(_request(3))
    assert len(result.frames["head"]) == 3
    assert len(service.seen) == 3 and len({p["request_id"] for p in service.seen}) == 1


def test_non_retryable_errors_are_not_retried():
    service, server = serve_static()
    with server:
        model = RemoteModel(url=server.url, backoff=0.01)
        model.manifest()
        model._manifest = ("static-wrong", *model._manifest[1:])
        with pytest.raises(RemoteError, match="UNSUPPORTED_VERSION") as info:
            model.generate(_request(3))
    assert info.value.status == 422 and len(service.seen) == 1
    assert "request " in str(info.value) and "1/10/1" in str(info.value)


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (lambda a: a["predictions"][0]["frames"].pop(), "frames for"),
        (lambda a: a["predictions"].reverse(), "in order"),
        (lambda a: a["predictions"][0]["frames"][0].update(data="AAAA"), "not a PNG"),
        (lambda a: a.update(request_id="00000000-0000-0000-0000-000000000000"), "request_id"),
    ],
)
def test_answers_out_of_contract_are_named(tamper, needle):
    _, server = serve_static(tamper=tamper)
    with server:
        with pytest.raises(RemoteError, match="out of contract") as info:
            RemoteModel(url=server.url).generate_batch([_request(3), _request(3, trial="2")])
    assert needle in str(info.value) and "request " in str(info.value)


def test_an_unreachable_service_and_a_missing_url_are_clear_errors():
    with pytest.raises(ConfigError, match="url="):
        RemoteModel()
    with pytest.raises(Unavailable, match="cannot be reached"):
        RemoteModel(url="http://127.0.0.1:9", retries=0, timeout=2).check_available()


def test_frames_go_at_the_profile_size_and_come_back_at_the_benchmark_size(tmp_path):
    from ewmbench.data.video import read_video

    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), actions=True)  # 48x64
    with BackgroundServer(Service(ServeConfig(model="static", size=(24, 32)))) as server:
        rows(tmp_path, "small", gt, "remote", {"url": server.url}, trials=1)
    trial = tmp_path / "small" / "remote_dataset" / "1" / "10" / "1"
    video = read_video(trial / "video")
    assert video.shape == (6, 48, 64, 3)
    conform = json.loads((trial / "ewmbench" / "meta.json").read_text())["conform"]["head"]
    assert conform["resized"] is True and (conform["source"]["height"], conform["source"]["width"]) == (
        24,
        32,
    )
    # the initial frame, down to 24x32 for the service and back up to 48x64 by the runner
    from ewmbench.data.conform import resize_frames
    from ewmbench.data.layout import GroundTruth

    initial = GroundTruth(gt).episode("1", "10").initial_frame()[None]
    np.testing.assert_array_equal(
        video, np.repeat(resize_frames(resize_frames(initial, 24, 32), 48, 64), 6, axis=0)
    )
