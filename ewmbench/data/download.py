"""Benchmark datasets fetched from the Hugging Face hub: ``ewmbench data download NAME``.

The same offline-first manner as the weights manager (:mod:`ewmbench.perception.weights`): every
dataset is listed with its repository and revision in one data file (``datasets.yaml``); nothing is
fetched unless ``download`` is called; a dataset that is not here raises :class:`Unavailable`
naming it and the exact command that fetches it.

``download``:

1. takes the hub snapshot (``huggingface_hub.snapshot_download``: files already fetched are kept,
   a partial file is resumed) or, with ``from_dir``, a copy of that snapshot fetched elsewhere;
2. checks each listed archive's SHA-256 where one is published, and reads it whole (a truncated or
   corrupt archive is an error naming the file, never a half dataset);
3. unpacks into a temporary folder beside the destination (refusing members that would land
   outside it), checks the ground-truth layout, writes ``ewmbench_dataset.json`` (source, revision,
   commit, hashes, episode count) and renames the folder into place.

A killed download leaves no dataset under the final name; running it again resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from ewmbench.errors import ConfigError, DataError, Unavailable
from ewmbench.files import cache_root, sha256_file, write_json

MARKER = "ewmbench_dataset.json"
MARKER_FORMAT = "ewmbench-dataset/1"


@dataclass(frozen=True)
class DatasetFile:
    name: str  # an archive (.tar, .tar.gz, .tgz) or a folder in the snapshot
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    id: str
    repo: str
    revision: str
    repo_type: str = "dataset"
    files: tuple[DatasetFile, ...] = field(default_factory=tuple)
    root: str = "gt_dataset"
    card: str | None = None

    @property
    def source(self) -> str:
        return f"{self.repo}@{self.revision}"

    @property
    def fetch_command(self) -> str:
        return f"ewmbench data download {self.id}"

    @property
    def env_var(self) -> str:
        return "EWMBENCH_DATASET_" + self.id.upper().replace("-", "_").replace(".", "_")

    def offline_instructions(self) -> str:
        return (
            f"on a machine with internet, fetch the snapshot with `hf download {self.repo} --repo-type {self.repo_type} "
            f"--revision {self.revision} --local-dir SNAPSHOT` (or run `{self.fetch_command} --output DIR` there and copy DIR), "
            f"then run `{self.fetch_command} --from SNAPSHOT` here"
        )


@cache
def dataset_specs() -> dict[str, DatasetSpec]:
    data = yaml.safe_load((resources.files(__package__) / "datasets.yaml").read_text()) or {}
    return {
        key: DatasetSpec(
            id=key,
            repo=value["repo"],
            revision=str(value.get("revision", "main")),
            repo_type=value.get("repo_type", "dataset"),
            files=tuple(DatasetFile(f["name"], f.get("sha256")) for f in value.get("files", [])),
            root=value.get("root", "gt_dataset"),
            card=value.get("card"),
        )
        for key, value in data.items()
    }


def spec(name: str) -> DatasetSpec:
    specs = dataset_specs()
    if name not in specs:
        raise ConfigError(
            f"unknown dataset {name!r}; datasets that can be downloaded: {', '.join(sorted(specs))}"
        )
    return specs[name]


def datasets_root() -> Path:
    """Where downloaded datasets live: ``<cache>/datasets`` (``$EWMBENCH_CACHE`` read now)."""
    return cache_root() / "datasets"


def default_path(name: str) -> Path:
    return datasets_root() / name


def _pointer_path(name: str) -> Path:
    return datasets_root() / f"{name}.location.json"


def read_marker(folder: Path) -> dict | None:
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"dataset marker is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT:
        raise DataError(path, f"not a dataset marker of format {MARKER_FORMAT!r}")
    return data


def resolve(name: str) -> Path:
    """The ground-truth root of a downloaded dataset, without any download."""
    item = spec(name)
    candidates: list[tuple[Path, str]] = []
    if os.environ.get(item.env_var):
        candidates.append((Path(os.environ[item.env_var]).expanduser(), item.env_var))
    pointer = _pointer_path(name)
    if pointer.is_file():
        try:
            candidates.append((Path(json.loads(pointer.read_text())["path"]), str(pointer)))
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            pass  # a damaged pointer only means "look in the default place"
    candidates.append((default_path(name), "the cache"))
    for folder, origin in candidates:
        marker = read_marker(folder) if folder.is_dir() else None
        if marker and marker.get("complete") and marker.get("name") == name:
            return folder / item.root
        if origin == item.env_var:
            raise Unavailable(
                f"dataset {name!r}: {item.env_var}={folder} holds no complete download", item.fetch_command
            )
    raise Unavailable(
        f"dataset {name!r} ({item.source}) is not downloaded (looked in {candidates[-1][0]})",
        item.fetch_command,
    )


def is_available(name: str) -> bool:
    try:
        resolve(name)
    except Unavailable:
        return False
    return True


def download(
    name: str, output: Path | None = None, from_dir: Path | None = None, progress: bool = True
) -> Path:
    """Fetch (or take from ``from_dir``), verify and unpack dataset ``name``; returns its GT root."""
    item = spec(name)
    final = Path(output).expanduser() if output else default_path(name)
    marker = read_marker(final) if final.is_dir() else None
    if marker and marker.get("complete"):
        if marker.get("name") != name:
            raise DataError(final, f"holds dataset {marker.get('name')!r}, not {name!r}")
        _remember(name, final)
        return final / item.root
    if final.exists() and any(final.iterdir()):
        raise DataError(final, "exists and holds no complete download; choose another --output or delete it")
    if from_dir is not None:
        snapshot = Path(from_dir).expanduser()
        if not snapshot.is_dir():
            raise DataError(snapshot, "--from must be a folder holding the dataset's snapshot")
        commit = None
    else:
        snapshot, commit = _hub_snapshot(item)
    located = [(f, _locate(snapshot, f, item)) for f in item.files]
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    hashes: dict[str, str] = {}
    try:
        for file, path in located:
            if path.is_dir():
                shutil.copytree(path, tmp / path.name)
                continue
            digest = sha256_file(path)
            if file.sha256 and digest != file.sha256:
                raise DataError(
                    path,
                    f"SHA-256 mismatch (expected {file.sha256}, found {digest}); delete it and download again",
                )
            hashes[file.name] = digest
            _unpack(path, tmp, progress)
        root = tmp / item.root
        episodes = _check_layout(root, item)
        record = {
            "format": MARKER_FORMAT,
            "name": name,
            "repo": item.repo,
            "revision": item.revision,
            "commit": commit,
            "from": str(snapshot) if from_dir is not None else None,
            "sha256": hashes,
            "episodes": episodes,
            "complete": True,
        }
        write_json(tmp / MARKER, record, sort_keys=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            final.rmdir()  # empty (checked above)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remember(name, final)
    return final / item.root


def _remember(name: str, final: Path) -> None:
    """Record where a dataset downloaded outside the cache lives, so ``--dataset NAME`` finds it."""
    if final.resolve() == default_path(name).resolve():
        return
    write_json(_pointer_path(name), {"path": str(final.resolve())})


def _hub_snapshot(item: DatasetSpec) -> tuple[Path, str | None]:
    """The hub snapshot of ``item`` (resumes partial files); offline is an :class:`Unavailable`."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise Unavailable(
            f"dataset {item.id!r}: huggingface_hub is not installed", "pip install huggingface-hub"
        ) from None
    patterns = [f.name for f in item.files] + [f"{f.name}/*" for f in item.files]
    try:
        path = Path(
            snapshot_download(
                item.repo, repo_type=item.repo_type, revision=item.revision, allow_patterns=patterns
            )
        )
    except Exception as exc:  # huggingface_hub raises many types: offline, DNS, 404, gated, disk full
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise Unavailable(
            f"could not fetch dataset {item.id!r} from {item.source} ({type(exc).__name__}{': ' + first if first else ''}); "
            f"check the network (HF_HUB_OFFLINE must be unset), or {item.offline_instructions()}",
            item.fetch_command,
        ) from None
    # snapshot_download returns .../snapshots/<commit>: the exact revision this copy is
    return path, path.name if len(path.name) == 40 else None


def _locate(snapshot: Path, file: DatasetFile, item: DatasetSpec) -> Path:
    path = snapshot / file.name
    if path.exists():
        return path
    unpacked = snapshot / item.root
    if file.name.startswith(item.root) and unpacked.is_dir():  # published unpacked instead of as an archive
        return unpacked
    present = ", ".join(sorted(p.name for p in snapshot.iterdir())[:12]) or "nothing"
    raise DataError(snapshot, f"not a snapshot of {item.repo}: {file.name} is missing (found: {present})")


def _unpack(archive: Path, destination: Path, progress: bool) -> None:
    """Unpack a tar archive safely: members that would escape ``destination`` (absolute paths,
    ``..``, links pointing outside, devices) are refused by tarfile's ``data`` filter."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()  # reads the whole index: a truncated archive fails here
            for member in _progress(members, progress, f"unpacking {archive.name}"):
                tar.extract(member, destination, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise DataError(archive, f"refused an unsafe archive member ({exc})") from None
        raise DataError(
            archive,
            f"corrupt or truncated archive ({type(exc).__name__}: {exc}); delete it and download again",
        ) from None


def _progress(items: list, enabled: bool, label: str):
    if not enabled:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=label, transient=True)


def _check_layout(root: Path, item: DatasetSpec) -> int:
    from ewmbench.data.layout import GroundTruth

    if not root.is_dir():
        raise DataError(root, f"the unpacked files hold no {item.root}/ folder")
    gt = GroundTruth(root)
    errors = [p for p in gt.problems() if p.severity == "error"]
    if errors:
        listed = "; ".join(
            f"{p.path.relative_to(root.parent) if p.path.is_relative_to(root.parent) else p.path}: {p.message}"
            for p in errors[:5]
        )
        raise DataError(root, f"{len(errors)} layout problem(s) in the unpacked dataset: {listed}")
    return len(gt.episodes)
