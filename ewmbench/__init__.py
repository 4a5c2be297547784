"""ewmbench: benchmark and evaluation toolkit for embodied world models."""

__version__ = "0.1.0"
