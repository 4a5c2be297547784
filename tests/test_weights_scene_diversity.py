"""Weights commands and entries for scene consistency and diversity, offline; real-weight checks
marked ``weights`` (skipped with the reason when the weights are not cached)."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ewmbench.cli import app
from ewmbench.errors import Unavailable
from ewmbench.metrics.diversity import Diversity
from ewmbench.metrics.scene import SceneConsistency
from ewmbench.perception import verify, weights
from ewmbench.protocols import load_protocol

OURS = ("dinov2-vitb14", "ewmbench-dinov2-vitb14", "clip-vitb32-openai")
runner = CliRunner()


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Hugging Face cache with the network off, and no local overrides."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for weight_id in OURS:
        monkeypatch.delenv(weights.spec(weight_id).env_var, raising=False)
    return tmp_path


def test_entries_name_repo_revision_file_and_users():
    for weight_id in OURS:
        item = weights.spec(weight_id)
        assert item.repo and item.revision and item.used_by and item.description
    assert weights.spec("clip-vitb32-openai").filename == "open_clip_model.safetensors"
    assert len(weights.spec("clip-vitb32-openai").sha256) == 64
    assert weights.spec("ewmbench-dinov2-vitb14").repo == "agibot-world/EWMBench-model"
    # the protocols point at these entries
    assert load_protocol("ewmbench-v1").settings("scene_consistency")["weights"] == "ewmbench-dinov2-vitb14"
    assert load_protocol("ewmbench-v2").settings("scene_consistency")["weights"] == "dinov2-vitb14"
    assert load_protocol("ewmbench-v1").settings("diversity")["weights"] == "clip-vitb32-openai"


def test_list_json_reports_not_cached_offline(offline):
    result = runner.invoke(app, ["weights", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.output)}
    for weight_id in OURS:
        assert rows[weight_id]["cached"] is False and rows[weight_id]["path"] is None
    assert rows["clip-vitb32-openai"]["used_by"] == ["diversity"]


def test_list_shows_a_local_override_as_cached(offline, monkeypatch):
    local = offline / "dino.pth"
    torch.save({"teacher.backbone.cls_token": torch.zeros(1, 1, 4)}, local)
    monkeypatch.setenv(weights.spec("ewmbench-dinov2-vitb14").env_var, str(local))
    rows = {row["id"]: row for row in json.loads(runner.invoke(app, ["weights", "list", "--json"]).output)}
    assert rows["ewmbench-dinov2-vitb14"]["cached"] is True and rows["ewmbench-dinov2-vitb14"]["path"] == str(
        local
    )


def test_verify_missing_gives_the_fetch_command_and_exit_1(offline):
    result = runner.invoke(app, ["weights", "verify", "clip-vitb32-openai"])
    assert result.exit_code == 1
    assert "ewmbench weights download clip-vitb32-openai" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_verify_checks_sha_and_loadability(offline, monkeypatch):
    from safetensors.torch import save_file

    fake = offline / "clip.safetensors"
    save_file({"w": torch.zeros(2)}, str(fake))
    monkeypatch.setenv(weights.spec("clip-vitb32-openai").env_var, str(fake))
    result = verify.verify("clip-vitb32-openai")
    assert not result.ok and any("MISMATCH" in line for line in result.checks)

    broken = offline / "dino.pth"
    broken.write_bytes(b"not a checkpoint")
    monkeypatch.setenv(weights.spec("ewmbench-dinov2-vitb14").env_var, str(broken))
    result = verify.verify("ewmbench-dinov2-vitb14")
    assert not result.ok and any(line.startswith("not loadable") for line in result.checks)

    torch.save({"teacher.backbone.cls_token": torch.zeros(1, 1, 4)}, broken)
    result = verify.verify("ewmbench-dinov2-vitb14")
    assert not result.ok and "loadable: 1 tensors" in result.checks
    assert any(line.startswith("does not load as dinov2-original") for line in result.checks)


def test_verify_loads_the_dinov2_checkpoint_strictly(offline, monkeypatch):
    from tests.helpers.tiny_dinov2 import official_backbone, teacher_checkpoint

    good = offline / "dino.pth"
    torch.save(teacher_checkpoint(official_backbone()), good)
    monkeypatch.setenv(weights.spec("ewmbench-dinov2-vitb14").env_var, str(good))
    result = verify.verify("ewmbench-dinov2-vitb14")
    assert result.ok, result.checks
    assert any("every key matched" in line for line in result.checks)

    bad = teacher_checkpoint(official_backbone())
    del bad["teacher.backbone.norm.bias"]
    torch.save(bad, good)
    result = verify.verify("ewmbench-dinov2-vitb14")
    assert not result.ok and any("layernorm.bias" in line for line in result.checks)


def test_download_offline_is_a_message_not_a_traceback(offline):
    result = runner.invoke(app, ["weights", "download", "dinov2-vitb14"])
    assert result.exit_code == 1
    assert "could not fetch facebook/dinov2-base" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert runner.invoke(app, ["weights", "download"]).exit_code == 2
    assert "unknown weight" in runner.invoke(app, ["weights", "download", "nope"]).output


def test_metrics_report_missing_weights_with_the_command(offline):
    for metric, name, protocol, weight_id in (
        (SceneConsistency(), "scene_consistency", "ewmbench-v1", "ewmbench-dinov2-vitb14"),
        (SceneConsistency(), "scene_consistency", "ewmbench-v2", "dinov2-vitb14"),
        (Diversity(), "diversity", "ewmbench-v1", "clip-vitb32-openai"),
    ):
        with pytest.raises(Unavailable) as info:
            metric.check_available(load_protocol(protocol).settings(name))
        assert info.value.fix == f"ewmbench weights download {weight_id}"


def _real(weight_id: str):
    try:
        return weights.resolve(weight_id)
    except Unavailable as exc:
        pytest.skip(f"{exc.reason}; fetch with `{exc.fix}`")


@pytest.mark.weights
def test_real_ewmbench_dino_loads_strictly_and_gives_1369_tokens():
    from ewmbench.perception.encoders import DinoTokenEncoder

    encoder = DinoTokenEncoder.from_weights(_real("ewmbench-dinov2-vitb14"), "cpu", torch.float32)
    settings = load_protocol("ewmbench-v1").settings("scene_consistency")
    tokens = encoder.encode_frames(np.zeros((1, 480, 640, 3), np.uint8), settings, 1)
    assert tokens.shape == (1, 1369, 768)


@pytest.mark.weights
def test_real_clip_matches_open_clip_reference_preprocessing_on_a_square_frame():
    import open_clip
    from PIL import Image

    from ewmbench.metrics.diversity import clip_encoder

    path = _real("clip-vitb32-openai")
    settings = load_protocol("ewmbench-v1").settings("diversity")
    frame = np.random.default_rng(0).integers(0, 256, size=(1, 224, 224, 3), dtype=np.uint8)
    ours = clip_encoder(settings, "cpu").encode_frames(frame, settings, 1)
    model, _, preprocess = open_clip.create_model_and_transforms(
        "ViT-B-32", pretrained=str(path), force_quick_gelu=True
    )
    with torch.no_grad():
        theirs = model.encode_image(preprocess(Image.fromarray(frame[0])).unsqueeze(0))
    assert torch.allclose(ours, theirs, atol=1e-3)
