"""The world-model adapter interface: :class:`WorldModel`.

An adapter turns a :class:`~ewmbench.models.request.GenerationRequest` into a
:class:`~ewmbench.models.request.GenerationResult`. Only adapters that declare themselves oracles
(``ground-truth``, ``sim``) receive the episode, and a run records that it used one.

An adapter declares, as class attributes read without loading anything:

* ``options``: typed :class:`~ewmbench.registry.Option` s with defaults, validated on
  construction, before any weight loads;
* ``capabilities``: a :class:`~ewmbench.models.capabilities.Capabilities`, checked against the
  dataset before the first generation (:mod:`ewmbench.models.checks`);
* ``needs_gpu``, ``needs_weights``, ``oracle`` and a one-line ``status`` (how it was tested).

Models are opened, loaded and called through :mod:`ewmbench.models.invoke`.
"""

from __future__ import annotations

import difflib
from abc import ABC
from dataclasses import replace
from typing import Any, ClassVar

from ewmbench.errors import ConfigError
from ewmbench.files import json_safe
from ewmbench.models.capabilities import Capabilities
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.registry import Option


class WorldModel(ABC):
    """Base class of world-model adapters. Construction validates options and loads nothing."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()
    needs_weights: ClassVar[bool] = False
    needs_gpu: ClassVar[bool] = False
    oracle: ClassVar[bool] = False  # receives the ground-truth episode (reference models only)
    needs_also: ClassVar[tuple[str, ...]] = ()  # anything else it needs, in words (`ewmbench models`)
    status: ClassVar[str] = ""  # how this adapter has been exercised (real weights? device?)

    conditioning: ClassVar[frozenset[str]] = frozenset()  # mirrors capabilities.conditioning
    settings: dict = {}
    device: str = "cpu"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # `conditioning` stays readable on every adapter; a subclass written before capabilities
        # existed (declaring only `conditioning`) gets capabilities with that conditioning.
        if "capabilities" not in cls.__dict__ and "conditioning" in cls.__dict__:
            cls.capabilities = replace(cls.capabilities, conditioning=frozenset(cls.conditioning))
        cls.conditioning = cls.capabilities.conditioning

    def __init__(self, **options: Any):
        self.settings = self.validate_options(options)
        self.device = "cpu"

    @classmethod
    def validate_options(cls, given: dict) -> dict:
        """Parsed options with defaults; a typo or a wrong type is a ConfigError naming it."""
        known = {o.name: o for o in cls.options}
        unknown = [k for k in given if k not in known]
        if unknown:
            hints = [
                f"{k!r} (did you mean {m[0]!r}?)"
                if (m := difflib.get_close_matches(k, known, 1))
                else repr(k)
                for k in unknown
            ]
            accepted = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"model {cls.name!r} has no option {', '.join(hints)}; it accepts: {accepted}")
        return {
            name: option.parse(given[name], cls.name) if name in given else option.default
            for name, option in known.items()
        }

    def capabilities_now(self) -> Capabilities:
        """Capabilities under the chosen options (e.g. a size option changes ``native_size``)."""
        return self.capabilities

    def check_available(self) -> None:
        """Raise :class:`ewmbench.errors.Unavailable` when weights or libraries are missing (cheap)."""

    def load(self, device: str) -> None:
        """Load weights onto ``device``; called once by the runner after every check passed."""
        self.device = device

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise NotImplementedError(f"model {self.name!r} implements neither generate nor generate_oracle")

    def generate_oracle(self, request: GenerationRequest, episode) -> GenerationResult:
        """Oracles only: like :meth:`generate`, with the ground-truth episode."""
        raise NotImplementedError(f"model {self.name!r} is not an oracle")

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Several requests in one call; adapters with ``max_batch > 1`` override this."""
        return [self.generate(r) for r in requests]

    def config(self) -> dict:
        """Settings recorded in the run's provenance and every trial's sidecar."""
        return json_safe(self.settings)
