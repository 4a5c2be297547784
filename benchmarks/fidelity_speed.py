"""PSNR/SSIM speed: the official approach (scikit-image per frame) against ours, same numbers.

python benchmarks/fidelity_speed.py [--frames 24] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ewmbench.metrics.fidelity import psnr_frame, ssim_frame


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (args.frames, 480, 640, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-25, 25, gt.shape), 0, 255).astype(np.uint8)

    official_ssim = [
        structural_similarity(g, p, data_range=255, win_size=7, channel_axis=-1) for p, g in zip(pred, gt)
    ]
    ours_ssim = [ssim_frame(p, g) for p, g in zip(pred, gt)]
    assert np.allclose(official_ssim, ours_ssim, rtol=1e-12, atol=0), "SSIM differs from scikit-image"
    official_psnr = [peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(pred, gt)]
    assert np.allclose(official_psnr, [psnr_frame(p, g) for p, g in zip(pred, gt)], rtol=1e-12, atol=0)

    # Interleaved repeats, so the load of a shared machine falls on both sides alike.
    ssim_times: dict[str, list[float]] = {"scikit-image": [], "ewmbench": []}
    for _ in range(args.repeats):
        ssim_times["scikit-image"].append(
            best_of(
                1,
                lambda: [
                    structural_similarity(g, p, data_range=255, win_size=7, channel_axis=-1)
                    for p, g in zip(pred, gt)
                ],
            )
        )
        ssim_times["ewmbench"].append(best_of(1, lambda: [ssim_frame(p, g) for p, g in zip(pred, gt)]))
    t_official, t_ours = min(ssim_times["scikit-image"]), min(ssim_times["ewmbench"])
    deviation = max(abs(a - b) for a, b in zip(official_ssim, ours_ssim))
    print(
        f"SSIM, {args.frames} frames of 640x480x3, frame after frame, best of {args.repeats} (max deviation {deviation:.1e}):"
    )
    print(f"  {'':14} {'ms/frame':>9}")
    print(f"  {'scikit-image':14} {1000 * t_official / args.frames:9.1f}")
    print(f"  {'ewmbench':14} {1000 * t_ours / args.frames:9.1f}  ({t_official / t_ours:.1f}x)")


if __name__ == "__main__":
    main()
