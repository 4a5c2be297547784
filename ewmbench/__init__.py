"""ewmbench: benchmark and evaluation toolkit for embodied world models."""

__version__ = "0.1.0"

__all__ = ["__version__", "compare", "evaluate", "load_run"]


def __getattr__(name: str):
    # Lazy, so `import ewmbench` stays light (the record module needs neither torch nor pandas).
    if name == "load_run":
        from ewmbench.record import load_run

        return load_run
    if name == "evaluate":
        from ewmbench.api import evaluate

        return evaluate
    if name == "compare":
        import ewmbench.compare  # a callable package: ewmbench.compare(runs, baseline=...) -> Comparison

        return ewmbench.compare
    raise AttributeError(f"module 'ewmbench' has no attribute {name!r}")
