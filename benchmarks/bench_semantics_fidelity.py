"""Throughput of the replay-fidelity feature networks (real-size architectures, random weights:
the cost is the same as with real weights) and the captioner's visual-token arithmetic.

    PYTHONPATH=. python benchmarks/bench_semantics_fidelity.py [--frames 16] [--device cpu]

Prints frames/s for LPIPS (AlexNet, 480x640 pairs) and the FID InceptionV3 (resized to 299), and
for typical EWMBench clip lengths the frames the captioner samples, their resized size and the
visual tokens Qwen2.5-VL sees.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ewmbench.perception import replay_networks as rf
from ewmbench.perception.captioner import FrameSampling, sample_frame_count, smart_resize, video_max_pixels


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def visual_tokens(
    n_frames: int, height: int = 480, width: int = 640, sampling: FrameSampling = FrameSampling()
) -> tuple[int, tuple[int, int], int]:
    n = sample_frame_count(n_frames, sampling)
    h, w = smart_resize(
        height, width, sampling.pixel_factor, sampling.min_pixels, video_max_pixels(n, sampling)
    )
    # patches of 14x14 over 2 frames, merged 2x2 into one token
    return n, (h, w), (n // 2) * (h // 14) * (w // 14) // 4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (args.frames, 480, 640, 3), dtype=np.uint8)
    other = rng.integers(0, 255, (args.frames, 480, 640, 3), dtype=np.uint8)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {args.frames} frames of 480x640")

    model = rf.build_lpips(None).to(args.device)
    seconds = timed(lambda: rf.lpips_frames(model, frames, other, batch_size=args.frames), args.repeats)
    print(f"LPIPS (AlexNet)       {args.frames / seconds:8.1f} frame pairs/s")

    model = rf.build_fid_inception(None).to(args.device)
    seconds = timed(lambda: rf.fid_frame_features(model, frames, batch_size=args.frames), args.repeats)
    print(f"FID InceptionV3       {args.frames / seconds:8.1f} frames/s")

    print("captioner input (640x480 at 30 fps):")
    for n_frames in (60, 150, 300, 600):
        n, size, tokens = visual_tokens(n_frames)
        print(
            f"  {n_frames:4d} frames ({n_frames / 30:4.1f} s): {n:3d} sampled, resized {size[0]}x{size[1]}, {tokens:6d} visual tokens"
        )


if __name__ == "__main__":
    main()
