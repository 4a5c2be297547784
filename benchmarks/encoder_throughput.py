"""Encoder throughput (frames/s) of scene consistency (DINOv2 ViT-B/14 at 518) and diversity
(CLIP ViT-B/32 at 224): the official tool's way (one frame at a time, float32, eager attention,
per-frame preprocessing) against ours (batched preprocessing and encoding, SDPA attention,
``torch.inference_mode``, half precision on a GPU).

Real-size architectures with random weights: the arithmetic, and so the time, is the same as with
the real weights. Both paths share the same weights; the largest token difference is printed so a
speed-up never hides a change of numbers.

    PYTHONPATH=. python benchmarks/encoder_throughput.py --dino-frames 4 --clip-frames 64 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from ewmbench.perception.encoders import ClipImageEncoder, DinoTokenEncoder, torch_dtype
from ewmbench.perception.image_prep import prepare
from ewmbench.protocols import load_protocol

DINO_VITB14 = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 518,
}


def dino_flops_per_frame(tokens: int = 1370, width: int = 768, layers: int = 12) -> float:
    """Multiply-adds x 2 of one ViT-B frame: per layer 12 N C^2 (qkv, proj, MLP) + 2 N^2 C (attention)."""
    return 2.0 * layers * (12 * tokens * width**2 + 2 * tokens**2 * width)


def timed(run, repeats: int = 1) -> float:
    """Best wall time of ``repeats`` runs (after the caller's warm-up)."""
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def official_style(model: torch.nn.Module, frames: np.ndarray, settings: dict, encode) -> torch.Tensor:
    """One frame at a time: preprocess it, run it in float32 under no_grad, keep the output."""
    outputs = []
    with torch.no_grad():
        for frame in frames:
            image = prepare(
                frame[None],
                int(settings["image_size"]),
                settings["interpolation"],
                settings["mean"],
                settings["std"],
                "cpu",
            )
            outputs.append(encode(model, image))
    return torch.cat(outputs)


def bench_dino(frames: np.ndarray, device: str, batch: int, repeats: int) -> dict:
    settings = dict(load_protocol("ewmbench-v1").settings("scene_consistency"))
    ours = DinoTokenEncoder.from_config(DINO_VITB14, device, torch_dtype(device, settings["gpu_dtype"]))
    from transformers import Dinov2Config, Dinov2Model

    reference = Dinov2Model(Dinov2Config(**DINO_VITB14, attn_implementation="eager")).eval()
    reference.load_state_dict({k: v.float().cpu() for k, v in ours.model.state_dict().items()})
    encode = lambda m, x: m(pixel_values=x).last_hidden_state[:, 1:]  # noqa: E731
    official_style(reference, frames[:1], settings, encode)  # warm-up
    ours.encode_frames(frames[:1], settings, 1)
    t_official = timed(lambda: official_style(reference, frames, settings, encode), repeats)
    t_ours = timed(lambda: ours.encode_frames(frames, settings, batch), repeats)
    diff = (
        (
            official_style(reference, frames[:2], settings, encode)
            - ours.encode_frames(frames[:2], settings, batch).float().cpu()
        )
        .abs()
        .max()
    )
    return {
        "encoder": "DINOv2 ViT-B/14 @518",
        "frames": len(frames),
        "batch": batch,
        "dtype": str(ours.dtype),
        "official_fps": len(frames) / t_official,
        "ours_fps": len(frames) / t_ours,
        "speedup": t_official / t_ours,
        "max_abs_token_diff": float(diff),
        "gflop_per_frame": dino_flops_per_frame() / 1e9,
        "ours_tflops": dino_flops_per_frame() * len(frames) / t_ours / 1e12,
    }


def bench_clip(frames: np.ndarray, device: str, batch: int, repeats: int) -> dict:
    settings = dict(load_protocol("ewmbench-v1").settings("diversity"))
    ours = ClipImageEncoder.from_config(
        {"architecture": "ViT-B-32", "quick_gelu": True}, device, torch_dtype(device, settings["gpu_dtype"])
    )
    import open_clip

    reference = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True).eval()
    reference.load_state_dict({k: v.float().cpu() for k, v in ours.model.state_dict().items()})
    encode = lambda m, x: m.encode_image(x)  # noqa: E731
    official_style(reference, frames[:1], settings, encode)
    ours.encode_frames(frames[:2], settings, 2)
    t_official = timed(lambda: official_style(reference, frames, settings, encode), repeats)
    t_ours = timed(lambda: ours.encode_frames(frames, settings, batch), repeats)
    diff = (
        (
            official_style(reference, frames[:4], settings, encode)
            - ours.encode_frames(frames[:4], settings, batch).float().cpu()
        )
        .abs()
        .max()
    )
    return {
        "encoder": "CLIP ViT-B/32 @224",
        "frames": len(frames),
        "batch": batch,
        "dtype": str(ours.dtype),
        "official_fps": len(frames) / t_official,
        "ours_fps": len(frames) / t_ours,
        "speedup": t_official / t_ours,
        "max_abs_embedding_diff": float(diff),
    }


def dino_ablation(frames: np.ndarray, batch: int) -> dict:
    """Where the DINOv2 gain comes from: eager vs SDPA attention, one frame vs ``batch`` frames
    per forward (float32, inference_mode, frames preprocessed beforehand)."""
    from transformers import Dinov2Config, Dinov2Model

    settings = dict(load_protocol("ewmbench-v1").settings("scene_consistency"))
    models = {
        impl: Dinov2Model(Dinov2Config(**DINO_VITB14, attn_implementation=impl)).eval()
        for impl in ("eager", "sdpa")
    }
    models["sdpa"].load_state_dict(models["eager"].state_dict())
    images = prepare(
        frames, int(settings["image_size"]), settings["interpolation"], settings["mean"], settings["std"]
    )
    out = {}
    with torch.inference_mode():
        models["sdpa"](pixel_values=images[:1])  # warm-up
        for impl, model in models.items():
            for size in (1, batch):

                def run(model=model, size=size):
                    return [model(pixel_values=images[i : i + size]) for i in range(0, len(images), size)]

                out[f"{impl}_batch{size}_fps"] = len(images) / timed(run)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dino-frames", type=int, default=4)
    parser.add_argument("--clip-frames", type=int, default=64)
    parser.add_argument("--dino-batch", type=int, default=4)
    parser.add_argument("--clip-batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip", choices=("dino", "clip"), action="append", default=[])
    parser.add_argument(
        "--dino-ablation", action="store_true", help="also time eager/SDPA x batch 1/--dino-batch"
    )
    parser.add_argument("--json", dest="json_path", help="also write the results to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    # Video-like 640x480 frames: a fixed scene plus small changes.
    base = rng.integers(0, 256, size=(1, 480, 640, 3))
    frames = np.clip(
        base + rng.integers(-8, 8, size=(max(args.dino_frames, args.clip_frames), 480, 640, 3)), 0, 255
    ).astype(np.uint8)
    results = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "runs": [],
    }
    if "dino" not in args.skip:
        results["runs"].append(
            bench_dino(frames[: args.dino_frames], args.device, args.dino_batch, args.repeats)
        )
    if args.dino_ablation:
        results["dino_ablation"] = dino_ablation(frames[: args.dino_frames], args.dino_batch)
    if "clip" not in args.skip:
        results["runs"].append(
            bench_clip(frames[: args.clip_frames], args.device, args.clip_batch, args.repeats)
        )
    text = json.dumps(results, indent=2)
    print(text)
    if args.json_path:
        with open(args.json_path, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
