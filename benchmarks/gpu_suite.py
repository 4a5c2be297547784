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
- batched across videos vs one video at a time (``batch_across_videos``), DINOv2 and CLIP
  frames/s on short videos (21 frames, where a video's last pass is mostly empty), and the
  largest difference of the similarities / embeddings between the two;
- precision: scene consistency and diversity computed in float32, in float16 (the protocols'
  GPU default) and under bfloat16 autocast (``gpu_dtype: bfloat16-autocast``), the largest
  deviation of each metric value from float32, and DINOv2 frames/s in each;

and projects the full benchmark (1,000 episodes x 3 trials, about 105 frames per video, 4,000
videos) from those rates. Every network is real-size with random weights (no download): the
arithmetic, and so the time, is that of the real weights (the deviations are those of random
weights on synthetic frames, an indication, not the trained encoders' figure).

On a CPU it runs the same stages at a reduced size (fewer frames; a 2-layer, 512-wide language
model instead of the 7B one; for the batching and precision stages a DINOv2 ViT-S/14 at 224 and
autocast on the CPU) and says so: those figures are for checking the script, not for reading as
GPU numbers. ``--skip STAGE`` leaves stages out (dino, clip, detector, captioner, pixels,
batching, precision).
"""

from __future__ import annotations

import argparse
import functools
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
DINO_VITS14_224 = {  # the CPU's stand-in for the batching and precision stages
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 6,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 224,
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
    return timed_result(device, run)[1]


def timed_result(device: str, run):
    """``run()``'s result and the seconds it took (the device synchronised on both sides)."""
    synchronize(device)
    start = time.perf_counter()
    result = run()
    synchronize(device)
    return result, time.perf_counter() - start


def frames_640x480(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, 480, 640, 3))
    return np.clip(base + rng.integers(-8, 8, size=(count, 480, 640, 3)), 0, 255).astype(np.uint8)


def free(device: str) -> None:
    """Release the last stage's model (gone with its function's frame, or held by the loaded-model
    cache) before the next loads."""
    import gc

    import torch

    from ewmbench.perception.model_cache import free_models

    free_models()
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


def _videos(count: int, frames: int, seed: int) -> list[np.ndarray]:
    """``count`` videos of ``frames`` 640x480 frames each, each with its own scene."""
    return [frames_640x480(frames, seed=seed + index) for index in range(count)]


def _encoder_settings(metric: str, config: dict, image_size: int, batch: int, gpu_dtype: str) -> dict:
    from ewmbench.protocols import load_protocol

    settings = dict(load_protocol("ewmbench-v1").settings(metric))
    return {
        **settings,
        "random_init": config,
        "image_size": image_size,
        "batch_size": batch,
        "gpu_dtype": gpu_dtype,
    }


def batching(
    device: str, dino_config: dict, videos: list[np.ndarray], dino_batch: int, clip_batch: int
) -> list[dict]:
    """Frames/s one video at a time and across videos, through the metrics' own functions."""
    from ewmbench.metrics.diversity import embeddings_across_videos, video_embeddings
    from ewmbench.metrics.scene import similarities_across_videos, video_similarities

    frames = sum(len(v) for v in videos)
    sources = [(f"video {i}", lambda v=v: v) for i, v in enumerate(videos)]
    rows = []
    for label, settings, warm_up, alone, together, batch in (
        (
            f"DINOv2 ({dino_config['hidden_size']} wide) @{dino_config['image_size']}",
            _encoder_settings(
                "scene_consistency", dino_config, dino_config["image_size"], dino_batch, "float16"
            ),
            lambda s: video_similarities(videos[0][:2], s, device),
            lambda s: [video_similarities(v, s, device) for v in videos],
            lambda s: [x for _, x in sorted(similarities_across_videos(sources, s, device))],
            dino_batch,
        ),
        (
            "CLIP ViT-B/32 @224",
            _encoder_settings(
                "diversity", {"architecture": "ViT-B-32", "quick_gelu": True}, 224, clip_batch, "float16"
            ),
            lambda s: video_embeddings(videos[0][:2], s, device),
            lambda s: [video_embeddings(v, s, device) for v in videos],
            lambda s: [x for _, x in sorted(embeddings_across_videos(sources, s, device).items())],
            clip_batch,
        ),
    ):
        warm_up(settings)  # and the model load
        results = {}
        for mode, run in (("one video at a time", alone), ("across videos", together)):
            # best of two: the first pass over new batch shapes also pays for kernel selection
            runs = [timed_result(device, functools.partial(run, settings)) for _ in range(2)]
            results[mode], seconds = runs[0][0], min(seconds for _, seconds in runs)
            rows.append({"stage": f"{label}, {mode} ({len(videos)} videos x {len(videos[0])} frames)",
                         "unit": "frames/s", "rate": frames / seconds, "items": frames, "batch": batch, "variant": mode,
                         "dtype": "float16" if device.startswith("cuda") else "float32"})  # fmt: skip
        difference = max(
            float(np.abs(a - b).max())
            for a, b in zip(results["one video at a time"], results["across videos"])
        )
        rows[-1]["max_difference"] = difference
        free(device)
    return rows


def precision(
    device: str, dino_config: dict, videos: list[np.ndarray], dino_batch: int, clip_batch: int
) -> list[dict]:
    """Scene consistency (each video) and diversity (the videos as one episode's trials) in
    float32, float16 weights and bfloat16 autocast: each value's largest deviation from float32."""
    import torch

    from ewmbench.metrics.diversity import diversity_from_embeddings
    from ewmbench.metrics.scene import PairAccumulator, score_from_similarities
    from ewmbench.perception.encoders import ClipImageEncoder, DinoTokenEncoder

    scene = _encoder_settings(
        "scene_consistency", dino_config, dino_config["image_size"], dino_batch, "float32"
    )
    clip_config = {"architecture": "ViT-B-32", "quick_gelu": True}
    diversity = _encoder_settings("diversity", clip_config, 224, clip_batch, "float32")
    precisions = (("float32", torch.float32, None), ("float16", torch.float16, None),
                  ("bfloat16-autocast", torch.float32, torch.bfloat16))  # fmt: skip
    frames = sum(len(v) for v in videos)
    values, rows = {}, []
    for name, dtype, autocast in precisions:
        try:
            dino = DinoTokenEncoder.from_config(dino_config, device, dtype, autocast=autocast)

            def scene_scores(dino=dino) -> list[float]:
                out = []
                for video in videos:
                    pairs = PairAccumulator(scene["cosine_axis"], float(scene["cosine_eps"]))
                    for start in range(0, len(video), dino_batch):
                        pairs.add(dino.encode_frames(video[start : start + dino_batch], scene, dino_batch))
                    out.append(score_from_similarities(pairs.result(), scene["clamp_min"]))
                return out

            dino.encode_frames(videos[0][:1], scene, 1)  # warm-up
            values[("scene", name)], seconds = timed_result(device, scene_scores)
            del dino
            free(device)
            clip = ClipImageEncoder.from_config(clip_config, device, dtype, autocast=autocast)
            embeddings = [clip.encode_frames(v, diversity, clip_batch).float().cpu() for v in videos]
            values[("diversity", name)] = [diversity_from_embeddings(embeddings, diversity)]
            del clip
            free(device)
        except RuntimeError as exc:  # a dtype this device cannot run
            print(f"  precision {name}: not run on {device} ({str(exc).splitlines()[0][:80]})")
            free(device)
            continue
        row = {"stage": f"DINOv2 ({dino_config['hidden_size']} wide) @{dino_config['image_size']}, {name}",
               "unit": "frames/s", "rate": frames / seconds, "items": frames, "batch": dino_batch, "dtype": name,
               "variant": name}  # fmt: skip
        if name != "float32":
            row["scene_deviation"] = max(
                abs(a - b) for a, b in zip(values[("scene", name)], values[("scene", "float32")])
            )
            row["diversity_deviation"] = abs(
                values[("diversity", name)][0] - values[("diversity", "float32")][0]
            )
        row["scene_values"] = values[("scene", name)]
        row["diversity_value"] = values[("diversity", name)][0]
        rows.append(row)
    return rows


def projection(rows: list[dict]) -> list[tuple[str, float]]:
    """Hours of each stage for the full benchmark at the measured rates."""
    rate = {r["stage"].split(" (")[0].split(",")[0]: r["rate"] for r in rows if "variant" not in r}
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
    for row in rows:  # the batching and precision variants, as DINOv2 on every frame
        if row.get("variant") and row["stage"].startswith("DINOv2 ("):
            out.append((f"scene consistency at the rate of: {row['stage']}", frames / row["rate"] / 3600))
    tokens = [r for r in rows if r["unit"] == "tokens/s"]
    if tokens:
        best = max(r["rate"] for r in tokens)
        out.append(
            ("captions: 4,000 videos x ~400 generated tokens (best batch)", FULL_VIDEOS * 400 / best / 3600)
        )
    return out


STAGES = ("dino", "clip", "detector", "captioner", "pixels", "batching", "precision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda (default when visible) or cpu")
    parser.add_argument("--json", dest="json_path", help="also write the results here")
    parser.add_argument("--skip", action="append", default=[], choices=STAGES, help="leave a stage out")
    args = parser.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    full = device.startswith("cuda")
    size = (
        dict(dino=256, dino_batch=32, clip=1024, clip_batch=256, det=512, det_batch=32, pixels=256,
             text=QWEN25_7B_TEXT, prompt=1024, new=128, batches=(1, 4),
             small_dino=DINO_VITB14, short_videos=(16, 21), precision_videos=(4, 16), small_batch=16, small_clip_batch=64)
        if full
        else dict(dino=4, dino_batch=4, clip=32, clip_batch=32, det=16, det_batch=8, pixels=16,
                  text=REDUCED_TEXT, prompt=256, new=16, batches=(1, 4),
                  small_dino=DINO_VITS14_224, short_videos=(4, 5), precision_videos=(3, 4), small_batch=4, small_clip_batch=16)
    )  # fmt: skip
    name = torch.cuda.get_device_name(0) if full else (platform.processor() or platform.machine())
    print(f"device: {device} ({name}); torch {torch.__version__}; {torch.get_num_threads()} CPU threads")
    if not full:
        print("REDUCED SIZE on the CPU: fewer frames and a 2-layer language model; not GPU figures")
    started = time.perf_counter()
    frames = frames_640x480(max(size["dino"], size["clip"], size["det"]))
    short = _videos(*size["short_videos"], seed=10)
    sampled = _videos(*size["precision_videos"], seed=20)
    rows = []
    for stage, run in (
        ("dino", lambda: [dino(device, frames[: size["dino"]], size["dino_batch"])]),
        ("clip", lambda: [clip(device, frames[: size["clip"]], size["clip_batch"])]),
        ("detector", lambda: [detector(device, frames[: size["det"]], size["det_batch"])]),
        ("captioner", lambda: captioner(device, size["text"], size["prompt"], size["new"], size["batches"])),
        ("pixels", lambda: [pixels(device, size["pixels"])]),
        (
            "batching",
            lambda: batching(
                device, size["small_dino"], short, size["small_batch"], size["small_clip_batch"]
            ),
        ),
        (
            "precision",
            lambda: precision(
                device, size["small_dino"], sampled, size["small_batch"], size["small_clip_batch"]
            ),
        ),
    ):
        if stage in args.skip:
            continue
        rows += run()
        free(device)  # each stage's model is released before the next loads
    print(f"\n{'stage':90s} {'rate':>10s} {'unit':9s} {'items':>6s} {'batch':>5s}  dtype")
    for r in rows:
        print(
            f"{r['stage']:90s} {r['rate']:10.3f} {r['unit']:9s} {r['items']:6d} {r['batch']:5d}  {r['dtype']}"
        )
    for r in rows:
        if "max_difference" in r:
            print(
                f"  across videos vs one at a time, largest difference of the features: {r['max_difference']:.2e}"
            )
    deviations = [r for r in rows if "scene_deviation" in r]
    if deviations:
        print(
            "\nprecision: largest deviation of the metric values from float32 (random weights, synthetic frames)"
        )
        for r in deviations:
            print(
                f"  {r['dtype']:18s} scene consistency {r['scene_deviation']:.2e}  diversity {r['diversity_deviation']:.2e}"
            )
    print(
        f"\nfull benchmark ({FULL_TRIALS} trials, {FULL_VIDEOS} videos of ~{FRAMES_PER_VIDEO} frames) at these rates"
        + ("" if full else " (CPU, reduced: the captioner row uses the 2-layer model)")
        + ":"
    )
    for label, hours in projection(rows):
        print(f"  {label:100s} {hours:10.2f} h")
    print(f"\nsuite wall time: {time.perf_counter() - started:.0f} s")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"device": device, "name": name, "full_size": full, "rows": rows,
                                                    "projection_hours": dict(projection(rows))}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
