"""Datasets by name: what ``--dataset`` and ``--gt`` accept.

``"sample"``: the simulated sample, generated once into the cache on first use (by
:func:`ewmbench.sim.sample.generate_sample`, found through :data:`GENERATORS` so this layer
imports no simulator); the name of a downloadable dataset (``"ewmbench"``, see
:mod:`ewmbench.data.download`): its folder; anything else: an existing dataset folder. A name
wins over a folder of that name (write ``./ewmbench`` for the folder).
"""

from __future__ import annotations

import os
from pathlib import Path

from ewmbench.data.download import dataset_specs
from ewmbench.data.download import resolve as resolve_download
from ewmbench.errors import DataError
from ewmbench.files import cache_root, read_json
from ewmbench.registry import Entry, Registry

SAMPLE = "sample"
DEFAULT_SAMPLE_NAME = "sample-v1"
MARKER = "ewmbench_sample.json"
MARKER_FORMAT = "ewmbench-sample/1"

# Datasets made on this machine, by name: "module:function(output, progress=, workers=)".
GENERATORS = Registry(
    "generated dataset",
    [Entry(SAMPLE, "ewmbench.sim.sample:generate_sample", "the simulated tabletop sample (pybullet)")],
)


def default_sample_path() -> Path:
    return cache_root() / "datasets" / DEFAULT_SAMPLE_NAME


def read_sample_marker(folder: Path) -> dict | None:
    """The sample's marker file (``ewmbench_sample.json``) in ``folder``; None where it has none."""
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise DataError(path, f"sample marker is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT:
        raise DataError(path, f"not a sample marker of format {MARKER_FORMAT!r}")
    return data


def ready_sample() -> Path | None:
    """The default sample's folder when it is complete; None while it is still to be generated."""
    path = default_sample_path()
    marker = read_sample_marker(path) if path.is_dir() else None
    return path if marker and marker.get("complete") else None


def resolve_dataset(name_or_path: str | Path, progress: bool = True, workers: int | None = None) -> Path:
    """The folder of a dataset the user named: ``sample`` (generated on first use), a
    downloadable dataset's name, or an existing folder."""
    text = str(name_or_path)
    if text == SAMPLE:
        return _sample(progress, workers)
    if text in dataset_specs():
        return resolve_download(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise DataError(path, "is a file, not a dataset folder")
    raise DataError(
        path,
        f"dataset folder does not exist (use 'sample' for the built-in sample dataset, or a downloaded one: {', '.join(sorted(dataset_specs()))})",
    )


def _sample(progress: bool, workers: int | None) -> Path:
    final = default_sample_path()
    if ready_sample() is not None:
        return final
    if final.exists():
        raise DataError(
            final,
            "an incomplete or foreign folder sits where the default sample belongs; delete it and retry",
        )
    # Built beside its final place and renamed when complete: a killed generation leaves no half
    # dataset under the final name (a later call resumes the temporary one).
    tmp = final.with_name(f".tmp-{final.name}")
    GENERATORS.load(SAMPLE)(tmp, progress=progress, workers=workers)
    os.replace(tmp, final)
    return final
