"""Image encoders for scene consistency (DINOv2 ViT-B/14) and diversity (CLIP ViT-B/32).

Each encoder is loaded once per process (:mod:`ewmbench.perception.model_cache`, keyed by weights
path, device and precision), runs frames in
batches under ``torch.inference_mode``, in half precision on a GPU and float32 on the CPU (the
protocol's ``gpu_dtype`` decides; ``bfloat16-autocast`` keeps float32 weights and runs the matrix
products in bfloat16 under ``torch.autocast``, the norms and softmax in float32). Preprocessing
always runs in float32 (see ``image_prep``).

The EWMBench fine-tuned DINOv2 checkpoint is a state dict of the original DINOv2 code (keys under
``teacher.`` and ``backbone.``). It is mapped onto transformers' ``Dinov2Model`` and loaded with a
strict check: every model parameter must come from the checkpoint with the right shape, and every
checkpoint tensor must be used (the training heads ``dino_head``/``ibot_head`` are the only ones
allowed to be left out). The official tool loads non-strictly, so a renamed key would silently
leave random weights; here it is an error listing the keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ewmbench.errors import ConfigError, DataError, require
from ewmbench.perception import image_prep
from ewmbench.perception.model_cache import loaded
from ewmbench.perception.weights import load_state_dict

torch = require("torch", "neural", "image encoders")

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# gpu_dtype values that keep float32 weights and run the forward pass under torch.autocast.
AUTOCAST = {"bfloat16-autocast": torch.bfloat16}
# Checkpoint parts that are not the backbone: dropped on purpose, reported, never an error.
DINO_HEAD_PREFIXES = ("dino_head.", "ibot_head.")


class CheckpointMismatch(ConfigError):
    """A checkpoint whose tensors do not match the model one to one."""

    def __init__(
        self, path: Path | str, missing: Sequence[str], unexpected: Sequence[str], shapes: Sequence[str]
    ):
        self.missing, self.unexpected, self.shapes = list(missing), list(unexpected), list(shapes)
        parts = []
        for label, keys in (
            ("model keys with no checkpoint tensor", missing),
            ("checkpoint keys the model does not have", unexpected),
            ("shape mismatches", shapes),
        ):
            if keys:
                shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
                parts.append(f"{label}: {shown}")
        super().__init__(f"{path}: checkpoint does not match DINOv2 ViT ({'; '.join(parts)})")


def torch_dtype(device: str, gpu_dtype: str) -> torch.dtype:
    """The weights' dtype: ``gpu_dtype`` on CUDA, always float32 elsewhere (and under autocast)."""
    if gpu_dtype not in DTYPES and gpu_dtype not in AUTOCAST:
        raise ConfigError(f"unknown gpu_dtype {gpu_dtype!r}; use one of {', '.join([*DTYPES, *AUTOCAST])}")
    return DTYPES.get(gpu_dtype, torch.float32) if str(device).startswith("cuda") else torch.float32


def autocast_dtype(device: str, gpu_dtype: str) -> torch.dtype | None:
    """The dtype of ``torch.autocast`` around the forward pass: on CUDA with ``bfloat16-autocast``,
    else None (no autocast)."""
    torch_dtype(device, gpu_dtype)  # checks the name
    return AUTOCAST.get(gpu_dtype) if str(device).startswith("cuda") else None


def compute_precision(device: str, gpu_dtype: str) -> str:
    """How an encoder computes on ``device``, for feature keys: the weights' dtype
    (``torch.float16``), or ``autocast:torch.bfloat16`` when autocast is on."""
    autocast = autocast_dtype(device, gpu_dtype)
    return f"autocast:{autocast}" if autocast is not None else str(torch_dtype(device, gpu_dtype))


# ---------------------------------------------------------------- DINOv2


def official_dino_state_dict(raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Backbone tensors of an original-DINOv2 checkpoint, prefixes ``teacher.``/``backbone.`` removed.

    Accepts a flat dict with ``teacher.``-prefixed keys, a ``{"teacher": {...}}`` nesting, or the
    ``model``/``state_dict`` wrappers some trainers add. When ``teacher.`` keys are present, other
    keys (a ``student.`` copy) are left out.
    """
    for wrapper in ("teacher", "model", "state_dict"):
        if wrapper in raw and isinstance(raw[wrapper], Mapping):
            raw = raw[wrapper]
    if any(key.startswith("teacher.") for key in raw):  # a training checkpoint: the teacher is the model
        raw = {key: value for key, value in raw.items() if key.startswith("teacher.")}
    out = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in ("teacher.", "backbone."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


_BLOCK = re.compile(r"^blocks\.(?:\d+\.)?(\d+)\.(.+)$")  # blocks.i.x, or blocks.chunk.i.x (block_chunks > 0)
_BLOCK_PARTS = {
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
    "attn.proj.weight": "attention.o_proj.weight",
    "attn.proj.bias": "attention.o_proj.bias",
    "ls1.gamma": "layer_scale1.lambda1",
    "ls2.gamma": "layer_scale2.lambda1",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
}
_TOP = {
    "cls_token": "embeddings.cls_token",
    "mask_token": "embeddings.mask_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}


def to_transformers_keys(
    state: Mapping[str, torch.Tensor], model_keys: set[str]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename original-DINOv2 backbone tensors to ``Dinov2Model`` names.

    The fused ``attn.qkv`` projection is split into query, key and value (in that order, as the
    original attention reshapes it). Attention names follow whichever convention the installed
    transformers uses (``attention.q_proj`` or ``attention.attention.query``). Returns the renamed
    tensors and the checkpoint keys that have no counterpart.
    """
    legacy = any(".attention.attention.query." in k for k in model_keys)
    qkv_names = (
        ("attention.attention.query", "attention.attention.key", "attention.attention.value")
        if legacy
        else ("attention.q_proj", "attention.k_proj", "attention.v_proj")
    )
    out_proj = "attention.output.dense" if legacy else "attention.o_proj"
    renamed: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, value in state.items():
        if key in _TOP:
            renamed[_TOP[key]] = value
            continue
        match = _BLOCK.match(key)
        if not match:
            unused.append(key)
            continue
        index, part = match.groups()
        prefix = f"encoder.layer.{index}."
        if part in ("attn.qkv.weight", "attn.qkv.bias"):
            suffix = part.rsplit(".", 1)[1]
            for name, chunk in zip(qkv_names, value.chunk(3, dim=0)):
                renamed[f"{prefix}{name}.{suffix}"] = chunk
        elif part in _BLOCK_PARTS:
            target = _BLOCK_PARTS[part]
            if target.startswith("attention.o_proj"):
                target = target.replace("attention.o_proj", out_proj)
            renamed[prefix + target] = value
        else:
            unused.append(key)
    return renamed, unused


def dino_config_for(state: Mapping[str, torch.Tensor], head_dim: int = 64):
    """A ``Dinov2Config`` matching an original-DINOv2 backbone state dict (ViT-B/14 for EWMBench).

    The number of attention heads is not stored in a state dict; every DINOv2 ViT uses heads of
    64 channels (ViT-B: 12 heads of 64).
    """
    from transformers import Dinov2Config

    try:
        hidden = state["cls_token"].shape[-1]
        patch = state["patch_embed.proj.weight"].shape[-1]
        grid = math.isqrt(state["pos_embed"].shape[1] - 1)
        layers = 1 + max(int(m.group(1)) for k in state if (m := _BLOCK.match(k)))
        fc1 = next(v for k, v in state.items() if k.endswith("mlp.fc1.weight"))
        mlp_ratio = fc1.shape[0] // hidden
    except (KeyError, ValueError, StopIteration) as exc:
        raise ConfigError(f"not an original-DINOv2 ViT state dict (missing {exc})") from None
    return Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // head_dim),
        mlp_ratio=mlp_ratio,
        patch_size=patch,
        image_size=grid * patch,
        layer_norm_eps=1e-6,
        qkv_bias=True,
        use_swiglu_ffn=False,
    )


def load_official_dino(path: Path, raw: Mapping[str, torch.Tensor] | None = None, head_dim: int = 64):
    """``Dinov2Model`` with the weights of an original-DINOv2 checkpoint, every key checked."""
    from transformers import Dinov2Model

    if raw is None:
        try:
            raw = load_state_dict(path)
        except Exception as exc:  # unpickling refused (non-tensor objects), truncated or foreign file
            raise ConfigError(
                f"{path}: cannot be read as a weights-only state dict ({type(exc).__name__}: {exc}); "
                "check it with `ewmbench weights verify`, or re-save only its tensors with torch.save"
            ) from None
    state = official_dino_state_dict(raw)
    model = Dinov2Model(dino_config_for(state, head_dim))
    target = model.state_dict()
    renamed, unused = to_transformers_keys(state, set(target))
    unexpected = [k for k in unused if not k.startswith(DINO_HEAD_PREFIXES)]
    unexpected += [k for k in renamed if k not in target]
    missing = [k for k in target if k not in renamed]
    shapes = []
    for key, value in renamed.items():
        if key in target and tuple(value.shape) != tuple(target[key].shape):
            if key == "embeddings.mask_token" and value.numel() == target[key].numel():
                renamed[key] = value.reshape(target[key].shape)  # (1, C) vs (1, 1, C) across versions
                continue
            shapes.append(f"{key} {tuple(value.shape)} vs {tuple(target[key].shape)}")
    if missing or unexpected or shapes:
        raise CheckpointMismatch(path, missing, unexpected, shapes)
    model.load_state_dict(renamed, strict=True)
    return model.eval()


class _Encoder:
    """A network on a device, in a dtype, optionally under ``torch.autocast(autocast)``."""

    def __init__(self, model, device: str, dtype: torch.dtype, autocast: torch.dtype | None = None):
        self.model = model.to(device=device, dtype=dtype).eval()
        self.device, self.dtype, self.autocast = device, dtype, autocast

    def _forward(self, run):
        with torch.inference_mode():
            if self.autocast is None:
                return run()
            with torch.autocast(torch.device(self.device).type, dtype=self.autocast):
                return run()

    def encode_frames(self, frames: np.ndarray, settings: Mapping, batch_size: int) -> torch.Tensor:
        """(T, H, W, 3) uint8 frames -> (T, ...) outputs on the encoder's device, in batches."""
        return _batched(frames, batch_size, lambda chunk: self.encode(_prep(chunk, settings, self.device)))

    def encode_pieces(self, pieces: Sequence[np.ndarray], settings: Mapping) -> torch.Tensor:
        """Frames of several videos (each (n_i, H_i, W_i, 3) uint8, sizes may differ) in one pass."""
        return self.encode(torch.cat([_prep(piece, settings, self.device) for piece in pieces]))


class DinoTokenEncoder(_Encoder):
    """Final-LayerNorm patch tokens (T, N, C) of DINOv2 for video frames."""

    @classmethod
    def from_weights(
        cls, path: Path, device: str, dtype: torch.dtype, autocast: torch.dtype | None = None
    ) -> DinoTokenEncoder:
        """A transformers snapshot folder (``facebook/dinov2-base``) or an original-DINOv2 checkpoint file."""

        def build():
            if Path(path).is_dir():
                from transformers import Dinov2Model

                return cls(Dinov2Model.from_pretrained(str(path)), device, dtype, autocast)
            return cls(load_official_dino(Path(path)), device, dtype, autocast)

        return loaded(("dino", str(Path(path).resolve()), str(device), str(dtype), str(autocast)), build)

    @classmethod
    def from_config(
        cls,
        config: Mapping,
        device: str,
        dtype: torch.dtype,
        seed: int = 0,
        autocast: torch.dtype | None = None,
    ) -> DinoTokenEncoder:
        """Random weights from a ``Dinov2Config`` dict: for tests and benchmarks only."""
        from transformers import Dinov2Config, Dinov2Model

        def build():
            torch.manual_seed(seed)
            return cls(Dinov2Model(Dinov2Config(**config)), device, dtype, autocast)

        key = ("dino-random", repr(sorted(config.items())), seed, str(device), str(dtype), str(autocast))
        return loaded(key, build)

    @property
    def num_register_tokens(self) -> int:
        return int(getattr(self.model.config, "num_register_tokens", 0) or 0)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised float32 images -> (B, N, C) patch tokens (CLS and registers dropped)."""
        pixels = images.to(self.device, self.dtype)
        hidden = self._forward(lambda: self.model(pixel_values=pixels).last_hidden_state)
        return hidden[:, 1 + self.num_register_tokens :]


# ---------------------------------------------------------------- CLIP


class ClipImageEncoder(_Encoder):
    """Raw (unnormalised) CLIP image embeddings (T, D) of video frames, through open_clip."""

    @classmethod
    def from_weights(
        cls,
        path: Path,
        architecture: str,
        quick_gelu: bool,
        device: str,
        dtype: torch.dtype,
        autocast: torch.dtype | None = None,
    ) -> ClipImageEncoder:
        def build():
            import open_clip

            model = open_clip.create_model(
                architecture, pretrained=str(path), force_quick_gelu=quick_gelu, device="cpu"
            )
            return cls(model, device, dtype, autocast)

        key = (
            "clip",
            str(Path(path).resolve()),
            architecture,
            quick_gelu,
            str(device),
            str(dtype),
            str(autocast),
        )
        return loaded(key, build)

    @classmethod
    def from_config(
        cls,
        config: Mapping,
        device: str,
        dtype: torch.dtype,
        seed: int = 0,
        autocast: torch.dtype | None = None,
    ) -> ClipImageEncoder:
        """Random weights from an open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``,
        ``quick_gelu``), or ``{"architecture": "ViT-B-32"}`` for a named one: tests and benchmarks only."""
        import open_clip
        from open_clip.model import CLIP

        def build():
            torch.manual_seed(seed)
            if "architecture" in config:
                model = open_clip.create_model(
                    config["architecture"], pretrained=None, force_quick_gelu=config.get("quick_gelu", True)
                )
            else:
                model = CLIP(**config)
            return cls(model, device, dtype, autocast)

        key = ("clip-random", repr(sorted(config.items())), seed, str(device), str(dtype), str(autocast))
        return loaded(key, build)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images.to(self.device, self.dtype)
        return self._forward(lambda: self.model.encode_image(pixels))


# ---------------------------------------------------------------- shared


def _prep(frames: np.ndarray, settings: Mapping, device: str) -> torch.Tensor:
    return image_prep.prepare(
        frames,
        int(settings["image_size"]),
        settings["interpolation"],
        settings["mean"],
        settings["std"],
        device,
    )


def _batched(frames: np.ndarray, batch_size: int, run) -> torch.Tensor:
    if len(frames) == 0:
        raise DataError("<frames>", "video has no frames")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    return torch.cat([run(frames[start : start + batch_size]) for start in range(0, len(frames), batch_size)])
