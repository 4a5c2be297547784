"""Tiny synthetic datasets in the official layout, written through our writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ewmbench.data.layout import Sidecar, write_episode


def moving_square_frames(num_frames: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A deterministic clip: a textured background and a square moving left to right."""
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 200, size=(height, width, 3), dtype=np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0).copy()
    for t in range(num_frames):
        x = 4 + t * 4
        frames[t, 10:22, x : x + 12] = (250, 30, 30)
    return frames


def make_ground_truth(
    root: Path, tasks=("1", "2"), episodes=("10", "11"), num_frames: int = 6, actions: bool = False
) -> Path:
    """A tiny GT dataset; ``actions``: each episode's sidecar also holds its poses as actions."""
    for task_index, task in enumerate(tasks):
        for episode_index, episode in enumerate(episodes):
            frames = moving_square_frames(num_frames, seed=task_index * 10 + episode_index)
            eef = np.zeros((num_frames, 14))
            eef[:, 0] = np.linspace(0.1, 0.3, num_frames)
            write_episode(
                root,
                task,
                episode,
                frames,
                instruction=f"move the red block (task {task})",
                sidecar=Sidecar(
                    fps=10,
                    substeps=["reach", "push"],
                    eef_pose=eef,
                    actions=eef.copy() if actions else None,
                    meta={"task_name": f"task{task}"},
                ),
            )
    return root


def sample_dataset(tmp: Path) -> Path:
    """The default sample when it is already generated in the cache; otherwise generated under ``tmp`` (minutes)."""
    import json

    from ewmbench.sim.sample import MARKER, default_sample_path, generate_sample

    shared = default_sample_path()
    marker = shared / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("complete"):
        return shared
    return generate_sample(tmp / "sample", progress=False)
