"""ewmbench: benchmark and evaluation toolkit for embodied world models."""

__version__ = "0.1.0"

__all__ = ["__version__", "load_run"]

# The Python face, loaded on first use so `import ewmbench` stays light. Names map to
# "module:attribute" strings (imported by name, so the package root depends on no layer).
_LAZY = {"load_run": "ewmbench.record:load_run"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name].split(":")
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'ewmbench' has no attribute {name!r}")
