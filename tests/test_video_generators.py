"""ltx-video and cosmos-predict2 end to end on tiny random-weight diffusers pipelines (CPU, offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ewmbench.data.layout import Sidecar, write_episode
from ewmbench.data.video import read_video
from ewmbench.errors import ConfigError, Unavailable
from ewmbench.models.tiny import build_tiny_cosmos, build_tiny_ltx
from ewmbench.run import RunConfig, run
from tests.helpers.datasets import moving_square_frames

pytest.importorskip("diffusers")

GT_FRAMES, GT_H, GT_W = 8, 480, 640
TINY = ["steps=1", "height=32", "width=32", "max_frames=9"]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    return {
        "ltx": build_tiny_ltx(root / "ltx"),
        "ltx-condition": build_tiny_ltx(root / "ltx-condition", condition=True),
        "cosmos": build_tiny_cosmos(root / "cosmos"),
    }


@pytest.fixture(scope="module")
def gt640(tmp_path_factory):
    """Two episodes of 8 frames at the benchmark's 640x480, 10 fps."""
    root = tmp_path_factory.mktemp("gt640")
    for episode in ("0", "1"):
        frames = np.kron(
            moving_square_frames(GT_FRAMES, 48, 64, seed=int(episode)), np.ones((1, 10, 10, 1), np.uint8)
        )
        write_episode(
            root,
            "1",
            episode,
            frames,
            "pick the red cube",
            sidecar=Sidecar(fps=10.0, substeps=["reach", "grasp"]),
        )
    return root


def options(folder, *extra) -> dict:
    pairs = [f"pretrained={folder}", *TINY, *extra]
    return {k: v for k, v in (p.split("=", 1) for p in pairs)}


def run_config(tmp_path, gt, name, model, model_options, seed=0) -> RunConfig:
    return RunConfig(
        output=tmp_path / name,
        dataset=str(gt),
        model=model,
        model_options=model_options,
        trials=1,
        seed=seed,
        metrics=["psnr"],
        device="cpu",
        cache_dir=tmp_path / "cache",
    )


def trial_frames(out, model, episode="0", trial="1"):
    return read_video(out / f"{model}_dataset" / "1" / episode / trial / "video")


@pytest.mark.slow
def test_ltx_cli_run_on_the_sample_resumes_and_reproduces(pipelines, sample_cache, tmp_path):
    """The literal command on ``--dataset sample``: 8 episodes of 24 frames at 10 fps. At fps=3 each
    episode is one 9-frame window (the least 8n+1 covering 2.3 s), conformed to the GT's 24 frames."""
    from ewmbench.data.datasets import DEFAULT_SAMPLE_NAME

    sample = sample_cache / "datasets" / DEFAULT_SAMPLE_NAME
    env = {**os.environ, "EWMBENCH_CACHE": str(sample_cache)}

    def command(out):
        """The command as a user types it (default seed), plus the cheapest options: PSNR only, the tiny pipeline's least work."""
        line = [
            sys.executable,
            "-m",
            "ewmbench",
            "run",
            "--model",
            "ltx-video",
            "--model-option",
            f"pretrained={pipelines['ltx']}",
            "--dataset",
            "sample",
            "--trials",
            "1",
            "--device",
            "cpu",
            "--output",
            str(out),
            "--metrics",
            "psnr",
        ]
        for pair in (*TINY, "fps=3"):
            line += ["--model-option", pair]
        return line

    out, twin = tmp_path / "run", tmp_path / "twin"
    for folder in (out, twin):
        done = subprocess.run(command(folder), capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    episodes = sorted(p.relative_to(sample) for p in sample.glob("*/*") if (p / "video").is_dir())
    assert len(episodes) == 8
    for episode in episodes:
        gt_frames = len(list((sample / episode / "video").glob("frame_*")))
        trial = out / "ltx-video_dataset" / episode / "1"
        frames = read_video(trial / "video")
        assert gt_frames == 24 and frames.shape == (
            gt_frames,
            GT_H,
            GT_W,
            3,
        )  # the GT's frame count at 640x480
        meta = json.loads((trial / "ewmbench" / "meta.json").read_text())
        assert meta["model"] == "ltx-video" and meta["oracle"] is False
        assert (
            meta["model_config"]["pipeline_class"] == "LTXImageToVideoPipeline"
            and meta["model_config"]["dtype"] == "float32"
        )
        assert meta["conform"]["head"]["source"] == {"frames": 9, "height": 32, "width": 32, "fps": 3.0}
        assert meta["conform"]["head"]["resized"], meta["conform"]
        assert (
            meta["info"]["window_frames"] == 9 and meta["info"]["steps"] == 1 and "chunks" not in meta["info"]
        )
        # the same (default) seed gives the same frames, byte for byte
        pngs = sorted(p.name for p in (trial / "video").glob("*.png"))
        assert len(pngs) == gt_frames
        assert [(trial / "video" / n).read_bytes() for n in pngs] == [
            (twin / "ltx-video_dataset" / episode / "1" / "video" / n).read_bytes() for n in pngs
        ]
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["model"]["name"] == "ltx-video" and provenance["model"]["device"] == "cpu"
    assert (
        provenance["model"]["config"]["steps"] == 1
        and provenance["model"]["capabilities"]["frame_rule"] == "8n+1"
    )
    # resume: a second run regenerates nothing and rescores nothing
    stamps = {p: p.stat().st_mtime_ns for p in (out / "ltx-video_dataset").rglob("*.png")}
    assert len(stamps) == 8 * 24
    again = subprocess.run(command(out), capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "ltx-video_dataset").rglob("*.png")} == stamps
    assert json.loads((out / "summary.json").read_text())["scored_now"] == 0
    assert not (
        sample_cache / "datasets" / f".tmp-{DEFAULT_SAMPLE_NAME}"
    ).exists()  # the sample was not regenerated


@pytest.mark.slow
def test_seeds_differ(pipelines, gt640, tmp_path):
    """Another seed gives other frames (the same seed's frames are compared byte for byte on the sample, above)."""
    first = run(run_config(tmp_path, gt640, "a", "ltx-video", options(pipelines["ltx"])), show_progress=False)
    other = run(
        run_config(tmp_path, gt640, "c", "ltx-video", options(pipelines["ltx"]), seed=5), show_progress=False
    )
    a, c = (trial_frames(r.output, "ltx-video") for r in (first, other))
    assert not np.array_equal(a, c)
    # frame 0 is the conditioning frame, resized through the model's 32x32 and back: close to the GT's first frame
    gt0 = read_video(gt640 / "1" / "0" / "video")[0].astype(float)
    assert np.abs(a[0].astype(float) - gt0).mean() < np.abs(a[-1].astype(float) - gt0).mean() + 40


def test_ltx_condition_pipeline_and_chunks(pipelines, gt640, tmp_path):
    """LTXConditionPipeline folders are accepted; episodes longer than a window are generated in chunks."""
    from ewmbench.data.layout import GroundTruth
    from ewmbench.models.ltx import LTXVideoModel
    from ewmbench.run import build_request

    model = LTXVideoModel(**options(pipelines["ltx-condition"]))
    model.check_available()
    model.load("cpu")
    episode = GroundTruth(gt640).episode("1", "0")
    request = build_request(episode, "1", 3, model)
    assert (
        request.actions is None
        and request.instruction == "pick the red cube"
        and list(request.memory_frames) == ["head"]
    )
    result = model.generate(request)
    assert model.config()["pipeline_class"] == "LTXConditionPipeline"
    assert result.frames["head"].shape == (9, 32, 32, 3) and "chunks" not in result.info
    request.num_frames = 12  # 12 frames at 10 fps in 9-frame windows: 2 chunks (9 + 8 new frames)
    longer = model.generate(request)
    assert longer.frames["head"].shape == (12, 32, 32, 3) and longer.info["chunks"] == 2


def test_cosmos_tiny_pipeline_runs_without_guardrail_only_locally(pipelines, gt640, tmp_path):
    result = run(
        run_config(
            tmp_path, gt640, "cosmos", "cosmos-predict2", options(pipelines["cosmos"], "guardrail=false")
        ),
        show_progress=False,
    )
    frames = trial_frames(result.output, "cosmos-predict2")
    assert frames.shape == (GT_FRAMES, GT_H, GT_W, 3)
    meta = json.loads(
        (result.output / "cosmos-predict2_dataset" / "1" / "0" / "1" / "ewmbench" / "meta.json").read_text()
    )
    assert meta["info"]["guardrail"] is False and meta["model_config"]["guardrail"] is False
    with pytest.raises(ConfigError, match="guardrail=false is accepted only with a local pretrained"):
        run(
            run_config(tmp_path, gt640, "cosmos-hub", "cosmos-predict2", {"guardrail": "false"}),
            show_progress=False,
        )


def test_cosmos_guardrail_missing_is_unavailable(pipelines, gt640, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cosmos_guardrail", None)  # import fails as if not installed
    with pytest.raises(Unavailable, match="cosmos_guardrail") as info:
        run(
            run_config(tmp_path, gt640, "guarded", "cosmos-predict2", options(pipelines["cosmos"])),
            show_progress=False,
        )
    assert "pip install cosmos_guardrail" in info.value.fix
    assert not (tmp_path / "guarded").exists()


@pytest.mark.parametrize(
    "which, message",
    [
        ("missing", "pretrained folder .* does not exist"),
        ("empty", "is not a diffusers pipeline folder \\(no model_index.json"),
        (
            "cosmos",
            "holds a Cosmos2VideoToWorldPipeline; ltx-video loads LTXImageToVideoPipeline or LTXConditionPipeline",
        ),
        ("broken", "cannot load the pipeline"),
    ],
)
def test_bad_pretrained_folders_are_refused_before_anything_is_written(
    pipelines, gt640, tmp_path, which, message
):
    folders = {
        "missing": tmp_path / "nope",
        "empty": tmp_path / "empty",
        "cosmos": pipelines["cosmos"],
        "broken": tmp_path / "broken",
    }
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text(
        json.dumps({"_class_name": "LTXImageToVideoPipeline", "vae": ["diffusers", "AutoencoderKLLTXVideo"]})
    )
    with pytest.raises(ConfigError, match=message):
        run(run_config(tmp_path, gt640, "bad", "ltx-video", options(folders[which])), show_progress=False)
    assert not (tmp_path / "bad").exists()  # nothing a resume would trust


def test_gpu_models_refuse_to_run_without_a_gpu_unless_asked(pipelines, gt640, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    config = run_config(tmp_path, gt640, "nogpu", "ltx-video", options(pipelines["ltx"]))
    config.device = None
    with pytest.raises(ConfigError, match="needs a GPU.*--device cpu"):
        run(config, show_progress=False)


def test_option_checks_happen_before_loading():
    from ewmbench.models.cosmos import CosmosPredict2Model
    from ewmbench.models.ltx import LTXVideoModel

    with pytest.raises(ConfigError, match="multiple of 32"):
        LTXVideoModel(height=100)
    with pytest.raises(ConfigError, match="'max_frames' must be 8n\\+1"):
        LTXVideoModel(max_frames=10)
    with pytest.raises(ConfigError, match="'max_frames' must be 4n\\+1"):
        CosmosPredict2Model(max_frames=10, guardrail=True)
    with pytest.raises(ConfigError, match="has no option 'step' \\(did you mean 'steps'\\?\\)"):
        LTXVideoModel(step=3)
    assert LTXVideoModel().config()["steps"] == 50 and CosmosPredict2Model().config()["guidance"] == 7.0


def test_batched_trials_match_single_ones(pipelines, gt640):
    from ewmbench.data.layout import GroundTruth
    from ewmbench.models.ltx import LTXVideoModel
    from ewmbench.run import build_request

    model = LTXVideoModel(**options(pipelines["ltx"], "batch=2"))
    model.check_available()
    model.load("cpu")
    assert model.capabilities_now().max_batch == 2
    gt = GroundTruth(gt640)
    requests = [build_request(gt.episode("1", e), "1", 11 + int(e), model) for e in ("0", "1")]
    batched = model.generate_batch(requests)
    for request, result in zip(requests, batched):
        alone = model.generate(request).frames["head"].astype(int)
        assert np.abs(result.frames["head"].astype(int) - alone).max() <= 1
    assert not np.array_equal(batched[0].frames["head"], batched[1].frames["head"])


class Recorder:
    """Wraps a pipeline: records each call's arguments, then runs it."""

    def __init__(self, pipe):
        self.pipe, self.calls = pipe, []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.pipe(**kwargs)


def test_what_the_adapters_pass_to_the_pipelines(pipelines, gt640):
    from ewmbench.data.layout import GroundTruth
    from ewmbench.models.cosmos import CosmosPredict2Model
    from ewmbench.models.ltx import LTXVideoModel
    from ewmbench.run import build_request

    episode = GroundTruth(gt640).episode("1", "0")
    ltx = LTXVideoModel(**options(pipelines["ltx"], "guidance=1.5", "fps=20"))
    ltx.load("cpu")
    ltx.pipe = Recorder(ltx.pipe)
    request = build_request(episode, "1", 3, ltx)
    result = ltx.generate(request)
    call, second = ltx.pipe.calls
    # 8 frames at 10 fps last 0.7 s: 15 frames at 20 fps, in windows of 9 (max_frames=9): 9 + 8 new frames
    assert (
        result.info["chunks"] == 2
        and result.info["fps"] == 20.0
        and result.frames["head"].shape == (15, 32, 32, 3)
    )
    assert second["generator"][0].initial_seed() == 3 * 1_000_003 + 8  # the second window starts at frame 8
    assert (
        call["num_frames"] == 9 and call["frame_rate"] == 20 and call["height"] == 32 and call["width"] == 32
    )
    assert call["guidance_scale"] == 1.5 and call["num_inference_steps"] == 1
    assert call["decode_timestep"] == 0.05 and call["decode_noise_scale"] == 0.025
    assert call["prompt"] == ["pick the red cube"] and call["negative_prompt"][0].startswith("worst quality")
    assert call["image"][0].size == (32, 32) and call["generator"][0].initial_seed() == 3

    cosmos = CosmosPredict2Model(**options(pipelines["cosmos"], "guardrail=false"))
    cosmos.load("cpu")
    cosmos.pipe = Recorder(cosmos.pipe)
    request = build_request(episode, "1", 4, cosmos)
    cosmos.generate(request)
    first = cosmos.pipe.calls[0]
    assert "image" in first and "video" not in first and first["fps"] == 10 and first["num_frames"] == 9
    assert first["guidance_scale"] == 7.0 and first["negative_prompt"][0].startswith("The video captures")
    request.memory_frames = {
        "head": np.repeat(request.memory_frames["head"], 3, axis=0)
    }  # several memory frames: a video
    cosmos.generate(request)
    assert len(cosmos.pipe.calls[-1]["video"][0]) == 3
