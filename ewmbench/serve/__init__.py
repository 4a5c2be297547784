"""The HTTP world-model service (WorldArena 2.0 Track 2 API 1.0) and its conformance check."""

from ewmbench.serve.app import BackgroundServer, ServeConfig, Service, create_app, serve

__all__ = ["BackgroundServer", "ServeConfig", "Service", "create_app", "serve"]
