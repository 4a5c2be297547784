"""Which gripper detector a video gets: the user's checkpoint, the one shipped for its
embodiment, or the official AgiBot checkpoint through the weights manager."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ewmbench.data.layout import SIDECAR_DIR, Sidecar, read_trial_meta
from ewmbench.errors import Unavailable
from ewmbench.files import load_yaml
from ewmbench.perception.weights import resolve, spec


@dataclass(frozen=True)
class DetectorChoice:
    """What the user said about the detector: ``weights`` (``--detector-weights``) and the
    ``embodiment`` (``--embodiment``); both optional, the episode's sidecar decides the rest."""

    weights: Path | None = None
    embodiment: str | None = None

    def with_embodiment(self, embodiment: str | None) -> DetectorChoice:
        """This choice, with ``embodiment`` filled in when the user named none."""
        if self.embodiment or not embodiment:
            return self
        return replace(self, embodiment=embodiment)


@cache
def detector_config() -> dict[str, Any]:
    text = (resources.files(__package__) / "detector.yaml").read_text()
    return load_yaml(text)


def shipped_detector(embodiment: str) -> Path | None:
    """The detector shipped with the package for an embodiment, if there is one."""
    relative = detector_config().get("shipped", {}).get(embodiment)
    if not relative:
        return None
    path = Path(str(resources.files("ewmbench") / relative))
    return path if path.is_file() else None


def embodiment_of(video: Path) -> str | None:
    """The embodiment of the GT episode holding ``video``: its sidecar meta ``embodiment``, else
    ``generator`` (a simulator names itself there); None without a sidecar."""
    video = Path(video)
    for folder in (video.parent, video.parent.parent):
        meta = folder / SIDECAR_DIR / "meta.json"
        if meta.is_file():
            trial_meta = read_trial_meta(folder)
            if trial_meta is not None:  # a generated trial's sidecar names its episode's embodiment
                return trial_meta.get("embodiment")
            sidecar = Sidecar.load(folder)
            value = (sidecar.meta.get("embodiment") or sidecar.meta.get("generator")) if sidecar else None
            return str(value) if value else None
    return None


def choose_weights(video: Path | None, choice: DetectorChoice = DetectorChoice()) -> Path:
    """Which detector a video gets, in this order:

    1. ``choice.weights``: a path the user gave (``--detector-weights``);
    2. the detector shipped for the embodiment named by ``choice.embodiment`` or by the
       episode's sidecar meta (``embodiment``);
    3. the official AgiBot checkpoint through the weights manager (real AgiBot data).

    Raises Unavailable with the fetch command when none is available.
    """
    given = choice.weights
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise Unavailable(
                f"detector weights {path} do not exist",
                "give an existing .pt file with --detector-weights (--weights in `ewmbench detector ...`)",
            )
        return path
    embodiment = choice.embodiment or (embodiment_of(video) if video is not None else None)
    if embodiment:
        shipped = shipped_detector(str(embodiment))
        if shipped is not None:
            return shipped
    weight_id = detector_config()["official_weight"]
    try:
        return resolve(weight_id)
    except Unavailable as exc:
        known = ", ".join(sorted(detector_config().get("shipped", {})))
        raise Unavailable(
            f"no gripper detector for embodiment {embodiment or '(not named)'!r}: {exc.reason}. "
            f"Shipped detectors cover: {known}",
            f"{spec(weight_id).fetch_command}, or train one with `ewmbench detector train` and pass it with --detector-weights (--weights in `ewmbench detector ...`)",
        ) from None
