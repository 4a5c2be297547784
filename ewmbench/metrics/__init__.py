"""Metrics: one module per group, each registering its metrics; pure scoring functions exported."""

from ewmbench.metrics.base import EpisodeInputs, Metric, TrialInputs, register_metric
from ewmbench.metrics.diversity import diversity_from_embeddings
from ewmbench.metrics.fidelity import feature_statistics, frechet_distance, frechet_distance_of_features
from ewmbench.metrics.motion import (
    GRIPPER_NOT_DETECTED,
    GripperNotDetectedWarning,
    OfficialCrashWarning,
    select_best_trials,
    trajectory_scores,
    trajectory_scores_batch,
)
from ewmbench.metrics.registry import column_directions, higher_is_better, metric_registry
from ewmbench.metrics.scene import scene_consistency_from_tokens
from ewmbench.metrics.semantics import bleu, clip_text_similarity

__all__ = [
    "GRIPPER_NOT_DETECTED",
    "EpisodeInputs",
    "GripperNotDetectedWarning",
    "Metric",
    "OfficialCrashWarning",
    "TrialInputs",
    "bleu",
    "clip_text_similarity",
    "column_directions",
    "diversity_from_embeddings",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_of_features",
    "higher_is_better",
    "metric_registry",
    "register_metric",
    "scene_consistency_from_tokens",
    "select_best_trials",
    "trajectory_scores",
    "trajectory_scores_batch",
]
