"""Semantic alignment: a VLM captions the generated and the GT video; the captions are compared.

Columns as the official CSV names them: ``BLEUScore`` (BLEU-4 of the General descriptions),
``CLIPScore`` (CLIP text-to-text similarity of the General descriptions, x100, floored at 0) and
``logic_constraints`` (the generated video's Overall_Constraints flag, 1/0). ``ewmbench-v2`` adds
``events_score`` (the paper's key-step comparison: an order-preserving match of the Events lists)
and ``logic_violation`` (the share of the generated video's logical constraints reported as
violated). Every setting lives under ``metrics: semantics:`` of the protocol.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ewmbench.errors import ConfigError, require_installed
from ewmbench.metrics.base import Metric, TrialInputs, register_metric
from ewmbench.store import StageKey, stage_key

log = logging.getLogger(__name__)

TextSimilarity = Callable[[Sequence[str], Sequence[str]], np.ndarray]


# ---------------------------------------------------------------- BLEU


def bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU of ``candidate`` against one ``reference`` (the EWMBench v1 definition).

    Whitespace tokens, case-sensitive; clipped n-gram precisions p_1..p_max_n with uniform
    weights and no smoothing; brevity penalty exp(1 - r / c) when c <= r; 0 when any precision is
    0 (including a candidate shorter than ``max_n`` tokens) or the candidate is empty.
    """
    from nltk.translate.bleu_score import brevity_penalty, modified_precision

    if not isinstance(candidate, str) or not isinstance(reference, str):
        raise TypeError(
            f"bleu takes two strings, got {type(candidate).__name__} and {type(reference).__name__}"
        )
    hypothesis, references = candidate.split(), [reference.split()]
    if not hypothesis:
        return 0.0
    precisions = [modified_precision(references, hypothesis, n) for n in range(1, max_n + 1)]
    if any(p.numerator == 0 for p in precisions):
        return 0.0
    log_mean = sum(math.log(p.numerator / p.denominator) for p in precisions) / max_n
    penalty = brevity_penalty(len(references[0]), len(hypothesis))
    return float(penalty * math.exp(log_mean))


# ---------------------------------------------------------------- CLIP text similarity


def clip_text_similarity(
    model: Any,
    tokenizer: Any,
    candidates: Sequence[str],
    references: Sequence[str],
    *,
    max_tokens: int = 77,
    truncation: str = "cut",
    scale: float = 100.0,
) -> np.ndarray:
    """max(scale * cos(E(candidate), E(reference)), 0) for each pair, E = CLIP text embedding.

    ``truncation="cut"`` (v1) tokenises in full and keeps the first ``max_tokens`` tokens, which
    drops the end token of long texts; ``"keep_end"`` (v2) lets the tokenizer truncate, keeping the
    end token the CLIP text encoder pools at.
    """
    import torch

    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
    if not candidates:
        return np.zeros(0)
    texts = list(candidates) + list(references)
    if truncation == "cut":
        tokens = tokenizer(texts, padding=True, return_tensors="pt")
        tokens = {key: value[:, :max_tokens] for key, value in tokens.items()}
    elif truncation == "keep_end":
        tokens = dict(
            tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        )
    else:
        raise ConfigError(f"semantics.clip_truncation must be 'cut' or 'keep_end', got {truncation!r}")
    device = next(model.parameters()).device
    with torch.inference_mode():
        embeddings = _text_features(
            model, {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        )
    embeddings = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    first, second = embeddings[: len(candidates)], embeddings[len(candidates) :]
    return (scale * (first * second).sum(-1)).clamp(min=0).cpu().numpy().astype(np.float64)


def _text_features(model: Any, tokens: dict):
    if hasattr(model, "get_text_features"):  # CLIPModel
        output = model.get_text_features(**tokens)
    else:  # CLIPTextModelWithProjection
        output = model(**tokens)
    for name in ("text_embeds", "pooler_output"):
        if not hasattr(output, "shape") and hasattr(output, name) and getattr(output, name) is not None:
            return getattr(output, name)
    return output


# ---------------------------------------------------------------- caption fields


def caption_text(caption: dict, key: str) -> str:
    """A caption field as one string (lists are joined with spaces)."""
    value = caption[key]
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_item_text(item) for item in value)
    raise TypeError(f"caption field {key!r} is {type(value).__name__}, not text")


def _item_text(item: Any) -> str:
    if isinstance(item, dict):
        return " ".join(str(v) for v in item.values() if isinstance(v, str))
    return str(item)


def as_flag(value: Any) -> bool | None:
    """A yes/no answer as a bool: true/false, "true"/"false", "yes"/"no", 1/0; None if unclear."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().strip(".").lower()
        if word in ("true", "yes", "satisfied", "1"):
            return True
        if word in ("false", "no", "violated", "not satisfied", "0"):
            return False
    return None


def logic_flag(caption: dict, key: str = "Overall_Constraints") -> float:
    """1.0 when the caption says every logical constraint holds, else 0.0 (v1's logic_constraints)."""
    return 1.0 if as_flag(caption.get(key)) else 0.0


def violation_rate(
    caption: dict, constraints_key: str = "Logical_Constraints", overall_key: str = "Overall_Constraints"
) -> float:
    """Share of the listed logical constraints reported as not satisfied (0 = none violated).

    Items are judged by a ``satisfied`` field (or ``violated``, inverted). With no judged item,
    the overall flag decides: 0.0 when it says satisfied, 1.0 when it says violated; NaN when the
    caption holds neither.
    """
    verdicts = [
        v for v in (_item_verdict(item) for item in _as_list(caption.get(constraints_key))) if v is not None
    ]
    if verdicts:
        return float(sum(not ok for ok in verdicts) / len(verdicts))
    overall = as_flag(caption.get(overall_key))
    return math.nan if overall is None else float(not overall)


def _as_list(value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return (
            [value]
            if any("satisf" in k.lower() or "violat" in k.lower() for k in value)
            else list(value.values())
        )
    return []


def _item_verdict(item: Any) -> bool | None:
    if not isinstance(item, dict):
        return None
    for key, value in item.items():
        lowered = key.lower()
        if "satisf" in lowered:
            return as_flag(value)
        if "violat" in lowered:
            flag = as_flag(value)
            return None if flag is None else not flag
    return None


def ordered_match_score(similarity: np.ndarray) -> float:
    """Best order-preserving one-to-one match of reference steps (rows) to generated steps
    (columns): the largest sum of matched similarities over increasing row and column indices,
    divided by max(rows, columns), so missing, extra and reordered steps all lower the score."""
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2:
        raise ValueError(f"similarity must be a 2-D matrix, got shape {similarity.shape}")
    rows, cols = similarity.shape
    if rows == 0 or cols == 0:
        return 0.0
    best = np.zeros((rows + 1, cols + 1))
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            best[i, j] = max(best[i - 1, j], best[i, j - 1], best[i - 1, j - 1] + similarity[i - 1, j - 1])
    return float(best[rows, cols] / max(rows, cols))


def events_list(caption: dict, key: str = "Events") -> list[str]:
    value = caption.get(key)
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    if isinstance(value, list):
        return [_item_text(item) for item in value if _item_text(item).strip()]
    if isinstance(value, dict):
        return [_item_text(v) for v in value.values()]
    return []


def events_score(generated: dict, reference: dict, similarity: TextSimilarity, key: str = "Events") -> float:
    """Key-step comparison: CLIP similarities of every (GT step, generated step) pair, then
    :func:`ordered_match_score`. NaN when the GT caption lists no step."""
    gt_steps, gen_steps = events_list(reference, key), events_list(generated, key)
    if not gt_steps:
        return math.nan
    if not gen_steps:
        return 0.0
    left = [g for g in gt_steps for _ in gen_steps]
    right = [s for _ in gt_steps for s in gen_steps]
    matrix = np.asarray(similarity(left, right), dtype=np.float64).reshape(len(gt_steps), len(gen_steps))
    return ordered_match_score(matrix)


def semantic_scores(
    generated: dict, reference: dict, similarity: TextSimilarity, settings: dict
) -> dict[str, float]:
    """All semantics columns from two parsed captions (pure, given a text similarity function).

    ``settings["on_error"]``: ``"zero"`` (v1: a score that cannot be computed, e.g. a missing
    field, is 0) or ``"nan"`` (v2: it is NaN, reported as missing rather than as a bad score).
    """
    on_error = settings.get("on_error", "zero")
    if on_error not in ("zero", "nan"):
        raise ConfigError(f"semantics.on_error must be 'zero' or 'nan', got {on_error!r}")
    fallback = 0.0 if on_error == "zero" else math.nan
    field, logic_key = settings["field"], settings["logic_field"]

    def guarded(name: str, compute: Callable[[], float]) -> float:
        try:
            return float(compute())
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("semantics: %s not computed (%s: %s)", name, type(exc).__name__, exc)
            return fallback

    scores = {
        "BLEUScore": guarded(
            "BLEUScore",
            lambda: bleu(
                caption_text(generated, field), caption_text(reference, field), settings["bleu_max_n"]
            ),
        ),
        "CLIPScore": guarded(
            "CLIPScore",
            lambda: similarity([caption_text(generated, field)], [caption_text(reference, field)])[0],
        ),
        "logic_constraints": guarded(
            "logic_constraints", lambda: _strict_logic_flag(generated, logic_key, on_error)
        ),
    }
    if settings.get("events_score", False):
        scores["events_score"] = guarded(
            "events_score", lambda: events_score(generated, reference, similarity, settings["events_field"])
        )
    if settings.get("logic_violation", False):
        scores["logic_violation"] = guarded(
            "logic_violation", lambda: violation_rate(generated, settings["constraints_field"], logic_key)
        )
    return scores


def _strict_logic_flag(caption: dict, key: str, on_error: str) -> float:
    if on_error == "nan" and as_flag(caption.get(key)) is None:
        raise ValueError(f"caption has no yes/no {key!r}")
    return logic_flag(caption, key)


# ---------------------------------------------------------------- models, cached per process


def caption_stage_key(settings: dict) -> StageKey:
    """Feature-store key of captions: model, prompt text, system message, sampling, frame size and
    generation settings (the batch size changes only the speed)."""
    from ewmbench.perception.captioner import FrameSampling, load_prompt

    sampling = FrameSampling.from_settings(settings.get("sampling", {}))
    relevant = {
        "prompt": settings["prompt"],
        "prompt_text": load_prompt(settings["prompt"]),
        "system_message": settings["system_message"],
        "dtype": settings["captioner_dtype"],
        "frame_size": settings.get("frame_size"),
        "sampling": sampling.version(),
        "max_new_tokens": settings["max_new_tokens"],
    }
    from ewmbench.perception.captioner_openai import backend_identity

    backend = backend_identity(settings["captioner"])
    weights = (
        "model:" + settings["captioner"] if backend == "transformers" else backend
    )  # a server's answers are its own
    return stage_key("captions", relevant, weights)


def captioner_factory(settings: dict, device: str):
    """Builds the captioner when a caption is missing: the in-process model, or the
    OpenAI-compatible server that ``EWMBENCH_CAPTIONER_URL`` names (``captioner_openai``)."""
    from ewmbench.perception.captioner import FrameSampling, load_captioner, load_prompt
    from ewmbench.perception.captioner_openai import load_openai_captioner, server_from_env

    def build():
        server = server_from_env()
        if server is not None:
            return load_openai_captioner(
                server[0],
                server[1] or settings["captioner"],
                instruction=load_prompt(settings["prompt"]),
                system_message=settings["system_message"],
                sampling=FrameSampling.from_settings(settings.get("sampling", {})),
                max_new_tokens=settings["max_new_tokens"],
            )
        return load_captioner(
            settings["captioner"],
            instruction=load_prompt(settings["prompt"]),
            system_message=settings["system_message"],
            sampling=FrameSampling.from_settings(settings.get("sampling", {})),
            max_new_tokens=settings["max_new_tokens"],
            batch_size=settings["batch_size"],
            device=device,
            dtype=settings["captioner_dtype"],
        )

    return build


def load_clip_text(source: str, device: str):
    """(model, tokenizer) of a CLIP text encoder from a weights id, a local folder or a cached hub id."""
    from ewmbench.perception.captioner import resolve_model_path
    from ewmbench.perception.model_cache import loaded

    path = resolve_model_path(source)

    def build():
        from transformers import AutoTokenizer, CLIPModel

        return CLIPModel.from_pretrained(str(path)).to(device).eval(), AutoTokenizer.from_pretrained(
            str(path)
        )

    return loaded(("clip-text", str(path), str(device)), build)


def clip_similarity_function(settings: dict, device: str) -> TextSimilarity:
    model, tokenizer = load_clip_text(settings["text_encoder"], device)

    def similarity(candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
        return clip_text_similarity(
            model,
            tokenizer,
            candidates,
            references,
            max_tokens=settings["clip_max_tokens"],
            truncation=settings["clip_truncation"],
            scale=settings["clip_scale"],
        )

    return similarity


@register_metric
class Semantics(Metric):
    name = "semantics"
    modules, extra = ("torch", "transformers"), "neural"
    group = "semantics"
    columns = ("BLEUScore", "CLIPScore", "logic_constraints", "events_score", "logic_violation")
    lower_is_better = frozenset({"logic_violation"})  # a share of violated constraints
    description = (
        "VLM captions of generated vs GT video: BLEU and CLIP text similarity of the task descriptions, the logic flag; "
        "v2 adds the key-step (Events) comparison and a logic-violation share (columns_for gives the columns a protocol enables)."
    )

    def columns_for(self, settings: dict) -> tuple[str, ...]:
        optional = tuple(name for name in ("events_score", "logic_violation") if settings.get(name, False))
        return ("BLEUScore", "CLIPScore", "logic_constraints") + optional

    def check_available(self, settings: dict) -> None:
        from ewmbench.perception.captioner import resolve_model_path

        for module in self.modules:
            require_installed(module, self.extra, "metric 'semantics'")

        from ewmbench.perception.captioner_openai import server_from_env

        keys = (
            ("text_encoder",) if server_from_env() else ("captioner", "text_encoder")
        )  # a server holds its own captioner
        for key in keys:
            resolve_model_path(settings[key])  # raises Unavailable naming the fetch command

    def computed_with(self, settings: dict) -> dict:
        from ewmbench.perception.captioner_openai import backend_identity

        return {"captioner_backend": backend_identity(settings["captioner"])}

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        from ewmbench.perception.captioner import cached_captions, parse_caption

        videos = [inputs.trial.video_path(), inputs.episode.video_path()]
        answers = cached_captions(
            videos,
            inputs.videos,
            caption_stage_key(settings),
            captioner_factory(settings, inputs.device),
            settings.get("frame_size"),
        )
        generated, reference = (parse_caption(text) for text in answers)
        return semantic_scores(
            generated, reference, clip_similarity_function(settings, inputs.device), settings
        )


__all__ = [
    "Semantics",
    "as_flag",
    "bleu",
    "caption_text",
    "clip_text_similarity",
    "events_score",
    "logic_flag",
    "ordered_match_score",
    "semantic_scores",
    "violation_rate",
]
