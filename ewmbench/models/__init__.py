"""World-model adapters and their lazy registry (``ewmbench models`` lists them).

Adapters are looked up by name through ``"module:Class"`` strings (:data:`BUILTIN_MODELS`, the
``ewmbench.models`` entry-point group, :func:`register_model`), so importing this package imports
no adapter module, and adapter modules import torch or diffusers only inside their functions.
"""

from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import ACTION_SPACES, CONDITIONING, Capabilities, FrameRule
from ewmbench.models.chunking import generate_chunked
from ewmbench.models.registry import (
    BUILTIN_MODELS,
    load_model_class,
    model_registry,
    model_sources,
    register_model,
)
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.registry import Option

__all__ = [
    "ACTION_SPACES",
    "BUILTIN_MODELS",
    "CONDITIONING",
    "Capabilities",
    "FrameRule",
    "GenerationRequest",
    "GenerationResult",
    "Option",
    "WorldModel",
    "generate_chunked",
    "load_model_class",
    "model_registry",
    "model_sources",
    "register_model",
]
