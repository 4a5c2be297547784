"""Video captioning with a vision-language model (Qwen2.5-VL by default) for the semantics metric.

The pieces that decide the numbers are pure functions, tested by hand: how many frames are
sampled and which (:func:`sample_frame_count`, :func:`sample_indices`), the resize target
(:func:`smart_resize`, :func:`video_max_pixels`), the prompt (a data file under ``prompts/``) and
the lenient parsing of the answer (:func:`parse_caption`). :class:`VideoCaptioner` holds a loaded
model and processor and generates greedily, several videos per batch. Any chat VLM that
transformers loads with ``AutoModelForImageTextToText`` and whose processor accepts
``videos=`` can be plugged in by naming it in the protocol's ``captioner`` setting (a weights id
from ``weights.yaml``, a Hugging Face model id already in the cache, or a local folder).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, DataError, Unavailable, require
from ewmbench.perception.model_cache import loaded
from ewmbench.perception.weights import resolve, weight_specs


@dataclass(frozen=True)
class FrameSampling:
    """Frame sampling and resizing of a video for the captioner (the qwen-vl-utils rule)."""

    assumed_fps: float = 30.0  # the frame rate the reader reports for a frames folder
    fps: float = 2.0  # frames sampled per second of video
    min_frames: int = 4
    max_frames: int = 768
    frame_factor: int = 2  # the sampled count is a multiple of this (temporal patch size)
    pixel_factor: int = 28  # resized sides are multiples of this (patch 14 x merge 2)
    min_pixels: int = 16 * 28 * 28
    max_pixels: int = 768 * 28 * 28  # per-frame cap
    total_pixels: int = 20480 * 28 * 28  # budget over all sampled frames

    @classmethod
    def from_settings(cls, settings: dict) -> FrameSampling:
        known = set(cls.__dataclass_fields__)
        unknown = set(settings) - known
        if unknown:
            raise ConfigError(
                f"semantics.sampling: unknown settings {sorted(unknown)} (known: {sorted(known)})"
            )
        return cls(**settings)

    def version(self) -> str:
        """A short string naming every setting, for cache keys."""
        return (
            f"fps{self.assumed_fps:g}-s{self.fps:g}-f{self.min_frames}-{self.max_frames}x{self.frame_factor}"
            f"-p{self.pixel_factor}-{self.min_pixels}-{self.max_pixels}-{self.total_pixels}"
        )


def _floor_by(value: float, factor: int) -> int:
    return math.floor(value / factor) * factor


def _ceil_by(value: float, factor: int) -> int:
    return math.ceil(value / factor) * factor


def _round_by(value: float, factor: int) -> int:
    return round(value / factor) * factor  # Python round: half to even, as qwen-vl-utils


def sample_frame_count(n_frames: int, sampling: FrameSampling = FrameSampling()) -> int:
    """How many frames of an ``n_frames`` video the captioner sees.

    n = floor_even(min(clamp(N / assumed_fps * fps, min_frames, floor_even(min(max_frames, N))), N)).
    """
    if n_frames < sampling.frame_factor:
        raise ValueError(
            f"a video needs at least {sampling.frame_factor} frames for the captioner, got {n_frames}"
        )
    min_frames = _ceil_by(sampling.min_frames, sampling.frame_factor)
    max_frames = _floor_by(min(sampling.max_frames, n_frames), sampling.frame_factor)
    wanted = n_frames / sampling.assumed_fps * sampling.fps
    count = min(min(max(wanted, min_frames), max_frames), n_frames)
    return _floor_by(count, sampling.frame_factor)


def sample_indices(n_frames: int, sampling: FrameSampling = FrameSampling()) -> np.ndarray:
    """Indices of the sampled frames: round(linspace(0, N - 1, n)), computed in float32 and rounded
    half to even, as torch does in the reference reader."""
    import torch

    count = sample_frame_count(n_frames, sampling)
    return torch.linspace(0, n_frames - 1, count).round().long().numpy()


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280
) -> tuple[int, int]:
    """(height, width) rounded to multiples of ``factor`` with the pixel count within bounds,
    keeping the aspect ratio as closely as possible (Qwen2-VL's rule)."""
    if min(height, width) <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {height}x{width} is above 200")
    h_bar = max(factor, _round_by(height, factor))
    w_bar = max(factor, _round_by(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, _floor_by(height / beta, factor))
        w_bar = max(factor, _floor_by(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by(height * beta, factor)
        w_bar = _ceil_by(width * beta, factor)
    return h_bar, w_bar


def video_max_pixels(n_sampled: int, sampling: FrameSampling = FrameSampling()) -> int:
    """Per-frame pixel cap of a video of ``n_sampled`` frames: max(min(max_pixels, total_pixels / n
    * frame_factor), int(min_pixels * 1.05))."""
    budget = sampling.total_pixels / n_sampled * sampling.frame_factor
    return int(max(min(sampling.max_pixels, budget), int(sampling.min_pixels * 1.05)))


def prepare_video(frames: np.ndarray, sampling: FrameSampling = FrameSampling()):
    """Sampled, resized frames (n, 3, h, w) float32 in 0..255 and the sampled indices.

    Resizing is bicubic with antialiasing on uint8 frames, then converted to float, as the
    reference reader does.
    """
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {frames.shape}")
    indices = sample_indices(len(frames), sampling)
    chosen = torch.from_numpy(np.ascontiguousarray(frames[indices])).permute(0, 3, 1, 2)
    height, width = chosen.shape[-2:]
    target = smart_resize(
        height, width, sampling.pixel_factor, sampling.min_pixels, video_max_pixels(len(indices), sampling)
    )
    resized = resize(chosen, list(target), interpolation=InterpolationMode.BICUBIC, antialias=True).float()
    return resized, indices


# ---------------------------------------------------------------- prompt and parsing

CAPTION_KEYS = ("General", "Events", "Logical_Constraints", "Overall_Constraints")


def load_prompt(name_or_path: str) -> str:
    """A built-in instruction prompt by name (``prompts/<name>.txt``) or a text file by path."""
    path = Path(name_or_path)
    if path.suffix == ".txt" and path.is_file():
        return path.read_text(encoding="utf-8").strip()
    resource = resources.files(__package__) / "prompts" / f"{name_or_path}.txt"
    if not resource.is_file():
        raise ConfigError(
            f"unknown captioner prompt {name_or_path!r} (a name under ewmbench/perception/prompts/ or a .txt path)"
        )
    return resource.read_text(encoding="utf-8").strip()


def build_messages(system_message: str, instruction: str) -> list[dict]:
    """Chat messages: the system message, then the instruction text followed by the video."""
    return [
        {"role": "system", "content": [{"type": "text", "text": system_message}]},
        {"role": "user", "content": [{"type": "text", "text": instruction}, {"type": "video"}]},
    ]


def parse_caption(text: str) -> dict[str, Any]:
    """The model's JSON answer as a dict, leniently: code fences, trailing commas, single quotes
    and truncated output are repaired (json_repair). Unparseable text gives an empty dict."""
    from json_repair import repair_json

    cleaned = text.strip()
    if cleaned.startswith("```"):
        cleaned = cleaned.strip("`")
        cleaned = cleaned[cleaned.find("{") :] if "{" in cleaned else cleaned
    try:
        value = repair_json(cleaned, return_objects=True)
    except Exception:  # json_repair is lenient, but never let a caption break a run
        return {}
    if isinstance(value, list):  # some models wrap the object in a list
        value = next((item for item in value if isinstance(item, dict)), {})
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- the captioner


@dataclass
class VideoCaptioner:
    """A loaded VLM and its processor; :meth:`caption` turns decoded videos into answers (text)."""

    model: Any
    processor: Any
    instruction: str
    system_message: str
    sampling: FrameSampling = FrameSampling()
    max_new_tokens: int = 2048
    batch_size: int = 4
    resize_in_processor: bool = False  # frames are already resized by :func:`prepare_video`

    def __post_init__(self) -> None:
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # batched generation continues from the right end

    def _inputs(self, videos: Sequence[np.ndarray]):
        from transformers.video_utils import VideoMetadata

        prompt = self.processor.apply_chat_template(
            build_messages(self.system_message, self.instruction), tokenize=False, add_generation_prompt=True
        )
        tensors, metadata = [], []
        for frames in videos:
            resized, indices = prepare_video(frames, self.sampling)
            tensors.append(resized)
            metadata.append(
                VideoMetadata(
                    total_num_frames=len(frames),
                    fps=self.sampling.assumed_fps,
                    frames_indices=indices.tolist(),
                )
            )
        return self.processor(
            text=[prompt] * len(videos),
            videos=tensors,
            video_metadata=metadata,
            do_sample_frames=False,
            do_resize=self.resize_in_processor,
            padding=True,
            return_tensors="pt",
        )

    def caption(self, videos: Sequence[np.ndarray]) -> list[str]:
        """Greedy answers for decoded (T, H, W, 3) uint8 videos, ``batch_size`` videos at a time."""
        import torch

        answers: list[str] = []
        for start in range(0, len(videos), self.batch_size):
            batch = videos[start : start + self.batch_size]
            inputs = self._inputs(batch).to(self.model.device)
            with torch.inference_mode():
                output = self.model.generate(**inputs, do_sample=False, max_new_tokens=self.max_new_tokens)
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            answers.extend(
                self.processor.batch_decode(
                    new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False
                )
            )
        return answers


def load_captioner(
    source: str,
    *,
    instruction: str,
    system_message: str,
    sampling: FrameSampling,
    max_new_tokens: int,
    batch_size: int,
    device: str,
    dtype: str = "bfloat16",
) -> VideoCaptioner:
    """Load a captioner from a weights id, a local folder or a cached Hugging Face model id."""
    model, processor = _load_model_and_processor(str(resolve_model_path(source)), device, dtype)
    return VideoCaptioner(model, processor, instruction, system_message, sampling, max_new_tokens, batch_size)


def resolve_model_path(source: str) -> Path:
    """A weights id from ``weights.yaml``, a local folder, or a Hugging Face id already cached."""

    if source in weight_specs():
        return resolve(source)
    path = Path(source).expanduser()
    if path.exists():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, local_files_only=True))
    except Exception:
        raise Unavailable(
            f"captioner {source!r} is neither a known weight id, a local folder, nor a cached Hugging Face model",
            f"huggingface-cli download {source}  (or set the protocol's semantics.captioner to a weights id)",
        ) from None


def _load_model_and_processor(path: str, device: str, dtype: str):
    if dtype not in ("bfloat16", "float16", "float32"):
        raise ConfigError(f"semantics.captioner_dtype must be bfloat16, float16 or float32, got {dtype!r}")

    def build():
        torch = require("torch", "neural", "the captioner")
        require("transformers", "neural", "the captioner")
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        config = AutoConfig.from_pretrained(path)
        if config.model_type == "qwen2_5_vl":
            from transformers import Qwen2_5_VLForConditionalGeneration as model_class
        else:
            model_class = AutoModelForImageTextToText
        model = model_class.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
        return model, AutoProcessor.from_pretrained(path)

    return loaded(("captioner", path, str(device), dtype), build)


# ---------------------------------------------------------------- cached, batched captions


class _NotCached(Exception):
    pass


def resize_frames(frames: np.ndarray, size: Sequence[int] | None) -> np.ndarray:
    """Frames resized to ``size`` = (height, width) with bicubic interpolation (OpenCV), as the
    official preprocessing resizes generated frames to 640x480; unchanged when ``size`` is None
    or already matches."""
    if size is None or tuple(frames.shape[1:3]) == tuple(size):
        return frames
    import cv2

    height, width = (int(v) for v in size)
    return np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC) for frame in frames])


def cached_captions(
    videos: Sequence[Path],
    video_cache: VideoCache,
    stage_key: str,
    captioner_factory: Callable[[], VideoCaptioner],
    frame_size: Sequence[int] | None = None,
) -> list[str]:
    """Captions of ``videos`` (raw model answers), generated in batches for those not yet cached.

    ``stage_key`` names the model, prompt, sampling and ``frame_size`` (frames are first resized
    to it when given), so a change of any gives new captions. The captioner is built only when
    some caption is missing.
    """
    answers: dict[Path, str] = {}
    missing: list[Path] = []
    for video in videos:
        try:
            answers[video] = video_cache.derived.text(stage_key, video, _raise_not_cached)
        except _NotCached:
            if video not in missing:
                missing.append(video)
    if missing:
        captioner = captioner_factory()
        decoded = []
        for video in missing:
            frames = video_cache.frames(video)
            if len(frames) < captioner.sampling.frame_factor:
                raise DataError(
                    video,
                    f"{len(frames)} frame(s): the captioner needs at least {captioner.sampling.frame_factor}",
                )
            decoded.append(resize_frames(frames, frame_size))
        for video, text in zip(missing, captioner.caption(decoded)):
            answers[video] = video_cache.derived.text(stage_key, video, lambda text=text: text)
    return [answers[video] for video in videos]


def _raise_not_cached() -> str:
    raise _NotCached
