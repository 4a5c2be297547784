"""The one weights manager: every pretrained weight, its source and revision, resolved offline-first.

Resolution order for a weight id: the environment variable ``EWMBENCH_WEIGHTS_<ID>`` (a local
file or folder), a path given in the run configuration, then the Hugging Face cache (never the
network unless :func:`download` is called). A missing weight raises :class:`Unavailable` naming it
and the exact command that fetches it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from ewmbench.errors import ConfigError, Unavailable


@dataclass(frozen=True)
class WeightSpec:
    id: str
    repo: str
    revision: str = "main"
    filename: str | None = None  # None: the whole repository snapshot
    repo_type: str = "model"
    description: str = ""
    used_by: tuple[str, ...] = field(default_factory=tuple)

    @property
    def env_var(self) -> str:
        return "EWMBENCH_WEIGHTS_" + self.id.upper().replace("-", "_").replace(".", "_")

    @property
    def fetch_command(self) -> str:
        return f"ewmbench weights download {self.id}"


@cache
def weight_specs() -> dict[str, WeightSpec]:
    text = (resources.files(__package__) / "weights.yaml").read_text()
    data = yaml.safe_load(text) or {}
    return {
        key: WeightSpec(
            id=key,
            repo=value["repo"],
            revision=str(value.get("revision", "main")),
            filename=value.get("filename"),
            repo_type=value.get("repo_type", "model"),
            description=value.get("description", ""),
            used_by=tuple(value.get("used_by", ())),
        )
        for key, value in data.items()
    }


def spec(weight_id: str) -> WeightSpec:
    specs = weight_specs()
    if weight_id not in specs:
        raise ConfigError(f"unknown weight {weight_id!r}; known weights: {', '.join(sorted(specs))}")
    return specs[weight_id]


def resolve(weight_id: str, local_path: str | Path | None = None) -> Path:
    """A local path holding the weight (a file, or a snapshot folder), without any download."""
    item = spec(weight_id)
    for candidate, origin in ((local_path, "the configured path"), (os.environ.get(item.env_var), item.env_var)):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.exists():
                raise Unavailable(f"weight {weight_id!r}: {origin} {path} does not exist", item.fetch_command)
            return path
    try:
        return _hub_fetch(item, local_files_only=True)
    except Exception as exc:  # huggingface_hub raises several types for "not cached"
        raise Unavailable(
            f"weight {weight_id!r} ({item.repo}{'/' + item.filename if item.filename else ''}) is not in the "
            f"Hugging Face cache ({type(exc).__name__}); or set {item.env_var} to a local copy",
            item.fetch_command,
        ) from None


def is_available(weight_id: str) -> bool:
    try:
        resolve(weight_id)
    except Unavailable:
        return False
    return True


def download(weight_id: str) -> Path:
    """Fetch a weight into the Hugging Face cache (needs the network)."""
    return _hub_fetch(spec(weight_id), local_files_only=False)


def _hub_fetch(item: WeightSpec, local_files_only: bool) -> Path:
    from huggingface_hub import hf_hub_download, snapshot_download

    if item.filename:
        return Path(
            hf_hub_download(item.repo, item.filename, revision=item.revision, repo_type=item.repo_type, local_files_only=local_files_only)
        )
    return Path(snapshot_download(item.repo, revision=item.revision, repo_type=item.repo_type, local_files_only=local_files_only))
