"""ewmbench: benchmark and evaluation toolkit for embodied world models."""

__version__ = "0.1.0"

__all__ = ["__version__", "compare", "evaluate", "load_run"]

# The Python face, loaded on first use so `import ewmbench` stays light (the record module needs
# neither torch nor pandas). Names map to "module:attribute" strings, imported by name, so the
# package root depends on no layer.
_LAZY = {
    "load_run": "ewmbench.results.record:load_run",
    "evaluate": "ewmbench.api:evaluate",
    "compare": "ewmbench.compare:",  # a callable package: ewmbench.compare(runs, baseline=...) -> Comparison
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name].split(":")
        loaded = importlib.import_module(module)
        return getattr(loaded, attribute) if attribute else loaded
    raise AttributeError(f"module 'ewmbench' has no attribute {name!r}")
