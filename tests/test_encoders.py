"""Encoders built from tiny configs: checkpoint mapping against an independent ViT forward, the
strict key check, batching, and the metrics end to end on random weights (no hub access)."""

import numpy as np
import pytest
import torch

from ewmbench.data.layout import write_trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError
from ewmbench.metrics import diversity_from_embeddings, scene_consistency_from_tokens
from ewmbench.metrics.base import EpisodeInputs, TrialInputs
from ewmbench.metrics.diversity import Diversity
from ewmbench.metrics.scene import SceneConsistency
from ewmbench.perception import encoders
from ewmbench.perception.encoders import (
    CheckpointMismatch,
    ClipImageEncoder,
    DinoTokenEncoder,
    load_official_dino,
)
from ewmbench.perception.image_prep import prepare
from ewmbench.perception.model_cache import free_models
from ewmbench.protocols import load_protocol
from tests.helpers.tiny_dinov2 import (
    GRID,
    HIDDEN,
    PATCH,
    official_backbone,
    reference_tokens,
    teacher_checkpoint,
)

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


@pytest.fixture(autouse=True)
def fresh_encoder_cache():
    free_models()
    yield
    free_models()


def test_official_checkpoint_maps_onto_transformers_exactly():
    state = official_backbone()
    model = load_official_dino("ckpt.pth", teacher_checkpoint(state), head_dim=16)
    images = torch.randn(3, 3, GRID * PATCH, GRID * PATCH, generator=torch.Generator().manual_seed(1))
    encoder = DinoTokenEncoder(model, "cpu", torch.float32)
    ours = encoder.encode(images)
    assert ours.shape == (3, GRID * GRID, HIDDEN)
    assert torch.allclose(ours, reference_tokens(state, images), atol=1e-5)


def test_chunked_blocks_nested_teacher_and_student_copy_load_the_same():
    state = official_backbone()
    images = torch.randn(1, 3, 28, 28)
    chunked = {
        k.replace(f"blocks.{i}.", f"blocks.0.{i}.") if k.startswith("blocks.") else k: v
        for k, v in state.items()
        for i in [k.split(".")[1] if k.startswith("blocks.") else 0]
    }
    nested = {"teacher": {f"backbone.{k}": v for k, v in chunked.items()}}
    with_student = teacher_checkpoint(state) | {
        f"student.backbone.{k}": torch.zeros_like(v) for k, v in state.items()
    }
    expected = reference_tokens(state, images)
    for ckpt in (nested, with_student):
        tokens = DinoTokenEncoder(
            load_official_dino("ckpt.pth", ckpt, head_dim=16), "cpu", torch.float32
        ).encode(images)
        assert torch.allclose(tokens, expected, atol=1e-5)


def test_missing_unexpected_and_misshapen_keys_are_listed():
    state = official_backbone()
    missing = teacher_checkpoint(state)
    del missing["teacher.backbone.blocks.1.ls2.gamma"]
    with pytest.raises(
        CheckpointMismatch, match=r"no checkpoint tensor: encoder\.layer\.1\.layer_scale2\.lambda1"
    ):
        load_official_dino("ckpt.pth", missing, head_dim=16)
    extra = teacher_checkpoint(state) | {"teacher.backbone.blocks.0.attn.rope.freqs": torch.zeros(4)}
    with pytest.raises(CheckpointMismatch, match=r"does not have: blocks\.0\.attn\.rope\.freqs"):
        load_official_dino("ckpt.pth", extra, head_dim=16)
    wrong = teacher_checkpoint(state)
    wrong["teacher.backbone.blocks.0.mlp.fc2.bias"] = torch.zeros(HIDDEN + 1)
    with pytest.raises(CheckpointMismatch, match=r"shape mismatches: encoder\.layer\.0\.mlp\.fc2\.bias"):
        load_official_dino("ckpt.pth", wrong, head_dim=16)


def test_from_weights_reads_a_file_once_per_process(tmp_path):
    path = tmp_path / "dino.pth"
    torch.save(teacher_checkpoint(official_backbone()), path)
    first = DinoTokenEncoder.from_weights(path, "cpu", torch.float32)
    assert DinoTokenEncoder.from_weights(path, "cpu", torch.float32) is first
    assert DinoTokenEncoder.from_weights(path, "cpu", torch.bfloat16) is not first


def test_batches_do_not_change_tokens_or_embeddings():
    frames = np.random.default_rng(0).integers(0, 256, size=(5, 24, 32, 3), dtype=np.uint8)
    dino_settings = dict(load_protocol("ewmbench-v1").settings("scene_consistency"), image_size=28)
    dino = DinoTokenEncoder.from_config(TINY_DINO, "cpu", torch.float32)
    one = dino.encode_frames(frames, dino_settings, 1)
    assert one.shape == (5, 4, 32)
    assert torch.allclose(one, dino.encode_frames(frames, dino_settings, 3), atol=1e-5)
    clip_settings = dict(load_protocol("ewmbench-v1").settings("diversity"), image_size=32)
    clip = ClipImageEncoder.from_config(TINY_CLIP, "cpu", torch.float32)
    emb = clip.encode_frames(frames, clip_settings, 1)
    assert emb.shape == (5, 16)
    assert torch.allclose(emb, clip.encode_frames(frames, clip_settings, 4), atol=1e-5)


def test_half_precision_is_only_used_on_gpu():
    assert encoders.torch_dtype("cpu", "float16") == torch.float32
    assert encoders.torch_dtype("cuda:0", "float16") == torch.float16
    assert encoders.torch_dtype("cuda", "bfloat16") == torch.bfloat16


def _frames(seed: int, count: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, 24, 32, 3))
    return np.clip(base + rng.integers(-30, 30, size=(count, 24, 32, 3)), 0, 255).astype(np.uint8)


def test_metrics_end_to_end_on_random_weights(tmp_path):
    """Through the real video reader, preprocessing, batching and feature cache."""
    root = tmp_path / "toy_dataset"
    trials = [write_trial(root, "1", "1", str(i), _frames(i, 3 + i), extra_views=None) for i in (1, 2, 3)]
    preprocessor = VideoCache(tmp_path / "cache")
    scene_settings = dict(
        load_protocol("ewmbench-v1").settings("scene_consistency"),
        image_size=28,
        random_init=TINY_DINO,
        batch_size=2,
    )
    row = SceneConsistency().score_trial(
        TrialInputs(episode=None, trial=trials[0], videos=preprocessor), scene_settings
    )
    frames = preprocessor.frames(trials[0].video_path())
    dino = DinoTokenEncoder.from_config(TINY_DINO, "cpu", torch.float32)
    tokens = dino.encode(prepare(frames, 28, "bilinear", scene_settings["mean"], scene_settings["std"]))
    assert row["scene_consistency"] == pytest.approx(
        scene_consistency_from_tokens(tokens, scene_settings), abs=1e-6
    )
    assert len(list((tmp_path / "cache" / "scene_consistency").rglob("*.npy"))) == 1
    # a second call reads the cached similarities and gives the same number
    again = SceneConsistency().score_trial(
        TrialInputs(episode=None, trial=trials[0], videos=preprocessor), scene_settings
    )
    assert again == row

    div_settings = dict(
        load_protocol("ewmbench-v1").settings("diversity"), image_size=32, random_init=TINY_CLIP
    )
    value = Diversity().score_episode(
        EpisodeInputs(episode=None, trials=trials, videos=preprocessor), div_settings
    )
    clip = ClipImageEncoder.from_config(TINY_CLIP, "cpu", torch.float32)
    embeddings = [
        clip.encode(
            prepare(
                preprocessor.frames(t.video_path()), 32, "bicubic", div_settings["mean"], div_settings["std"]
            )
        )
        for t in trials
    ]
    assert value["diversity"] == pytest.approx(diversity_from_embeddings(embeddings), abs=1e-6)
    assert value["diversity"] > 0


def test_single_frame_video_is_a_data_error_naming_the_video(tmp_path):
    trial = write_trial(tmp_path / "toy_dataset", "1", "1", "1", _frames(0, 1))
    settings = dict(
        load_protocol("ewmbench-v1").settings("scene_consistency"), image_size=28, random_init=TINY_DINO
    )
    with pytest.raises(DataError, match="at least 2 frames") as info:
        SceneConsistency().score_trial(TrialInputs(None, trial, VideoCache(tmp_path / "c")), settings)
    assert "toy_dataset" in str(info.value.path)


def test_unreadable_checkpoint_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "dino.pth"
    path.write_bytes(b"truncated")
    with pytest.raises(encoders.ConfigError, match="cannot be read as a weights-only state dict"):
        DinoTokenEncoder.from_weights(path, "cpu", torch.float32)
