"""The generation request and result: self-contained plain data (ids, numbers, text, numpy
arrays) that can be written to bytes and carried to another process or machine
(:meth:`GenerationRequest.to_bytes`). A world model never sees the ground-truth episode or its
future frames through a request.

Frame convention: a request asks for ``num_frames`` frames per view whose frame 0 is the current
frame (the last memory frame, episode frame ``start_frame``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from ewmbench.data.layout import HEAD_VIEW
from ewmbench.errors import ConfigError
from ewmbench.files import json_safe
from ewmbench.models.capabilities import ACTION_SPACES

REQUEST_FORMAT = "ewmbench-request/1"
RESULT_FORMAT = "ewmbench-result/1"


def fit_length(frames_or_rows: np.ndarray, length: int) -> np.ndarray:
    """Truncate to ``length`` rows, or hold the last row until ``length`` (frames or actions)."""
    if len(frames_or_rows) >= length:
        return frames_or_rows[:length]
    return np.concatenate(
        [frames_or_rows, np.repeat(frames_or_rows[-1:], length - len(frames_or_rows), axis=0)]
    )


@dataclass
class GenerationRequest:
    """Everything one generation call may use, as plain data.

    Arrays indexed by episode frame (``actions``, ``extrinsics``) cover frames
    ``0 .. start_frame + num_frames - 1``: the history and this call's frames, never beyond.
    """

    task: str
    episode: str
    trial: str
    seed: int
    num_frames: int  # frames to produce per view; frame 0 is the current frame (episode frame start_frame)
    fps: float | None = None
    height: int = 480  # the benchmark's size (the GT's); adapters generate natively and are conformed
    width: int = 640
    views: tuple[str, ...] = (HEAD_VIEW,)
    start_frame: int = 0
    instruction: str = ""
    substeps: list[str] = field(default_factory=list)
    # Per view, (M, H, W, 3) uint8 history frames, oldest first; the last is the current frame.
    memory_frames: dict[str, np.ndarray] = field(default_factory=dict)
    memory_indices: list[int] = field(default_factory=lambda: [0])  # episode frame of each memory frame
    actions: np.ndarray | None = None  # (start_frame + num_frames, D) in `action_space`
    action_space: str = "eef14-euler"
    intrinsics: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # per view (3, 3), pixels at (height, width)
    extrinsics: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # per view (start_frame + num_frames, 4, 4) camera-to-base
    scene: dict | None = None  # initial simulator state (JSON), for simulator-backed models
    joint_positions: np.ndarray | None = None  # (start_frame + num_frames, J); names in extra["joint_names"]
    embodiment: str | None = None
    extra: dict = field(default_factory=dict)  # JSON-safe additions (other issues add keys here)

    _ARRAY_FIELDS: ClassVar[tuple[str, ...]] = (
        "memory_frames",
        "actions",
        "intrinsics",
        "extrinsics",
        "joint_positions",
    )

    @property
    def ids(self) -> tuple[str, str, str]:
        return (self.task, self.episode, self.trial)

    def chunk_actions(self) -> np.ndarray | None:
        """Actions of this call's frames: rows ``start_frame .. start_frame + num_frames - 1``."""
        if self.actions is None:
            return None
        return fit_length(self.actions[self.start_frame :], self.num_frames)

    def memory_actions(self) -> np.ndarray | None:
        """Actions at the memory frames (one row per memory frame)."""
        if self.actions is None:
            return None
        return self.actions[np.minimum(self.memory_indices, len(self.actions) - 1)]

    def validate(self) -> GenerationRequest:
        """Check types and shapes (a request read from a file or the network); ConfigError naming the field."""

        def bad(name: str, problem: str):
            raise ConfigError(f"generation request {'/'.join(map(str, self.ids))}: {name} {problem}")

        for name in ("task", "episode", "trial", "instruction"):
            if not isinstance(getattr(self, name), str):
                bad(name, "must be text")
        for name, low in (("seed", 0), ("num_frames", 1), ("start_frame", 0), ("height", 1), ("width", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                bad(name, f"must be an integer >= {low}, got {value!r}")
        if self.fps is not None and (
            isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not 0 < self.fps < 10_000
        ):
            bad("fps", f"must be a positive number, got {self.fps!r}")
        if not isinstance(self.substeps, list) or not all(isinstance(x, str) for x in self.substeps):
            bad("substeps", "must be a list of text")
        if not self.views or not all(isinstance(v, str) and v for v in self.views):
            bad("views", "must name at least one view")
        for view, frames in self.memory_frames.items():
            frames = np.asarray(frames)
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
                bad(
                    f"memory_frames/{view}",
                    f"must be (M >= 1, H, W, 3) uint8, got {frames.shape} {frames.dtype}",
                )
        if self.memory_frames and any(
            len(f) != len(self.memory_indices) for f in self.memory_frames.values()
        ):
            bad("memory_indices", "must give one episode frame per memory frame")
        if any(
            not isinstance(i, (int, np.integer)) or not 0 <= i <= self.start_frame
            for i in self.memory_indices
        ):
            bad(
                "memory_indices",
                f"must be frames 0 .. start_frame ({self.start_frame}), got {self.memory_indices}",
            )
        rows = self.start_frame + self.num_frames
        if self.actions is not None:
            actions = np.asarray(self.actions)
            if self.action_space not in ACTION_SPACES:
                bad("action_space", f"must be one of {', '.join(ACTION_SPACES)}, got {self.action_space!r}")
            width = ACTION_SPACES[self.action_space][0]
            if (
                actions.ndim != 2
                or actions.shape[1] != width
                or not np.issubdtype(actions.dtype, np.number)
                or not np.all(np.isfinite(actions))
            ):
                bad(
                    "actions",
                    f"must be finite (T, {width}) numbers for {self.action_space}, got {actions.shape} {actions.dtype}",
                )
            if len(actions) > rows:
                bad(
                    "actions",
                    f"reach beyond this call's last frame ({len(actions)} rows for frames 0 .. {rows - 1})",
                )
        if self.joint_positions is not None:
            joints = np.asarray(self.joint_positions)
            if (
                joints.ndim != 2
                or not np.issubdtype(joints.dtype, np.number)
                or not np.all(np.isfinite(joints))
            ):
                bad("joint_positions", f"must be finite (T, J) numbers, got {joints.shape} {joints.dtype}")
            if len(joints) > rows:
                bad(
                    "joint_positions",
                    f"reach beyond this call's last frame ({len(joints)} rows for frames 0 .. {rows - 1})",
                )
        for view, k in self.intrinsics.items():
            if np.asarray(k).shape != (3, 3):
                bad(f"intrinsics/{view}", f"must be (3, 3), got {np.asarray(k).shape}")
        for view, e in self.extrinsics.items():
            e = np.asarray(e)
            if e.ndim != 3 or e.shape[1:] != (4, 4):
                bad(f"extrinsics/{view}", f"must be (T, 4, 4), got {e.shape}")
            if len(e) > rows:
                bad(
                    f"extrinsics/{view}",
                    f"reach beyond this call's last frame ({len(e)} rows for frames 0 .. {rows - 1})",
                )
        return self

    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-safe metadata and named arrays: what a service or a file carries."""
        meta: dict[str, Any] = {"format": REQUEST_FORMAT}
        arrays: dict[str, np.ndarray] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self._ARRAY_FIELDS:
                if isinstance(value, dict):
                    arrays.update({f"{f.name}/{k}": np.asarray(v) for k, v in value.items()})
                elif value is not None:
                    arrays[f.name] = np.asarray(value)
            else:
                meta[f.name] = list(value) if isinstance(value, tuple) else value
        return meta, arrays

    @classmethod
    def from_parts(cls, meta: dict, arrays: dict[str, np.ndarray]) -> GenerationRequest:
        if meta.get("format") != REQUEST_FORMAT:
            raise ConfigError(
                f"not a generation request (format {meta.get('format')!r}, expected {REQUEST_FORMAT!r})"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(meta) - known - {"format"})
        if unknown:
            raise ConfigError(f"generation request has unknown field(s) {unknown}")
        kwargs = {k: v for k, v in meta.items() if k in known}
        if "views" in kwargs:
            kwargs["views"] = tuple(kwargs["views"])
        for name in cls._ARRAY_FIELDS:
            prefix = f"{name}/"
            if name in arrays:
                kwargs[name] = arrays[name]
            elif name in ("memory_frames", "intrinsics", "extrinsics"):
                kwargs[name] = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        try:
            request = cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"generation request is incomplete ({exc})") from None
        return request.validate()

    def to_bytes(self) -> bytes:
        return _pack(*self.to_parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> GenerationRequest:
        return cls.from_parts(*_unpack(data))


@dataclass
class GenerationResult:
    frames: dict[str, np.ndarray]  # per view, (T, H, W, 3) uint8 RGB
    state: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # optional per-frame state, e.g. eef_pose (T, 14), joints (T, J)
    info: dict = field(default_factory=dict)  # JSON-safe; recorded in the trial's sidecar

    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays = {f"frames/{k}": np.asarray(v) for k, v in self.frames.items()}
        arrays.update({f"state/{k}": np.asarray(v) for k, v in self.state.items()})
        return {"format": RESULT_FORMAT, "info": json_safe(self.info)}, arrays

    @classmethod
    def from_parts(cls, meta: dict, arrays: dict[str, np.ndarray]) -> GenerationResult:
        if meta.get("format") != RESULT_FORMAT:
            raise ConfigError(
                f"not a generation result (format {meta.get('format')!r}, expected {RESULT_FORMAT!r})"
            )
        frames = {k.removeprefix("frames/"): v for k, v in arrays.items() if k.startswith("frames/")}
        state = {k.removeprefix("state/"): v for k, v in arrays.items() if k.startswith("state/")}
        return cls(frames, state, dict(meta.get("info", {})))

    def to_bytes(self) -> bytes:
        return _pack(*self.to_parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> GenerationResult:
        return cls.from_parts(*_unpack(data))


def _pack(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (no pickles) holding the arrays and the metadata as a JSON byte array."""
    buffer = io.BytesIO()
    payload = {"__meta__": np.frombuffer(json.dumps(json_safe(meta)).encode(), dtype=np.uint8), **arrays}
    np.savez(buffer, **payload)
    return buffer.getvalue()


def _unpack(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise ConfigError(f"malformed generation payload ({type(exc).__name__}: {exc})") from None
    return meta, arrays
