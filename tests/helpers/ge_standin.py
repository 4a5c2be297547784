"""A stand-in Genie-Envisioner checkout for CI: GE's real signatures, recording what it is given.

``write_checkout(root, record_to)`` writes the files the ``ge-base`` / ``ge-sim`` adapters touch,
with the signatures of AgibotTech/Genie-Envisioner (commit 7e007c7) and no catch-all ``**kwargs``,
so a keyword the real code would ignore (its ``infer`` methods end in ``**kwargs``) fails here:

* ``video_gen_examples/infer.py`` and ``gesim_video_gen_examples/infer_gesim.py``:
  ``load_config(config_file)``, ``prepare_model(args, dtype=torch.bfloat16, device="cuda:0")``
  -> ``(tokenizer, text_encoder, vae, diffusion_model, scheduler, pipe)``, building each class
  from the config with ``utils.import_custom_class`` (file paths resolved from the working
  directory, as GE's are);
* ``utils/__init__.py`` (``import_custom_class``), ``utils/get_traj_maps.py``
  (``get_traj_maps``, ``simple_radius_gen_func``), ``utils/get_ray_maps.py`` (``get_ray_maps``);
* ``models/pipeline/custom_pipeline.py`` (``CustomPipeline.infer``, GE-Base) and
  ``models/pipeline/gesim_pipeline.py`` (``GeSimCosmos2Pipeline.infer``, GE-Sim), a VAE with GE's
  slicing switches and a one-layer diffusion model whose weights come from ``model_path``;
* ``configs/ltx_model/video_model_infer_slow.yaml`` and ``configs/cosmos_model/acwm_cosmos.yaml``
  (class paths relative to the checkout, as GE writes them), a ``pretrained/`` folder and a
  checkpoint file.

Each ``infer`` call appends one JSON line to ``record_to`` (argument names, shapes, ranges, the
prompt, the seed's first draw); ``get_traj_maps`` / ``get_ray_maps`` append the poses, cameras and
intrinsics they receive. GE-Base returns the memory frames then ``chunk`` frames whose grey level
ramps from -1 to 1; GE-Sim returns ``num_frames`` such frames only. Both add noise drawn from the
given generator (and GE-Base's ``noise_seed``), so the same seed gives the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CHECKPOINT = "standin_weights.safetensors"

UTILS = """
import importlib.util
import os
import sys


def import_custom_class(class_name, source):
    if not os.path.isabs(source) and not source.endswith(".py"):
        module = importlib.import_module(source)
        return getattr(module, class_name)
    file_path = os.path.abspath(source)
    if not os.path.exists(file_path):
        raise FileNotFoundError(f"File not found: {file_path}")
    name = os.path.splitext(os.path.basename(file_path))[0]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, file_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return getattr(sys.modules[name], class_name)
"""

RECORD = """
import json

import torch

RECORD_TO = {record_to!r}


def describe(value):
    if isinstance(value, torch.Tensor):
        array = value.detach().float().cpu()
        return {{"shape": list(array.shape), "min": float(array.min()), "max": float(array.max()), "dtype": str(value.dtype)}}
    if isinstance(value, torch.Generator):
        return "generator"
    return value


def record(kind, **values):
    with open(RECORD_TO, "a") as handle:
        handle.write(json.dumps({{"kind": kind, **values}}) + "\\n")
"""

TRAJ_MAPS = '''
import torch

from utils.record import record


def simple_radius_gen_func(xyzs, c_xyzs):
    return torch.clamp(1.0 - torch.sqrt(((xyzs - c_xyzs) ** 2).sum(-1)), min=0, max=1) * 100


def get_traj_maps(pose, w2c, c2w, intrinsic, sample_size, radius_gen_func=None):
    """(3, views, T, H, W) in [0, 1]: channel 0 the left gripper / 120, 1 the right gripper / 120,
    2 the left hand's radius / 100 (stand-in pictures that carry the values, not GE's drawing)."""
    record("traj_maps", pose=pose.tolist(), w2c=w2c.tolist(), c2w=c2w.tolist(), intrinsic=intrinsic.tolist(),
           sample_size=list(sample_size), radius=radius_gen_func.__name__)
    h, w = sample_size
    views, frames = w2c.shape[:2]
    maps = torch.zeros(3, views, frames, h, w)
    maps[0] = (pose[:, 7] / 120)[None, :, None, None]
    maps[1] = (pose[:, 15] / 120)[None, :, None, None]
    for view in range(views):
        maps[2, view] = (radius_gen_func(pose[:, 0:3], c2w[view, :, :3, 3]) / 100)[:, None, None]
    return maps.clamp(0, 1)
'''

RAY_MAPS = '''
import torch

from utils.record import record


def get_ray_maps(intrinsic, c2w, H, W):
    """rays_o, rays_d (views * T, H, W, 3): the camera centre and the camera z axis everywhere."""
    record("ray_maps", intrinsic=intrinsic.tolist(), c2w=c2w.tolist(), H=H, W=W)
    rays_o = c2w[:, :3, 3][:, None, None, :].expand(-1, H, W, -1)
    rays_d = c2w[:, :3, 2][:, None, None, :].expand(-1, H, W, -1)
    return rays_o, rays_d
'''

COMPONENTS = """
from types import SimpleNamespace

import torch
from safetensors.torch import load_file


class VAE(torch.nn.Module):
    def __init__(self, temporal_compression_ratio, timestep_conditioning):
        super().__init__()
        self.temporal_compression_ratio = temporal_compression_ratio
        self.spatial_compression_ratio = 8
        self.config = SimpleNamespace(timestep_conditioning=timestep_conditioning)
        self.use_slicing = False
        self.latents_mean, self.latents_std = [0.0], [1.0]

    def enable_slicing(self):
        self.use_slicing = True

    def disable_slicing(self):
        self.use_slicing = False

    def enable_tiling(self):
        pass


class LtxVAE(VAE):
    @classmethod
    def from_pretrained(cls, root, subfolder):
        return cls(8, True)


class WanVAE(VAE):
    @classmethod
    def from_pretrained(cls, root, subfolder):
        return cls(4, False)


class Transformer(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.proj = torch.nn.Linear(width, width)


class Scheduler:
    pass
"""

PIPELINES = {
    "custom_pipeline.py": """
import torch

from utils.record import describe, record


class CustomPipeline:
    def __init__(self, scheduler, vae, text_encoder, tokenizer, transformer, scheduler_action=None):
        self.vae, self.transformer = vae, transformer

    def infer(
        self, image=None, n_prev=4, prompt=None, negative_prompt=None, height=192, width=256, chunk=8,
        frame_rate=30, num_inference_steps=50, timesteps=None, guidance_scale=3, num_videos_per_prompt=1,
        generator=None, latents=None, prompt_embeds=None, prompt_attention_mask=None, negative_prompt_embeds=None,
        negative_prompt_attention_mask=None, decode_timestep=0.0, decode_noise_scale=None, return_dict=False,
        attention_kwargs=None, max_sequence_length=128, return_init=True, n_view=3, return_action=False,
        action_chunk=57, action_dim=14, return_video=True, noise_seed=None, history_action_state=None,
        pixel_wise_timestep=True, n_chunk=1, show_progress=False,
    ):
        given = {k: v for k, v in locals().items() if k != "self"}
        record("infer_base", **{k: describe(v) for k, v in given.items()},
               memory_slot_means=image.float().mean(dim=(1, 3, 4)).tolist(), weight=self.transformer.proj.weight.sum().item())
        frames = (chunk - 1) * self.vae.temporal_compression_ratio + 1
        v, c, m, h, w = image.shape
        ramp = torch.linspace(-1, 1, frames, dtype=image.dtype)[None, None, :, None, None].expand(v, c, frames, h, w)
        seeded = torch.Generator().manual_seed(noise_seed) if noise_seed else generator
        noise = torch.randn((v, c, frames, h, w), generator=seeded).to(image.dtype) * 0.02
        preds = {"video": torch.cat([image, ramp + noise], dim=2)}
        return (preds,) if not return_dict else preds
""",
    "gesim_pipeline.py": """
import torch

from utils.record import describe, record


class GeSimCosmos2Pipeline:
    def __init__(self, text_encoder, tokenizer, transformer, vae, scheduler, safety_checker=None):
        self.vae, self.transformer = vae, transformer

    def infer(
        self, image=None, video=None, cond_to_concat=None, prompt=None, negative_prompt=None, height=704,
        width=1280, num_frames=93, num_inference_steps=35, guidance_scale=7.0, fps=16, num_videos_per_prompt=1,
        generator=None, latents=None, prompt_embeds=None, negative_prompt_embeds=None, output_type="pil",
        return_dict=True, callback_on_step_end=None, callback_on_step_end_tensor_inputs=["latents"],
        max_sequence_length=512, sigma_conditioning=0.0001, n_view=3, n_prev=4, merge_view_into_width=False,
        postprocess_video=True, show_progress=False,
    ):
        given = {k: v for k, v in locals().items() if k != "self"}
        record("infer_sim", **{k: describe(v) for k, v in given.items()},
               memory_slot_means=video.float().mean(dim=(2, 3, 4)).tolist(),
               cond_means=cond_to_concat.float().mean(dim=(3, 4)).tolist())
        views, memory, c, h, w = video.shape
        ramp = torch.linspace(-1, 1, num_frames)[None, None, :, None, None].expand(views, c, num_frames, h, w)
        noise = torch.randn((views, c, num_frames, h, w), generator=generator) * 0.02
        return {"frames": (ramp + noise).to(video.dtype)}
""",
}

ENTRY = """
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from argparse import Namespace

import torch
import yaml
from safetensors.torch import load_file

from utils import import_custom_class


def load_config(config_file):
    with open(config_file) as handle:
        return Namespace(**yaml.safe_load(handle))


def prepare_model(args, dtype=torch.bfloat16, device="cuda:0"):
    root = getattr(args, "tokenizer_pretrained_model_name_or_path", args.pretrained_model_name_or_path)
    for folder in ("tokenizer", "text_encoder"):
        if not os.path.isdir(os.path.join(root, folder)):
            raise OSError(f"{root} does not appear to have a folder named {folder}")
    vae = import_custom_class(args.vae_class, args.vae_class_path).from_pretrained(
        args.pretrained_model_name_or_path, subfolder="vae")
    if args.enable_slicing:
        vae.enable_slicing()
    model = import_custom_class(args.diffusion_model_class, args.diffusion_model_class_path)(
        **args.diffusion_model["config"])
    own = model.state_dict()  # GE's loader drops tensors of another shape, then loads non-strictly
    state = {k: v for k, v in load_file(args.diffusion_model["model_path"]).items()
             if k not in own or own[k].shape == v.shape}
    model.load_state_dict(state, strict=False)
    scheduler = import_custom_class(args.diffusion_scheduler_class, args.diffusion_scheduler_class_path)()
    pipeline = import_custom_class(args.pipeline_class, args.pipeline_class_path)
    pipe = {pipe_call}
    return None, None, vae, model, scheduler, pipe
"""


def config(
    pipeline_file: str, pipeline_class: str, vae_class: str, root: Path, chunk: int, action_chunk: int, size
) -> dict:
    return {
        "pretrained_model_name_or_path": str(root / "pretrained"),
        "vae_class_path": "models/standin_components.py",
        "vae_class": vae_class,
        "diffusion_model_class_path": "models/standin_components.py",
        "diffusion_model_class": "Transformer",
        "diffusion_scheduler_class_path": "models/standin_components.py",
        "diffusion_scheduler_class": "Scheduler",
        "pipeline_class_path": f"models/pipeline/{pipeline_file}",
        "pipeline_class": pipeline_class,
        "enable_slicing": True,
        "pixel_wise_timestep": False,
        "num_inference_step": 3,
        "diffusion_model": {"model_path": str(root / CHECKPOINT), "config": {"width": 2}},
        "data": {
            "train": {
                "n_previous": 4,
                "chunk": chunk,
                "action_chunk": action_chunk,
                "sample_size": list(size),
                "valid_cam": ["head", "hand_left", "hand_right"],
            }
        },
    }


def write_checkout(
    root: Path,
    record_to: Path,
    chunk: int = 9,
    size=(32, 48),
    gesim: bool = True,
    base: bool = True,
    base_action_chunk: int | None = None,
) -> Path:
    """A stand-in checkout at ``root``; GE-Base's config has ``action_chunk`` = ``base_action_chunk``
    (default: ``chunk``, so 30 fps; 6 * chunk gives GE-Base fast's 5 fps)."""
    import torch
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    for folder in (
        "utils",
        "models/pipeline",
        "pretrained/tokenizer",
        "pretrained/text_encoder",
        "pretrained/vae",
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "utils" / "__init__.py").write_text(UTILS)
    (root / "utils" / "record.py").write_text(RECORD.format(record_to=str(record_to)))
    (root / "utils" / "get_traj_maps.py").write_text(TRAJ_MAPS)
    (root / "utils" / "get_ray_maps.py").write_text(RAY_MAPS)
    (root / "models" / "standin_components.py").write_text(COMPONENTS)
    for name, text in PIPELINES.items():
        (root / "models" / "pipeline" / name).write_text(text)
    save_file({"proj.weight": torch.full((2, 2), 0.5), "proj.bias": torch.zeros(2)}, str(root / CHECKPOINT))
    pipe_call = "pipeline({})"
    if base:
        (root / "video_gen_examples").mkdir(exist_ok=True)
        (root / "video_gen_examples" / "infer.py").write_text(
            ENTRY.replace("{pipe_call}", pipe_call.format("scheduler, vae, None, None, model"))
        )
        (root / "configs" / "ltx_model").mkdir(parents=True, exist_ok=True)
        base_config = config(
            "custom_pipeline.py", "CustomPipeline", "LtxVAE", root, chunk, base_action_chunk or chunk, size
        )
        (root / "configs" / "ltx_model" / "video_model_infer_slow.yaml").write_text(
            yaml.safe_dump(base_config)
        )
    if gesim:
        (root / "gesim_video_gen_examples").mkdir(exist_ok=True)
        (root / "gesim_video_gen_examples" / "infer_gesim.py").write_text(
            ENTRY.replace(
                "{pipe_call}",
                pipe_call.format(
                    "scheduler=scheduler, vae=vae, text_encoder=None, tokenizer=None, transformer=model"
                ),
            )
        )
        (root / "configs" / "cosmos_model").mkdir(parents=True, exist_ok=True)
        sim_config = config("gesim_pipeline.py", "GeSimCosmos2Pipeline", "WanVAE", root, chunk, chunk, size)
        sim_config["tokenizer_pretrained_model_name_or_path"] = str(root / "pretrained")
        (root / "configs" / "cosmos_model" / "acwm_cosmos.yaml").write_text(yaml.safe_dump(sim_config))
    return root
