"""models/invoke.py: the one way to call a model, and its frame-0 rule in process and served."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ewmbench.errors import ConfigError
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import Capabilities
from ewmbench.models.invoke import (
    FRAME_0_FIELD,
    ResultError,
    batch_size,
    call_model,
    check_result,
    conform_result,
    load_model,
    open_model,
)
from ewmbench.models.remote import RemoteModel
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.runner import RunConfig, run
from ewmbench.serve.app import BackgroundServer, ServeConfig, Service
from tests.helpers.datasets import make_ground_truth


def _request(num_frames: int = 3, trial: str = "1") -> GenerationRequest:
    return GenerationRequest(
        task="1", episode="10", trial=trial, seed=0, num_frames=num_frames, height=2, width=2
    )


def _frames(values: list[int]) -> np.ndarray:
    return np.stack([np.full((2, 2, 3), v, np.uint8) for v in values])


def _counting(request: GenerationRequest) -> GenerationResult:
    return GenerationResult(
        {"head": _frames([int(request.trial) + 10 * t for t in range(request.num_frames)])}
    )


class Counting(WorldModel):
    """Frame t of a trial holds its trial number + 10 t; records how it was called."""

    name = "counting"

    def __init__(self, **options):
        super().__init__(**options)
        self.calls: list[str] = []

    def generate(self, request):
        self.calls.append("generate")
        return GenerationResult(
            {"head": _frames([int(request.trial) + 10 * t for t in range(request.num_frames)])}
        )


class Batched(Counting):
    name = "batched"
    capabilities = Capabilities(max_batch=4)

    def generate_batch(self, requests):
        self.calls.append(f"batch of {len(requests)}")
        return [_counting(r) for r in requests]


class Oracle(Counting):
    name = "oracle-counting"
    oracle = True

    def generate_oracle(self, request, episode):
        self.calls.append(f"oracle {episode}")
        return GenerationResult({"head": _frames([episode] * request.num_frames)})


def test_open_model_builds_without_loading_and_names_the_option_at_fault():
    model = open_model("static")
    assert (model.name, model.device) == ("static", "cpu")
    with pytest.raises(ConfigError, match=r"^--model: unknown model 'statik' \(did you mean 'static'\?\)"):
        open_model("statik")
    with pytest.raises(ConfigError, match=r"^--world-model-option: model 'sim' has no option 'nois'"):
        open_model("sim", {"nois": 1}, flag="--world-model")
    with pytest.raises(ConfigError, match=r"^--model: no model named"):
        open_model(None)


class GpuOnly(Counting):
    name = "gpu-only"
    needs_gpu = True

    def check_available(self):
        self.calls.append("check_available")

    def load(self, device):
        self.calls.append(f"load {device}")
        super().load(device)


def test_load_model_checks_then_loads_on_the_device_asked_for(monkeypatch):
    from ewmbench.models import invoke

    monkeypatch.setattr(invoke, "default_device", lambda: pytest.fail("probed CUDA for --device cpu"))
    model = GpuOnly()
    assert load_model(model, "cpu") == "cpu"  # asked for explicitly: no probe, a GPU model may run
    assert model.calls == ["check_available", "load cpu"]
    monkeypatch.setattr(invoke, "default_device", lambda: "cpu")
    with pytest.raises(ConfigError, match="needs a GPU and no CUDA device is available"):
        load_model(GpuOnly(), None)


def test_dispatch_oracle_batched_and_single():
    oracle = Oracle()
    assert batch_size(oracle) == 1
    (result,) = call_model(oracle, [_request()], [7])
    assert oracle.calls == ["oracle 7"] and result.frames["head"][0, 0, 0, 0] == 7
    with pytest.raises(Exception, match="needs each request's episode"):
        call_model(oracle, [_request()])

    batched = Batched()
    assert batch_size(batched) == 4
    results = call_model(batched, [_request(trial="1"), _request(trial="2")])
    # a model with a batch above one gets generate_batch even for a last batch of one
    call_model(batched, [_request(trial="3")])
    assert batched.calls == ["batch of 2", "batch of 1"]
    assert [r.frames["head"][:, 0, 0, 0].tolist() for r in results] == [[1, 11, 21], [2, 12, 22]]

    single = Counting()
    assert batch_size(single) == 1
    call_model(single, [_request()], [None])  # episodes are given to oracles only
    assert single.calls == ["generate"]


def test_results_are_checked():
    class Wrong(Counting):
        name = "wrong"

        def generate(self, request):
            return GenerationResult({"head": np.zeros((3, 2, 2), np.uint8)})

    with pytest.raises(ResultError, match=r"shape \(3, 2, 2\)"):
        call_model(Wrong(), [_request()])

    class Short(Batched):
        name = "short"

        def generate_batch(self, requests):
            return [_counting(requests[0])]

    with pytest.raises(ResultError, match="1 results for 2 requests"):
        call_model(Short(), [_request(), _request(trial="2")])
    result = Counting().generate(_request(num_frames=4))
    check_result(Counting(), _request(num_frames=3), result)  # the runner conforms the length
    with pytest.raises(ResultError, match="expected 3 frames"):
        check_result(Counting(), _request(num_frames=3), result, exact_frames=True)


def test_conform_keeps_the_models_frame_0_and_retimes_state_with_the_frames():
    # 5 frames at 10 fps (values 0, 10, 20, 30, 40) to 3 frames at 5 fps: source frames
    # round(i * 10 / 5) = 0, 2, 4; the state rows follow the same indices.
    result = GenerationResult(
        {"head": _frames([0, 10, 20, 30, 40])},
        state={"eef_pose": np.arange(5.0)[:, None] * np.ones((1, 14))},
    )
    frames, state, reports = conform_result(_request(num_frames=3), result, {"head": (2, 2)}, 10.0, 5.0)
    assert frames["head"][:, 0, 0, 0].tolist() == [0, 20, 40]
    assert state["eef_pose"][:, 0].tolist() == [0.0, 2.0, 4.0]
    assert reports["head"]["time"] == "by frame rate" and reports["head"]["dropped"] == 2
    # by index, a short answer holds its last frame; frame 0 is the model's own (value 0)
    frames, _, reports = conform_result(_request(num_frames=4), result, {"head": (2, 2)}, None, None)
    assert frames["head"][:, 0, 0, 0].tolist() == [0, 10, 20, 30]


# ---------------------------------------------------------------------------- in process == served


def _run(tmp_path: Path, name: str, gt: Path, model: str, options: dict) -> Path:
    config = RunConfig(
        output=tmp_path / name,
        dataset=str(gt),
        cache_dir=tmp_path / "cache",
        model=model,
        model_options=options,
        metrics=["psnr", "ssim"],
        trials=2,
        seed=5,
    )
    run(config, show_progress=False)
    return tmp_path / name


def test_static_in_process_and_served_give_identical_rows(tmp_path):
    gt = make_ground_truth(tmp_path / "gt", actions=True)
    local = _run(tmp_path, "local", gt, "static", {})
    with BackgroundServer(Service(ServeConfig(model="static", size=(48, 64)))) as server:
        remote = _run(tmp_path, "remote", gt, "remote", {"url": server.url})
    assert (local / "rows.csv").read_bytes() == (remote / "rows.csv").read_bytes()


@pytest.mark.slow
def test_sim_in_process_and_served_give_identical_rows(tmp_path):
    """The initial frame stored with the episode is not the simulator's own render (as with a
    compressed initial frame): the served trial still starts with the model's own frame 0."""
    pytest.importorskip("pybullet")
    from ewmbench.data.layout import write_episode
    from ewmbench.sim.record import episode_sidecar, record_episode

    gt = tmp_path / "gt"
    recorded = record_episode(3, "pick_place", 0, 12, width=96, height=72)
    head = recorded.recording.frames["head"]
    initial = (head[0].astype(np.int16) + np.random.default_rng(0).integers(-6, 7, head[0].shape)).clip(
        0, 255
    )
    write_episode(
        gt,
        "1",
        "0",
        head,
        recorded.plan.instruction,
        init_frame=initial.astype(np.uint8),
        sidecar=episode_sidecar(recorded, 3),
    )
    options = {"action_noise": 0.02}
    local = _run(tmp_path, "local", gt, "sim", options)
    service = Service(
        ServeConfig(model="sim", model_options=options, dataset=str(gt), oracle_reads_sample_id=True)
    )
    with BackgroundServer(service) as server:
        remote = _run(tmp_path, "remote", gt, "remote", {"url": server.url})
    assert (local / "rows.csv").read_bytes() == (remote / "rows.csv").read_bytes()
    trial = "sim_dataset/1/0/1/ewmbench/meta.json"
    assert json.loads((local / trial).read_text())["model"] == "sim"


class Marked(WorldModel):
    """Frame 0 differs from the context frame (value 200); the predictions are 50, 51, ..."""

    name = "marked"
    capabilities = Capabilities(conditioning=frozenset({"image"}))

    def generate(self, request):
        frames = [np.full((4, 4, 3), 200, np.uint8)] + [
            np.full((4, 4, 3), 50 + t, np.uint8) for t in range(request.num_frames - 1)
        ]
        return GenerationResult({"head": np.stack(frames)})


class WithoutFrame0(Service):
    """Anyone else's Track 2 service: answers without our optional frame-0 field."""

    def predict(self, payload) -> bytes:
        answer = json.loads(super().predict(payload))
        assert all(FRAME_0_FIELD in p for p in answer["predictions"])  # ours sends it
        for prediction in answer["predictions"]:
            del prediction[FRAME_0_FIELD]
        return json.dumps(answer).encode()


def test_remote_reads_frame_0_when_sent_and_the_context_stands_in_otherwise():
    context = np.full((1, 4, 4, 3), 9, np.uint8)
    request = GenerationRequest(
        task="1",
        episode="10",
        trial="1",
        seed=0,
        num_frames=3,
        height=4,
        width=4,
        memory_frames={"head": context},
        actions=np.zeros((3, 14)),
    )
    for service_type, first in ((Service, 200), (WithoutFrame0, 9)):
        service = service_type(ServeConfig(model=f"{__name__}:Marked", size=(4, 4)))
        with BackgroundServer(service) as server:
            video = RemoteModel(url=server.url).generate(request).frames["head"]
        assert video[:, 0, 0, 0].tolist() == [first, 50, 51]
