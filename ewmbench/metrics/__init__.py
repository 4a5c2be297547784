"""Metrics: one module per group, each registering its metrics; pure scoring functions exported."""

from ewmbench.metrics import fidelity  # noqa: F401  (registers psnr, ssim)
from ewmbench.metrics.motion import OfficialCrashWarning, select_best_trials, trajectory_scores, trajectory_scores_batch  # registers trajectory_consistency
from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs, metric_registry, register_metric

__all__ = ["EpisodeInputs", "Metric", "TrialInputs", "metric_registry", "register_metric"]
__all__ += ["OfficialCrashWarning", "select_best_trials", "trajectory_scores", "trajectory_scores_batch"]
