"""Tiny random GE-Base and GE-Sim weights, built from a Genie-Envisioner checkout's own classes.

Nothing of GE is copied here: the checkout's inference config is read with the checkout's own
``load_config``, shrunk (one transformer layer, a few channels, 48x64 per view, chunks of 9
frames), and every component is built from the class the config names, resolved inside the
checkout exactly as the ``ge-base`` / ``ge-sim`` adapters resolve it:

* ``<out>/<model>/pretrained/``: ``tokenizer/`` and ``text_encoder/`` (the 1-layer T5 and unigram
  tokenizer of ``ewmbench.models.tiny``, saved with ``save_pretrained``), ``vae/`` (the checkout's VAE
  class, tiny, ``save_pretrained``) and, for GE-Sim, ``scheduler/`` (the checkout's scheduler);
* ``<out>/<model>/<model>_tiny.safetensors``: the checkout's transformer, built through GE's own
  ``load_diffusion_model`` with random weights;
* ``<out>/<model>/<model>_tiny.yaml``: the shrunk config. The class paths stay as GE writes them
  (relative to the checkout), so a run from another folder exercises the adapters' resolution.

Command line (from this repository's root)::

    python -m tests.helpers.ge_tiny --repo /path/to/Genie-Envisioner --out /tmp/ge-tiny

prints the two config paths (about 10 s of CPU time for both).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import yaml

from ewmbench.models.genie import GE_CONFIGS, open_checkout
from ewmbench.models.tiny import tiny_t5

SIZE = (48, 64)  # (height, width) per view
CHUNK = 9
STEPS = 2
GE_BASE_FAST = "configs/ltx_model/video_model_infer_fast.yaml"


def tiny_text_encoder(folder: Path) -> int:
    """``folder/tokenizer`` and ``folder/text_encoder``: the package's 1-layer T5; its width."""
    text_encoder, tokenizer = tiny_t5()
    tokenizer.save_pretrained(folder / "tokenizer")
    text_encoder.save_pretrained(folder / "text_encoder")
    return text_encoder.config.d_model


def save_transformer(checkout, args, path: Path) -> None:
    """The config's diffusion model with random weights, built by GE's own ``load_diffusion_model``."""
    import torch
    from safetensors.torch import save_file

    model_utils = checkout.import_module("utils.model_utils")
    torch.manual_seed(0)
    model = model_utils.load_diffusion_model(
        model_cls=checkout.config_class(args, "diffusion_model"),
        model_dir=str(path),
        load_weights=False,
        **args.diffusion_model["config"],
    )
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def shrink_data(args, action_chunk: int) -> None:
    for split in ("train", "val"):
        if split in args.data:
            args.data[split].update(sample_size=list(SIZE), chunk=CHUNK, action_chunk=action_chunk)


def write_config(args, path: Path) -> Path:
    path.write_text(yaml.safe_dump(vars(args), sort_keys=False))
    return path


def build_ge_base(repo: Path, out: Path, config: str = GE_BASE_FAST) -> Path:
    """GE-Base from ``config`` (default: the fast config: chunk 9 of an action chunk of 54, so 5 fps)."""
    import torch

    checkout = open_checkout(repo, "video_gen_examples/infer.py")
    args = checkout.load_config(repo / config)
    out = out / "ge-base"
    pretrained = out / "pretrained"
    text_width = tiny_text_encoder(pretrained)
    vae_class = checkout.config_class(args, "vae")
    torch.manual_seed(0)
    vae = vae_class(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=True,  # as LTX-Video's VAE from 0.9.1 on: exercises GE's slicing bug
        patch_size=2,  # 2 x 2**3: 16x spatial, 8x temporal compression
        patch_size_t=1,
    )
    vae.save_pretrained(pretrained / "vae")
    args.pretrained_model_name_or_path = str(pretrained)
    model = copy.deepcopy(args.diffusion_model["config"])
    model.update(
        in_channels=8,
        out_channels=8,
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        caption_channels=text_width,
    )
    checkpoint = out / "ge-base_tiny.safetensors"
    args.diffusion_model = {"model_path": str(checkpoint), "config": model}
    shrink_data(
        args,
        action_chunk=args.data["train"].get("action_chunk", CHUNK) // args.data["train"]["chunk"] * CHUNK,
    )
    args.num_inference_step = STEPS
    save_transformer(checkout, args, checkpoint)
    return write_config(args, out / "ge-base_tiny.yaml")


def build_ge_sim(repo: Path, out: Path, config: str = GE_CONFIGS["ge-sim"]) -> Path:
    import torch

    checkout = open_checkout(repo, "gesim_video_gen_examples/infer_gesim.py")
    args = checkout.load_config(repo / config)
    out = out / "ge-sim"
    pretrained = out / "pretrained"
    text_width = tiny_text_encoder(pretrained)
    torch.manual_seed(0)
    vae = checkout.config_class(args, "vae")(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    vae.save_pretrained(pretrained / "vae")
    scheduler = checkout.config_class(args, "diffusion_scheduler")(use_karras_sigmas=True)
    scheduler.save_pretrained(pretrained / "scheduler")
    args.pretrained_model_name_or_path = str(pretrained)
    args.tokenizer_pretrained_model_name_or_path = str(pretrained)
    model = copy.deepcopy(args.diffusion_model["config"])
    model.update(
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=16,
        text_embed_dim=text_width,
        adaln_lora_dim=4,
        max_size=[16, 32, 32],
    )
    checkpoint = out / "ge-sim_tiny.safetensors"
    args.diffusion_model = {"model_path": str(checkpoint), "config": model}
    shrink_data(args, action_chunk=CHUNK)
    args.num_inference_step = STEPS
    save_transformer(checkout, args, checkpoint)
    return write_config(args, out / "ge-sim_tiny.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="a Genie-Envisioner checkout")
    parser.add_argument("--out", type=Path, required=True, help="folder for the weights and configs")
    given = parser.parse_args()
    for build in (build_ge_base, build_ge_sim):
        print(build(given.repo.resolve(), given.out.resolve()))


if __name__ == "__main__":
    main()
