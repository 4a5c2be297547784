"""Closed-loop steps per second on the CPU: the scripted expert acting in the ``sim`` world model.

A step is one frame of the rollout (the policy's action executed, physics advanced, the views
rendered); a policy call covers ``chunk`` steps. Three settings run side by side in one process so
machine load affects them alike: the world model rendering the head view at the given size, all
three views, and nothing (the reference simulator's state-only mode). Also shown: the same rollout
through one live simulation versus replaying the history at every chunk (what a world model
without a live simulation would cost).

    PYTHONPATH=. python benchmarks/closed_loop_speed.py --episodes 4 --size 160x120
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ewmbench.loop.policies import parse_policy_spec
from ewmbench.loop.rollout import LoopConfig, evaluate_policy


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of the rendered views")
    parser.add_argument("--chunk", type=int, default=4, help="actions per policy call")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    spec = parse_policy_spec(f"scripted:chunk={args.chunk}")
    base = Path(tempfile.mkdtemp(prefix="closed-loop-"))
    config = LoopConfig(
        spec, "sim", base, dataset=args.dataset, episodes=args.episodes, height=height, width=width
    )
    settings = [
        ("sim, head view", dict(views=("head",))),
        ("sim, 3 views", dict(views=("head", "hand_left", "hand_right"))),
        ("sim, no rendering (reference mode)", dict(views=())),
    ]
    print(
        f"scripted expert, chunk {args.chunk}, {args.episodes} episodes, {width}x{height}, shared 2-core CPU"
    )
    print(f"{'setting':40s} {'steps':>6s} {'seconds':>8s} {'steps/s':>8s} {'policy calls/s':>15s}")
    for index, (label, change) in enumerate(settings):
        started = time.perf_counter()
        summary = evaluate_policy(replace(config, output=base / str(index), **change), progress=False)
        seconds = time.perf_counter() - started
        steps = sum(r["steps"] - 1 for r in summary["episodes"])
        calls = sum(r.get("policy_calls", 0) for r in summary["episodes"])
        print(f"{label:40s} {steps:6d} {seconds:8.2f} {steps / seconds:8.1f} {calls / seconds:15.2f}")
    replay_versus_live(config, args.chunk)


def replay_versus_live(config: LoopConfig, chunk: int) -> None:
    """One episode's actions, chunk by chunk: a live simulation versus a fresh model per chunk."""
    import numpy as np

    from ewmbench.data.datasets import resolve_dataset
    from ewmbench.data.layout import GroundTruth
    from ewmbench.models.request import GenerationRequest
    from ewmbench.models.sim import SimModel

    episode = GroundTruth(resolve_dataset(config.dataset)).episodes[0]
    actions = episode.sidecar.actions
    ends = list(range(1 + chunk, len(actions) + 1, chunk)) or [len(actions)]
    scene = {"scene": episode.sidecar.meta["scene"]}

    def request(n):
        start = max(0, n - chunk - 1)
        return GenerationRequest(
            task=episode.task,
            episode=episode.episode,
            trial="1",
            seed=0,
            num_frames=n - start,
            start_frame=start,
            fps=episode.sidecar.fps,
            height=config.height,
            width=config.width,
            actions=actions[:n],
            scene=scene,
        )

    timings = {}
    for label, fresh in (("live simulation", False), ("replay each chunk", True)):
        model = SimModel()
        started = time.perf_counter()
        for n in ends:
            if fresh:
                model.close()
            result = model.generate(request(n))
        timings[label] = (time.perf_counter() - started, result)
        model.close()
    same = np.array_equal(
        timings["live simulation"][1].frames["head"], timings["replay each chunk"][1].frames["head"]
    )  # the last chunk
    print(
        f"one episode, {len(ends)} chunks: live simulation {timings['live simulation'][0]:.2f} s, "
        f"replaying the history each chunk {timings['replay each chunk'][0]:.2f} s; identical frames: {same}"
    )


if __name__ == "__main__":
    main()
