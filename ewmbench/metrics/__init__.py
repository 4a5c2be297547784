"""Metrics: one module per group, each registering its metrics; pure scoring functions exported."""

from ewmbench.metrics import fidelity  # noqa: F401  (registers psnr, ssim)
from ewmbench.metrics import scene, diversity  # noqa: F401  (registers scene_consistency, diversity)
from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs, metric_registry, register_metric
from ewmbench.metrics.diversity import diversity_from_embeddings
from ewmbench.metrics.scene import scene_consistency_from_tokens

__all__ = [
    "EpisodeInputs", "Metric", "TrialInputs", "metric_registry", "register_metric",
    "diversity_from_embeddings", "scene_consistency_from_tokens",
]
