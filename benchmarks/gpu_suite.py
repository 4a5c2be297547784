"""Throughput of every network stage and of PSNR + SSIM, with a full-benchmark projection.

    PYTHONPATH=. python benchmarks/gpu_suite.py [--device cuda] [--json out.json]

On a CUDA device (the default when one is visible) it times, in well under 8 minutes:

- DINOv2 ViT-B/14 at the protocol's 518x518 (scene consistency), frames/s, batched, half precision;
- CLIP ViT-B/32 at 224 (diversity), frames/s;
- the gripper detector (a YOLOv8n built from its config: the network the shipped detector uses),
  frames/s of batched detection at 640;
- the captioner's language model (Qwen2.5-7B's text configuration, bfloat16), generated tokens/s
  at batch 1 and batch 4 (greedy decoding after a 1,024-token prompt; the vision encoder's prefill
  is not included);
- PSNR + SSIM of 640x480 frame pairs, pairs/s (the device path, ``metrics/pixels_torch.py``);

and projects the full benchmark (1,000 episodes x 3 trials, about 105 frames per video, 4,000
videos) from those rates. Every network is real-size with random weights (no download): the
arithmetic, and so the time, is that of the real weights.

On a CPU it runs the same stages at a reduced size (fewer frames; a 2-layer, 512-wide language
model instead of the 7B one) and says so: those figures are for checking the script, not for
reading as GPU numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FULL_VIDEOS = 4000  # 1,000 GT episodes + 3,000 generated trials
FULL_TRIALS = 3000
FRAMES_PER_VIDEO = 105
DINO_VITB14 = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 518,
}
QWEN25_7B_TEXT = {
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
}
REDUCED_TEXT = {
    "hidden_size": 512,
    "intermediate_size": 1024,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 32000,
}


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, run) -> float:
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def frames_640x480(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, 480, 640, 3))
    return np.clip(base + rng.integers(-8, 8, size=(count, 480, 640, 3)), 0, 255).astype(np.uint8)


def free(device: str) -> None:
    """Release the last stage's model (gone with its function's frame) before the next loads."""
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def dino(device: str, frames: np.ndarray, batch: int) -> dict:
    from ewmbench.perception.encoders import DinoTokenEncoder, torch_dtype
    from ewmbench.protocols import load_protocol

    settings = dict(load_protocol("ewmbench-v1").settings("scene_consistency"))
    encoder = DinoTokenEncoder.from_config(DINO_VITB14, device, torch_dtype(device, settings["gpu_dtype"]))
    encoder.encode_frames(frames[:batch], settings, batch)  # warm-up
    seconds = timed(device, lambda: encoder.encode_frames(frames, settings, batch))
    dtype = str(encoder.dtype)
    return {"stage": "DINOv2 ViT-B/14 @518 (scene)", "unit": "frames/s", "rate": len(frames) / seconds,
            "items": len(frames), "batch": batch, "dtype": dtype}  # fmt: skip


def clip(device: str, frames: np.ndarray, batch: int) -> dict:
    from ewmbench.perception.encoders import ClipImageEncoder, torch_dtype
    from ewmbench.protocols import load_protocol

    settings = dict(load_protocol("ewmbench-v1").settings("diversity"))
    encoder = ClipImageEncoder.from_config(
        {"architecture": "ViT-B-32", "quick_gelu": True}, device, torch_dtype(device, settings["gpu_dtype"])
    )
    encoder.encode_frames(frames[:batch], settings, batch)
    seconds = timed(device, lambda: encoder.encode_frames(frames, settings, batch))
    dtype = str(encoder.dtype)
    return {"stage": "CLIP ViT-B/32 @224 (diversity)", "unit": "frames/s", "rate": len(frames) / seconds,
            "items": len(frames), "batch": batch, "dtype": dtype}  # fmt: skip


def detector(device: str, frames: np.ndarray, batch: int) -> dict:
    import torch
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False).eval().to(device)
    half = device.startswith("cuda")
    if half:
        model = model.half()
    images = torch.from_numpy(np.ascontiguousarray(frames[:, :, :, ::-1])).permute(0, 3, 1, 2)
    images = torch.nn.functional.pad(images, (0, 0, 80, 80), value=114)  # 640x480 letterboxed to 640x640

    def run() -> None:
        with torch.inference_mode():
            for start in range(0, len(images), batch):
                chunk = images[start : start + batch].to(device)
                model((chunk.half() if half else chunk.float()) / 255)

    with torch.inference_mode():
        model(images[:1].to(device).to(next(model.parameters()).dtype) / 255)
    seconds = timed(device, run)
    return {"stage": "gripper detector (YOLOv8n @640, batched detection)", "unit": "frames/s",
            "rate": len(frames) / seconds, "items": len(frames), "batch": batch,
            "dtype": "float16" if half else "float32"}  # fmt: skip


def captioner(
    device: str, config: dict, prompt: int, new_tokens: int, batches: tuple[int, ...]
) -> list[dict]:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(Qwen2Config(**config, torch_dtype=dtype)).to(dtype).eval()
    rows = []
    for batch in batches:
        ids = torch.randint(0, config["vocab_size"], (batch, prompt), device=device)
        options = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        with torch.inference_mode():
            model.generate(ids[:, :16], max_new_tokens=2, do_sample=False, pad_token_id=0)  # warm-up
            seconds = timed(device, lambda ids=ids, options=options: model.generate(ids, **options))
        rows.append({"stage": f"captioner language model ({config['num_hidden_layers']} layers x {config['hidden_size']}), batch {batch}",
                     "unit": "tokens/s", "rate": batch * new_tokens / seconds, "items": batch * new_tokens,
                     "batch": batch, "dtype": str(dtype).removeprefix("torch.")})  # fmt: skip
    return rows


def pixels(device: str, pairs: int) -> dict:
    gt = frames_640x480(pairs, seed=1)
    pred = np.clip(gt.astype(np.int16) + np.random.default_rng(2).integers(-12, 13, gt.shape), 0, 255).astype(
        np.uint8
    )
    if device.startswith("cuda"):
        from ewmbench.metrics.pixels_torch import psnr_ssim

        psnr_ssim(pred[:2], gt[:2], device)
        seconds = timed(device, lambda: psnr_ssim(pred, gt, device))
        path = "pixels_torch (float64 ratio, exact window sums)"
    else:
        from ewmbench.metrics.fidelity import psnr, ssim

        seconds = timed(device, lambda: (psnr(pred, gt), ssim(pred, gt)))
        path = f"numpy/OpenCV on {min(8, os.cpu_count() or 1)} threads"
    return {"stage": f"PSNR + SSIM, 640x480 pairs ({path})", "unit": "pairs/s", "rate": pairs / seconds,
            "items": pairs, "batch": pairs, "dtype": "uint8 in, float64 ratio"}  # fmt: skip


def projection(rows: list[dict]) -> list[tuple[str, float]]:
    """Hours of each stage for the full benchmark at the measured rates."""
    rate = {r["stage"].split(" (")[0].split(",")[0]: r["rate"] for r in rows}
    frames = FULL_VIDEOS * FRAMES_PER_VIDEO
    out = []
    for name, label, items in (
        ("DINOv2 ViT-B/14 @518", "scene consistency: every frame of 4,000 videos", frames),
        ("CLIP ViT-B/32 @224", "diversity: every frame of 3,000 trials", FULL_TRIALS * FRAMES_PER_VIDEO),
        ("gripper detector", "tracks: every frame of 4,000 videos", frames),
        ("PSNR + SSIM", "PSNR + SSIM: 3,000 trials", FULL_TRIALS * FRAMES_PER_VIDEO),
    ):
        if name in rate:
            out.append((label, items / rate[name] / 3600))
    tokens = [r for r in rows if r["unit"] == "tokens/s"]
    if tokens:
        best = max(r["rate"] for r in tokens)
        out.append(
            ("captions: 4,000 videos x ~400 generated tokens (best batch)", FULL_VIDEOS * 400 / best / 3600)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda (default when visible) or cpu")
    parser.add_argument("--json", dest="json_path", help="also write the results here")
    args = parser.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    full = device.startswith("cuda")
    size = (
        dict(dino=256, dino_batch=32, clip=1024, clip_batch=256, det=512, det_batch=32, pixels=256,
             text=QWEN25_7B_TEXT, prompt=1024, new=128, batches=(1, 4))
        if full
        else dict(dino=4, dino_batch=4, clip=32, clip_batch=32, det=16, det_batch=8, pixels=16,
                  text=REDUCED_TEXT, prompt=256, new=16, batches=(1, 4))
    )  # fmt: skip
    name = torch.cuda.get_device_name(0) if full else (platform.processor() or platform.machine())
    print(f"device: {device} ({name}); torch {torch.__version__}; {torch.get_num_threads()} CPU threads")
    if not full:
        print("REDUCED SIZE on the CPU: fewer frames and a 2-layer language model; not GPU figures")
    started = time.perf_counter()
    frames = frames_640x480(max(size["dino"], size["clip"], size["det"]))
    rows = []
    for stage in (
        lambda: [dino(device, frames[: size["dino"]], size["dino_batch"])],
        lambda: [clip(device, frames[: size["clip"]], size["clip_batch"])],
        lambda: [detector(device, frames[: size["det"]], size["det_batch"])],
        lambda: captioner(device, size["text"], size["prompt"], size["new"], size["batches"]),
        lambda: [pixels(device, size["pixels"])],
    ):
        rows += stage()
        free(device)  # each stage's model is released before the next loads
    print(f"\n{'stage':74s} {'rate':>10s} {'unit':9s} {'items':>6s} {'batch':>5s}  dtype")
    for r in rows:
        print(
            f"{r['stage']:74s} {r['rate']:10.2f} {r['unit']:9s} {r['items']:6d} {r['batch']:5d}  {r['dtype']}"
        )
    print(
        f"\nfull benchmark ({FULL_TRIALS} trials, {FULL_VIDEOS} videos of ~{FRAMES_PER_VIDEO} frames) at these rates"
        + ("" if full else " (CPU, reduced: the captioner row uses the 2-layer model)")
        + ":"
    )
    for label, hours in projection(rows):
        print(f"  {label:70s} {hours:8.2f} h")
    print(f"\nsuite wall time: {time.perf_counter() - started:.0f} s")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"device": device, "name": name, "full_size": full, "rows": rows,
                                                    "projection_hours": dict(projection(rows))}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
