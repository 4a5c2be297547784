"""The names the adapter interface used to export from one module, kept importable while callers
move to the modules that now hold them, one job each:

* :mod:`ewmbench.models.request`: :class:`GenerationRequest`, :class:`GenerationResult`;
* :mod:`ewmbench.models.capabilities`: :class:`Capabilities`, :class:`FrameRule`, conditioning and
  action spaces;
* :mod:`ewmbench.models.adapter`: the :class:`WorldModel` interface (and its option validation);
* :mod:`ewmbench.models.chunking`: :func:`generate_chunked`;
* :mod:`ewmbench.models.checks`: :func:`check_request_fits`, :func:`check_device`;
* :mod:`ewmbench.models.registry`: the model registry;
* :mod:`ewmbench.models.invoke`: opening, loading and calling a model.

New code imports from those modules (or the ``ewmbench.models`` face); nothing in the package
should import this one.
"""

from ewmbench.data.layout import HEAD_VIEW
from ewmbench.files import json_safe
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import ACTION_SPACES, CONDITIONING, Capabilities, FrameRule
from ewmbench.models.checks import check_device, check_request_fits
from ewmbench.models.chunking import chunk_seed, even_indices, generate_chunked
from ewmbench.models.registry import (
    BUILTIN_MODELS,
    ENTRY_POINT_GROUP,
    MODELS,
    load_model_class,
    model_registry,
    model_sources,
    register_model,
)
from ewmbench.models.request import (
    REQUEST_FORMAT,
    RESULT_FORMAT,
    GenerationRequest,
    GenerationResult,
    fit_length,
)
from ewmbench.registry import Option

__all__ = [
    "ACTION_SPACES",
    "BUILTIN_MODELS",
    "CONDITIONING",
    "ENTRY_POINT_GROUP",
    "HEAD_VIEW",
    "MODELS",
    "REQUEST_FORMAT",
    "RESULT_FORMAT",
    "Capabilities",
    "FrameRule",
    "GenerationRequest",
    "GenerationResult",
    "Option",
    "WorldModel",
    "check_device",
    "check_request_fits",
    "chunk_seed",
    "even_indices",
    "fit_length",
    "generate_chunked",
    "json_safe",
    "load_model_class",
    "model_registry",
    "model_sources",
    "register_model",
]
