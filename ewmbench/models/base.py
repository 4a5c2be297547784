"""The world-model adapter interface (v2).

An adapter turns a :class:`GenerationRequest` into a :class:`GenerationResult`. The request is
self-contained plain data (ids, numbers, text, numpy arrays): it can be written to bytes and
carried to another process or machine (:meth:`GenerationRequest.to_bytes`), and a world model
never sees the ground-truth episode or its future frames. Only adapters that declare themselves
oracles (``ground-truth``, ``sim``) receive the episode, and a run records that it used one.

An adapter declares, as class attributes read without loading anything:

* ``options``: typed :class:`Option` s with defaults, validated before any weight loads;
* ``capabilities``: a :class:`Capabilities` (conditioning, views, native size, frame rate,
  frame-count rule, chunk length, memory frames, action space, batch size), checked by the runner
  against the dataset before the first generation;
* ``needs_gpu``, ``needs_weights``, ``oracle`` and a one-line ``status`` (how it was tested).

Frame convention: a request asks for ``num_frames`` frames per view whose frame 0 is the current
frame (the last memory frame, episode frame ``start_frame``). Longer episodes than a model's
window are produced by :func:`generate_chunked`, one stateless request per chunk.
"""

from __future__ import annotations

import difflib
import io
import json
import math
from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ewmbench.data.layout import HEAD_VIEW
from ewmbench.errors import ConfigError, DataError
from ewmbench.files import json_safe
from ewmbench.registry import Entry, Option, Registry

REQUEST_FORMAT = "ewmbench-request/1"
RESULT_FORMAT = "ewmbench-result/1"

# Conditioning an adapter may declare; the runner fills only the request fields it declares.
CONDITIONING = {
    "text": "instruction and sub-steps",
    "image": "memory frames per view",
    "actions": "per-frame end-effector actions (sidecar `actions`)",
    "calibration": "per-view intrinsics and per-frame extrinsics (sidecar `intrinsics/<view>`, `extrinsics/<view>`)",
    "scene": "the episode's initial simulator state as plain data (sidecar meta `scene`)",
    "joints": "per-frame joint positions (sidecar `joint_positions`, column names in meta `joint_names`)",
}
# Action spaces by name: width and layout. The sidecar stores eef14-euler.
ACTION_SPACES = {
    "eef14-euler": (14, "[L xyz, L rpy (euler xyz, rad), L gripper 0..1, R xyz, R rpy, R gripper]"),
    "eef16-quat": (16, "[L xyz, L quat (x, y, z, w), L gripper (model range), R xyz, R quat, R gripper]"),
    "joint16-gesim": (16, "[L 7 arm joints (rad), L gripper 0 open..1 closed, R 7 arm joints, R gripper]"),
}


def fit_length(frames_or_rows: np.ndarray, length: int) -> np.ndarray:
    """Truncate to ``length`` rows, or hold the last row until ``length`` (frames or actions)."""
    if len(frames_or_rows) >= length:
        return frames_or_rows[:length]
    return np.concatenate(
        [frames_or_rows, np.repeat(frames_or_rows[-1:], length - len(frames_or_rows), axis=0)]
    )


# ---------------------------------------------------------------------------- request and result


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


# ---------------------------------------------------------------------------- capabilities


@dataclass(frozen=True)
class FrameRule:
    """Valid frame counts ``step * n + offset`` (n >= 0): 8n+1 for LTX-Video, 4n+1 for Cosmos."""

    step: int = 1
    offset: int = 0

    def valid(self, count: int) -> bool:
        return count >= max(self.offset, 1) and (count - self.offset) % self.step == 0

    def at_least(self, count: int) -> int:
        """The smallest valid count >= ``count``."""
        n = max(0, math.ceil((count - self.offset) / self.step))
        value = self.step * n + self.offset
        return value if value >= 1 else value + self.step

    def __str__(self) -> str:
        return "any" if self.step == 1 and self.offset == 0 else f"{self.step}n+{self.offset}"


@dataclass(frozen=True)
class Capabilities:
    """What an adapter needs and produces; the runner checks it against the dataset."""

    conditioning: frozenset[str] = frozenset()  # of CONDITIONING
    views: tuple[str, ...] | None = None  # views it produces (None: whichever the request asks for)
    required_views: tuple[str, ...] = (HEAD_VIEW,)  # views the dataset must have (memory or calibration)
    native_size: tuple[int, int] | None = None  # (height, width) it generates at; None: the request's
    fps: float | None = None  # native frame rate; None: the request's
    frame_rule: FrameRule = FrameRule()
    chunk_frames: int | None = None  # frames per generation window (frame 0 included); None: whole episode
    memory_frames: int = 1  # memory frames per view it takes
    action_space: str | None = None  # of ACTION_SPACES, for action-conditioned adapters
    max_batch: int = 1  # requests per `generate_batch` call

    def describe(self) -> dict:
        return {
            "conditioning": sorted(self.conditioning),
            "views": list(self.views) if self.views else "as requested",
            "native_size": list(self.native_size) if self.native_size else "as requested",
            "fps": self.fps,
            "frame_rule": str(self.frame_rule),
            "chunk_frames": self.chunk_frames,
            "memory_frames": self.memory_frames,
            "action_space": self.action_space,
            "max_batch": self.max_batch,
        }


# ---------------------------------------------------------------------------- the adapter


class WorldModel(ABC):
    """Base class of world-model adapters. Construction validates options and loads nothing."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()
    needs_weights: ClassVar[bool] = False
    needs_gpu: ClassVar[bool] = False
    oracle: ClassVar[bool] = False  # receives the ground-truth episode (reference models only)
    needs_also: ClassVar[tuple[str, ...]] = ()  # anything else it needs, in words (`ewmbench models`)
    status: ClassVar[str] = ""  # how this adapter has been exercised (real weights? device?)

    conditioning: ClassVar[frozenset[str]] = frozenset()  # mirrors capabilities.conditioning
    settings: dict = {}
    device: str = "cpu"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # `conditioning` stays readable on every adapter; a subclass written before capabilities
        # existed (declaring only `conditioning`) gets capabilities with that conditioning.
        if "capabilities" not in cls.__dict__ and "conditioning" in cls.__dict__:
            cls.capabilities = replace(cls.capabilities, conditioning=frozenset(cls.conditioning))
        cls.conditioning = cls.capabilities.conditioning

    def __init__(self, **options: Any):
        self.settings = self.validate_options(options)
        self.device = "cpu"

    @classmethod
    def validate_options(cls, given: dict) -> dict:
        """Parsed options with defaults; a typo or a wrong type is a ConfigError naming it."""
        known = {o.name: o for o in cls.options}
        unknown = [k for k in given if k not in known]
        if unknown:
            hints = [
                f"{k!r} (did you mean {m[0]!r}?)"
                if (m := difflib.get_close_matches(k, known, 1))
                else repr(k)
                for k in unknown
            ]
            accepted = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"model {cls.name!r} has no option {', '.join(hints)}; it accepts: {accepted}")
        return {
            name: option.parse(given[name], cls.name) if name in given else option.default
            for name, option in known.items()
        }

    def capabilities_now(self) -> Capabilities:
        """Capabilities under the chosen options (e.g. a size option changes ``native_size``)."""
        return self.capabilities

    def check_available(self) -> None:
        """Raise :class:`ewmbench.errors.Unavailable` when weights or libraries are missing (cheap)."""

    def load(self, device: str) -> None:
        """Load weights onto ``device``; called once by the runner after every check passed."""
        self.device = device

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise NotImplementedError(f"model {self.name!r} implements neither generate nor generate_oracle")

    def generate_oracle(self, request: GenerationRequest, episode) -> GenerationResult:
        """Oracles only: like :meth:`generate`, with the ground-truth episode."""
        raise NotImplementedError(f"model {self.name!r} is not an oracle")

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Several requests in one call; adapters with ``max_batch > 1`` override this."""
        return [self.generate(r) for r in requests]

    def config(self) -> dict:
        """Settings recorded in the run's provenance and every trial's sidecar."""
        return json_safe(self.settings)


# ---------------------------------------------------------------------------- chunked generation


def even_indices(length: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``0 .. length - 1``, the last one included."""
    if length < 1 or count < 1:
        raise ValueError("even_indices needs length >= 1 and count >= 1")
    if count == 1:
        return [length - 1]  # the current frame
    return [int(round(i)) for i in np.linspace(0, length - 1, count)]


def chunk_seed(seed: int, start_frame: int) -> int:
    """The seed of the chunk starting at ``start_frame`` (the request's own seed for the first)."""
    return int(seed) if start_frame == 0 else (int(seed) * 1_000_003 + int(start_frame)) % (2**31)


def generate_chunked(
    step: Callable[[GenerationRequest], GenerationResult],
    request: GenerationRequest,
    chunk_frames: int,
    memory_frames: int,
) -> GenerationResult:
    """Produce ``request.num_frames`` frames with a model whose window is ``chunk_frames``.

    Chunk k is a stateless request: frame 0 is the last frame produced so far (so each chunk adds
    ``chunk_frames - 1`` frames), its memory is ``memory_frames`` frames re-sampled evenly over
    everything produced so far (the caller's memory for the first chunk), its actions and
    extrinsics are the history plus the chunk's frames, and its seed is derived from the
    request's seed and its start frame (:func:`chunk_seed`), so chunks do not share their noise. States are joined like frames; the info
    of each chunk is kept under ``info["chunks"]``.
    """
    if chunk_frames < 2:
        raise ConfigError(f"a chunk must hold at least 2 frames, got {chunk_frames}")
    total = request.num_frames
    if total <= chunk_frames:
        return step(replace(request, num_frames=chunk_frames)) if total < chunk_frames else step(request)
    produced: dict[str, np.ndarray] = {}
    states: dict[str, np.ndarray] = {}
    infos: list[dict] = []
    start = request.start_frame
    while True:
        if not produced:
            chunk = replace(request, num_frames=chunk_frames)
        else:
            length = len(next(iter(produced.values())))
            picks = even_indices(length, memory_frames)
            chunk = replace(
                request,
                num_frames=chunk_frames,
                start_frame=start,
                seed=chunk_seed(request.seed, start),
                memory_frames={v: f[picks] for v, f in produced.items()},
                memory_indices=[request.start_frame + i for i in picks],
            )
        end = chunk.start_frame + chunk_frames
        if request.actions is not None:
            chunk.actions = fit_length(request.actions, end)
        chunk.extrinsics = {v: fit_length(e, end) for v, e in request.extrinsics.items()}
        result = step(chunk)
        first = not produced
        for view, frames in result.frames.items():
            part = frames if first else frames[1:]
            produced[view] = part if first else np.concatenate([produced[view], part])
        for key, value in result.state.items():
            part = value if first else value[1:]
            states[key] = part if first else np.concatenate([states[key], part])
        infos.append(result.info)
        length = len(next(iter(produced.values())))
        if length >= total:
            break
        start = request.start_frame + length - 1
    return GenerationResult(
        {v: f[:total] for v, f in produced.items()},
        {k: s[:total] for k, s in states.items()},
        {"chunks": infos, "chunk_frames": chunk_frames, "memory_frames": memory_frames},
    )


# ---------------------------------------------------------------------------- checks the runner makes


def check_request_fits(
    model: WorldModel, episode_views: list[str], fields_present: dict[str, bool], where: Path | str
) -> None:
    """Refuse, before any generation, a dataset that lacks what the adapter is conditioned on.

    ``fields_present`` maps sidecar fields (``actions``, ``intrinsics/<view>``,
    ``extrinsics/<view>``, ``scene``, ``instruction``) to whether the episode has them.
    """
    caps = model.capabilities_now()
    missing_views = [v for v in caps.required_views if v not in episode_views]
    if missing_views:
        raise DataError(
            where,
            f"model {model.name!r} needs view(s) {missing_views}; the episode has {episode_views} (sidecar meta `views`)",
        )
    need: list[str] = []
    if "actions" in caps.conditioning:
        need.append("actions")
    if "calibration" in caps.conditioning:
        for view in caps.required_views:
            need += [f"intrinsics/{view}", f"extrinsics/{view}"]
    if "scene" in caps.conditioning:
        need.append("scene")
    if "joints" in caps.conditioning:
        need.append("joint_positions")
    missing = [name for name in need if not fields_present.get(name)]
    if missing:
        where_text = {"scene": "sidecar meta.json `scene`"}
        names = ", ".join(f"`{m}` ({where_text.get(m, 'sidecar arrays.npz')})" for m in missing)
        raise DataError(
            where,
            f"model {model.name!r} is conditioned on {sorted(caps.conditioning)} but the episode lacks {names}",
        )


def check_device(model: WorldModel, requested: str | None, cuda_available: bool) -> str:
    """The device to load on. A GPU-only adapter on a machine without one is refused, unless the
    user asked for ``--device cpu`` explicitly (that is how tiny test models run)."""
    if requested is None:
        if cuda_available:
            return "cuda"
        if model.needs_gpu:
            raise ConfigError(
                f"model {model.name!r} needs a GPU and no CUDA device is available here; "
                "pass --device cpu to run it on the CPU anyway (practical only for tiny models)"
            )
        return "cpu"
    if requested.startswith("cuda") and not cuda_available:
        raise ConfigError(f"--device {requested} was asked for, but no CUDA device is available here")
    return requested


def validate_result(model: WorldModel, request: GenerationRequest, result: GenerationResult) -> None:
    """A result must hold every requested view as (T >= 1, H, W, 3) uint8 frames."""
    if not isinstance(result, GenerationResult):
        raise ConfigError(f"model {model.name!r} returned {type(result).__name__}, not a GenerationResult")
    for view in request.views:
        frames = result.frames.get(view)
        if frames is None:
            raise ConfigError(f"model {model.name!r} returned no {view!r} frames for {'/'.join(request.ids)}")
        if (
            not isinstance(frames, np.ndarray)
            or frames.dtype != np.uint8
            or frames.ndim != 4
            or frames.shape[-1] != 3
            or len(frames) == 0
        ):
            shape = getattr(frames, "shape", None)
            raise ConfigError(
                f"model {model.name!r} returned {view!r} frames of shape {shape} and dtype {getattr(frames, 'dtype', None)}; expected (T, H, W, 3) uint8"
            )


# ---------------------------------------------------------------------------- the registry

# Built-in adapters by name, as "module:Class" strings: listing names imports nothing heavy, and an
# adapter's module (and its torch/diffusers imports, which live inside functions) loads on use.
BUILTIN_MODELS: dict[str, str] = {
    "ground-truth": "ewmbench.models.baselines:GroundTruthModel",
    "static": "ewmbench.models.baselines:StaticModel",
    "sim": "ewmbench.models.sim:SimModel",
    "ltx-video": "ewmbench.models.ltx:LTXVideoModel",
    "cosmos-predict2": "ewmbench.models.cosmos:CosmosPredict2Model",
    "ge-base": "ewmbench.models.genie:GEBaseModel",
    "ge-sim": "ewmbench.models.genie:GESimModel",
    "ge-sim-2": "ewmbench.models.gesim:GESim2Model",
    "remote": "ewmbench.models.remote:RemoteModel",
}
ENTRY_POINT_GROUP = "ewmbench.models"
MODELS = Registry(
    "model",
    [Entry(name, target) for name, target in BUILTIN_MODELS.items()],
    entry_point_group=ENTRY_POINT_GROUP,
    hint="(see `ewmbench models`), or name a class as package.module:Class",
    references=True,
    base=WorldModel,
)


def register_model(cls: type[WorldModel]) -> type[WorldModel]:
    """Register an adapter class defined in the running process (a user's module, a test)."""
    return MODELS.register(cls.name, cls)


def model_sources() -> dict[str, str]:
    """Every known adapter name and where it comes from ("module:Class"), without importing it.

    Built-ins first, then the ``ewmbench.models`` entry-point group of installed packages, then
    classes registered in this process.
    """
    return MODELS.sources()


def load_model_class(name: str) -> type[WorldModel]:
    """The adapter class for a registered name or a ``package.module:Class`` reference."""
    cls = MODELS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, WorldModel)):
        raise ConfigError(
            f"model {name!r}: {MODELS.sources().get(name, name)!r} is not a WorldModel subclass"
        )
    return cls


def model_registry() -> dict[str, type[WorldModel]]:
    """Every known adapter class by name (imports each adapter module; they import nothing heavy)."""
    return {name: load_model_class(name) for name in sorted(model_sources())}
