"""Metrics: one module per group, each registering its metrics; pure scoring functions exported."""

from ewmbench.metrics import fidelity  # noqa: F401  (registers psnr, ssim, lpips, fid, fvd)
from ewmbench.metrics import semantics  # noqa: F401  (registers semantics)
from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs, metric_registry, register_metric
from ewmbench.metrics.fidelity import feature_statistics, frechet_distance, frechet_distance_of_features
from ewmbench.metrics.semantics import bleu, clip_text_similarity

__all__ = [
    "EpisodeInputs", "Metric", "TrialInputs", "bleu", "clip_text_similarity", "feature_statistics", "frechet_distance",
    "frechet_distance_of_features", "metric_registry", "register_metric",
]
