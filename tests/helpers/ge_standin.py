"""A stand-in Genie-Envisioner checkout: GE's entry-point signatures, recording what it is given.

``write_checkout(root)`` writes ``video_gen_examples/infer.py`` (GE-Base) and
``gesim_video_gen_examples/infer_gesim.py`` (GE-Sim), each with ``load_config`` and
``prepare_model`` returning ``(tokenizer, text_encoder, vae, diffusion_model, scheduler, pipe)``.
``pipe.infer(...)`` appends one JSON line per call to the config's ``record_to`` file (argument
names, shapes, value ranges, and the action / camera arrays) and returns the memory frames
followed by ``chunk`` frames whose grey level ramps from -1 to 1.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ENTRY = """
import json
from argparse import Namespace

import numpy as np
import torch
import yaml


def load_config(config_file):
    with open(config_file) as handle:
        return Namespace(**yaml.safe_load(handle))


class VAE:
    temporal_compression_ratio = 8
    spatial_compression_ratio = 32


def describe(value):
    if isinstance(value, torch.Tensor):
        array = value.detach().float().cpu().numpy()
        return {"shape": list(array.shape), "min": float(array.min()), "max": float(array.max()), "dtype": str(value.dtype)}
    return value


class Pipe:
    def __init__(self, args, dtype, device):
        self.args, self.dtype, self.device = args, dtype, device

    def infer(self, image, prompt, negative_prompt, num_inference_steps, guidance_scale, height, width, n_view, n_prev, chunk,
              noise_seed, return_video, return_action, n_chunk, **extra):
        record = {name: describe(value) for name, value in dict(
            image=image, prompt=prompt, negative_prompt=negative_prompt, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, height=height, width=width, n_view=n_view, n_prev=n_prev, chunk=chunk,
            noise_seed=noise_seed, return_video=return_video, return_action=return_action, n_chunk=n_chunk, **extra).items()}
        record["memory_slot_means"] = image.float().mean(dim=(1, 3, 4)).tolist()  # (views, n_prev)
        for name in ("actions", "extrinsics", "intrinsics"):
            if name in extra:
                record[name + "_values"] = extra[name].float().cpu().numpy().tolist()
        record["checkpoint"] = self.args.diffusion_model["model_path"]
        with open(self.args.record_to, "a") as handle:
            handle.write(json.dumps(record) + "\\n")
        frames = self.args.data["train"]["chunk"]
        v, c, m, h, w = image.shape
        ramp = torch.linspace(-1, 1, frames, dtype=image.dtype)[None, None, :, None, None].expand(v, c, frames, h, w)
        return [{"video": torch.cat([image, ramp], dim=2)}]


def prepare_model(args, dtype=torch.bfloat16, device="cuda:0"):
    return None, None, VAE(), None, None, Pipe(args, dtype, device)
"""


def write_checkout(
    root: Path, record_to: Path, chunk: int = 9, size=(32, 48), gesim: bool = True, base: bool = True
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "data": {
            "train": {
                "n_previous": 4,
                "chunk": chunk,
                "sample_size": list(size),
                "valid_cam": ["head", "hand_left", "hand_right"],
            }
        },
        "diffusion_model": {"model_path": "from-config.safetensors", "config": {}},
        "record_to": str(record_to),
        "prompt": "best quality, consistent and smooth motion",
    }
    if base:
        (root / "video_gen_examples").mkdir(exist_ok=True)
        (root / "video_gen_examples" / "infer.py").write_text(ENTRY)
        (root / "configs" / "ltx_model").mkdir(parents=True, exist_ok=True)
        (root / "configs" / "ltx_model" / "video_model_infer_slow.yaml").write_text(yaml.safe_dump(config))
    if gesim:
        (root / "gesim_video_gen_examples").mkdir(exist_ok=True)
        (root / "gesim_video_gen_examples" / "infer_gesim.py").write_text(
            ENTRY + "\n\ndef load_cam_infos(*args, **kwargs):\n    raise NotImplementedError\n"
        )
        (root / "configs" / "cosmos_model").mkdir(parents=True, exist_ok=True)
        (root / "configs" / "cosmos_model" / "acwm_cosmos.yaml").write_text(yaml.safe_dump(config))
    return root
