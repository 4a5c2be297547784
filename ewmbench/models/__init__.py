"""World-model adapters and their registry (``ewmbench models`` lists them)."""

from ewmbench.models import baselines  # noqa: F401  (registers ground-truth, static)
from ewmbench.models import sim  # noqa: F401  (registers sim)
from ewmbench.models.base import GenerationRequest, GenerationResult, WorldModel, model_registry, register_model

__all__ = ["GenerationRequest", "GenerationResult", "WorldModel", "model_registry", "register_model"]
