"""Protocols: named, versioned bundles of metric settings, kept as YAML data files.

``ewmbench-v1`` reproduces the official EWMBench tool number for number; ``ewmbench-v2`` is ours,
with each correction documented in the file and in the README. A protocol file may also be any
path to a YAML file of the same shape, so users can pin their own variants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from ewmbench.errors import ConfigError
from ewmbench.files import load_yaml
from ewmbench.protocols.schema import LOGIC_FLAGS, OUTPUT_FORMATS, validate_protocol  # noqa: F401  (re-exported)

DEFAULT_PROTOCOL = "ewmbench-v1"  # the official tool's numbers; the one place this name is the default
# What `output_format` may name: the files written beside rows and summary (README, "The run folder").


@dataclass(frozen=True)
class Protocol:
    name: str
    version: str
    description: str
    # Stored precision per column, {column: decimals}: values are rounded so before any mean.
    decimals: dict[str, int]
    aggregation: dict
    metrics: dict[str, dict] = field(default_factory=dict)
    source: str = ""
    # ewmbm_final_table.csv's layout: {"columns": [...], "first_trial_only": [...]} and, for the
    # official format, "logic_flags" (see ewmbench/results/official.py); without columns, every metric
    # column in sorted order
    official_table: dict = field(default_factory=dict)
    # "official": ewmbm_final_table.csv and <name>_results.json as the official tool writes them
    # (ewmbench/results/official.py); "ewmbench": ours, at full precision (ewmbench/results/aggregate.py).
    output_format: str = "ewmbench"
    sha256: str = ""  # of the whole file text: metric settings, aggregation and decimals alike
    # the whole file text: a run record embeds it, so a finished run is read without a lookup
    text: str = field(default="", repr=False, compare=False)

    def settings(self, metric: str) -> dict:
        """The settings of one metric; a metric the protocol does not list cannot run under it."""
        if metric not in self.metrics:
            raise ConfigError(f"protocol {self.name!r} has no settings for metric {metric!r}")
        return self.metrics[metric] or {}


# A protocol as callers give it: a built-in name, the path of a protocol file, or a loaded one.
ProtocolLike = str | Path | Protocol


def available_protocols() -> list[str]:
    folder = resources.files(__package__)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


@cache
def load_protocol(name_or_path: str) -> Protocol:
    """Load a built-in protocol by name, or a protocol YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} and path.is_file():
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not a text file (not UTF-8 at byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read the protocol file ({exc.strerror or exc})") from None
    elif path.suffix in {".yaml", ".yml"} or path.exists():
        raise ConfigError(f"protocol file {name_or_path} does not exist or is not a file")
    else:
        resource = resources.files(__package__) / f"{name_or_path}.yaml"
        if not resource.is_file():
            raise ConfigError(
                f"unknown protocol {name_or_path!r}; built-in protocols: {', '.join(available_protocols())} "
                "(or give the path of a protocol .yaml file)"
            )
        text, source = resource.read_text(), f"ewmbench/protocols/{name_or_path}.yaml"
    return parse_protocol(text, source)


def parse_protocol(text: str, source: str) -> Protocol:
    """A protocol from its file text (``source`` names it in errors): what :func:`load_protocol`
    reads from a file, and what a run record embeds."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({' '.join(str(exc).split())})") from None
    validate_protocol(data, source)  # every key, its type and range
    decimals = data.get("decimals") or {}
    table = data.get("official_table") or {}
    output_format = data.get("output_format", "ewmbench")
    return Protocol(
        name=data["name"],
        version=str(data["version"]),
        description=data.get("description", ""),
        decimals={str(k): v for k, v in decimals.items()},
        aggregation=data.get("aggregation") or {},
        metrics={str(k): v or {} for k, v in data["metrics"].items()},
        source=source,
        official_table=table,
        output_format=output_format,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        text=text,
    )


def resolve_protocol(protocol: ProtocolLike = DEFAULT_PROTOCOL) -> Protocol:
    """The one resolver: a loaded protocol from a name, a path or a loaded protocol."""
    if isinstance(protocol, Protocol):
        return protocol
    return load_protocol(str(protocol))


def metric_settings(protocol: ProtocolLike | Mapping, metric: str) -> dict:
    """One metric's settings, for the public pure functions that take ``protocol=``: a protocol
    (name, path or loaded) is resolved, a mapping is taken as the settings themselves."""
    if isinstance(protocol, Mapping):
        return dict(protocol)
    return dict(resolve_protocol(protocol).settings(metric))
