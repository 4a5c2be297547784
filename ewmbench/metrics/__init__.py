"""Metrics: one module per group, each registering its metrics; pure scoring functions exported."""

from ewmbench.metrics import fidelity  # noqa: F401  (registers psnr, ssim)
from ewmbench.metrics import semantics  # noqa: F401  (registers semantics)
from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs, metric_registry, register_metric
from ewmbench.metrics.semantics import bleu, clip_text_similarity

__all__ = ["EpisodeInputs", "Metric", "TrialInputs", "bleu", "clip_text_similarity", "metric_registry", "register_metric"]
