"""Refusals made before the first generation: the dataset holds what the adapter is conditioned
on, and the device it asks for exists."""

from __future__ import annotations

from pathlib import Path

from ewmbench.errors import ConfigError, DataError
from ewmbench.models.adapter import WorldModel


def check_request_fits(
    model: WorldModel, episode_views: list[str], fields_present: dict[str, bool], where: Path | str
) -> None:
    """Refuse, before any generation, a dataset that lacks what the adapter is conditioned on.

    ``fields_present`` maps sidecar fields (``actions``, ``intrinsics/<view>``,
    ``extrinsics/<view>``, ``scene``, ``instruction``) to whether the episode has them.
    """
    caps = model.capabilities_now()
    missing_views = [v for v in caps.required_views if v not in episode_views]
    if missing_views:
        raise DataError(
            where,
            f"model {model.name!r} needs view(s) {missing_views}; the episode has {episode_views} (sidecar meta `views`)",
        )
    need: list[str] = []
    if "actions" in caps.conditioning:
        need.append("actions")
    if "calibration" in caps.conditioning:
        for view in caps.required_views:
            need += [f"intrinsics/{view}", f"extrinsics/{view}"]
    if "scene" in caps.conditioning:
        need.append("scene")
    if "joints" in caps.conditioning:
        need.append("joint_positions")
    missing = [name for name in need if not fields_present.get(name)]
    if missing:
        where_text = {"scene": "sidecar meta.json `scene`"}
        names = ", ".join(f"`{m}` ({where_text.get(m, 'sidecar arrays.npz')})" for m in missing)
        raise DataError(
            where,
            f"model {model.name!r} is conditioned on {sorted(caps.conditioning)} but the episode lacks {names}",
        )


def check_device(model: WorldModel, requested: str | None, cuda_available: bool) -> str:
    """The device to load on. A GPU-only adapter on a machine without one is refused, unless the
    user asked for ``--device cpu`` explicitly (that is how tiny test models run)."""
    if requested is None:
        if cuda_available:
            return "cuda"
        if model.needs_gpu:
            raise ConfigError(
                f"model {model.name!r} needs a GPU and no CUDA device is available here; "
                "pass --device cpu to run it on the CPU anyway (practical only for tiny models)"
            )
        return "cpu"
    if requested.startswith("cuda") and not cuda_available:
        raise ConfigError(f"--device {requested} was asked for, but no CUDA device is available here")
    return requested
