"""One registry type and one option parser.

A :class:`Registry` maps names to ``"module:attr"`` strings with a one-line description and other
metadata. Listing names and descriptions imports nothing; :meth:`Registry.load` imports the one
module it needs. Installed packages add entries through an entry-point group, and code in the
running process (a user's module, a test) through :meth:`Registry.register`. Models, metrics,
closed-loop policies and judges, and scoring executors are each one instance.

:func:`parse_options` turns ``key=value`` pairs (command-line options, policy specs) into typed
values, read as YAML scalars; an :class:`Option` declares one typed option (type, default, range,
choices) and checks a value against it; :func:`parse_flag` reads one true/false value.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ewmbench.errors import ConfigError
from ewmbench.files import json_safe


@dataclass(frozen=True)
class Entry:
    """One registered name: where it lives (``"module:attr"``), what it is, and any metadata."""

    name: str
    target: str
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Registry:
    """Names -> ``"module:attr"``; built-ins first, then the entry-point group, then in-process
    registrations. ``kind`` names the things held ("model", "policy") in messages; ``hint`` says
    where a user lists them; with ``references=True`` a ``package.module:attr`` reference that is
    not a registered name loads too; with ``base`` set, whatever loads must be a subclass of it."""

    def __init__(
        self,
        kind: str,
        builtins: Iterable[Entry],
        entry_point_group: str | None = None,
        hint: str = "",
        references: bool = False,
        base: type | None = None,
    ):
        self.kind = kind
        self.builtins = {entry.name: entry for entry in builtins}
        self.entry_point_group = entry_point_group
        self.hint = hint
        self.references = references
        self.base = base
        self.registered: dict[str, Any] = {}  # name -> object, registered in this process

    # ---------------------------------------------------------------- listing (imports nothing)

    def entries(self) -> dict[str, Entry]:
        found = dict(self.builtins)
        if self.entry_point_group:
            for point in _entry_points(importlib.metadata.entry_points, self.entry_point_group):
                found.setdefault(point.name, Entry(point.name, point.value))
        for name, obj in self.registered.items():
            found.setdefault(name, Entry(name, _reference(obj), (obj.__doc__ or "").strip().split("\n")[0]))
        return found

    def sources(self) -> dict[str, str]:
        """Every name and where it comes from (``"module:attr"``), without importing it."""
        return {name: entry.target for name, entry in self.entries().items()}

    def names(self) -> list[str]:
        return list(self.entries())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.entries()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.entries())

    # ---------------------------------------------------------------- loading

    def load(self, name: str) -> Any:
        """The object registered under ``name`` (or a ``package.module:attr`` reference)."""
        if name in self.registered:
            return self.registered[name]
        entries = self.entries()
        entry = entries.get(name)
        if entry is None:
            if not (self.references and ":" in name):
                raise self.unknown(name)
            target = name
        else:
            target = entry.target
        module_name, _, attribute = target.partition(":")
        try:
            loaded: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"{self.kind} {name!r}: cannot import module {module_name!r} ({exc})") from None
        for part in filter(None, attribute.split(".")):
            loaded = getattr(loaded, part, None)
        if self.base is not None and not (isinstance(loaded, type) and issubclass(loaded, self.base)):
            raise ConfigError(f"{self.kind} {name!r}: {target!r} is not a {self.base.__name__} subclass")
        if loaded is None:
            raise ConfigError(f"{self.kind} {name!r}: {target!r} names nothing")
        return loaded

    def unknown(self, name: str) -> ConfigError:
        """The error for a name that is not registered: the closest name, every name, the hint."""
        names = self.names()
        close = difflib.get_close_matches(name, names, 1)
        suggestion = f" (did you mean {close[0]!r}?)" if close else ""
        hint = f" {self.hint}" if self.hint else ""
        return ConfigError(
            f"unknown {self.kind} {name!r}{suggestion}; available: {', '.join(sorted(names))}{hint}"
        )

    # ---------------------------------------------------------------- in-process registration

    def register(self, name: str, obj: Any) -> Any:
        """Register an object defined in the running process; a second, different object under
        the same name is refused."""
        if name in self.registered and self.registered[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self.registered[name] = obj
        return obj


@cache
def _entry_points(find: Callable, group: str) -> tuple:
    """The plugins installed for ``group``, found once per process: each look-up reads every
    installed package's metadata (15-40 ms); keyed by the finder too, so a test that replaces
    ``importlib.metadata.entry_points`` is asked afresh."""
    return tuple(find(group=group))


def _reference(obj: Any) -> str:
    return f"{obj.__module__}:{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}"


# ---------------------------------------------------------------------------- options


def parse_options(pairs: list[str], where: str = "") -> dict[str, Any]:
    """``["steps=4", "guidance-scale=3.5"]`` -> ``{"steps": 4, "guidance_scale": 3.5}``: values
    read as YAML scalars (``0.5`` a float, ``true`` a bool, ``a`` a string), keys with ``-``
    spelled ``_``. ``where`` (the option or text the pairs came from) starts each error."""
    prefix = f"{where}: " if where else ""
    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"{prefix}expected key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        if not key.strip():
            raise ConfigError(f"{prefix}expected key=value, got {pair!r} (no key)")
        try:
            options[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{prefix}{key.strip()}: value {value!r} is not valid YAML ({' '.join(str(exc).split())})"
            ) from None
    return options


TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})


def parse_flag(value: object, name: str) -> bool:
    """A true/false option value: a bool, 0/1, or true/false/yes/no/1/0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in TRUE_WORDS | FALSE_WORDS:
        return value.lower() in TRUE_WORDS
    raise ConfigError(f"{name} must be true or false, got {value!r}")


@dataclass(frozen=True)
class Option:
    """One typed option (``--model-option name=value``, a policy's ``name:key=value``)."""

    name: str
    type: type  # bool, int, float, str or Path
    default: Any = None  # None: unset (the adapter decides, e.g. from the request)
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None

    def parse(self, value: Any, model: str) -> Any:
        """``value`` as this option's type for the adapter ``model`` (errors say ``model 'sim'
        option 'noise' ...``)."""
        return self.check(value, f"model {model!r} option {self.name!r}")

    def check(self, value: Any, where: str) -> Any:
        """``value`` as this option's type, checked against its range and choices; ``where``
        starts each error."""
        if value is None:
            return None
        if self.type is bool:
            parsed: Any = parse_flag(value, where)
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ConfigError(f"{where} must be an integer, got {value!r}")
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be an integer, got {value!r}") from None
            if number != int(number):
                raise ConfigError(f"{where} must be an integer, got {value!r}")
            parsed = int(number)
        elif self.type is float:
            if isinstance(value, bool):
                raise ConfigError(f"{where} must be a number, got {value!r}")
            try:
                parsed = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{where} must be a number, got {value!r}") from None
            if not math.isfinite(parsed):
                raise ConfigError(f"{where} must be a finite number, got {value!r}")
        elif self.type is Path:
            if not isinstance(value, (str, Path)) or not str(value):
                raise ConfigError(f"{where} must be a path, got {value!r}")
            parsed = Path(value).expanduser()
        else:
            parsed = str(value)
        if self.low is not None and parsed < self.low or self.high is not None and parsed > self.high:
            raise ConfigError(f"{where} must be from {self.low} to {self.high}, got {value!r}")
        if self.choices is not None and parsed not in self.choices:
            raise ConfigError(f"{where} must be one of {list(self.choices)}, got {value!r}")
        return parsed

    def describe(self) -> dict:
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": json_safe(self.default),
            "help": self.help,
            **({"choices": list(self.choices)} if self.choices else {}),
        }
