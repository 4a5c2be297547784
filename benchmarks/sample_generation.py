"""Time the generation of the default sample dataset (4 tasks x 2 episodes x 24 frames, 3 views).

    PYTHONPATH=. python benchmarks/sample_generation.py [--episodes-per-task N] [--frames N]

Prints wall-clock and CPU seconds, worker processes included (CPU time is the fairer figure on a
shared machine)
and the per-frame cost of physics plus rendering three 640x480 views.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from ewmbench.sim.sample import DEFAULT_EPISODES_PER_TASK, DEFAULT_FRAMES, generate_sample, task_names


def _cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes-per-task", type=int, default=DEFAULT_EPISODES_PER_TASK)
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--workers", type=int, default=None, help="default: one per core, at most 4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        out = generate_sample(
            Path(tmp) / "sample",
            episodes_per_task=args.episodes_per_task,
            num_frames=args.frames,
            progress=False,
            workers=args.workers,
        )
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    episodes = len(task_names()) * args.episodes_per_task
    frames = episodes * args.frames
    print(f"{episodes} episodes x {args.frames} frames x 3 views at 640x480")
    print(
        f"wall {wall:.1f} s, cpu {cpu:.1f} s, {1000 * cpu / frames:.0f} ms cpu per frame (3 views), {size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
