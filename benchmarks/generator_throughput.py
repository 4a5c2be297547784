"""Generation throughput of the diffusers backbones with random weights: frames per second and peak memory.

Two sizes:

* ``--size tiny`` (default): the tiny test pipelines (1 layer, 32x32, 9 frames): checks the
  script and the adapter path on any CPU; its figures say nothing about real models.
* ``--size full``: LTX-Video-2B- and Cosmos-Predict2-2B-shaped transformers and VAEs (the
  diffusers default configurations; 28 layers, hidden 2048) with random weights, at the GE
  resolutions: LTX at 192x256 with 57-frame windows (GE-Base slow), Cosmos at 384x512 with
  25-frame windows (GE-Sim), three views as a batch of 3. The T5 text encoders are left out
  (random prompt embeddings are passed), so the figures are denoising + VAE time. Needs a GPU.

Random weights give the same compute as trained ones, so frames per second and memory are those
of the real backbones; the videos are noise. Compare with GE-Sim 2.0's reported 25 frames in
2.3 s on one H100 (a distilled few-step model: compare per denoising step, not per call).

    python benchmarks/generator_throughput.py                      # tiny, CPU
    python benchmarks/generator_throughput.py --size full --device cuda --steps 15
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ltx_pipeline(size: str, dtype):
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    from ewmbench.models.tiny import tiny_ltx_components

    torch.manual_seed(0)
    if size == "full":
        transformer, vae, text_dim = LTXVideoTransformer3DModel(), AutoencoderKLLTXVideo(), 4096
    else:
        (transformer, vae), text_dim = tiny_ltx_components(), 32
    pipe = LTXImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=None,
        tokenizer=None,
        transformer=transformer,
    )
    return (pipe if dtype == torch.float32 else pipe.to(dtype=dtype)), text_dim, 128


def cosmos_pipeline(size: str, dtype):
    import torch
    from diffusers import (
        AutoencoderKLWan,
        Cosmos2VideoToWorldPipeline,
        CosmosTransformer3DModel,
        FlowMatchEulerDiscreteScheduler,
    )

    from ewmbench.models.cosmos import PassThroughChecker
    from ewmbench.models.tiny import tiny_cosmos_components

    torch.manual_seed(0)
    if size == "full":  # Cosmos-Predict2-2B-shaped: hidden 16 x 128 = 2048, 28 layers
        transformer = CosmosTransformer3DModel(
            in_channels=17,
            out_channels=16,
            num_attention_heads=16,
            attention_head_dim=128,
            num_layers=28,
            mlp_ratio=4.0,
            text_embed_dim=1024,
            adaln_lora_dim=256,
            max_size=(128, 240, 240),
            patch_size=(1, 2, 2),
            rope_scale=(1.0, 3.0, 3.0),
            concat_padding_mask=True,
            extra_pos_embed_type=None,
        )
        vae, text_dim = AutoencoderKLWan(), 1024
    else:
        (transformer, vae), text_dim = tiny_cosmos_components(), 32
    pipe = Cosmos2VideoToWorldPipeline(
        text_encoder=None,
        tokenizer=None,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True),
        safety_checker=PassThroughChecker(),
    )
    return (pipe if dtype == torch.float32 else pipe.to(dtype=dtype)), text_dim, 512


SETTINGS = {  # (height, width, frames) per size
    "ltx": {"tiny": (32, 32, 9), "full": (192, 256, 57)},
    "cosmos": {"tiny": (32, 32, 9), "full": (384, 512, 25)},
}


def measure(name: str, size: str, device: str, steps: int, repeats: int, batch: int) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    pipe, text_dim, tokens = (ltx_pipeline if name == "ltx" else cosmos_pipeline)(size, dtype)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    height, width, frames = SETTINGS[name][size]
    images = [
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (height, width, 3), dtype=np.uint8))
        for i in range(batch)
    ]
    embeds = torch.randn(batch, tokens, text_dim, device=device, dtype=dtype)
    kwargs = {
        "image": images,
        "prompt_embeds": embeds,
        "height": height,
        "width": width,
        "num_frames": frames,
        "num_inference_steps": steps,
        "guidance_scale": 1.0,
        "output_type": "np",
    }
    if name == "ltx":
        kwargs["prompt_attention_mask"] = torch.ones(batch, tokens, device=device, dtype=torch.long)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.inference_mode():
        for repeat in range(repeats + 1):  # the first call warms up (kernels, allocator) and is not timed
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(repeat))
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if repeat:
                times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return {
        "model": name,
        "size": size,
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "height": height,
        "width": width,
        "frames": frames,
        "batch": batch,
        "steps": steps,
        "seconds_per_call": round(seconds, 3),
        "frames_per_second": round(batch * frames / seconds, 2),
        "seconds_per_step": round(seconds / steps, 4),
        "peak_memory_gib": round(peak, 2),
        "peak_memory_kind": "CUDA allocated" if device.startswith("cuda") else "process max RSS",
        "transformer_parameters": sum(p.numel() for p in pipe.transformer.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="ltx,cosmos")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=3, help="views (GE runs its three views as one batch)")
    args = parser.parse_args()
    rows = [
        measure(name, args.size, args.device, args.steps, args.repeats, args.batch)
        for name in args.models.split(",")
    ]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
