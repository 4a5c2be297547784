"""Adapter interface v2: serialisable requests, typed options, capabilities, chunking, registry, devices."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ewmbench.data.conform import conform_video, crop_box, time_indices
from ewmbench.errors import ConfigError, DataError
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import Capabilities, FrameRule
from ewmbench.models.checks import check_device, check_request_fits
from ewmbench.models.chunking import even_indices, generate_chunked
from ewmbench.models.registry import load_model_class, model_sources
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.registry import Option
from ewmbench.run import RunConfig, run
from tests.helpers.datasets import make_ground_truth


def make_request(**overrides) -> GenerationRequest:
    rng = np.random.default_rng(0)
    request = GenerationRequest(
        task="1",
        episode="10",
        trial="2",
        seed=7,
        num_frames=5,
        fps=10.0,
        height=6,
        width=8,
        views=("head", "hand_left"),
        instruction="pick up the cup",
        substeps=["reach", "grasp"],
        memory_frames={
            "head": rng.integers(0, 255, (1, 6, 8, 3), dtype=np.uint8),
            "hand_left": rng.integers(0, 255, (1, 6, 8, 3), dtype=np.uint8),
        },
        actions=rng.normal(size=(5, 14)),
        intrinsics={"head": np.eye(3)},
        extrinsics={"head": np.tile(np.eye(4), (5, 1, 1))},
        scene={"scene": {"objects": [1, 2]}, "subject": "cup"},
        embodiment="sample-dual-panda",
        extra={"note": 1},
    )
    return replace(request, **overrides)


def test_request_round_trips_through_bytes():
    request = make_request()
    back = GenerationRequest.from_bytes(request.to_bytes())
    meta, arrays = request.to_parts()
    json.dumps(meta)  # the metadata is plain JSON
    assert sorted(arrays) == [
        "actions",
        "extrinsics/head",
        "intrinsics/head",
        "memory_frames/hand_left",
        "memory_frames/head",
    ]
    for name in (
        "task",
        "episode",
        "trial",
        "seed",
        "num_frames",
        "fps",
        "views",
        "instruction",
        "substeps",
        "scene",
        "embodiment",
        "extra",
        "memory_indices",
    ):
        assert getattr(back, name) == getattr(request, name), name
    np.testing.assert_array_equal(back.actions, request.actions)
    np.testing.assert_array_equal(back.memory_frames["hand_left"], request.memory_frames["hand_left"])
    np.testing.assert_array_equal(back.extrinsics["head"], request.extrinsics["head"])


def test_result_round_trips_and_malformed_payloads_are_refused():
    result = GenerationResult(
        {"head": np.zeros((2, 3, 4, 3), np.uint8)},
        {"eef_pose": np.ones((2, 14))},
        {"fps": 30.0, "nan": float("nan")},
    )
    back = GenerationResult.from_bytes(result.to_bytes())
    assert back.info == {"fps": 30.0, "nan": None}
    np.testing.assert_array_equal(back.state["eef_pose"], np.ones((2, 14)))
    with pytest.raises(ConfigError, match="malformed"):
        GenerationResult.from_bytes(b"not an npz")
    with pytest.raises(ConfigError, match="not a generation request"):
        GenerationRequest.from_bytes(result.to_bytes())


def test_chunk_and_memory_actions_follow_the_frame_convention():
    actions = np.arange(10 * 14, dtype=float).reshape(10, 14)
    request = make_request(actions=actions, start_frame=6, num_frames=4, memory_indices=[0, 2, 4, 6])
    np.testing.assert_array_equal(request.chunk_actions(), actions[6:10])
    np.testing.assert_array_equal(request.memory_actions(), actions[[0, 2, 4, 6]])


class Typed(WorldModel):
    name = "typed"
    options = (
        Option("steps", int, 4, "denoising steps", 1, 100),
        Option("guidance", float, 1.0),
        Option("fast", bool, False),
        Option("variant", str, "slow", choices=("slow", "fast")),
        Option("pretrained", Path),
    )


def test_options_are_typed_with_defaults():
    model = Typed(steps="8", guidance="2.5", fast="yes", pretrained="~/x")
    assert model.settings == {
        "steps": 8,
        "guidance": 2.5,
        "fast": True,
        "variant": "slow",
        "pretrained": Path("~/x").expanduser(),
    }
    assert Typed().config() == {
        "steps": 4,
        "guidance": 1.0,
        "fast": False,
        "variant": "slow",
        "pretrained": None,
    }


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"step": 3},
            "model 'typed' has no option 'step' \\(did you mean 'steps'\\?\\); it accepts: fast, guidance, pretrained, steps, variant",
        ),
        ({"steps": 2.5}, "option 'steps' must be an integer"),
        ({"steps": 0}, "option 'steps' must be from 1 to 100"),
        ({"guidance": "high"}, "option 'guidance' must be a number"),
        ({"fast": "maybe"}, "option 'fast' must be true or false"),
        ({"variant": "medium"}, "must be one of \\['slow', 'fast'\\]"),
        ({"steps": True}, "must be an integer"),
    ],
)
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(ConfigError, match=message):
        Typed(**options)


def test_frame_rules():
    rule = FrameRule(8, 1)
    assert [n for n in range(30) if rule.valid(n)] == [1, 9, 17, 25]
    assert [rule.at_least(n) for n in (0, 1, 2, 9, 10, 24)] == [1, 1, 9, 9, 17, 25]
    assert str(rule) == "8n+1" and str(FrameRule()) == "any"
    assert FrameRule(4, 1).at_least(24) == 25


def test_even_indices():
    assert even_indices(1, 4) == [0, 0, 0, 0]  # one observation fills every slot
    assert even_indices(9, 4) == [0, 3, 5, 8]
    assert even_indices(5, 1) == [4]


class Counter(WorldModel):
    """Frame t of a chunk shows the episode frame number start_frame + t in every pixel."""

    name = "counter"
    calls: list = []

    def generate(self, request):
        Counter.calls.append(request)
        values = np.arange(request.start_frame, request.start_frame + request.num_frames, dtype=np.uint8)
        frames = np.broadcast_to(values[:, None, None, None], (request.num_frames, 2, 2, 3)).copy()
        return GenerationResult(
            {"head": frames}, {"step": values.astype(float)[:, None]}, {"start": request.start_frame}
        )


def test_chunked_generation_hand_worked():
    Counter.calls = []
    memory = {"head": np.zeros((1, 2, 2, 3), np.uint8)}
    actions = np.arange(12 * 14, dtype=float).reshape(12, 14)
    request = make_request(
        num_frames=12,
        views=("head",),
        memory_frames=memory,
        actions=actions,
        extrinsics={"head": np.tile(np.eye(4), (12, 1, 1))},
    )
    result = generate_chunked(Counter().generate, request, chunk_frames=5, memory_frames=4)
    # chunks start at 0, 4, 8 (each adds 4 new frames; frame 0 of a chunk is the last frame so far)
    assert [c.start_frame for c in Counter.calls] == [0, 4, 8]
    assert result.frames["head"][:, 0, 0, 0].tolist() == list(range(12))
    assert result.state["step"][:, 0].tolist() == list(range(12))
    # the second chunk's memory: 4 frames evenly over the 5 produced (0, 1, 3, 4), the last is the current frame
    assert Counter.calls[1].memory_indices == [0, 1, 3, 4]
    assert Counter.calls[1].memory_frames["head"][:, 0, 0, 0].tolist() == [0, 1, 3, 4]
    assert Counter.calls[2].memory_indices == [0, 3, 5, 8]
    # each chunk carries the history and its own frames' actions, never more; past the episode's
    # end (the last chunk's frame 12) the last action is held
    assert [len(c.actions) for c in Counter.calls] == [5, 9, 13]
    np.testing.assert_array_equal(Counter.calls[2].chunk_actions(), actions[[8, 9, 10, 11, 11]])
    assert result.info["chunks"] == [{"start": 0}, {"start": 4}, {"start": 8}]
    # each chunk has its own seed, derived from the request's: 7, then (7 * 1000003 + start) mod 2^31
    assert [c.seed for c in Counter.calls] == [7, 7 * 1_000_003 + 4, 7 * 1_000_003 + 8]


def test_single_chunk_is_one_call():
    Counter.calls = []
    request = make_request(num_frames=3, views=("head",))
    result = generate_chunked(Counter().generate, request, chunk_frames=5, memory_frames=4)
    assert (
        len(Counter.calls) == 1 and len(result.frames["head"]) == 5
    )  # the window's length; the runner conforms it


class NeedsEverything(WorldModel):
    name = "needs-everything"
    capabilities = Capabilities(
        conditioning=frozenset({"actions", "calibration"}), required_views=("head", "hand_left")
    )
    needs_gpu = True


def test_capabilities_checked_against_the_dataset():
    model = NeedsEverything()
    with pytest.raises(DataError, match="needs view\\(s\\) \\['hand_left'\\]"):
        check_request_fits(model, ["head"], {}, "ep")
    with pytest.raises(DataError, match="lacks `actions` \\(sidecar arrays.npz\\), `extrinsics/hand_left`"):
        check_request_fits(
            model,
            ["head", "hand_left"],
            {"intrinsics/head": True, "extrinsics/head": True, "intrinsics/hand_left": True},
            "ep",
        )


def test_gpu_models_need_a_gpu_unless_cpu_is_asked_for():
    with pytest.raises(ConfigError, match="needs a GPU.*--device cpu"):
        check_device(NeedsEverything(), None, cuda_available=False)
    assert check_device(NeedsEverything(), "cpu", cuda_available=False) == "cpu"
    assert check_device(Typed(), None, cuda_available=False) == "cpu"
    assert check_device(Typed(), None, cuda_available=True) == "cuda"
    with pytest.raises(ConfigError, match="no CUDA device"):
        check_device(Typed(), "cuda:1", cuda_available=False)


def test_conform_hand_worked():
    frames = np.arange(4, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3)
    out, report = conform_video(frames, 6, 2, 2)
    assert out[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 3, 3] and report["held"] == 2 and report["dropped"] == 0
    assert not report["resized"] and report["time"] == "by index"
    # 30 fps source to 10 fps target: every third frame
    assert time_indices(9, 3, 30.0, 10.0).tolist() == [0, 3, 6]
    out, report = conform_video(frames, 2, 4, 6, source_fps=30.0, target_fps=10.0)
    assert (
        out.shape == (2, 4, 6, 3)
        and out[:, 0, 0, 0].tolist() == [0, 3]
        and report["dropped"] == 2
        and report["resized"]
    )
    # 5 fps source to 10 fps target: each source frame shown twice (round half up)
    assert time_indices(3, 6, 5.0, 10.0).tolist() == [0, 1, 1, 2, 2, 3]
    assert crop_box(480, 704, 480, 640) == (32, 0, 672, 480)
    assert crop_box(200, 100, 100, 100) == (0, 50, 100, 150)
    with pytest.raises(ConfigError, match="uint8"):
        conform_video(frames.astype(np.float32), 2, 2, 2)


def test_resize_keeps_a_constant_image_constant():
    frames = np.full((1, 24, 32, 3), 77, np.uint8)
    out, _ = conform_video(frames, 1, 48, 64)
    assert out.shape == (1, 48, 64, 3) and np.all(out == 77)


def test_unknown_model_names_the_alternatives():
    with pytest.raises(ConfigError, match="unknown model 'statik' \\(did you mean 'static'\\?\\)"):
        load_model_class("statik")
    with pytest.raises(ConfigError, match="cannot import module"):
        load_model_class("no_such_package.module:Model")
    with pytest.raises(ConfigError, match="not a WorldModel subclass"):
        load_model_class("ewmbench.registry:Option")


@pytest.mark.slow
def test_model_named_as_module_class_runs_from_the_command_line(tmp_path):
    """An adapter in a user's own module, named on the command line as package.module:Class."""
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=4)
    (tmp_path / "mymodels.py").write_text(
        "import numpy as np\n"
        "from ewmbench.models import Capabilities, GenerationResult, Option, WorldModel\n"
        "class Grey(WorldModel):\n"
        "    name = 'grey'\n"
        "    capabilities = Capabilities(conditioning=frozenset({'text'}), native_size=(8, 8))\n"
        "    options = (Option('level', int, 128),)\n"
        "    def generate(self, request):\n"
        "        assert request.instruction and not request.memory_frames and request.actions is None\n"
        "        return GenerationResult({'head': np.full((3, 8, 8, 3), self.settings['level'], np.uint8)}, info={'note': 'grey'})\n"
    )
    env = {
        **__import__("os").environ,
        "PYTHONPATH": f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}",
        "EWMBENCH_CACHE": str(tmp_path / "cache"),
    }
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "ewmbench",
        "run",
        "--model",
        "mymodels:Grey",
        "--model-option",
        "level=100",
        "--dataset",
        str(gt),
        "--trials",
        "1",
        "--metrics",
        "psnr",
        "--output",
        str(out),
        "--device",
        "cpu",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    trial = out / "grey_dataset" / "1" / "10" / "1"
    meta = json.loads((trial / "ewmbench" / "meta.json").read_text())
    assert (
        meta["format"] == "ewmbench-trial/1"
        and meta["model"] == "grey"
        and meta["model_config"] == {"level": 100}
    )
    assert meta["info"] == {"note": "grey"} and meta["oracle"] is False
    # 3 frames of 8x8 conformed to the GT's 4 frames of 48x64 (last frame held)
    assert meta["conform"]["head"]["held"] == 1 and meta["conform"]["head"]["target"] == {
        "frames": 4,
        "height": 48,
        "width": 64,
        "fps": 10,
    }
    assert len(list((trial / "video").glob("*.png"))) == 4
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["model"]["source"] == "mymodels:Grey" and provenance["model"]["config"] == {
        "level": 100
    }
    bad_command = [a.replace("level=100", "levl=1").replace(str(out), str(tmp_path / "bad")) for a in command]
    bad = subprocess.run(bad_command, capture_output=True, text=True, env=env, timeout=300)
    assert (
        bad.returncode == 2
        and "did you mean 'level'" in bad.stdout + bad.stderr
        and not (tmp_path / "bad").exists()
    )


def test_oracle_and_provenance_recorded(tmp_path):
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=4)
    result = run(
        RunConfig(
            output=tmp_path / "run",
            dataset=str(gt),
            model="ground-truth",
            trials=1,
            metrics=["psnr"],
            cache_dir=tmp_path / "c",
        ),
        show_progress=False,
    )
    provenance = json.loads((result.output / "provenance.json").read_text())
    assert provenance["model"]["oracle"] is True and provenance["model"]["name"] == "ground-truth"
    assert result.summary["oracle"] is True
    record = json.loads((result.output / "record.json").read_text())
    assert record["model"]["oracle"] is True and record["model"]["name"] == "ground-truth"


def test_listing_models_imports_no_heavy_library():
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from ewmbench.cli import app\n"
        "out = CliRunner().invoke(app, ['models', '--json'])\n"
        "rows = json.loads(out.stdout)\n"
        "print(json.dumps({'names': [r['name'] for r in rows], 'heavy': [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout.strip().splitlines()[-1])
    assert listed["heavy"] == []
    assert set(model_sources()) <= set(listed["names"])


def test_entry_point_group_registers_adapters_lazily(monkeypatch):
    """Third-party packages declare `[project.entry-points."ewmbench.models"] name = "module:Class"`."""
    import importlib.metadata

    point = importlib.metadata.EntryPoint("typed-plugin", f"{Typed.__module__}:Typed", "ewmbench.models")
    real = importlib.metadata.entry_points
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda **kw: [point] if kw.get("group") == "ewmbench.models" else real(**kw),
    )
    assert model_sources()["typed-plugin"] == f"{Typed.__module__}:Typed"  # listed by name, not imported
    assert load_model_class("typed-plugin") is Typed


def test_adapters_declaring_only_conditioning_keep_working():
    class OldStyle(WorldModel):
        name = "old-style"
        conditioning = frozenset({"image", "actions"})

        def __init__(self, noise: float = 0.0):  # options handled by hand, no super().__init__
            self.noise = noise

    assert OldStyle.capabilities.conditioning == frozenset({"image", "actions"}) == OldStyle.conditioning
    assert Typed.conditioning == frozenset() and load_model_class("sim").conditioning == frozenset(
        {"image", "actions", "scene"}
    )
    assert OldStyle(noise=0.1).config() == {}


class TwentyFps(WorldModel):
    """Generates at 20 fps: frame t shows grey level 10 t, and returns a per-frame state t."""

    name = "twenty-fps"
    capabilities = Capabilities(conditioning=frozenset({"image"}), fps=20.0)

    def generate(self, request):
        count = 2 * (request.num_frames - 1) + 1  # the same duration at twice the rate
        frames = np.broadcast_to(
            (np.arange(count, dtype=np.uint8) * 10)[:, None, None, None], (count, 6, 8, 3)
        ).copy()
        return GenerationResult({"head": frames}, {"step": np.arange(count, dtype=float)}, {"fps": 20.0})


def test_frames_and_state_are_resampled_alike_to_the_benchmark(tmp_path):
    from ewmbench.data.video import read_video
    from ewmbench.models.registry import MODELS

    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=4)  # 10 fps
    MODELS.registered["twenty-fps"] = TwentyFps
    try:
        result = run(
            RunConfig(
                output=tmp_path / "run",
                dataset=str(gt),
                model="twenty-fps",
                trials=1,
                metrics=["psnr"],
                cache_dir=tmp_path / "c",
            ),
            show_progress=False,
        )
    finally:
        MODELS.registered.pop("twenty-fps")
    trial = result.output / "twenty-fps_dataset" / "1" / "10" / "1"
    frames = read_video(trial / "video")
    assert frames.shape == (4, 48, 64, 3) and [int(f[0, 0, 0]) for f in frames] == [
        0,
        20,
        40,
        60,
    ]  # every other frame
    with np.load(trial / "ewmbench" / "arrays.npz") as arrays:
        assert arrays["step"].tolist() == [0.0, 2.0, 4.0, 6.0]
    meta = json.loads((trial / "ewmbench" / "meta.json").read_text())
    assert (
        meta["conform"]["head"]["time"] == "by frame rate"
        and meta["conform"]["head"]["dropped"] == 3
        and meta["state"] == ["step"]
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_frames": 0}, "num_frames must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"fps": -1.0}, "fps must be a positive number"),
        ({"views": ()}, "views must name at least one view"),
        (
            {"memory_frames": {"head": np.zeros((1, 6, 8, 3), np.float32)}},
            "memory_frames/head must be \\(M >= 1, H, W, 3\\) uint8",
        ),
        ({"memory_indices": [0, 1]}, "memory_indices must give one episode frame per memory frame"),
        ({"actions": np.zeros((5, 12))}, "actions must be finite \\(T, 14\\) numbers for eef14-euler"),
        ({"actions": np.full((5, 14), np.inf)}, "actions must be finite"),
        ({"actions": np.zeros((9, 14))}, "actions reach beyond this call's last frame"),
        ({"action_space": "joints"}, "action_space must be one of eef14-euler, eef16-quat"),
        ({"intrinsics": {"head": np.eye(4)}}, "intrinsics/head must be \\(3, 3\\)"),
        ({"extrinsics": {"head": np.eye(4)}}, "extrinsics/head must be \\(T, 4, 4\\)"),
    ],
)
def test_requests_read_from_bytes_are_validated(change, message):
    request = make_request(**change)
    with pytest.raises(ConfigError, match=message):
        GenerationRequest.from_bytes(request.to_bytes())


def test_a_valid_request_validates():
    assert make_request().validate().num_frames == 5
    with pytest.raises(ConfigError, match="incomplete"):
        GenerationRequest.from_parts({"format": "ewmbench-request/1", "task": "1"}, {})


def test_adapter_modules_and_the_model_callers_import_nothing_heavy():
    """Every adapter module (what `ewmbench models` imports) and the modules that open or serve a
    model keep torch, scipy, diffusers and the rest inside the functions that use them."""
    code = (
        "import sys\n"
        "from ewmbench.models import model_registry\n"
        "assert len(model_registry()) >= 9\n"
        "import ewmbench.models.invoke, ewmbench.models.adapter, ewmbench.loop.rollout, ewmbench.loop.vlm_judge\n"
        "import ewmbench.serve.app, ewmbench.perception.verify, ewmbench.perception.training\n"
        "heavy = ('torch', 'scipy', 'diffusers', 'transformers', 'ultralytics', 'pybullet', 'fastapi', 'cv2')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
