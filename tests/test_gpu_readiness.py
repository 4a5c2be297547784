"""GPU readiness, checked on the CPU with tiny random-weight encoders: frames of several videos
sharing forward passes give the per-video values; bfloat16 autocast is an opt-in precision with
its own feature keys; a stage's networks are released when the next stage starts."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import numpy as np
import pytest
import torch

from ewmbench.data.layout import GroundTruth, write_trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, DataError
from ewmbench.metrics.base import EpisodeInputs, TrialInputs
from ewmbench.metrics.diversity import Diversity, clip_encoder, embeddings_across_videos, video_embeddings
from ewmbench.metrics.features import encode_across_videos, encoder_stage_key
from ewmbench.metrics.registry import metric_registry
from ewmbench.metrics.scene import (
    SceneConsistency,
    dino_encoder,
    similarities_across_videos,
    video_similarities,
)
from ewmbench.perception import encoders
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.perception.model_cache import free_models, loaded_keys
from ewmbench.protocols import load_protocol
from ewmbench.protocols.schema import validate_protocol
from ewmbench.run import build_plan, chunked, executors
from ewmbench.run.items import Job, chunk_size
from tests.helpers.datasets import make_ground_truth

TINY_DINO = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "mlp_ratio": 2,
    "patch_size": 14,
    "image_size": 28,
}
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"layers": 1, "width": 32, "head_width": 16, "patch_size": 8, "image_size": 32},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
    "quick_gelu": True,
}
SCENE = dict(
    load_protocol("ewmbench-v1").settings("scene_consistency"),
    image_size=28,
    random_init=TINY_DINO,
    batch_size=3,
)
DIVERSITY = dict(
    load_protocol("ewmbench-v1").settings("diversity"), image_size=32, random_init=TINY_CLIP, batch_size=4
)


@pytest.fixture(autouse=True)
def fresh_encoder_cache():
    free_models()
    yield
    free_models()


def _videos() -> list[np.ndarray]:
    """Videos of 5, 3, 7, 2 and 4 frames, of two frame sizes."""
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, (count, 24 + 4 * (index % 2), 32, 3)).astype(np.uint8)
        for index, count in enumerate([5, 3, 7, 2, 4])
    ]


def test_passes_run_across_videos_and_pieces_keep_the_per_video_segments():
    """Hand-worked: 5 + 3 + 7 frames in passes of 4 are passes [4], [1 + 3], [4], [3]; each
    video comes back in its own segments of 4 ([0, 4), [4, 5) for the first), in order."""
    lengths = [5, 3, 7]
    loads: list[int] = []
    passes: list[list[int]] = []

    def loader(index):
        def load():
            loads.append(index)
            # frame value = 100 * video + frame index, so outputs show where each frame went
            return np.array([100 * index + i for i in range(lengths[index])]).reshape(-1, 1, 1, 1)

        return load

    def encode(pieces):
        passes.append([len(p) for p in pieces])
        return torch.from_numpy(np.concatenate([p.reshape(-1) for p in pieces]))

    got = list(encode_across_videos([(f"v{i}", loader(i)) for i in range(3)], encode, 4))
    assert passes == [[4], [1, 3], [4], [3]]
    assert [(i, out.tolist()) for i, out in got] == [
        (0, [0, 1, 2, 3]),
        (0, [4]),
        (1, [100, 101, 102]),
        (2, [200, 201, 202, 203]),
        (2, [204, 205, 206]),
    ]
    assert loads == [0, 1, 2]  # each video loaded once, when its first frame was needed


def test_empty_video_and_bad_batch_size_are_refused():
    with pytest.raises(DataError, match="empty.mp4.*no frames"):
        list(encode_across_videos([("empty.mp4", lambda: np.zeros((0, 2, 2, 3)))], lambda p: None, 4))
    with pytest.raises(ConfigError, match="at least 1"):
        list(encode_across_videos([], lambda p: None, 0))


def test_scene_similarities_across_videos_equal_per_video():
    videos = _videos()
    got = dict(
        similarities_across_videos([(f"v{i}", lambda v=v: v) for i, v in enumerate(videos)], SCENE, "cpu")
    )
    assert sorted(got) == list(range(len(videos)))
    for index, frames in enumerate(videos):
        alone = video_similarities(frames, SCENE, "cpu")
        assert got[index].shape == alone.shape == (2, len(frames) - 1)
        np.testing.assert_allclose(got[index], alone, rtol=0, atol=1e-6)


def test_clip_embeddings_across_videos_equal_per_video():
    videos = _videos()
    got = embeddings_across_videos([(f"v{i}", lambda v=v: v) for i, v in enumerate(videos)], DIVERSITY, "cpu")
    for index, frames in enumerate(videos):
        alone = video_embeddings(frames, DIVERSITY, "cpu")
        assert got[index].shape == alone.shape == (len(frames), 16)
        np.testing.assert_allclose(got[index], alone, rtol=0, atol=1e-6)


def _trials(tmp_path):
    root = tmp_path / "toy_dataset"
    return [
        write_trial(root, "1", "1", str(i), frames, extra_views=None) for i, frames in enumerate(_videos())
    ]


def test_scene_metric_batched_across_videos_equals_one_by_one(tmp_path):
    trials = _trials(tmp_path)
    one_by_one = VideoCache(tmp_path / "cache-a")
    expected = [
        SceneConsistency().score_trial(TrialInputs(None, t, one_by_one), SCENE)["scene_consistency"]
        for t in trials
    ]
    batched_videos = VideoCache(tmp_path / "cache-b")
    settings = {**SCENE, "batch_across_videos": True}
    rows = SceneConsistency().score_trials([TrialInputs(None, t, batched_videos) for t in trials], settings)
    assert [r["scene_consistency"] for r in rows] == pytest.approx(expected, abs=1e-6)
    # each video's similarities are stored under the key of the per-video path (speed-only setting)
    assert encoder_stage_key("scene_consistency", settings, "cpu") == encoder_stage_key(
        "scene_consistency", SCENE, "cpu"
    )
    assert len(list((tmp_path / "cache-b").rglob("*.npy"))) == len(trials)
    # off (the built-in protocols): the per-video path itself, bit for bit
    off = SceneConsistency().score_trials(
        [TrialInputs(None, t, VideoCache(tmp_path / "c")) for t in trials], SCENE
    )
    assert [r["scene_consistency"] for r in off] == expected


def test_diversity_batched_across_trials_equals_one_by_one(tmp_path):
    trials = _trials(tmp_path)
    alone = Diversity().score_episode(EpisodeInputs(None, trials, VideoCache(tmp_path / "a")), DIVERSITY)
    settings = {**DIVERSITY, "batch_across_videos": True}
    together = Diversity().score_episode(EpisodeInputs(None, trials, VideoCache(tmp_path / "b")), settings)
    assert together["diversity"] == pytest.approx(alone["diversity"], abs=1e-6)
    assert len(list((tmp_path / "b").rglob("*.npy"))) == len(trials)


def test_scene_chunks_are_small_and_built_in_protocols_keep_batching_off():
    metric = SceneConsistency()
    assert chunk_size(metric, trials=3000, workers=1) == 16
    assert chunk_size(metric, trials=20, workers=4) == 2  # every worker gets a share
    for name in ("ewmbench-v1", "ewmbench-v2"):
        for metric_name in ("scene_consistency", "diversity"):
            assert "batch_across_videos" not in load_protocol(name).settings(metric_name)


def test_autocast_precision_is_opt_in_on_cuda_and_keys_features_apart():
    assert encoders.autocast_dtype("cuda", "bfloat16-autocast") == torch.bfloat16
    assert encoders.autocast_dtype("cpu", "bfloat16-autocast") is None  # the CPU always runs float32
    assert encoders.autocast_dtype("cuda", "float16") is None
    assert encoders.torch_dtype("cuda:1", "bfloat16-autocast") == torch.float32  # weights stay float32
    assert encoders.compute_precision("cuda", "bfloat16-autocast") == "autocast:torch.bfloat16"
    assert encoders.compute_precision("cuda", "float16") == "torch.float16"
    assert encoders.compute_precision("cpu", "bfloat16-autocast") == "torch.float32"
    keys = {
        encoder_stage_key("scene_consistency", {**SCENE, "gpu_dtype": dtype}, "cuda").folder
        for dtype in ("float32", "float16", "bfloat16", "bfloat16-autocast")
    }
    assert len(keys) == 4
    with pytest.raises(ConfigError, match="unknown gpu_dtype 'int8'"):
        encoders.torch_dtype("cuda", "int8")


def test_protocol_files_accept_the_new_settings_and_refuse_misspellings():
    base = {"name": "mine", "version": 1, "metrics": {}}
    good = dict(SCENE, gpu_dtype="bfloat16-autocast", batch_across_videos=True)
    good.pop("random_init")
    validate_protocol({**base, "metrics": {"scene_consistency": good}}, "mine.yaml")
    with pytest.raises(ConfigError, match=r"scene_consistency\.gpu_dtype"):
        validate_protocol(
            {**base, "metrics": {"scene_consistency": {**good, "gpu_dtype": "bf16"}}}, "mine.yaml"
        )
    with pytest.raises(ConfigError, match=r"batch_across_video: unknown key"):
        validate_protocol(
            {**base, "metrics": {"scene_consistency": {**good, "batch_across_video": True}}}, "mine.yaml"
        )


def test_encoder_under_autocast_runs_bfloat16_matrix_products():
    """On the CPU (where autocast to bfloat16 also works) an autocast encoder keeps float32
    weights, and its tokens differ from float32 ones by bfloat16 round-off only."""
    frames = _videos()[0]
    plain = encoders.DinoTokenEncoder.from_config(TINY_DINO, "cpu", torch.float32)
    mixed = encoders.DinoTokenEncoder.from_config(TINY_DINO, "cpu", torch.float32, autocast=torch.bfloat16)
    assert mixed is not plain and next(mixed.model.parameters()).dtype == torch.float32
    exact, rounded = plain.encode_frames(frames, SCENE, 3), mixed.encode_frames(frames, SCENE, 3).float()
    difference = float((exact - rounded).abs().max())
    assert 0 < difference < 0.1 * float(exact.abs().max())


def _stage_job(tmp_path):
    gt = GroundTruth(make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=4))
    episode = gt.episodes[0]
    frames = _videos()[0][:4]
    trials = [write_trial(tmp_path / "gen_dataset", "1", "10", t, frames + int(t)) for t in ("1", "2")]
    protocol = load_protocol("ewmbench-v1")
    protocol = dataclasses.replace(protocol, metrics={"scene_consistency": SCENE, "diversity": DIVERSITY})
    job = Job(tmp_path / "out", protocol, tmp_path / "cache", "cpu", DetectorChoice())
    items = build_plan([SceneConsistency(), Diversity()], [(episode, t) for t in trials])
    return job, chunked(items, 16)


def test_a_stage_releases_its_network_when_the_next_stage_starts(tmp_path):
    job, chunks = _stage_job(tmp_path)
    assert [chunk[0].metric_name for chunk in chunks] == ["scene_consistency", "diversity"]
    try:
        executors.run_chunk(job, chunks[0])
        dino = weakref.ref(dino_encoder(SCENE, "cpu"))  # the loaded one, not a new one
        dino_weights = weakref.ref(next(dino().model.parameters()))
        assert len(loaded_keys()) == 1
        executors.run_chunk(job, chunks[1])  # diversity: scene's encoder is freed before CLIP loads
        gc.collect()
        assert dino() is None and dino_weights() is None
        assert [key[0] for key in loaded_keys()] == ["clip-random"]
        clip = weakref.ref(clip_encoder(DIVERSITY, "cpu"))
    finally:
        executors._STAGE.clear()
        executors._CURRENT.clear()
    # the serial executor frees the last stage's networks when the run ends
    executors.run_serial(job, [item for chunk in chunks for item in chunk], lambda n: None)
    gc.collect()
    assert clip() is None and loaded_keys() == []
    executors._CURRENT.clear()


def test_scene_consistency_joins_the_one_pass_of_frame_metrics_unless_it_batches_across_videos(tmp_path):
    """Batching off (the built-in protocols): its items are scored trial by trial beside PSNR, so
    each video is decoded once for both; batching on: chunks of its own, its videos sharing passes."""
    gt = GroundTruth(make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=4))
    episode = gt.episodes[0]
    frames = _videos()[0][:4]
    pairs = [(episode, write_trial(tmp_path / "gen", "1", "10", t, frames + int(t))) for t in ("1", "2")]
    metrics = [metric_registry()["psnr"](), SceneConsistency()]
    for batching, expected in (
        (False, [["psnr", "scene_consistency"] * 2]),
        (True, [["psnr"] * 2, ["scene_consistency"] * 2]),
    ):
        settings = {"scene_consistency": {**SCENE, "batch_across_videos": batching}}
        items = build_plan(metrics, pairs, lambda name, settings=settings: settings.get(name, {}))
        assert [[item.metric_name for item in chunk] for chunk in chunked(items, 16)] == expected
        assert all(item.one_pass != batching for item in items if item.metric_name == "scene_consistency")
