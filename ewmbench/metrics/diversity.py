"""Diversity: how different the trials generated for one episode are, from CLIP image embeddings.

Per trial, every frame's CLIP ViT-B/32 image embedding is L2-normalised and the normalised
embeddings are averaged over frames (the mean is not renormalised; the cosine below does not
care). Per episode, the score is the mean over unordered trial pairs of 1 - cosine(u_a, u_b); with
fewer than 2 trials it is 0, as in the official tool. The runner puts the episode value on trial
``1`` rows ('-' on the others), as the official table does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ewmbench.errors import DataError
from ewmbench.metrics.base import EpisodeInputs, Metric, register_metric
from ewmbench.metrics.features import (
    as_float_tensor,
    encode_across_videos,
    encoder_stage_key,
    uses_random_weights,
    weights_path,
)
from ewmbench.protocols import DEFAULT_PROTOCOL, ProtocolLike, metric_settings

if TYPE_CHECKING:  # torch is imported where tensors are handled, so importing the metrics needs no torch
    import torch


def trial_embedding(frame_embeddings: torch.Tensor) -> torch.Tensor:
    """(T, D) raw frame embeddings -> (D,) mean of the L2-normalised rows."""
    import torch.nn.functional as F

    return F.normalize(frame_embeddings.float(), dim=-1).mean(dim=0)


def diversity_from_trial_embeddings(vectors: Sequence[torch.Tensor], eps: float = 1e-8) -> float:
    """Mean over unordered pairs of 1 - cosine of per-trial vectors; 0 with fewer than 2."""
    import torch.nn.functional as F

    pairs = list(combinations(range(len(vectors)), 2))
    if not pairs:
        return 0.0
    distances = [1.0 - float(F.cosine_similarity(vectors[i], vectors[j], dim=0, eps=eps)) for i, j in pairs]
    return float(np.mean(distances))


def diversity_from_embeddings(trials, protocol: ProtocolLike | Mapping = DEFAULT_PROTOCOL) -> float:
    """Diversity of one episode from a list of per-trial (T_i, D) raw frame embeddings.

    Each element may be a numpy array or a torch tensor; ``protocol`` a protocol name, a protocol
    YAML path, or the ``diversity`` settings mapping.
    """
    settings = metric_settings(protocol, "diversity")
    vectors = []
    for index, trial in enumerate(trials):
        embeddings = as_float_tensor(trial, f"trial {index} embeddings")
        if embeddings.ndim != 2 or embeddings.shape[0] == 0:
            raise DataError(
                f"<trial {index} embeddings>",
                f"expected (T, D) with T >= 1, got shape {tuple(embeddings.shape)}",
            )
        vectors.append(trial_embedding(embeddings.cpu()))
    if len({v.shape[0] for v in vectors}) > 1:
        raise DataError(
            "<trials>", f"trials have different embedding sizes: {sorted({v.shape[0] for v in vectors})}"
        )
    return diversity_from_trial_embeddings(vectors, float(settings["cosine_eps"]))


def clip_encoder(settings: Mapping, device: str):
    """The CLIP image encoder a protocol asks for, loaded once per process."""
    from ewmbench.perception.encoders import ClipImageEncoder, autocast_dtype, torch_dtype

    dtype, autocast = (
        torch_dtype(device, settings["gpu_dtype"]),
        autocast_dtype(device, settings["gpu_dtype"]),
    )
    if uses_random_weights(settings):
        return ClipImageEncoder.from_config(settings["random_init"], device, dtype, autocast=autocast)
    return ClipImageEncoder.from_weights(
        weights_path(settings),
        settings["architecture"],
        bool(settings["quick_gelu"]),
        device,
        dtype,
        autocast,
    )


def video_embeddings(frames: np.ndarray, settings: Mapping, device: str) -> np.ndarray:
    """(T, D) raw CLIP image embeddings of a video, in float32."""
    encoder = clip_encoder(settings, device)
    return encoder.encode_frames(frames, settings, int(settings["batch_size"])).float().cpu().numpy()


def embeddings_across_videos(
    videos: Sequence[tuple[Path, Callable[[], np.ndarray]]], settings: Mapping, device: str
) -> dict[int, np.ndarray]:
    """(T_i, D) float32 embeddings of several videos by index, their frames encoded together in
    passes of ``batch_size`` frames across video boundaries (:func:`video_embeddings` per video)."""
    encoder = clip_encoder(settings, device)
    parts: dict[int, list[np.ndarray]] = {}
    for index, embeddings in encode_across_videos(
        videos, lambda pieces: encoder.encode_pieces(pieces, settings), int(settings["batch_size"])
    ):
        parts.setdefault(index, []).append(embeddings.float().cpu().numpy())
    return {index: np.concatenate(pieces) for index, pieces in parts.items()}


@register_metric
class Diversity(Metric):
    name = "diversity"
    modules, extra = ("torch", "open_clip"), "neural"
    group = "diversity"
    columns = ("diversity",)
    level = "episode"
    description = "Mean CLIP distance between the trials of an episode (higher is more varied)."

    def score_episode(self, inputs: EpisodeInputs, settings: dict) -> dict[str, float]:
        stage_key = encoder_stage_key(self.name, settings, inputs.device)
        derived = inputs.videos.derived
        paths = list(dict.fromkeys(trial.video_path() for trial in inputs.trials))
        missing = [p for p in paths if not derived.path(stage_key, p, ".npy").is_file()]
        if settings.get("batch_across_videos", False) and len(missing) > 1:
            # the trials' frames share forward passes; stored per video
            sources = [(path, lambda path=path: inputs.videos.frames(path)) for path in missing]
            for index, embeddings in embeddings_across_videos(sources, settings, inputs.device).items():
                derived.array(stage_key, missing[index], lambda embeddings=embeddings: embeddings)
        per_trial = []
        for trial in inputs.trials:
            video = trial.video_path()
            try:
                per_trial.append(
                    inputs.videos.derived.array(
                        stage_key,
                        video,
                        lambda v=video: video_embeddings(inputs.videos.frames(v), settings, inputs.device),
                    )
                )
            except DataError as exc:
                raise DataError(video, exc.problem) from None
        return {"diversity": diversity_from_embeddings(per_trial, settings)}
