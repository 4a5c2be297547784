"""A tiny DINOv2 ViT in the original checkpoint layout, and its forward written from the original
definition: shared by the encoder and weights tests."""

import torch
import torch.nn.functional as F

HIDDEN, HEADS, LAYERS, PATCH, GRID = 32, 2, 2, 14, 2


def official_backbone(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the original DINOv2 ViT names (block_chunks = 0)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.2  # noqa: E731
    state = {
        "cls_token": r(1, 1, HIDDEN),
        "mask_token": r(1, HIDDEN),
        "pos_embed": r(1, GRID * GRID + 1, HIDDEN),
        "patch_embed.proj.weight": r(HIDDEN, 3, PATCH, PATCH),
        "patch_embed.proj.bias": r(HIDDEN),
        "norm.weight": 1 + r(HIDDEN),
        "norm.bias": r(HIDDEN),
    }
    for i in range(LAYERS):
        state |= {
            f"blocks.{i}.norm1.weight": 1 + r(HIDDEN),
            f"blocks.{i}.norm1.bias": r(HIDDEN),
            f"blocks.{i}.attn.qkv.weight": r(3 * HIDDEN, HIDDEN),
            f"blocks.{i}.attn.qkv.bias": r(3 * HIDDEN),
            f"blocks.{i}.attn.proj.weight": r(HIDDEN, HIDDEN),
            f"blocks.{i}.attn.proj.bias": r(HIDDEN),
            f"blocks.{i}.ls1.gamma": r(HIDDEN),
            f"blocks.{i}.ls2.gamma": r(HIDDEN),
            f"blocks.{i}.norm2.weight": 1 + r(HIDDEN),
            f"blocks.{i}.norm2.bias": r(HIDDEN),
            f"blocks.{i}.mlp.fc1.weight": r(4 * HIDDEN, HIDDEN),
            f"blocks.{i}.mlp.fc1.bias": r(4 * HIDDEN),
            f"blocks.{i}.mlp.fc2.weight": r(HIDDEN, 4 * HIDDEN),
            f"blocks.{i}.mlp.fc2.bias": r(HIDDEN),
        }
    return state


def reference_tokens(state: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """The original DINOv2 ViT forward written out from its definition: final-norm patch tokens."""
    x = F.conv2d(images, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state["cls_token"].expand(len(x), -1, -1), x], dim=1) + state["pos_embed"]
    ln = lambda t, p: F.layer_norm(t, (HIDDEN,), state[p + ".weight"], state[p + ".bias"], eps=1e-6)  # noqa: E731
    for i in range(LAYERS):
        b = f"blocks.{i}."
        h = ln(x, b + "norm1")
        qkv = F.linear(h, state[b + "attn.qkv.weight"], state[b + "attn.qkv.bias"])
        qkv = qkv.reshape(len(x), -1, 3, HEADS, HIDDEN // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(q @ k.transpose(-2, -1) * (HIDDEN // HEADS) ** -0.5, dim=-1)
        h = (attn @ v).transpose(1, 2).reshape(len(x), -1, HIDDEN)
        x = x + state[b + "ls1.gamma"] * F.linear(
            h, state[b + "attn.proj.weight"], state[b + "attn.proj.bias"]
        )
        h = F.gelu(F.linear(ln(x, b + "norm2"), state[b + "mlp.fc1.weight"], state[b + "mlp.fc1.bias"]))
        x = x + state[b + "ls2.gamma"] * F.linear(h, state[b + "mlp.fc2.weight"], state[b + "mlp.fc2.bias"])
    return ln(x, "norm")[:, 1:]


def teacher_checkpoint(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """As the EWMBench checkpoint stores it: ``teacher.backbone.`` keys plus training heads."""
    ckpt = {f"teacher.backbone.{k}": v for k, v in state.items()}
    ckpt["teacher.dino_head.mlp.0.weight"] = torch.zeros(8, HIDDEN)
    ckpt["teacher.ibot_head.last_layer.weight_g"] = torch.zeros(8, 1)
    return ckpt
