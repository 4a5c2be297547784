"""The captioner: frame sampling, smart_resize, prompt, lenient parsing, batched generation on a
tiny random-weight Qwen2.5-VL, the caption cache, and the semantics metric end to end."""

from __future__ import annotations

import numpy as np
import pytest

from ewmbench.data.layout import write_episode, write_trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, Unavailable
from ewmbench.metrics.base import TrialInputs
from ewmbench.perception.captioner import (
    CAPTION_KEYS,
    FrameSampling,
    VideoCaptioner,
    build_messages,
    cached_captions,
    load_prompt,
    parse_caption,
    prepare_video,
    sample_frame_count,
    sample_indices,
    smart_resize,
    video_max_pixels,
)
from ewmbench.protocols import load_protocol

V1 = FrameSampling()  # the v1 defaults, identical to the protocol file (checked below)


def test_protocol_sampling_equals_the_v1_defaults():
    assert FrameSampling.from_settings(load_protocol("ewmbench-v1").settings("semantics")["sampling"]) == V1
    with pytest.raises(ConfigError):
        FrameSampling.from_settings({"fps": 2, "frames": 3})


def test_frame_count_hand_worked():
    # N = 40: 40 / 30 * 2 = 2.67 -> raised to min_frames 4; floor_even(min(768, 40)) = 40; -> 4
    assert sample_frame_count(40) == 4
    # N = 300: 300 / 30 * 2 = 20 -> 20
    assert sample_frame_count(300) == 20
    # N = 301: 20.07 -> floor_even -> 20
    assert sample_frame_count(301) == 20
    # N = 3: 0.2 -> 4, but capped by floor_even(min(768, 3)) = 2 -> 2
    assert sample_frame_count(3) == 2
    # N = 10000: 666.7 -> floor_even -> 666; N = 12000: 800 -> capped at 768
    assert sample_frame_count(10000) == 666
    assert sample_frame_count(12000) == 768
    with pytest.raises(ValueError):
        sample_frame_count(1)


def test_indices_hand_worked():
    # linspace(0, 39, 4) = 0, 13, 26, 39
    assert sample_indices(40).tolist() == [0, 13, 26, 39]
    # linspace(0, 299, 20): step 299 / 19 = 15.7368..; 15.74 -> 16, 31.47 -> 31, 47.21 -> 47, ..., 299
    indices = sample_indices(300)
    assert len(indices) == 20 and indices[:4].tolist() == [0, 16, 31, 47] and indices[-1] == 299
    # linspace(0, 5, 4) = 0, 1.667, 3.333, 5 -> 0, 2, 3, 5
    assert sample_indices(6).tolist() == [0, 2, 3, 5]


def test_smart_resize_hand_worked():
    # n = 4: max_pixels = min(602112, 16056320 / 4 * 2) = 602112
    assert video_max_pixels(4) == 602112
    # 480 / 28 = 17.14 -> 17 * 28 = 476; 640 / 28 = 22.86 -> 23 * 28 = 644; 476 * 644 = 306544 within bounds
    assert smart_resize(480, 640, 28, 12544, video_max_pixels(4)) == (476, 644)
    # n = 768: 16056320 / 768 * 2 = 41813.3 -> cap 41813; 476 * 644 too large:
    # beta = sqrt(307200 / 41813) = 2.7105; 480 / beta = 177.1 -> 168; 640 / beta = 236.1 -> 224
    assert video_max_pixels(768) == 41813
    assert smart_resize(480, 640, 28, 12544, 41813) == (168, 224)
    # 56 x 84 = 4704 < 12544: beta = sqrt(12544 / 4704) = 1.633; 91.4 -> ceil 112; 137.2 -> ceil 140
    assert smart_resize(56, 84, 28, 12544, 602112) == (112, 140)
    # the per-frame cap never falls below int(min_pixels * 1.05) = 13171
    assert video_max_pixels(100000) == 13171
    with pytest.raises(ValueError):
        smart_resize(1, 300)


def test_prepare_video_samples_and_resizes():
    frames = np.zeros((40, 480, 640, 3), np.uint8)
    for t in range(40):
        frames[t] = t  # frame index as the pixel value, to see which frames were taken
    resized, indices = prepare_video(frames)
    assert indices.tolist() == [0, 13, 26, 39]
    assert resized.shape == (4, 3, 476, 644) and str(resized.dtype) == "torch.float32"
    assert resized[:, 0, 0, 0].tolist() == [0.0, 13.0, 26.0, 39.0]  # constant frames stay constant
    assert frames[5, 0, 0, 0] == 5  # input untouched


def test_prompt_and_messages():
    prompt = load_prompt("ewmbench-v1")
    for key in CAPTION_KEYS:
        assert key in prompt
    assert "human hand" in prompt.lower() and "overhead camera" in prompt.lower()
    messages = build_messages("You are a helpful assistant in analyzing videos.", prompt)
    assert messages[0]["role"] == "system"
    assert [part["type"] for part in messages[1]["content"]] == [
        "text",
        "video",
    ]  # instruction first, then the video
    with pytest.raises(ConfigError):
        load_prompt("no-such-prompt")


def test_parse_caption_is_lenient():
    fenced = '```json\n{"General": "open the drawer", "Events": ["reach", "pull",], "Overall_Constraints": true,}\n```'
    assert parse_caption(fenced) == {
        "General": "open the drawer",
        "Events": ["reach", "pull"],
        "Overall_Constraints": True,
    }
    truncated = '{"General": "pick the cup", "Events": ["reach", "gra'
    assert parse_caption(truncated)["General"] == "pick the cup"
    assert (
        parse_caption("Sure! Here is the JSON: {'General': 'wipe the table'}")["General"] == "wipe the table"
    )
    assert parse_caption("no json here") == {}
    assert parse_caption('[{"General": "x"}]') == {"General": "x"}


# ---------------------------------------------------------------- real generation on a tiny model


@pytest.fixture(scope="module")
def tiny_captioner():
    from tests.helpers.tiny_vlm import tiny_model, tiny_processor

    processor = tiny_processor()
    return VideoCaptioner(
        tiny_model(processor),
        processor,
        "Describe the video.",
        "You are a helpful assistant in analyzing videos.",
        FrameSampling(),
        max_new_tokens=6,
        batch_size=2,
    )


def _videos():
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 255, (40, 56, 84, 3), dtype=np.uint8),
        rng.integers(0, 255, (60, 56, 84, 3), dtype=np.uint8),
        rng.integers(0, 255, (40, 56, 84, 3), dtype=np.uint8),
    ]


def test_processor_inputs_follow_the_sampling(tiny_captioner):
    inputs = tiny_captioner._inputs(_videos()[:2])
    # 4 sampled frames -> 2 temporal patches; 56x84 -> 112x140 -> 8 x 10 patches of 14
    assert inputs["video_grid_thw"].tolist() == [[2, 8, 10], [2, 8, 10]]
    # sampled fps = n / N * 30: 4 / 40 * 30 = 3 -> 2 / 3 s per temporal patch; 4 / 60 * 30 = 2 -> 1 s
    assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2 / 3, 1.0])
    # left padding for batched generation: both prompts end at the last column
    assert inputs["attention_mask"][:, -1].tolist() == [1, 1]


def test_batched_greedy_generation_matches_one_at_a_time(tiny_captioner):
    videos = _videos()
    batched = tiny_captioner.caption(videos)  # batches of 2 and 1
    assert len(batched) == 3 and all(isinstance(text, str) for text in batched)
    single = [tiny_captioner.caption([video])[0] for video in videos]
    assert batched == single


def test_cached_captions_generate_only_what_is_missing(tmp_path, tiny_captioner):
    episode = write_episode(tmp_path / "gt", "1", "1", _videos()[0], "open the drawer")
    trial = write_trial(tmp_path / "gen_dataset", "1", "1", "1", _videos()[1])
    preprocessor = VideoCache(tmp_path / "cache")
    built = []

    def factory():
        built.append(1)
        return tiny_captioner

    videos = [trial.video_path(), episode.video_path()]
    first = cached_captions(videos, preprocessor, "captions/test", factory)
    again = cached_captions(videos, preprocessor, "captions/test", factory)
    assert first == again and len(built) == 1  # the second call reads the cache and never builds the model
    assert first == tiny_captioner.caption([preprocessor.frames(v) for v in videos])
    # with a frame size the frames are resized first (56x84 -> 112x168, a different input)
    resized = cached_captions(videos, preprocessor, "captions/test-112x168", factory, frame_size=(112, 168))
    from ewmbench.perception.captioner import resize_frames

    assert resized == tiny_captioner.caption(
        [resize_frames(preprocessor.frames(v), (112, 168)) for v in videos]
    )


def test_load_captioner_from_a_saved_model_folder(tmp_path, tiny_captioner):
    from ewmbench.perception.captioner import load_captioner

    folder = tmp_path / "tiny-vlm"
    tiny_captioner.model.save_pretrained(folder)
    tiny_captioner.processor.save_pretrained(folder)
    loaded = load_captioner(
        str(folder),
        instruction=tiny_captioner.instruction,
        system_message=tiny_captioner.system_message,
        sampling=FrameSampling(),
        max_new_tokens=6,
        batch_size=2,
        device="cpu",
        dtype="float32",
    )
    assert type(loaded.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    video = _videos()[0]
    assert loaded.caption([video]) == tiny_captioner.caption([video])  # same weights, same greedy answer
    with pytest.raises(ConfigError):
        load_captioner(
            str(folder),
            instruction="x",
            system_message="y",
            sampling=FrameSampling(),
            max_new_tokens=1,
            batch_size=1,
            device="cpu",
            dtype="int8",
        )


def test_load_clip_text_from_a_saved_model_folder(tmp_path):
    from ewmbench.metrics.semantics import clip_text_similarity, load_clip_text
    from tests.helpers.tiny_clip import tiny_clip_model, tiny_clip_tokenizer

    tokenizer = tiny_clip_tokenizer()
    model = tiny_clip_model(tokenizer)
    model.save_pretrained(tmp_path / "tiny-clip")
    tokenizer.save_pretrained(tmp_path / "tiny-clip")
    loaded, loaded_tokenizer = load_clip_text(str(tmp_path / "tiny-clip"), "cpu")
    expected = clip_text_similarity(model, tokenizer, ["a robot arm"], ["the red cup"])
    assert clip_text_similarity(loaded, loaded_tokenizer, ["a robot arm"], ["the red cup"]) == pytest.approx(
        expected, abs=1e-4
    )


# ---------------------------------------------------------------- the metric


def test_semantics_metric_scores_from_cached_captions(tmp_path, monkeypatch):
    import ewmbench.metrics.semantics as semantics
    from tests.helpers.tiny_clip import tiny_clip_model, tiny_clip_tokenizer

    rng = np.random.default_rng(1)
    episode = write_episode(
        tmp_path / "gt", "1", "1", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), "open"
    )
    trial = write_trial(
        tmp_path / "gen_dataset", "1", "1", "1", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    )
    preprocessor = VideoCache(tmp_path / "cache")
    settings = load_protocol("ewmbench-v1").settings("semantics")
    kind = semantics.caption_stage_key(settings)
    preprocessor.derived.text(
        kind,
        episode.video_path(),
        lambda: '{"General": "the robot opens the top drawer", "Overall_Constraints": true}',
    )
    preprocessor.derived.text(
        kind,
        trial.video_path(),
        lambda: '```json\n{"General": "the robot opens the drawer", "Overall_Constraints": "false"}\n```',
    )
    tokenizer = tiny_clip_tokenizer()
    monkeypatch.setattr(
        semantics, "load_clip_text", lambda source, device: (tiny_clip_model(tokenizer), tokenizer)
    )

    def no_captioner(settings, device):
        def build():
            raise AssertionError("captions are cached: the captioner must not be loaded")

        return build

    monkeypatch.setattr(semantics, "captioner_factory", no_captioner)
    row = semantics.Semantics().score_trial(TrialInputs(episode, trial, preprocessor), settings)
    # BLEU: cand "the robot opens the drawer" (5) vs ref "the robot opens the top drawer" (6):
    # p1 = 5/5, p2 = 3/4 (the robot, robot opens, opens the), p3 = 2/3, p4 = 1/2; product 1/4; BP = exp(1 - 6/5)
    assert row["BLEUScore"] == pytest.approx(0.25**0.25 * np.exp(-0.2), rel=1e-12)
    assert 0 <= row["CLIPScore"] <= 100
    assert row["logic_constraints"] == 0.0
    assert set(row) == {"BLEUScore", "CLIPScore", "logic_constraints"}


def test_caption_stage_key_changes_with_every_setting():
    settings = load_protocol("ewmbench-v1").settings("semantics")
    from ewmbench.metrics.semantics import caption_stage_key

    base = caption_stage_key(settings)
    assert "/" not in settings["captioner"] or "--" in base
    assert caption_stage_key({**settings, "max_new_tokens": 512}) != base
    assert caption_stage_key({**settings, "system_message": "Be brief."}) != base
    assert caption_stage_key({**settings, "sampling": {**settings["sampling"], "fps": 1}}) != base
    assert caption_stage_key({**settings, "captioner": "Qwen/Qwen2.5-VL-3B-Instruct"}) != base
    assert caption_stage_key({**settings, "frame_size": None}) != base


def test_resize_frames_to_the_benchmark_size():
    from ewmbench.perception.captioner import resize_frames

    frames = np.full((2, 240, 320, 3), 77, np.uint8)
    resized = resize_frames(frames, (480, 640))
    assert resized.shape == (2, 480, 640, 3) and np.all(resized == 77)  # a constant image stays constant
    assert resize_frames(frames, None) is frames and resize_frames(frames, (240, 320)) is frames


def test_check_available_names_the_fetch_command(tmp_path, monkeypatch):
    from ewmbench.metrics.semantics import Semantics

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = load_protocol("ewmbench-v1").settings("semantics")
    with pytest.raises(Unavailable) as info:
        Semantics().check_available(settings)
    assert info.value.fix == "ewmbench weights download qwen2.5-vl-7b-instruct"
    with pytest.raises(Unavailable) as info:
        Semantics().check_available({**settings, "captioner": "some-org/some-vlm"})
    assert "some-org/some-vlm" in info.value.reason
