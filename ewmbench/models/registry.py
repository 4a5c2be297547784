"""The model registry: adapter names -> ``"module:Class"`` (built-ins, the ``ewmbench.models``
entry-point group, classes registered in this process). Listing names imports no adapter module."""

from __future__ import annotations

from ewmbench.errors import ConfigError
from ewmbench.models.adapter import WorldModel
from ewmbench.registry import Entry, Registry

# Built-in adapters by name, as "module:Class" strings: listing names imports nothing heavy, and an
# adapter's module (and its torch/diffusers imports, which live inside functions) loads on use.
BUILTIN_MODELS: dict[str, str] = {
    "ground-truth": "ewmbench.models.baselines:GroundTruthModel",
    "static": "ewmbench.models.baselines:StaticModel",
    "sim": "ewmbench.models.sim:SimModel",
    "ltx-video": "ewmbench.models.ltx:LTXVideoModel",
    "cosmos-predict2": "ewmbench.models.cosmos:CosmosPredict2Model",
    "ge-base": "ewmbench.models.genie:GEBaseModel",
    "ge-sim": "ewmbench.models.genie:GESimModel",
    "ge-sim-2": "ewmbench.models.gesim:GESim2Model",
    "remote": "ewmbench.models.remote:RemoteModel",
}
ENTRY_POINT_GROUP = "ewmbench.models"
MODELS = Registry(
    "model",
    [Entry(name, target) for name, target in BUILTIN_MODELS.items()],
    entry_point_group=ENTRY_POINT_GROUP,
    hint="(see `ewmbench models`), or name a class as package.module:Class",
    references=True,
    base=WorldModel,
)


def register_model(cls: type[WorldModel]) -> type[WorldModel]:
    """Register an adapter class defined in the running process (a user's module, a test)."""
    return MODELS.register(cls.name, cls)


def model_sources() -> dict[str, str]:
    """Every known adapter name and where it comes from ("module:Class"), without importing it.

    Built-ins first, then the ``ewmbench.models`` entry-point group of installed packages, then
    classes registered in this process.
    """
    return MODELS.sources()


def load_model_class(name: str) -> type[WorldModel]:
    """The adapter class for a registered name or a ``package.module:Class`` reference."""
    cls = MODELS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, WorldModel)):
        raise ConfigError(
            f"model {name!r}: {MODELS.sources().get(name, name)!r} is not a WorldModel subclass"
        )
    return cls


def model_registry() -> dict[str, type[WorldModel]]:
    """Every known adapter class by name (imports each adapter module; they import nothing heavy)."""
    return {name: load_model_class(name) for name in sorted(model_sources())}
