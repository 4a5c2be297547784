"""A small simulated dataset for the closed-loop tests: the sample's tasks, head view only, 32x24."""

from __future__ import annotations

from pathlib import Path

from ewmbench.data.layout import write_episode

WIDTH, HEIGHT = 32, 24
FRAMES = 24  # the sample's length: the scripted plans are tuned for it
SEED = 0


def write_sim_dataset(root: Path, tasks=("pick_place", "push", "stack", "handover"), index: int = 0) -> Path:
    """One successful episode per task, rendered small (the physics is the sample's own)."""
    from ewmbench.sim.execute import execute
    from ewmbench.sim.record import (
        FPS,
        RecordedEpisode,
        episode_sidecar,
        plan_successful,
    )
    from ewmbench.sim.tasks import TASKS

    for name in tasks:
        plan, actions, attempt = plan_successful(SEED, name, index, FRAMES, FPS)
        recording = execute(plan.spec, actions, FPS, views=("head",), width=WIDTH, height=HEIGHT)
        success, details = plan.check(recording, plan.spec)
        sidecar = episode_sidecar(
            RecordedEpisode(TASKS[name], index, plan, actions, recording, success, details, attempt),
            SEED,
            FPS,
        )
        sidecar.views = ["head"]
        sidecar.extrinsics = {"head": sidecar.extrinsics["head"]}
        sidecar.intrinsics = {"head": sidecar.intrinsics["head"]}
        write_episode(
            root, str(TASKS[name].id), str(index), recording.frames["head"], plan.instruction, sidecar=sidecar
        )
    return root
