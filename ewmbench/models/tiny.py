"""Tiny random-weight LTX-Video and Cosmos-Predict2 pipelines, built offline and saved with
save_pretrained: what ``ewmbench models try`` runs to check an install on a CPU, and what the tests
run the real adapters on.

Component sizes follow diffusers' own fast tests (1-2 layers, 8-16 channels). The T5 tokenizer is
a unigram model over a short word list (transformers' ``T5TokenizerFast`` built from a vocabulary),
so nothing is downloaded. The videos are noise: the point is that every stage runs.
"""

from __future__ import annotations

from pathlib import Path

from ewmbench.models.cosmos import PassThroughChecker

WORDS = (
    "pick place push stack hand over the a red green blue cube block cup robot arm left right task".split()
)


def tiny_t5(folder: Path | None = None):
    """A 1-layer T5 encoder (d_model 32) with random weights, and a tiny T5 tokenizer (unigram over WORDS)."""
    import torch
    from transformers import T5Config, T5EncoderModel, T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)] + [
        (f"\u2581{w}", -3.0) for w in WORDS
    ]
    tokenizer = T5TokenizerFast(vocab=vocab, extra_ids=0)
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(vocab),
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
    )
    return T5EncoderModel(config), tokenizer


def tiny_ltx_components():
    """A 1-layer LTX transformer and a tiny LTX VAE (8 latent channels), random weights."""
    import torch
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    return transformer, vae


def tiny_cosmos_components():
    """A 1-layer Cosmos transformer and a tiny Wan VAE (16 latent channels), random weights."""
    import torch
    from diffusers import AutoencoderKLWan, CosmosTransformer3DModel

    torch.manual_seed(0)
    transformer = CosmosTransformer3DModel(
        in_channels=16 + 1,
        out_channels=16,
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=1,
        mlp_ratio=2,
        text_embed_dim=32,
        adaln_lora_dim=4,
        max_size=(4, 32, 32),
        patch_size=(1, 2, 2),
        rope_scale=(2.0, 1.0, 1.0),
        concat_padding_mask=True,
        extra_pos_embed_type="learnable",
    )
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    return transformer, vae


def build_tiny_ltx(folder: Path, condition: bool = False) -> Path:
    """LTXImageToVideoPipeline (or LTXConditionPipeline) with random tiny components, saved to ``folder``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTXConditionPipeline, LTXImageToVideoPipeline

    text_encoder, tokenizer = tiny_t5()
    transformer, vae = tiny_ltx_components()
    cls = LTXConditionPipeline if condition else LTXImageToVideoPipeline
    pipe = cls(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(folder)
    return folder


def build_tiny_cosmos(folder: Path) -> Path:
    """Cosmos2VideoToWorldPipeline with random tiny components (no safety checker saved), saved to ``folder``."""
    from diffusers import Cosmos2VideoToWorldPipeline, FlowMatchEulerDiscreteScheduler

    text_encoder, tokenizer = tiny_t5()
    transformer, vae = tiny_cosmos_components()
    pipe = Cosmos2VideoToWorldPipeline(
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True),
        safety_checker=PassThroughChecker(),
    )
    pipe.safety_checker = None  # not saved: the folder holds no guardrail, as NVIDIA's does not
    pipe.register_to_config(safety_checker=(None, None))
    pipe.save_pretrained(folder)
    return folder


# Adapter -> (builder, the options that keep a CPU run short). fps=3 makes each sample episode one
# 9-frame window; the conform step brings it to the ground truth's 24 frames at 640x480.
TINY_OPTIONS = ("steps=1", "height=32", "width=32", "max_frames=9", "fps=3")
TRIABLE = {
    "ltx-video": (build_tiny_ltx, TINY_OPTIONS),
    "cosmos-predict2": (build_tiny_cosmos, (*TINY_OPTIONS, "guardrail=false")),
}


def tiny_pipeline(model: str, root: Path) -> Path:
    """The tiny pipeline of ``model`` under ``root/<model>``, built once (written whole, then renamed)."""
    import shutil
    import tempfile

    from diffusers.utils import logging as diffusers_logging

    folder = root / model
    if (folder / "model_index.json").is_file():
        return folder
    diffusers_logging.disable_progress_bar()  # saving shards is instant; its bar is noise
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{model}-", dir=root))
    try:
        TRIABLE[model][0](building / "pipeline")
        try:
            (building / "pipeline").replace(folder)
        except OSError:
            if not (folder / "model_index.json").is_file():  # not another process's finished copy
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder
