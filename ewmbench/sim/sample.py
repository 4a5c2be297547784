"""The ``sample`` dataset: physics-simulated episodes with exact ground truth, generated offline.

``generate_sample`` writes episodes in the official layout plus our sidecar (and the marker
:mod:`ewmbench.data.datasets` reads); ``--dataset sample`` resolves there, generating the default
sample into the cache on first use.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ewmbench.data.datasets import MARKER, MARKER_FORMAT, read_sample_marker
from ewmbench.data.layout import SIDECAR_DIR, write_episode
from ewmbench.errors import ConfigError, DataError
from ewmbench.files import write_json
from ewmbench.sim.record import FPS, GENERATOR, episode_sidecar, min_frames, record_episode
from ewmbench.sim.tasks import TASKS

DEFAULT_SEED = 0
DEFAULT_EPISODES_PER_TASK = 2
DEFAULT_FRAMES = 24
MAX_FRAMES = 600
MAX_SEED = 2**31  # exclusive


def task_names() -> list[str]:
    return list(TASKS)


def parse_tasks(text: str | None) -> list[str] | None:
    """``"pick_place,push"`` -> ``["pick_place", "push"]``; unknown names raise ConfigError."""
    if text is None or not text.strip():
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    _check_tasks(names)
    return names


def _check_tasks(names: list[str]) -> None:
    valid = task_names()
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(f"unknown task(s) {', '.join(unknown)}; valid tasks: {', '.join(valid)}")
    if not names:
        raise ConfigError(f"no tasks given; valid tasks: {', '.join(valid)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"tasks listed more than once: {', '.join(names)}")


def _check_parameters(seed: int, tasks: list[str], episodes_per_task: int, num_frames: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise ConfigError(f"seed must be an integer with 0 <= seed < 2**31, got {seed!r}")
    _check_tasks(tasks)
    if isinstance(episodes_per_task, bool) or not isinstance(episodes_per_task, int) or episodes_per_task < 1:
        raise ConfigError(f"episodes per task must be a positive integer, got {episodes_per_task!r}")
    shortest = max(min_frames(t) for t in tasks)
    if (
        isinstance(num_frames, bool)
        or not isinstance(num_frames, int)
        or not shortest <= num_frames <= MAX_FRAMES
    ):
        raise ConfigError(
            f"frames must be an integer from {shortest} to {MAX_FRAMES} for tasks {', '.join(tasks)}, got {num_frames!r}"
        )


def generate_sample(
    output: Path,
    seed: int = DEFAULT_SEED,
    tasks: list[str] | None = None,
    episodes_per_task: int = DEFAULT_EPISODES_PER_TASK,
    num_frames: int = DEFAULT_FRAMES,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Generate a sample dataset into ``output`` and return it.

    ``output`` must be absent, empty, or a sample folder (it holds ``ewmbench_sample.json``) made
    with the same parameters: then only missing episodes are generated and a complete sample is
    returned untouched. Anything else is refused, so a user's data is never overwritten.
    ``workers`` processes simulate episodes in parallel (default: one per core, at most four);
    the files do not depend on it.
    """
    tasks = list(tasks) if tasks is not None else task_names()
    _check_parameters(seed, tasks, episodes_per_task, num_frames)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    output = Path(output)
    parameters = {
        "format": MARKER_FORMAT,
        "generator": GENERATOR,
        "seed": seed,
        "tasks": tasks,
        "episodes_per_task": episodes_per_task,
        "num_frames": num_frames,
        "fps": FPS,
    }
    marker = output / MARKER
    if output.exists() and not output.is_dir():
        raise DataError(output, "exists and is not a folder; refusing to overwrite it")
    if output.is_dir() and any(output.iterdir()):
        existing = read_sample_marker(output)
        if existing is None:
            raise DataError(
                output,
                f"folder exists, is not empty and is not a sample dataset (no {MARKER}); refusing to write into it",
            )
        if {k: v for k, v in existing.items() if k != "complete"} != parameters:
            raise DataError(
                output,
                f"holds a sample made with other parameters ({_describe(existing)}); choose another folder or delete it",
            )
        if existing.get("complete"):
            return output
    output.mkdir(parents=True, exist_ok=True)
    _write_marker(marker, {**parameters, "complete": False})
    _generate_episodes(
        output,
        seed,
        tasks,
        episodes_per_task,
        num_frames,
        progress,
        default_workers() if workers is None else workers,
    )
    _write_marker(marker, {**parameters, "complete": True})
    return output


def _generate_episodes(
    output: Path,
    seed: int,
    tasks: list[str],
    episodes_per_task: int,
    num_frames: int,
    progress: bool,
    workers: int,
) -> None:
    jobs = [(name, index) for name in tasks for index in range(episodes_per_task)]
    # An episode whose sidecar exists was written completely (episodes are renamed into place
    # when done) by an earlier, interrupted generation.
    todo = [
        (n, i)
        for n, i in jobs
        if not (output / str(TASKS[n].id) / str(i) / SIDECAR_DIR / "meta.json").is_file()
    ]
    columns = (
        TextColumn("sample dataset"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        job = bar.add_task("", total=len(jobs), completed=len(jobs) - len(todo))
        if workers == 1:
            for name, index in todo:
                bar.update(job, description=f"{name} episode {index}")
                write_sample_episode(output, seed, name, index, num_frames)
                bar.advance(job)
            return
        # Episodes are independent simulations, so processes give the same bytes as one loop.
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = {
                pool.submit(write_sample_episode, output, seed, n, i, num_frames): (n, i) for n, i in todo
            }
            for future in as_completed(futures):
                future.result()
                name, index = futures[future]
                bar.update(job, description=f"{name} episode {index}")
                bar.advance(job)


def write_sample_episode(output: Path, seed: int, name: str, index: int, num_frames: int) -> None:
    """Simulate, render and write one episode (``<output>/<task id>/<index>/``)."""
    episode = record_episode(seed, name, index, num_frames, FPS)
    write_episode(
        output,
        str(TASKS[name].id),
        str(index),
        episode.recording.frames["head"],
        episode.plan.instruction,
        sidecar=episode_sidecar(episode, seed, FPS),
        extra_views={v: episode.recording.frames[v] for v in ("hand_left", "hand_right")},
    )


def default_workers() -> int:
    """Processes for generation: one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def _write_marker(path: Path, data: dict) -> None:
    write_json(path, data, sort_keys=True)


def _describe(parameters: dict) -> str:
    keys = ("seed", "tasks", "episodes_per_task", "num_frames", "generator")
    return ", ".join(f"{k}={parameters.get(k)}" for k in keys)
