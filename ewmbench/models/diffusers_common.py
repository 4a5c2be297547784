"""What the diffusers-backed adapters (``ltx-video``, ``cosmos-predict2``) share.

A pipeline is loaded from a local folder written by ``save_pretrained`` (``--model-option
pretrained=DIR``: a fine-tune, or a tiny random pipeline in tests) or from the weights manager
(``ewmbench weights download <id>``), through ``DiffusionPipeline.from_pretrained`` so the folder's
own tokenizer and component classes come with it. bf16 on a GPU, fp32 on the CPU. Noise comes
from CPU ``torch.Generator`` s seeded with the request's seed, so a seed gives the same noise on
every device.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ewmbench.errors import ConfigError, require
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import Capabilities, FrameRule
from ewmbench.models.chunking import generate_chunked
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.perception.weights import resolve
from ewmbench.registry import Option

SHARED_OPTIONS = (
    Option(
        "pretrained",
        Path,
        None,
        "local diffusers pipeline folder (save_pretrained); default: the weights manager's copy",
    ),
    Option(
        "height",
        int,
        None,
        "generation height (default: the benchmark's, rounded to the model's multiple)",
        32,
        4096,
    ),
    Option(
        "width",
        int,
        None,
        "generation width (default: the benchmark's, rounded to the model's multiple)",
        32,
        4096,
    ),
    Option("steps", int, None, "denoising steps (default: the model's published value)", 1, 1000),
    Option(
        "guidance",
        float,
        None,
        "classifier-free guidance scale (default: the model's published value)",
        0.0,
        50.0,
    ),
    Option(
        "fps",
        float,
        None,
        "frame rate to generate at (default: the dataset's; the result is conformed to it)",
        1.0,
        240.0,
    ),
    Option(
        "max_frames",
        int,
        None,
        "frames per generation window; longer episodes are generated in chunks (default: the model's)",
        2,
        100000,
    ),
    Option("batch", int, 1, "trials generated in one pipeline call", 1, 64),
    Option("negative_prompt", str, None, "negative prompt (default: the model's published one)"),
)


def round_to(value: int, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def read_pipeline_class(folder: Path, model: str) -> str:
    """The pipeline class a ``save_pretrained`` folder declares, or a ConfigError saying what is wrong."""
    if not folder.exists():
        raise ConfigError(f"model {model!r}: pretrained folder {folder} does not exist")
    index = folder / "model_index.json"
    if not index.is_file():
        raise ConfigError(
            f"model {model!r}: {folder} is not a diffusers pipeline folder (no model_index.json; write one with save_pretrained)"
        )
    try:
        return str(json.loads(index.read_text())["_class_name"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"model {model!r}: {index} is not a valid pipeline index ({type(exc).__name__}: {exc})"
        ) from None


class DiffusersVideoModel(WorldModel):
    """Base of image(+video)+text-to-video adapters over a diffusers pipeline."""

    pipeline_classes: tuple[str, ...] = ()
    weight_id: str = ""
    size_multiple: int = 32
    frame_rule = FrameRule(8, 1)
    defaults: dict = {}  # published steps, guidance, max_frames, negative_prompt
    published_fps: float = 25.0  # used only when neither the option nor the dataset gives a rate
    memory_frames: int = 1
    needs_weights = True
    needs_gpu = True
    needs_also = ("diffusers",)
    options = SHARED_OPTIONS

    def __init__(self, **options):
        super().__init__(**options)
        self.pipe = None
        self.pipeline_class: str | None = None
        self.source: str | None = None
        for name, value in self.defaults.items():
            if self.settings.get(name) is None:
                self.settings[name] = value
        for name in ("height", "width"):
            value = self.settings[name]
            if value is not None and value % self.size_multiple:
                raise ConfigError(
                    f"model {self.name!r} option {name!r} must be a multiple of {self.size_multiple}, got {value}"
                )
        if not self.frame_rule.valid(self.settings["max_frames"]):
            raise ConfigError(
                f"model {self.name!r} option 'max_frames' must be {self.frame_rule} frames, got {self.settings['max_frames']}"
            )

    def capabilities_now(self) -> Capabilities:
        size = (
            (self.settings["height"], self.settings["width"])
            if self.settings["height"] and self.settings["width"]
            else None
        )
        return Capabilities(
            conditioning=frozenset({"image", "text"}),
            views=("head",),
            native_size=size,
            fps=self.settings["fps"],
            frame_rule=self.frame_rule,
            chunk_frames=self.settings["max_frames"],
            memory_frames=self.memory_frames,
            max_batch=self.settings["batch"],
        )

    # ------------------------------------------------------------------ loading

    def check_available(self) -> None:
        require("diffusers", "generate", f"the {self.name} model")
        self._folder()  # a missing folder or weight is reported before anything loads
        if self.settings["pretrained"] is not None:
            found = read_pipeline_class(self.settings["pretrained"], self.name)
            if found not in self.pipeline_classes:
                raise ConfigError(
                    f"model {self.name!r}: {self.settings['pretrained']} holds a {found}; "
                    f"{self.name} loads {' or '.join(self.pipeline_classes)}"
                )

    def _folder(self) -> Path:
        if self.settings["pretrained"] is not None:
            return Path(self.settings["pretrained"])

        return resolve(self.weight_id)

    def load_kwargs(self) -> dict:
        """Extra ``from_pretrained`` arguments (the Cosmos guardrail)."""
        return {}

    def load(self, device: str) -> None:
        import torch
        from diffusers import DiffusionPipeline

        self.device = device
        folder = self._folder()
        self.pipeline_class = read_pipeline_class(folder, self.name)
        if self.pipeline_class not in self.pipeline_classes:
            raise ConfigError(
                f"model {self.name!r}: {folder} holds a {self.pipeline_class}; {self.name} loads {' or '.join(self.pipeline_classes)}"
            )
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            pipe = DiffusionPipeline.from_pretrained(str(folder), dtype=dtype, **self.load_kwargs())
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise ConfigError(
                f"model {self.name!r}: cannot load the pipeline in {folder} ({type(exc).__name__}: {exc})"
            ) from None
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(device)
        self.source = str(folder)
        self.dtype = str(dtype).removeprefix("torch.")

    def config(self) -> dict:
        out = super().config()
        out.update(
            {
                "pipeline_class": self.pipeline_class,
                "loaded_from": self.source,
                "dtype": getattr(self, "dtype", None),
            }
        )
        return out

    # ------------------------------------------------------------------ generation

    def window(self, request: GenerationRequest) -> tuple[int, int, float, int]:
        """(height, width, fps, frames) of one generation window for ``request``."""
        height = self.settings["height"] or round_to(request.height, self.size_multiple)
        width = self.settings["width"] or round_to(request.width, self.size_multiple)
        fps = self.settings["fps"] or request.fps or self.published_fps
        # frames at our fps covering the benchmark's duration, then the model's frame rule
        wanted = (
            request.num_frames
            if not request.fps
            else int(np.ceil((request.num_frames - 1) * fps / request.fps)) + 1
        )
        frames = min(self.frame_rule.at_least(wanted), self.settings["max_frames"])
        return height, width, float(fps), frames

    def prompt(self, request: GenerationRequest) -> str:
        return request.instruction or ", ".join(request.substeps)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        if self.pipe is None:
            raise ConfigError(f"model {self.name!r} is not loaded (the runner calls load(device) first)")
        windows = [self.window(r) for r in requests]
        single = [w[3] >= self._total(r, w) for r, w in zip(requests, windows)]
        if len(requests) > 1 and all(single) and len(set(windows)) == 1:
            height, width, fps, frames = windows[0]
            batch = [self._window_request(r, frames) for r in requests]
            videos = self._call(batch, height, width, fps, frames)
            return [self._result(v, fps, height, width, frames) for v in videos]
        return [self._generate_one(r, w) for r, w in zip(requests, windows)]

    @staticmethod
    def _total(request: GenerationRequest, window: tuple) -> int:
        fps = window[2]
        return (
            request.num_frames
            if not request.fps
            else int(np.ceil((request.num_frames - 1) * fps / request.fps)) + 1
        )

    @staticmethod
    def _window_request(request: GenerationRequest, frames: int) -> GenerationRequest:
        from dataclasses import replace

        return replace(request, num_frames=frames)

    def _generate_one(self, request: GenerationRequest, window: tuple) -> GenerationResult:
        from dataclasses import replace

        height, width, fps, frames = window
        total = self._total(request, window)
        # In the model's frame rate, the episode has `total` frames; chunks are windows of `frames`.
        timed = replace(request, num_frames=total)

        def step(chunk: GenerationRequest) -> GenerationResult:
            video = self._call([chunk], height, width, fps, chunk.num_frames)[0]
            return GenerationResult({"head": video})

        if total <= frames:
            result = step(replace(timed, num_frames=frames))
            info = {}
        else:
            result = generate_chunked(step, timed, frames, self.memory_frames)
            info = {"chunks": len(result.info["chunks"]), "chunk_frames": frames}
        out = self._result(result.frames["head"], fps, height, width, frames)
        out.info.update(info)
        return out

    def _result(
        self, video: np.ndarray, fps: float, height: int, width: int, frames: int
    ) -> GenerationResult:
        info = {
            "fps": fps,
            "height": height,
            "width": width,
            "window_frames": frames,
            "steps": self.settings["steps"],
            "guidance": self.settings["guidance"],
            "pipeline_class": self.pipeline_class,
        }
        return GenerationResult({"head": video}, info=info)

    def _call(
        self, requests: list[GenerationRequest], height: int, width: int, fps: float, frames: int
    ) -> list[np.ndarray]:
        """One pipeline call for ``requests`` (same window): (T, H, W, 3) uint8 per request."""
        import torch
        from PIL import Image

        images = []
        for r in requests:
            memory = r.memory_frames.get("head")
            if memory is None or len(memory) == 0:
                raise ConfigError(f"model {self.name!r} needs an initial head frame for {'/'.join(r.ids)}")
            images.append(
                [Image.fromarray(f).resize((width, height), Image.Resampling.BICUBIC) for f in memory]
            )
        generators = [torch.Generator("cpu").manual_seed(int(r.seed)) for r in requests]
        kwargs = self.call_kwargs(images, [self.prompt(r) for r in requests], height, width, fps, frames)
        with torch.inference_mode():
            out = self.pipe(
                **kwargs,
                generator=generators,
                output_type="np",
                num_inference_steps=self.settings["steps"],
                guidance_scale=self.settings["guidance"],
            )
        videos = np.asarray(out.frames)
        return [np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8) for v in videos]

    def call_kwargs(
        self, images: list[list], prompts: list[str], height: int, width: int, fps: float, frames: int
    ) -> dict:
        raise NotImplementedError
