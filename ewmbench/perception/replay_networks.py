"""Feature networks of the replay-fidelity metrics: LPIPS (AlexNet), the FID InceptionV3 and the
FVD I3D. Each is built without any download from the weights file its metric's protocol settings
name (resolved by the weights manager: ``EWMBENCH_WEIGHTS_<ID>``, the Hugging Face cache, or the
torch hub cache for the two weights without a Hugging Face home). Networks are loaded once per
process through :mod:`ewmbench.perception.model_cache`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ewmbench.errors import Unavailable, require
from ewmbench.perception.model_cache import loaded

torch = require("torch", "neural", "the replay-fidelity networks")


# ---------------------------------------------------------------- weights


def _load_state_dict(path: Path) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Unavailable(
            f"cannot read weights file {path} ({type(exc).__name__}: {exc})", "download it again"
        ) from None


def _check_keys(what: str, missing: list[str], unexpected: list[str]) -> None:
    if missing or unexpected:
        raise Unavailable(
            f"{what}: the weights file does not match the network ({len(missing)} missing keys, e.g. {missing[:3]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:3]})",
            "check that the file is the one weights.yaml names",
        )


# ---------------------------------------------------------------- LPIPS


def build_lpips(alexnet_state: dict | None = None):
    """LPIPS v0.1 with an AlexNet backbone: the calibrated linear layers from the ``lpips``
    package; the backbone from ``alexnet_state`` (torchvision's ImageNet AlexNet state dict), or
    random when None (tests)."""
    import warnings

    import lpips
    import torchvision

    with warnings.catch_warnings():  # lpips still passes torchvision's deprecated `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    if alexnet_state is not None:
        alexnet = torchvision.models.alexnet(weights=None)
        try:
            missing, unexpected = alexnet.load_state_dict(alexnet_state, strict=False)
        except RuntimeError as exc:  # tensor shapes differ
            raise Unavailable(
                f"LPIPS AlexNet: the weights file does not match the network ({exc})",
                "check the file weights.yaml names",
            ) from None
        _check_keys(
            "LPIPS AlexNet",
            [k for k in missing if k.startswith("features.")],
            [k for k in unexpected if not k.startswith("classifier.")],
        )
        for index in range(1, model.net.N_slices + 1):
            for name, module in getattr(model.net, f"slice{index}").named_children():
                module.load_state_dict(alexnet.features[int(name)].state_dict())
    return model.eval()


def load_lpips(path: Path, device: str):
    """LPIPS with the AlexNet backbone of ``path`` (torchvision's ImageNet state dict)."""
    return loaded(
        ("lpips", str(Path(path).resolve()), str(device)),
        lambda: build_lpips(_load_state_dict(Path(path))).to(device),
    )


def lpips_frames(model, pred: np.ndarray, gt: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """LPIPS distance of each frame pair: (T, H, W, 3) uint8 arrays of the same shape -> (T,)."""
    import torch

    if pred.shape != gt.shape:
        raise ValueError(f"frame shapes differ: {pred.shape} vs {gt.shape}")
    device = next(model.parameters()).device
    distances = []
    with torch.inference_mode():
        for start in range(0, len(pred), batch_size):
            a = _to_signed_unit(pred[start : start + batch_size]).to(device)
            b = _to_signed_unit(gt[start : start + batch_size]).to(device)
            distances.append(model(a, b).flatten().float().cpu())
    return torch.cat(distances).numpy().astype(np.float64)


def _to_signed_unit(frames: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1


# ---------------------------------------------------------------- FID InceptionV3


def build_fid_inception(state: dict | None = None):
    """The FID InceptionV3 (TensorFlow's 2015-12-05 graph as ported by pytorch-fid), returning
    2048-d pool features; random weights when ``state`` is None (tests)."""
    from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    if state is not None:
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # tensor shapes differ
            raise Unavailable(
                f"FID InceptionV3: the weights file does not match the network ({exc})",
                "check the file weights.yaml names",
            ) from None
        _check_keys("FID InceptionV3", list(missing), list(unexpected))
    return FIDInceptionFeatures(net).eval()


class FIDInceptionFeatures(torch.nn.Module):
    """Images in [0, 1] (B, 3, H, W) -> pool features (B, 2048): bilinear resize to 299x299,
    scale to [-1, 1], the network up to its final average pool (pytorch-fid's recipe)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images):
        import torch.nn.functional as F

        n = self.net
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = n.maxpool1(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))))
        x = n.maxpool2(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)))
        for block in (
            n.Mixed_5b,
            n.Mixed_5c,
            n.Mixed_5d,
            n.Mixed_6a,
            n.Mixed_6b,
            n.Mixed_6c,
            n.Mixed_6d,
            n.Mixed_6e,
            n.Mixed_7a,
            n.Mixed_7b,
            n.Mixed_7c,
        ):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def load_fid_inception(path: Path, device: str):
    """The FID InceptionV3 with the weights of ``path`` (pytorch-fid's state dict)."""
    return loaded(
        ("fid-inception", str(Path(path).resolve()), str(device)),
        lambda: build_fid_inception(_load_state_dict(Path(path))).to(device),
    )


def fid_frame_features(model, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Pool features (T, 2048) of (T, H, W, 3) uint8 frames, in float64."""
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            batch = (
                torch.from_numpy(np.ascontiguousarray(frames[start : start + batch_size]))
                .permute(0, 3, 1, 2)
                .float()
                / 255
            )
            out.append(model(batch.to(device)).float().cpu())
    return torch.cat(out).numpy().astype(np.float64)


# ---------------------------------------------------------------- FVD I3D


def load_i3d(path: Path, device: str):
    """The Kinetics-400 I3D TorchScript (StyleGAN-V's export) at ``path``: called as
    ``model(videos, rescale=False, resize=False, return_features=True)`` on (B, 3, T, 224, 224)
    in [-1, 1], it returns (B, 400) features."""

    def build():
        try:
            model = torch.jit.load(str(path), map_location=device)
        except Exception as exc:
            raise Unavailable(
                f"cannot load the I3D TorchScript {path} ({type(exc).__name__}: {exc})",
                "ewmbench weights download fvd-i3d",
            ) from None
        return model.eval()

    return loaded(("fvd-i3d", str(Path(path).resolve()), str(device)), build)


def video_clips(n_frames: int, clip_frames: int, clips: str) -> list[tuple[int, int]]:
    """Frame ranges [start, stop) of the clips a video of ``n_frames`` contributes: ``"first"``
    one clip from frame 0; ``"all"`` every non-overlapping clip from frame 0 (a tail shorter than
    ``clip_frames`` is dropped). A video shorter than one clip contributes none."""
    if clip_frames < 1:
        raise ValueError(f"clip_frames must be positive, got {clip_frames}")
    if clips == "first":
        return [(0, clip_frames)] if n_frames >= clip_frames else []
    if clips == "all":
        return [(start, start + clip_frames) for start in range(0, n_frames - clip_frames + 1, clip_frames)]
    raise ValueError(f"clips must be 'first' or 'all', got {clips!r}")


def i3d_input(frames: np.ndarray, resolution: int = 224):
    """(T, H, W, 3) uint8 -> (3, T, resolution, resolution) float in [-1, 1]: the shorter side
    resized to ``resolution`` (bilinear), the longer side in proportion (rounded up), then a
    centre crop."""
    import torch
    import torch.nn.functional as F

    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
    height, width = video.shape[-2:]
    scale = resolution / min(height, width)
    # the longer side rounds up, as in the common FVD code, so the crop never runs short
    size = (
        (resolution, math.ceil(width * scale)) if height <= width else (math.ceil(height * scale), resolution)
    )
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    video = video[:, :, top : top + resolution, left : left + resolution]
    return (video * 2 - 1).permute(1, 0, 2, 3).contiguous()


def i3d_clip_features(
    model,
    frames: np.ndarray,
    clip_frames: int = 16,
    clips: str = "all",
    resolution: int = 224,
    batch_size: int = 4,
) -> np.ndarray:
    """I3D features (n_clips, D) of one video's clips, in float64; (0, 0) when it has none."""
    import torch

    ranges = video_clips(len(frames), clip_frames, clips)
    if not ranges:
        return np.zeros((0, 0))
    device = next(iter(model.parameters()), torch.zeros(0)).device
    out = []
    with torch.inference_mode():
        for start in range(0, len(ranges), batch_size):
            batch = torch.stack(
                [i3d_input(frames[a:b], resolution) for a, b in ranges[start : start + batch_size]]
            ).to(device)
            out.append(model(batch, rescale=False, resize=False, return_features=True).float().cpu())
    return torch.cat(out).numpy().astype(np.float64)
