"""Generation: the plan's model writes ``trials`` trials per ground-truth episode, in the official
layout (``<output>/<model>_dataset/<task>/<episode>/<trial>/``).

The model is called through :mod:`ewmbench.models.invoke` (batching, result checks, conforming to
the ground truth's frames, the frame-0 rule). A trial already written is kept, so a killed run
resumes; every trial's seed depends only on the run seed and its ids.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import Progress

from ewmbench.data.layout import HEAD_VIEW, Episode, Generated, GroundTruth, write_trial
from ewmbench.data.video import list_frames, video_size
from ewmbench.errors import DataError
from ewmbench.files import json_safe
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import CONDITIONING, Capabilities
from ewmbench.models.invoke import batch_size, call_model, conform_result, load_model
from ewmbench.models.request import GenerationRequest
from ewmbench.run.plan import Plan


def trial_seed(base_seed: int, task: str, episode: str, trial: str) -> int:
    """A per-trial seed that depends only on the run seed and the trial's ids."""
    return (base_seed * 1_000_003 + zlib.crc32(f"{task}/{episode}/{trial}".encode())) % (2**31)


@dataclass
class LoadedModel:
    """The plan's adapter, loaded on its device, with what provenance records of it."""

    model: WorldModel
    device: str

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def source(self) -> str:
        cls = type(self.model)
        return f"{cls.__module__}:{cls.__qualname__}"

    def record(self) -> dict:
        return {
            "name": self.model.name,
            "source": self.source,
            "oracle": self.model.oracle,
            "device": self.device,
            "config": self.model.config(),
            "capabilities": self.model.capabilities_now().describe(),
            "status": self.model.status,
        }


def load_plan_model(plan: Plan) -> LoadedModel:
    """Load the weights of the plan's model (opened and checked by pre-flight) on the device
    pre-flight chose for it, through :func:`ewmbench.models.invoke.load_model`."""
    return LoadedModel(plan.model, load_model(plan.model, plan.model_device))


def generate(
    plan: Plan,
    gt: GroundTruth,
    loaded: LoadedModel,
    progress: Progress | None = None,
) -> Generated:
    """Generate the plan's trials per episode into ``<output>/<model>_dataset``; trials already
    written are kept."""
    model = loaded.model
    root = plan.output / f"{loaded.name}_dataset"
    trial_ids = [str(i) for i in range(1, plan.config.trials + 1)]
    todo = [
        (e, t) for e in gt.episodes for t in trial_ids if not _trial_complete(root / e.task / e.episode / t)
    ]
    total = len(gt.episodes) * len(trial_ids)
    task = None
    if progress and todo:
        kept = f"; {total - len(todo)} of {total} kept from before" if len(todo) < total else ""
        task = progress.add_task(f"generate ({model.name}{kept})", total=len(todo))
    elif progress:
        progress.console.print(f"generate ({model.name}): all {total} trials were written before; resuming")
    size = batch_size(model)
    for start in range(0, len(todo), size):
        batch = todo[start : start + size]
        requests = [
            build_request(e, t, trial_seed(plan.config.seed, e.task, e.episode, t), model).validate()
            for e, t in batch
        ]
        results = call_model(model, requests, [e for e, _ in batch])
        for (episode, trial), request, result in zip(batch, requests, results):
            write_generated_trial(root, episode, trial, request, result, loaded)
            if task is not None:
                progress.advance(task)
    return Generated(root)


def write_generated_trial(
    root: Path, episode: Episode, trial: str, request: GenerationRequest, result, loaded: LoadedModel
) -> None:
    """Conform every view to the GT's frame count and size, and write the trial with its sidecar."""
    sizes = {}
    for view in request.views:
        sizes[view] = (request.height, request.width)
        if view != HEAD_VIEW:
            try:
                _, height, width = video_size(episode.video_path(view))
                sizes[view] = (height, width)
            except DataError:
                pass  # no GT for this view: the head view's size
    frames, state, reports = conform_result(request, result, sizes, result.info.get("fps"), request.fps)
    meta = {
        "model": loaded.name,
        "oracle": loaded.model.oracle,
        "model_config": loaded.model.config(),
        "seed": request.seed,
        "embodiment": _embodiment(episode),
        "views": list(request.views),
        "conform": reports,
        "info": json_safe(result.info),
        "state": sorted(state),
    }
    extra = {v: f for v, f in frames.items() if v != HEAD_VIEW}
    write_trial(
        root,
        episode.task,
        episode.episode,
        trial,
        frames[HEAD_VIEW],
        extra_views=extra,
        meta=meta,
        arrays=state,
    )


def _embodiment(episode: Episode) -> str | None:
    sidecar = episode.sidecar
    value = (sidecar.meta.get("embodiment") or sidecar.meta.get("generator")) if sidecar else None
    return str(value) if value else None


def _trial_complete(path: Path) -> bool:
    # write_trial renames a finished trial into place, so a trial folder exists only when complete.
    return (path / "video").is_dir() and bool(list_frames(path / "video"))


def build_request(
    episode: Episode, trial: str, seed: int, model: WorldModel | None = None
) -> GenerationRequest:
    """The request for one trial: only the conditioning the adapter declares, as plain data."""
    num_frames, height, width = video_size(episode.video_path())
    sidecar = episode.sidecar
    caps = (
        model.capabilities_now() if model is not None else Capabilities(conditioning=frozenset(CONDITIONING))
    )
    conditioning = caps.conditioning
    views = tuple(v for v in caps.required_views if v in episode.views) or (HEAD_VIEW,)
    request = GenerationRequest(
        task=episode.task,
        episode=episode.episode,
        trial=trial,
        seed=seed,
        num_frames=num_frames,
        fps=sidecar.fps if sidecar else None,
        height=height,
        width=width,
        views=views,
        embodiment=_embodiment(episode),
    )
    if "text" in conditioning:
        request.instruction = episode.instruction
        request.substeps = list(sidecar.substeps) if sidecar else []
    if "image" in conditioning:
        request.memory_frames = {view: episode.initial_frame(view)[None] for view in views}
    if sidecar is None:
        return request
    if "actions" in conditioning and sidecar.actions is not None:
        request.actions = np.asarray(sidecar.actions)[:num_frames]
        request.action_space = "eef14-euler"
    if "calibration" in conditioning:
        request.intrinsics = {v: np.asarray(k) for v, k in sidecar.intrinsics.items() if v in views}
        request.extrinsics = {
            v: np.asarray(e)[:num_frames] for v, e in sidecar.extrinsics.items() if v in views
        }
    if "scene" in conditioning and "scene" in sidecar.meta:
        request.scene = {k: sidecar.meta[k] for k in ("scene", "subject") if k in sidecar.meta}
    if "joints" in conditioning and sidecar.joint_positions is not None:
        request.joint_positions = np.asarray(sidecar.joint_positions)[:num_frames]
        if "joint_names" in sidecar.meta:
            request.extra["joint_names"] = list(sidecar.meta["joint_names"])
    return request
