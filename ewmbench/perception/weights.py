"""The one weights manager: every pretrained weight, its source and revision, resolved offline-first.

Resolution order for a weight id: the environment variable ``EWMBENCH_WEIGHTS_<ID>`` (a local
file or folder), a path given in the run configuration, then the Hugging Face cache (never the
network unless :func:`download` is called). A missing weight raises :class:`Unavailable` naming it
and the exact command that fetches it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from ewmbench.errors import ConfigError, Unavailable, require
from ewmbench.files import load_yaml, sha256_file


@dataclass(frozen=True)
class WeightSpec:
    id: str
    repo: str | None  # a Hugging Face repository, or None for a file fetched from ``url``
    revision: str = "main"
    filename: str | None = None  # None: the whole repository snapshot
    repo_type: str = "model"
    description: str = ""
    used_by: tuple[str, ...] = field(default_factory=tuple)
    sha256: str | None = None  # of ``filename``, where published; checked by ``ewmbench weights verify``
    format: str | None = (
        None  # a known layout ``ewmbench weights verify`` loads strictly (see ``ewmbench.perception.verify.FORMAT_CHECKS``)
    )
    url: str | None = None  # where a weight with no Hugging Face home is downloaded from
    include: tuple[str, ...] | None = None  # for a whole-repository snapshot: only these patterns

    @property
    def source(self) -> str:
        if self.repo is None:
            return str(self.url)
        return f"{self.repo}@{self.revision}" + (f"/{self.filename}" if self.filename else "")

    @property
    def env_var(self) -> str:
        return "EWMBENCH_WEIGHTS_" + self.id.upper().replace("-", "_").replace(".", "_")

    @property
    def fetch_command(self) -> str:
        return f"ewmbench weights download {self.id}"


@cache
def weight_specs() -> dict[str, WeightSpec]:
    text = (resources.files(__package__) / "weights.yaml").read_text()
    data = load_yaml(text) or {}
    return {
        key: WeightSpec(
            id=key,
            repo=value.get("repo"),
            revision=str(value.get("revision", "main")),
            filename=value.get("filename"),
            repo_type=value.get("repo_type", "model"),
            description=value.get("description", ""),
            used_by=tuple(value.get("used_by", ())),
            sha256=value.get("sha256"),
            format=value.get("format"),
            url=value.get("url"),
            include=tuple(value["include"]) if value.get("include") else None,
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
    for candidate, origin in (
        (local_path, "the configured path"),
        (os.environ.get(item.env_var), item.env_var),
    ):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.exists():
                raise Unavailable(f"weight {weight_id!r}: {origin} {path} does not exist", item.fetch_command)
            return path
    if item.repo is not None:
        found = _hub_cached(item)
        if found is not None:
            return found  # found without importing huggingface_hub (a second on some machines)
        if not _hub_repo_folder(item).is_dir():
            raise Unavailable(
                f"weight {weight_id!r} ({item.source}) is not in the Hugging Face cache ({_hub_cache_dir()}); "
                f"or set {item.env_var} to a local copy",
                item.fetch_command,
            )
    try:
        return _hub_fetch(item, local_files_only=True)
    except Exception as exc:  # huggingface_hub raises several types for "not cached"
        where = "the Hugging Face cache" if item.repo else str(url_cache_dir())
        raise Unavailable(
            f"weight {weight_id!r} ({item.source}) is not in {where} ({type(exc).__name__}); "
            f"or set {item.env_var} to a local copy",
            item.fetch_command,
        ) from None


def content_hash(path: str | Path) -> str:
    """The content hash of resolved weights (a file, or a snapshot folder: every file's name and
    bytes), the weights part of a feature-store key: a copy elsewhere keys the same, other bytes
    under the same name key differently. File hashes are remembered by (path, size, mtime)."""
    import hashlib

    path = Path(path)
    if path.is_file():
        return sha256_file(path)[:16]
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0" + sha256_file(item).encode())
    return digest.hexdigest()[:16]


def is_available(weight_id: str) -> bool:
    try:
        resolve(weight_id)
    except Unavailable:
        return False
    return True


def download(weight_id: str) -> Path:
    """Fetch a weight into the Hugging Face cache (needs the network)."""
    return _hub_fetch(spec(weight_id), local_files_only=False)


def url_cache_dir() -> Path:
    """Where weights fetched from a URL live: the torch hub cache, shared with torchvision and
    pytorch-fid, so files they already downloaded are found. Worked out as torch does
    (``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``; then ``hub``), so
    listing weights needs no torch; a hub folder set in this process with torch wins."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        return Path(torch.hub.get_dir()) / "checkpoints"
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def _hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, worked out as huggingface_hub does (``$HF_HUB_CACHE``,
    else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``), without importing it; an
    imported huggingface_hub's setting wins."""
    import sys

    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        return Path(hub.HF_HUB_CACHE)
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(cache).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _hub_repo_folder(item: WeightSpec) -> Path:
    return _hub_cache_dir() / f"{item.repo_type}s--{item.repo.replace('/', '--')}"


def _hub_cached(item: WeightSpec) -> Path | None:
    """The cached file (or snapshot folder) of a hub weight, read from the cache's own layout
    (``refs/<revision>`` names the snapshot); None when it is not there in that plain form (the
    caller then asks huggingface_hub, which knows every case)."""
    folder = _hub_repo_folder(item)
    revision = item.revision
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        try:
            revision = (folder / "refs" / revision).read_text().strip()
        except OSError:
            return None
    snapshot = folder / "snapshots" / revision
    if item.filename:
        path = snapshot / item.filename
        return path if path.is_file() else None
    return snapshot if snapshot.is_dir() else None


def _hub_fetch(item: WeightSpec, local_files_only: bool) -> Path:
    if item.repo is None:
        if not item.url or not item.filename:
            raise ValueError(f"weights.yaml: {item.id} needs either repo or both url and filename")
        target = url_cache_dir() / item.filename
        if not target.is_file():
            if local_files_only:
                raise FileNotFoundError(target)
            torch = require("torch", "neural", "downloading this weight")
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(item.url, str(target), hash_prefix=None, progress=True)
        return target
    from huggingface_hub import hf_hub_download, snapshot_download

    if item.filename:
        return Path(
            hf_hub_download(
                item.repo,
                item.filename,
                revision=item.revision,
                repo_type=item.repo_type,
                local_files_only=local_files_only,
            )
        )
    return Path(
        snapshot_download(
            item.repo,
            revision=item.revision,
            repo_type=item.repo_type,
            local_files_only=local_files_only,
            allow_patterns=list(item.include) if item.include else None,
        )
    )


@dataclass(frozen=True)
class WeightStatus:
    """Where one weight stands on this machine (``ewmbench weights list``)."""

    spec: WeightSpec
    path: Path | None
    problem: str = ""  # why it is not available, when it is not

    @property
    def cached(self) -> bool:
        return self.path is not None

    def as_dict(self) -> dict:
        return {
            "id": self.spec.id,
            "repo": self.spec.repo,
            "revision": self.spec.revision,
            "file": self.spec.filename or "(snapshot)",
            "cached": self.cached,
            "path": str(self.path) if self.path else None,
            "used_by": list(self.spec.used_by),
            "description": self.spec.description,
            "problem": self.problem or None,
        }


def weight_status(weight_id: str) -> WeightStatus:
    item = spec(weight_id)
    try:
        return WeightStatus(item, resolve(weight_id))
    except Unavailable as exc:
        return WeightStatus(item, None, exc.reason)


def load_state_dict(file: Path) -> dict:
    """Tensors of a weights file (safetensors, or a torch pickle read with ``weights_only``)."""
    file = Path(file)
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    import torch

    try:  # memory-mapped where the file format allows it: verifying a 300 MB file stays cheap
        return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        return torch.load(file, map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class DownloadOutcome:
    id: str
    ok: bool
    path: Path | None = None
    problem: str = ""


def download_weight(weight_id: str) -> DownloadOutcome:
    """:func:`download` for the command line: a failure (offline, unknown file) becomes a message."""
    item = spec(weight_id)  # an unknown id is a ConfigError, raised
    try:
        return DownloadOutcome(weight_id, True, download(weight_id))
    except Exception as exc:  # huggingface_hub raises many types: offline, 404, gated, disk full
        where = item.source
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return DownloadOutcome(
            weight_id,
            False,
            None,
            f"could not fetch {where} ({type(exc).__name__}{': ' + reason if reason else ''}); check the network "
            f"(HF_HUB_OFFLINE must be unset), or copy the file here and set {item.env_var} to its path",
        )
