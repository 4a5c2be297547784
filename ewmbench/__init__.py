"""ewmbench: benchmark and evaluation toolkit for embodied world models."""

__version__ = "0.1.0"

__all__ = ["__version__", "load_run"]


def __getattr__(name: str):
    # Lazy, so `import ewmbench` stays light (the record module needs neither torch nor pandas).
    if name == "load_run":
        from ewmbench.record import load_run

        return load_run
    raise AttributeError(f"module 'ewmbench' has no attribute {name!r}")
