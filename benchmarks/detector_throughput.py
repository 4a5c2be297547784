"""Gripper tracking throughput: frames per second of the trajectory stage on this machine.

    PYTHONPATH=. python benchmarks/detector_throughput.py [--weights W] [--frames 60] [--device cpu]

Without --weights it uses the shipped sample detector (or, if absent, an untrained yolov8n built
from its config: same network cost). Frames are synthetic 640x480 images; the timing covers
what `track_video` does per video (fresh model, per-frame BoT-SORT tracking) minus decoding, and
separately plain batched detection (``predict``) for comparison. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--protocol", default="ewmbench-v1")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    from ewmbench.perception.detector import (
        TrackingSettings,
        load_detector,
        predict_options,
        prepare_frame,
        track_frames,
    )
    from ewmbench.perception.detector_weights import shipped_detector
    from ewmbench.protocols import load_protocol
    from tests.helpers.detector import draw_frames, synthetic_poses, untrained_detector

    settings = TrackingSettings.from_protocol(load_protocol(args.protocol))
    weights = args.weights or shipped_detector("ewmbench.sim/1")
    label = str(weights) if weights else "untrained yolov8n (2 classes)"
    if weights is None:
        weights = untrained_detector(Path(tempfile.mkdtemp()) / "untrained.pt")
    frames = draw_frames(synthetic_poses(args.frames, seed=0))

    track_frames(frames[:3], weights, settings, device=args.device)  # warm-up (imports, kernels)
    start = time.perf_counter()
    track_frames(frames, weights, settings, device=args.device)
    tracking = time.perf_counter() - start

    model = load_detector(weights, settings)
    inputs = [prepare_frame(f, settings) for f in frames]
    options = {k: v for k, v in predict_options(settings, args.device).items() if k != "tracker"}
    model.predict(inputs[:2], **options)
    start = time.perf_counter()
    for i in range(0, len(inputs), args.batch):
        model.predict(inputs[i : i + args.batch], **options)
    batched = time.perf_counter() - start

    print(json.dumps({
        "weights": label,
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "frames": args.frames,
        "imgsz": settings.imgsz or model.overrides.get("imgsz", 640),
        "tracking_fps": round(args.frames / tracking, 2),
        "batched_predict_fps": round(args.frames / batched, 2),
        "predict_batch": args.batch,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
