"""Semantics scoring: BLEU (v1 definition), CLIP text similarity, caption fields and the v2 scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ewmbench.errors import ConfigError
from ewmbench.metrics import bleu
from ewmbench.metrics.semantics import (
    as_flag,
    caption_text,
    clip_text_similarity,
    events_score,
    logic_flag,
    ordered_match_score,
    semantic_scores,
    violation_rate,
)
from ewmbench.protocols import load_protocol
from tests.helpers.tiny_clip import tiny_clip_model, tiny_clip_tokenizer

# ---------------------------------------------------------------- BLEU


def test_bleu_longer_candidate_no_brevity_penalty():
    # cand: the cat sat on the mat today (c = 7), ref: the cat sat on the mat (r = 6)
    # p1 = 6/7, p2 = 5/6, p3 = 4/5, p4 = 3/4; product = 3/7; c > r so BP = 1
    assert bleu("the cat sat on the mat today", "the cat sat on the mat") == pytest.approx(
        (3 / 7) ** 0.25, rel=1e-12
    )


def test_bleu_shorter_candidate_brevity_penalty():
    # cand: the cat sat on the (c = 5), every n-gram matches: p1..p4 = 1; BP = exp(1 - 6/5) = exp(-0.2)
    assert bleu("the cat sat on the", "the cat sat on the mat") == pytest.approx(math.exp(-0.2), rel=1e-12)


def test_bleu_is_case_sensitive():
    # "The" does not match "the": p1 = 5/6, p2 = 4/5, p3 = 3/4, p4 = 2/3; product = 1/3; c = r so BP = 1
    assert bleu("The cat sat on the mat", "the cat sat on the mat") == pytest.approx(
        (1 / 3) ** 0.25, rel=1e-12
    )


def test_bleu_clips_repeated_words_and_is_zero_when_a_precision_is_zero():
    # p1 = min(6, 2)/6 = 1/3 but no bigram "the the" in the reference: p2 = 0 -> exactly 0 (not a tiny number)
    assert bleu("the the the the the the", "the cat sat on the mat") == 0.0


def test_bleu_zero_for_short_or_empty_candidates():
    assert bleu("the cat sat", "the cat sat") == 0.0  # no 4-gram at all: p4 = 0/0 counts as zero
    assert bleu("", "the cat sat on the mat") == 0.0
    assert bleu("a b c d", "a b c d") == 1.0


def test_bleu_whitespace_tokens():
    # tabs and repeated spaces separate tokens just like one space
    assert bleu("the  cat\tsat on the mat", "the cat sat on the mat") == 1.0


def test_bleu_rejects_non_text():
    with pytest.raises(TypeError):
        bleu(["the", "cat"], "the cat")  # type: ignore[arg-type]


words = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=4, max_size=12)


@hsettings(max_examples=60, deadline=None)
@given(words, words)
def test_bleu_matches_nltk_sentence_bleu_when_all_precisions_are_positive(candidate, reference):
    from nltk.translate.bleu_score import modified_precision, sentence_bleu

    if any(modified_precision([reference], candidate, n).numerator == 0 for n in range(1, 5)):
        assert bleu(" ".join(candidate), " ".join(reference)) == 0.0
    else:
        expected = sentence_bleu([reference], candidate, weights=(0.25, 0.25, 0.25, 0.25))
        assert bleu(" ".join(candidate), " ".join(reference)) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- CLIP text similarity


@pytest.fixture(scope="module")
def clip():
    tokenizer = tiny_clip_tokenizer()
    return tiny_clip_model(tokenizer), tokenizer


def _embed(model, tokenizer, text: str, cut: int | None = None):
    import torch

    tokens = tokenizer([text], return_tensors="pt")
    if cut:
        tokens = {k: v[:, :cut] for k, v in tokens.items()}
    with torch.no_grad():
        out = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    out = getattr(out, "pooler_output", out)
    return out[0].numpy().astype(np.float64)


def test_clip_identical_texts_score_100(clip):
    model, tokenizer = clip
    scores = clip_text_similarity(
        model, tokenizer, ["a robot opens the drawer"], ["a robot opens the drawer"]
    )
    assert scores.shape == (1,)
    assert scores[0] == pytest.approx(100.0, abs=1e-3)


def test_clip_score_is_100_times_cosine_floored_at_zero(clip):
    model, tokenizer = clip
    pairs = [
        ("pick up the cup", "put down the red block"),
        ("open", "close the door slowly"),
        ("x", "zzzz qqqq"),
    ]
    scores = clip_text_similarity(model, tokenizer, [a for a, _ in pairs], [b for _, b in pairs])
    for (a, b), score in zip(pairs, scores):
        u, v = _embed(model, tokenizer, a), _embed(model, tokenizer, b)
        cosine = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
        assert score == pytest.approx(
            max(100 * cosine, 0.0), abs=1e-3
        )  # padding in the batch must not change it
    assert np.all(scores >= 0)


def test_clip_truncation_cut_drops_the_end_token_keep_end_keeps_it(clip):
    model, tokenizer = clip
    long_text = "the robot arm reaches " * 10  # 220 characters: far beyond 77 byte tokens
    short = "robot"
    u_cut = _embed(model, tokenizer, long_text, cut=77)
    v = _embed(model, tokenizer, short)
    expected_cut = max(100 * u_cut @ v / np.linalg.norm(u_cut) / np.linalg.norm(v), 0)
    cut = clip_text_similarity(model, tokenizer, [long_text], [short], truncation="cut")[0]
    keep = clip_text_similarity(model, tokenizer, [long_text], [short], truncation="keep_end")[0]
    assert cut == pytest.approx(expected_cut, abs=1e-3)
    ids = tokenizer([long_text], truncation=True, max_length=77)["input_ids"][0]
    assert len(ids) == 77 and ids[-1] == tokenizer.eos_token_id  # keep_end keeps the end token
    assert cut != pytest.approx(keep, abs=1e-6)
    with pytest.raises(ConfigError):
        clip_text_similarity(model, tokenizer, ["a"], ["b"], truncation="middle")


def test_clip_length_mismatch_and_empty(clip):
    model, tokenizer = clip
    with pytest.raises(ValueError):
        clip_text_similarity(model, tokenizer, ["a", "b"], ["a"])
    assert clip_text_similarity(model, tokenizer, [], []).shape == (0,)


# ---------------------------------------------------------------- caption fields


def test_flags():
    assert (
        as_flag(True) is True
        and as_flag("false") is False
        and as_flag(" Yes.") is True
        and as_flag(0) is False
    )
    assert as_flag("maybe") is None and as_flag(None) is None and as_flag(2) is None
    assert logic_flag({"Overall_Constraints": "True"}) == 1.0
    assert logic_flag({"Overall_Constraints": False}) == 0.0
    assert logic_flag({}) == 0.0


def test_caption_text_joins_lists():
    assert caption_text({"General": "open it"}, "General") == "open it"
    assert caption_text({"Events": ["a b", {"step": "c"}]}, "Events") == "a b c"
    with pytest.raises(KeyError):
        caption_text({}, "General")
    with pytest.raises(TypeError):
        caption_text({"General": 3}, "General")


def test_violation_rate():
    items = [
        {"event": "open", "satisfied": True},
        {"event": "take", "satisfied": "false"},
        {"event": "close", "violated": False},
        {"event": "?", "note": "no verdict"},
    ]
    # three judged items, one not satisfied: 1/3
    assert violation_rate({"Logical_Constraints": items}) == pytest.approx(1 / 3)
    assert violation_rate({"Logical_Constraints": "free text", "Overall_Constraints": False}) == 1.0
    assert violation_rate({"Overall_Constraints": True}) == 0.0
    assert math.isnan(violation_rate({}))


def test_ordered_match_score_hand_worked():
    # in order: 90 + 80 = 170, over max(2, 2) = 2 -> 85
    assert ordered_match_score(np.array([[90, 10], [20, 80]])) == pytest.approx(85)
    # reversed steps: the best order-preserving match takes one pair, 90 -> 90 / 2 = 45
    assert ordered_match_score(np.array([[10, 90], [80, 20]])) == pytest.approx(45)
    # an extra generated step: 90 + 80 = 170 over max(2, 3) = 3
    assert ordered_match_score(np.array([[90, 0, 0], [0, 0, 80]])) == pytest.approx(170 / 3)
    assert ordered_match_score(np.zeros((0, 3))) == 0.0
    with pytest.raises(ValueError):
        ordered_match_score(np.zeros(3))


def _word_overlap(candidates, references):
    """A stand-in text similarity: 100 x Jaccard overlap of the word sets."""
    return np.array(
        [
            100 * len(set(a.split()) & set(b.split())) / len(set(a.split()) | set(b.split()))
            for a, b in zip(candidates, references)
        ]
    )


def test_events_score_uses_the_similarity_matrix():
    gt = {"Events": ["open drawer", "take cup"]}
    gen = {"Events": ["open drawer", "take cup", "wave"]}
    # matrix rows (GT) x columns (gen): [[100, 0, 0], [0, 100, 0]] -> 200 / 3
    assert events_score(gen, gt, _word_overlap) == pytest.approx(200 / 3)
    assert events_score({"Events": []}, gt, _word_overlap) == 0.0
    assert math.isnan(events_score(gen, {}, _word_overlap))


V1 = load_protocol("ewmbench-v1").settings("semantics")
V2 = load_protocol("ewmbench-v2").settings("semantics")


def test_semantic_scores_v1_columns_and_zero_on_failure():
    gt = {"General": "the robot opens the top drawer", "Overall_Constraints": True}
    gen = {"General": "the robot opens the top drawer", "Overall_Constraints": "true"}
    scores = semantic_scores(gen, gt, _word_overlap, V1)
    assert scores == {"BLEUScore": 1.0, "CLIPScore": 100.0, "logic_constraints": 1.0}
    broken = semantic_scores({}, gt, _word_overlap, V1)  # an unparseable caption
    assert broken == {"BLEUScore": 0.0, "CLIPScore": 0.0, "logic_constraints": 0.0}


def test_semantic_scores_v2_adds_columns_and_nan_on_failure():
    gt = {"General": "a b c d", "Events": ["open drawer"], "Overall_Constraints": True}
    gen = {
        "General": "a b c d",
        "Events": ["open drawer"],
        "Overall_Constraints": False,
        "Logical_Constraints": [{"satisfied": False}, {"satisfied": True}],
    }
    scores = semantic_scores(gen, gt, _word_overlap, V2)
    assert scores == {
        "BLEUScore": 1.0,
        "CLIPScore": 100.0,
        "logic_constraints": 0.0,
        "events_score": 100.0,
        "logic_violation": 0.5,
    }
    broken = semantic_scores({}, gt, _word_overlap, V2)
    assert all(
        math.isnan(broken[k]) for k in ("BLEUScore", "CLIPScore", "logic_constraints", "logic_violation")
    )
    assert broken["events_score"] == 0.0  # GT lists steps, the generated caption none


def test_semantic_scores_rejects_bad_on_error():
    with pytest.raises(ConfigError):
        semantic_scores({}, {}, _word_overlap, {**V1, "on_error": "ignore"})


# ---------------------------------------------------------------- real weights (skipped where absent)


@pytest.mark.weights
def test_real_clip_text_similarity_orders_related_texts_first():
    from ewmbench.errors import Unavailable
    from ewmbench.metrics.semantics import load_clip_text

    try:
        model, tokenizer = load_clip_text("clip-vit-base-patch16", "cpu")
    except Unavailable as exc:
        pytest.skip(f"CLIP ViT-B/16 not available: {exc}")
    reference = "The robot arm opens the top drawer of the cabinet."
    scores = clip_text_similarity(
        model, tokenizer, [reference, "The robot opens a drawer.", "A dog runs on a beach."], [reference] * 3
    )
    assert scores[0] == pytest.approx(100.0, abs=1e-3)
    assert scores[1] > scores[2]


@pytest.mark.weights
@pytest.mark.gpu
def test_real_qwen_captioner_answers_in_json():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("Qwen2.5-VL-7B captioning needs a CUDA device")
    from ewmbench.errors import Unavailable
    from ewmbench.perception.captioner import (
        CAPTION_KEYS,
        FrameSampling,
        load_captioner,
        load_prompt,
        parse_caption,
    )

    try:
        captioner = load_captioner(
            "qwen2.5-vl-7b-instruct",
            instruction=load_prompt("ewmbench-v1"),
            system_message=V1["system_message"],
            sampling=FrameSampling(),
            max_new_tokens=512,
            batch_size=2,
            device="cuda",
        )
    except Unavailable as exc:
        pytest.skip(f"Qwen2.5-VL-7B-Instruct not available: {exc}")
    frames = np.zeros((60, 480, 640, 3), np.uint8)
    for t in range(60):
        frames[t, 200:280, 100 + 6 * t : 180 + 6 * t] = (200, 30, 30)  # a red block sliding right
    caption = parse_caption(captioner.caption([frames])[0])
    assert set(CAPTION_KEYS) <= set(caption)


def test_columns_follow_the_protocol():
    from ewmbench.metrics.semantics import Semantics

    assert Semantics().columns_for(V1) == ("BLEUScore", "CLIPScore", "logic_constraints")
    assert Semantics().columns_for(V2) == (
        "BLEUScore",
        "CLIPScore",
        "logic_constraints",
        "events_score",
        "logic_violation",
    )
    assert set(Semantics().columns_for(V2)) == set(Semantics.columns)
