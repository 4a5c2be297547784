"""``ewmbench weights verify``: is a weight present, does it match its published SHA-256, does it load?

Kept apart from the weights manager (:mod:`ewmbench.perception.weights`), which only finds files:
the strict load checks need model code (the DINOv2 key mapping), the manager must not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ewmbench.errors import Unavailable
from ewmbench.files import sha256_file
from ewmbench.perception.weights import load_state_dict, resolve, spec


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`: ``ok`` only when present, hash-matching and loadable."""

    id: str
    ok: bool
    path: Path | None
    checks: tuple[str, ...]  # what passed or failed, one line each

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "ok": self.ok,
            "path": str(self.path) if self.path else None,
            "checks": list(self.checks),
        }


def verify(weight_id: str) -> Verification:
    """Check that a weight is present, matches its published SHA-256 (where known) and loads.

    "Loads" means the file opens as a state dict (safetensors header or ``torch.load`` with
    ``weights_only``); a snapshot folder must hold a ``config.json`` and a weights file.
    """
    item = spec(weight_id)
    try:
        path = resolve(weight_id)
    except Unavailable as exc:
        return Verification(weight_id, False, None, (f"missing: {exc.reason}; fetch with `{exc.fix}`",))
    checks: list[str] = [f"present: {path}"]
    ok = True
    file = path
    if path.is_dir():
        weights = sorted(p for p in path.iterdir() if p.suffix in {".safetensors", ".bin", ".pth", ".pt"})
        if not (path / "config.json").is_file() or not weights:
            return Verification(
                weight_id, False, path, (*checks, "broken: snapshot lacks config.json or a weights file")
            )
        file = weights[0]
    if item.sha256 and path.is_file():
        digest = sha256_file(file)
        if digest == item.sha256:
            checks.append("sha256: matches the published hash")
        else:
            ok = False
            checks.append(
                f"sha256: MISMATCH (expected {item.sha256}, found {digest}); delete it and download again"
            )
    elif not item.sha256:
        checks.append("sha256: no published hash to compare (skipped)")
    try:
        state = load_state_dict(file)
        checks.append(f"loadable: {len(state)} tensors")
    except Exception as exc:  # any reader failure means a corrupt or foreign file
        return Verification(weight_id, False, path, (*checks, f"not loadable: {type(exc).__name__}: {exc}"))
    if item.format in FORMAT_CHECKS:
        try:
            checks.append(FORMAT_CHECKS[item.format](file, state))
        except Exception as exc:  # a mismatch lists its keys in the message
            ok = False
            checks.append(f"does not load as {item.format}: {exc}")
    return Verification(weight_id, ok, path, tuple(checks))


def _check_dinov2_original(file: Path, state: dict) -> str:
    from ewmbench.perception.encoders import load_official_dino  # torch and transformers: only for this check

    model = load_official_dino(file, state)
    return f"loads strictly as DINOv2 ({model.config.num_hidden_layers} layers, width {model.config.hidden_size}), every key matched"


# Layouts whose full, strict load `verify` runs (beyond opening the file).
FORMAT_CHECKS = {"dinov2-original": _check_dinov2_original}
