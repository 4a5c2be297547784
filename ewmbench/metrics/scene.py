"""Scene consistency: how stable a generated video's scene stays, from DINOv2 patch tokens.

Each frame becomes N patch tokens of C channels (final LayerNorm of DINOv2 ViT-B/14 at 518x518:
1369 x 768), each token L2-normalised over its channels. The similarity s(A, B) of two frames is
clamped at 0 and the video score is the mean over frames i >= 1 of (s(f_(i-1), f_i) + s(f_0, f_i)) / 2.
Only the generated video is scored (the ground truth is not used), as in the official tool.

``cosine_axis`` chooses s:
- ``patch`` (ewmbench-v1, the official quirk): for every channel c, the cosine between the N-long
  spatial vectors A[:, c] and B[:, c], averaged over channels. It compares where each feature is
  active in the two images, not what the corresponding patches look like.
- ``token`` (ewmbench-v2): for every patch n, the cosine between the C-long features A[n] and B[n]
  (the usual feature similarity of corresponding patches), averaged over patches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ewmbench.errors import ConfigError, DataError
from ewmbench.metrics.base import Metric, TrialInputs, register_metric
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

COSINE_AXES = ("patch", "token")
# Frames per similarity chunk when scoring precomputed tokens: bounds the (P, N, C) products.
_PAIR_CHUNK = 8


def normalise_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Each token divided by its L2 norm over channels (last axis)."""
    import torch.nn.functional as F

    return F.normalize(tokens.float(), dim=-1)


def pair_similarity(a: torch.Tensor, b: torch.Tensor, cosine_axis: str, eps: float = 1e-8) -> torch.Tensor:
    """s for P frame pairs: ``a``, ``b`` are (P, N, C) normalised tokens -> (P,) unclamped similarities.

    The cosine is ``dot / (max(|x|, eps) max(|y|, eps))``, as ``torch.nn.functional.cosine_similarity``
    computes it.
    """
    if cosine_axis not in COSINE_AXES:
        raise ConfigError(f"unknown cosine_axis {cosine_axis!r}; use one of {', '.join(COSINE_AXES)}")
    a, b = a.float(), b.float()
    reduce_dim = (
        1 if cosine_axis == "patch" else 2
    )  # patch: along N (per channel); token: along C (per patch)
    dot = (a * b).sum(reduce_dim)
    norms = a.norm(dim=reduce_dim).clamp_min(eps) * b.norm(dim=reduce_dim).clamp_min(eps)
    return (dot / norms).mean(dim=1)


class PairAccumulator:
    """Consecutive and first-frame similarities of a video, fed tokens in order, batch by batch.

    Keeps only the first frame and the last frame seen, so a long video never needs all its tokens
    in memory at once.
    """

    def __init__(self, cosine_axis: str, eps: float):
        self.cosine_axis, self.eps = cosine_axis, eps
        self.first: torch.Tensor | None = None
        self.last: torch.Tensor | None = None
        self.consecutive: list[torch.Tensor] = []
        self.to_first: list[torch.Tensor] = []

    def add(self, tokens: torch.Tensor) -> None:
        import torch

        tokens = normalise_tokens(tokens)
        if self.first is None:
            self.first, self.last = tokens[:1], tokens[:1]
            tokens = tokens[1:]
        for start in range(0, len(tokens), _PAIR_CHUNK):
            chunk = tokens[start : start + _PAIR_CHUNK]
            previous = torch.cat([self.last, chunk[:-1]])
            self.consecutive.append(pair_similarity(previous, chunk, self.cosine_axis, self.eps))
            self.to_first.append(
                pair_similarity(self.first.expand_as(chunk), chunk, self.cosine_axis, self.eps)
            )
            self.last = chunk[-1:]

    def result(self) -> np.ndarray:
        """(2, T - 1): row 0 s(f_(i-1), f_i), row 1 s(f_0, f_i), for i = 1 .. T - 1 (unclamped)."""
        import torch

        if not self.consecutive:
            raise DataError("<video>", "scene consistency needs at least 2 frames")
        return (
            torch.stack([torch.cat(self.consecutive), torch.cat(self.to_first)])
            .cpu()
            .numpy()
            .astype(np.float64)
        )


def score_from_similarities(similarities: np.ndarray, clamp_min: float | None = 0.0) -> float:
    """Video score from (2, T - 1) pair similarities: mean over i of (s_prev + s_first) / 2, s clamped."""
    sims = np.asarray(similarities, dtype=np.float64)
    if sims.ndim != 2 or sims.shape[0] != 2 or sims.shape[1] == 0:
        raise DataError("<similarities>", f"expected shape (2, T - 1) with T >= 2, got {sims.shape}")
    if clamp_min is not None:
        sims = np.maximum(sims, clamp_min)
    return float(np.mean((sims[0] + sims[1]) / 2))


def scene_consistency_from_tokens(tokens, protocol: ProtocolLike | Mapping = DEFAULT_PROTOCOL) -> float:
    """Scene consistency of one video from its encoder tokens (T, N, C), before any normalisation.

    ``tokens`` may be a numpy array or a torch tensor (any device); ``protocol`` a protocol name,
    a protocol YAML path, or the ``scene_consistency`` settings mapping.
    """
    settings = metric_settings(protocol, "scene_consistency")
    tokens = as_float_tensor(tokens, "tokens")
    if tokens.ndim != 3:
        raise DataError("<tokens>", f"expected (T, N, C) tokens, got shape {tuple(tokens.shape)}")
    if tokens.shape[0] < 2:
        raise DataError("<tokens>", f"scene consistency needs at least 2 frames, got {tokens.shape[0]}")
    accumulator = PairAccumulator(settings["cosine_axis"], float(settings["cosine_eps"]))
    accumulator.add(tokens)
    return score_from_similarities(accumulator.result(), settings.get("clamp_min"))


def dino_encoder(settings: Mapping, device: str):
    """The DINOv2 encoder a protocol asks for, loaded once per process."""
    from ewmbench.perception.encoders import DinoTokenEncoder, autocast_dtype, torch_dtype

    dtype, autocast = (
        torch_dtype(device, settings["gpu_dtype"]),
        autocast_dtype(device, settings["gpu_dtype"]),
    )
    if uses_random_weights(settings):
        return DinoTokenEncoder.from_config(settings["random_init"], device, dtype, autocast=autocast)
    return DinoTokenEncoder.from_weights(weights_path(settings), device, dtype, autocast)


def video_similarities(frames: np.ndarray, settings: Mapping, device: str) -> np.ndarray:
    """(2, T - 1) pair similarities of a video's frames, encoding in batches of ``batch_size``."""
    if len(frames) < 2:
        raise DataError("<video>", f"scene consistency needs at least 2 frames, got {len(frames)}")
    encoder = dino_encoder(settings, device)
    accumulator = PairAccumulator(settings["cosine_axis"], float(settings["cosine_eps"]))
    batch = int(settings["batch_size"])
    for start in range(0, len(frames), batch):
        accumulator.add(encoder.encode_frames(frames[start : start + batch], settings, batch))
    return accumulator.result()


def similarities_across_videos(
    videos: Sequence[tuple[Path, Callable[[], np.ndarray]]], settings: Mapping, device: str
) -> Iterator[tuple[int, np.ndarray]]:
    """(video index, (2, T - 1) pair similarities) of several videos, in order, their frames
    encoded together in passes of ``batch_size`` frames across video boundaries; each video's
    tokens reach its similarities in the same pieces as in :func:`video_similarities`, so the
    values are those of encoding it alone up to how the encoder's arithmetic varies with the
    pass's other frames. A video is finished (and its tokens dropped) before the next one's
    similarities are computed."""
    encoder = dino_encoder(settings, device)
    current: tuple[int, PairAccumulator] | None = None
    for index, tokens in encode_across_videos(
        videos, lambda pieces: encoder.encode_pieces(pieces, settings), int(settings["batch_size"])
    ):
        if current is not None and current[0] != index:
            yield current[0], _finished(current[1], videos[current[0]][0])
            current = None
        if current is None:
            current = (index, PairAccumulator(settings["cosine_axis"], float(settings["cosine_eps"])))
        current[1].add(tokens)
    if current is not None:
        yield current[0], _finished(current[1], videos[current[0]][0])


def _finished(accumulator: PairAccumulator, video: Path) -> np.ndarray:
    try:
        return accumulator.result()
    except DataError as exc:
        raise DataError(video, exc.problem) from None


@register_metric
class SceneConsistency(Metric):
    name = "scene_consistency"
    modules, extra = ("torch", "transformers"), "neural"
    group = "scene"
    columns = ("scene_consistency",)
    level = "trial"
    description = "DINOv2 patch-token similarity of each frame to the previous and the first frame (higher is steadier)."
    chunk_trials = 16  # videos whose frames share forward passes (score_trials)

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        video = inputs.trial.video_path()
        stage_key = encoder_stage_key(self.name, settings, inputs.device)
        try:
            sims = inputs.videos.derived.array(
                stage_key,
                video,
                lambda: video_similarities(inputs.videos.frames(video), settings, inputs.device),
            )
        except DataError as exc:
            raise DataError(video, exc.problem) from None
        return {"scene_consistency": score_from_similarities(sims, settings.get("clamp_min"))}

    def batches(self, settings: dict) -> bool:
        """Only with ``batch_across_videos``: otherwise it joins the one pass of frame metrics, so
        each video is decoded once for it and PSNR/SSIM."""
        return bool(settings.get("batch_across_videos", False))

    def score_trials(self, inputs: Sequence[TrialInputs], settings: dict) -> list[dict[str, float]]:
        """With ``batch_across_videos`` (off in the built-in protocols: one video at a time, as
        :meth:`score_trial`), the videos whose similarities are not stored yet are encoded
        together, their frames sharing forward passes (:func:`similarities_across_videos`); each video's similarities
        are stored as soon as it is finished, so a run stopped midway keeps them."""
        if not settings.get("batch_across_videos", False):
            return [self.score_trial(item, settings) for item in inputs]
        if not inputs:
            return []
        videos, device = inputs[0].videos, inputs[0].device
        stage_key = encoder_stage_key(self.name, settings, device)
        paths = list(dict.fromkeys(item.trial.video_path() for item in inputs))
        missing = [p for p in paths if not videos.derived.path(stage_key, p, ".npy").is_file()]
        sources = [(path, lambda path=path: videos.frames(path)) for path in missing]
        for index, sims in similarities_across_videos(sources, settings, device):
            videos.derived.array(stage_key, missing[index], lambda sims=sims: sims)
        return [self.score_trial(item, settings) for item in inputs]  # reads the stored similarities
