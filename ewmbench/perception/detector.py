"""Gripper detection and tracking: per-video end-effector trajectories (T, 2, 2).

Per video, as the official tool does: a fresh ultralytics model (so the tracker starts empty),
every frame resized to 640x480 (bilinear) and passed to ``model.track(persist=True)`` with
BoT-SORT and confidence 0.8; per frame and class (0 left, 1 right) the highest-confidence box is
kept and its centre, divided by the frame size, is the trajectory point; a class without a box,
or a frame without any track id, gives (-1, -1). The settings are protocol data (``metrics:
trajectory_consistency: tracking:``); which checkpoint a video gets is decided in
:mod:`ewmbench.perception.detector_weights`, and cached tracks come from
:mod:`ewmbench.perception.trajectories`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ewmbench.errors import ConfigError, require
from ewmbench.protocols import Protocol

MISSING = -1.0
# Columns of the cached per-frame record of each gripper: centre x, y (normalised), box x1, y1,
# x2, y2 (pixels of the resized frame), confidence. Missing grippers hold -1 everywhere.
RECORD_FIELDS = ("cx", "cy", "x1", "y1", "x2", "y2", "conf")


@dataclass(frozen=True)
class TrackingSettings:
    protocol: str  # a label (the protocol these settings came from); not part of the cache key
    tracker: str
    conf: float
    imgsz: int | None  # None: the checkpoint's training size
    frame_width: int
    frame_height: int
    left_class: int
    right_class: int
    channel_order: str  # "swapped" (official quirk) or "correct"
    require_track_ids: bool

    def key(self) -> str:
        """A short stable name of every setting that changes a track, for cache keys."""
        values = {k: v for k, v in self.__dict__.items() if k != "protocol"}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]

    @classmethod
    def from_metric_settings(
        cls, settings: Mapping, protocol: str = "", source: str = ""
    ) -> TrackingSettings:
        """From the ``trajectory_consistency`` settings of a protocol (its ``tracking:`` block)."""
        where = source or protocol or "trajectory_consistency settings"
        values = settings.get("tracking")
        if not values:
            raise ConfigError(f"{where}: no tracking settings (metrics: trajectory_consistency: tracking:)")
        if values.get("channel_order") not in ("swapped", "correct"):
            raise ConfigError(
                f"{where}: tracking channel_order must be 'swapped' or 'correct', got {values.get('channel_order')!r}"
            )
        try:
            return cls(protocol=protocol, **values)
        except TypeError as exc:
            raise ConfigError(f"{where}: tracking settings: {exc}") from None

    @classmethod
    def from_protocol(cls, protocol: Protocol) -> TrackingSettings:
        """The tracking settings of a loaded protocol (its ``trajectory_consistency`` metric); the
        caller turns a protocol name or file into a :class:`~ewmbench.protocols.Protocol`."""
        return cls.from_metric_settings(
            protocol.settings("trajectory_consistency"), protocol.name, protocol.source
        )


def yolo_class() -> type:
    """ultralytics' ``YOLO``, imported so that it never installs packages or downloads assets at
    run time (it would otherwise pip-install plugins it lacks, e.g. on an unreadable image)."""
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    return require("ultralytics", "detect", "gripper tracking").YOLO


def load_detector(weights: Path, settings: TrackingSettings) -> Any:
    """A fresh ultralytics model from a checkpoint, checked to be a detector of both grippers."""
    YOLO = yolo_class()

    weights = Path(weights)
    try:
        model = (
            YOLO(str(weights), task="detect") if weights.suffix in {".yaml", ".yml"} else YOLO(str(weights))
        )
    except Exception as exc:  # ultralytics raises many types for a file that is not a checkpoint
        raise ConfigError(
            f"{weights}: not a loadable ultralytics checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if model.task != "detect":
        raise ConfigError(f"{weights}: checkpoint is a {model.task!r} model, not a detector (task 'detect')")
    names = model.names or {}
    needed = {settings.left_class, settings.right_class}
    if not needed <= set(names):
        raise ConfigError(
            f"{weights}: detector has classes {dict(names)}; gripper tracking needs class "
            f"{settings.left_class} (left gripper) and {settings.right_class} (right gripper)"
        )
    return model


# ---------------------------------------------------------------- tracking


def prepare_frame(frame: np.ndarray, settings: TrackingSettings) -> np.ndarray:
    """An RGB frame as the array handed to ultralytics (which reads arrays as BGR)."""
    import cv2

    height, width = frame.shape[:2]
    if (width, height) != (settings.frame_width, settings.frame_height):
        frame = cv2.resize(
            frame, (settings.frame_width, settings.frame_height), interpolation=cv2.INTER_LINEAR
        )
    if settings.channel_order == "correct":
        return np.ascontiguousarray(frame[..., ::-1])
    return np.ascontiguousarray(frame)  # official quirk: RGB passed where BGR is expected


def select_grippers(
    classes: np.ndarray,
    confidences: np.ndarray,
    boxes_xyxy: np.ndarray,
    track_ids: np.ndarray | None,
    settings: TrackingSettings,
) -> np.ndarray:
    """One frame's record (2, 7): for each gripper the highest-confidence box of its class.

    Centres are normalised by the frame size; grippers without a box are all -1. With
    ``require_track_ids``, a frame without track ids has no grippers.
    """
    record = np.full((2, len(RECORD_FIELDS)), MISSING, dtype=np.float64)
    if settings.require_track_ids and (track_ids is None or len(track_ids) == 0):
        return record
    classes = np.asarray(classes).astype(int).reshape(-1)
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    boxes_xyxy = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    for slot, cls in enumerate((settings.left_class, settings.right_class)):
        candidates = np.flatnonzero(classes == cls)
        if len(candidates) == 0:
            continue
        best = candidates[np.argmax(confidences[candidates])]  # first on ties
        x1, y1, x2, y2 = boxes_xyxy[best]
        record[slot] = (
            (x1 + x2) / 2 / settings.frame_width,
            (y1 + y2) / 2 / settings.frame_height,
            x1, y1, x2, y2,
            confidences[best],
        )  # fmt: skip
    return record


def _record_of_result(result: Any, settings: TrackingSettings) -> np.ndarray:
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return np.full((2, len(RECORD_FIELDS)), MISSING, dtype=np.float64)
    ids = None if boxes.id is None else boxes.id.cpu().numpy()
    return select_grippers(
        boxes.cls.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.xyxy.cpu().numpy(), ids, settings
    )


def predict_options(settings: TrackingSettings, device: str | None) -> dict[str, Any]:
    """Keyword arguments of ultralytics' track/predict for these settings."""
    options: dict[str, Any] = {
        "conf": settings.conf,
        "tracker": settings.tracker,
        "device": device,
        "verbose": False,
    }
    if settings.imgsz is not None:
        options["imgsz"] = settings.imgsz
    return options


def track_frames(
    frames: np.ndarray, weights: Path, settings: TrackingSettings, device: str | None = None
) -> np.ndarray:
    """Per-frame gripper records (T, 2, 7) of RGB frames (T, H, W, 3), with a fresh model and tracker."""
    model = load_detector(weights, settings)
    options = predict_options(settings, device)
    records = np.empty((len(frames), 2, len(RECORD_FIELDS)), dtype=np.float64)
    for index, frame in enumerate(frames):
        results = model.track(prepare_frame(frame, settings), persist=True, **options)
        records[index] = _record_of_result(results[0], settings)
    return records


def records_to_trajectory(records: np.ndarray) -> np.ndarray:
    """(T, 2, 2) float32 normalised centres from records, (-1, -1) where missing."""
    return np.ascontiguousarray(records[..., :2], dtype=np.float32)


# ---------------------------------------------------------------- annotation


def annotate(frames: np.ndarray, records: np.ndarray, settings: TrackingSettings) -> np.ndarray:
    """Frames resized to the tracking size with each kept box, its label and confidence drawn."""
    import cv2

    colours = ((255, 64, 64), (64, 128, 255))  # left red, right blue (RGB)
    out = []
    for frame, record in zip(frames, records):
        image = cv2.resize(
            frame, (settings.frame_width, settings.frame_height), interpolation=cv2.INTER_LINEAR
        )
        image = np.ascontiguousarray(image)
        for slot, name in enumerate(("left", "right")):
            if record[slot, 0] == MISSING:
                continue
            x1, y1, x2, y2 = (int(round(v)) for v in record[slot, 2:6])
            cv2.rectangle(image, (x1, y1), (x2, y2), colours[slot], 2)
            cv2.putText(
                image,
                f"{name} {record[slot, 6]:.2f}",
                (x1, max(y1 - 4, 10)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                colours[slot],
                1,
                cv2.LINE_AA,
            )
        out.append(image)
    return np.stack(out)
