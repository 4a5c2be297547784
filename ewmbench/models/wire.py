"""The WorldArena 2.0 Track 2 world-model service API (version 1.0) as data: images, profiles,
samples, errors, and the one mapping between an episode's trial and an API sample.

``ewmbench serve`` (the server) and the ``remote`` adapter (the client) both use this module, so
the two sides cannot drift apart. Source of the API: WorldArena2/WorldArena-2.0,
``assets/track2_world_model_service_api_en.md``.

How a trial maps onto one API sample (:func:`request_to_sample`), with ``s = start_frame`` and
``n = num_frames`` of the :class:`~ewmbench.models.request.GenerationRequest`:

* ``sample_id`` is ``<task>/<episode>/<trial>``; a served simulator finds its episode from it,
  other served models ignore it.
* ``context.frames``: the head view's memory frames (the last is the current frame, episode frame
  ``s``), at the profile's image size; fewer than the profile's minimum are padded by repeating the
  oldest, more than its maximum keep the newest.
* ``context.actions``: one row per consecutive pair of context frames, the action row of the later
  frame (the sidecar's ``actions[t]`` is commanded in the interval ending at frame ``t``, which is
  the API's "context action i takes frame i to i + 1"); a padded pair holds the older row.
* ``actions`` (the future): rows ``s + 1 .. s + n - 1`` of the episode's actions, so the service
  returns ``n - 1`` predicted frames; the trial is the model's own frame 0 (the optional
  ``ewmbench_frame_0`` our service adds; from another service, the current frame) followed by them.
* ``context.states``: when the profile supports state, the action row at each context frame (the
  sidecar's actions are absolute end-effector poses, so the row of frame ``t`` is the pose there);
  otherwise ``null``.
* ``context.instruction``: the instruction when the profile supports it, otherwise ``null``.
* A model that is not conditioned on actions (text- or image-only) declares an action dimension
  of 0 and receives ``n - 1`` empty rows: the row count alone says how many frames to predict.

The inverse (:func:`sample_to_request`, on the server) rebuilds a request whose frame 0 is the
first context frame: ``start_frame = F - 1``, ``num_frames = P + 1``, and the per-frame actions
``[row 0, context actions..., future actions...]`` with row 0 the first state when states were
sent, else the first action row that was (held backwards).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ewmbench.data.budgets import PNG_CHUNKS
from ewmbench.data.conform import resize_frames
from ewmbench.data.layout import HEAD_VIEW
from ewmbench.errors import EwmbenchError
from ewmbench.models.request import GenerationRequest

API_VERSION = "1.0"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLE_ID = re.compile(r"^([^/\s]{1,64})/([^/\s]{1,64})/([^/\s]{1,64})$")
MAX_SEED = 2**63 - 1


class ApiError(EwmbenchError):
    """An error answer of the API: a published code, its HTTP status and whether to retry."""

    STATUS = {
        "INVALID_ARGUMENT": 400,
        "UNAUTHENTICATED": 401,
        "PERMISSION_DENIED": 403,
        "NOT_FOUND": 404,
        "REQUEST_TIMEOUT": 408,  # ours, like NOT_FOUND: a client too slow to send its request
        "REQUEST_ID_CONFLICT": 409,
        "PAYLOAD_TOO_LARGE": 413,
        "UNSUPPORTED_VERSION": 422,
        "OVERLOADED": 429,
        "INTERNAL": 500,
        "NOT_READY": 503,
        "DEADLINE_EXCEEDED": 504,
    }
    RETRYABLE = frozenset({"OVERLOADED", "INTERNAL", "NOT_READY", "DEADLINE_EXCEEDED"})

    def __init__(self, code: str, message: str):
        if code not in self.STATUS:
            raise ValueError(f"unknown API error code {code!r}")
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    @property
    def status(self) -> int:
        return self.STATUS[self.code]

    @property
    def retryable(self) -> bool:
        return self.code in self.RETRYABLE

    def body(self, request_id: str | None) -> dict:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "request_id": request_id,
                "retryable": self.retryable,
            }
        }


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message)


# ---------------------------------------------------------------------------- images


def encode_image(frame: np.ndarray, compress_level: int = 1) -> dict:
    """(H, W, 3) uint8 -> the API's image object (PNG, base64)."""
    from PIL import Image

    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buffer, format="PNG", compress_level=compress_level)
    return {
        "encoding": "png_base64",
        "color_space": "RGB",
        "height": int(frame.shape[0]),
        "width": int(frame.shape[1]),
        "channels": 3,
        "data": base64.b64encode(buffer.getvalue()).decode("ascii"),
    }


def png_header(data: bytes, where: str) -> tuple[int, int]:
    """(height, width) of an 8-bit RGB, non-animated PNG, read from its chunks before any pixel is
    decompressed; anything else is refused. Exactly one IHDR, first; at most the PNG-chunks budget
    of chunks; then the image data is inflated (bounded by the size the header declares) and must
    hold exactly every row, so a PNG that hides a second header or stops short is refused."""
    if not data.startswith(PNG_SIGNATURE):
        raise invalid(f"{where}: not a PNG")
    pos, size, kinds = 8, len(data), []
    height = width = interlace = None
    image_data = []
    limit = int(PNG_CHUNKS.value())
    while pos + 8 <= size:
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if pos + 12 + length > size:
            raise invalid(f"{where}: truncated PNG chunk")
        if len(kinds) >= limit:
            raise invalid(f"{where}: PNG has more than {limit} chunks")
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            if kinds:
                raise invalid(f"{where}: PNG must hold exactly one IHDR chunk, first")
            if length != 13:
                raise invalid(f"{where}: malformed PNG header")
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if colour != 2 or depth != 8:
                kinds_of = {0: "grayscale", 3: "palette", 4: "grayscale with alpha", 6: "RGBA"}
                raise invalid(
                    f"{where}: PNG must be 8-bit RGB, got {kinds_of.get(colour, f'colour type {colour}')} at {depth} bits"
                )
        elif kind == b"acTL":
            raise invalid(f"{where}: animated PNG is not accepted")
        elif kind == b"tRNS":
            raise invalid(f"{where}: PNG with transparency is not accepted")
        elif kind == b"IDAT":
            image_data.append(body)
        kinds.append(kind)
        pos += 12 + length
        if kind == b"IEND":
            break
    if not kinds or kinds[0] != b"IHDR" or height is None or width is None or not image_data:
        raise invalid(f"{where}: malformed PNG")
    if kinds[-1] != b"IEND":
        raise invalid(f"{where}: truncated PNG (no IEND chunk)")
    _check_image_data(image_data, height, width, interlace, where)
    return height, width


def _check_image_data(chunks: list[bytes], height: int, width: int, interlace: int, where: str) -> int:
    """The inflated size of the image data, which must be exactly what the header declares."""
    if interlace == 0:
        expected = height * (1 + 3 * width)
    else:  # Adam7: seven reduced images, each row with its filter byte
        expected = 0
        for x0, y0, dx, dy in (
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ):
            cols, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
            if cols > 0 and rows > 0:
                expected += rows * (1 + 3 * cols)
    inflate = zlib.decompressobj()
    got = 0
    try:
        for chunk in chunks:
            got += len(inflate.decompress(chunk, expected + 1 - got))
            if got > expected:
                break
            while inflate.unconsumed_tail and got <= expected:
                got += len(inflate.decompress(inflate.unconsumed_tail, expected + 1 - got))
    except zlib.error:
        raise invalid(f"{where}: PNG image data is corrupt") from None
    if got != expected or not inflate.eof:
        raise invalid(
            f"{where}: PNG image data holds {'more' if got > expected else 'less'} than the "
            f"{height}x{width} pixels its header declares"
        )
    return got


def decode_image(obj, height: int, width: int, where: str, max_png_bytes: int) -> np.ndarray:
    """The API's image object -> (height, width, 3) uint8; every deviation is an INVALID_ARGUMENT."""
    from PIL import Image

    if not isinstance(obj, dict):
        raise invalid(f"{where}: an image must be an object")
    for key, expected in (
        ("encoding", "png_base64"),
        ("color_space", "RGB"),
        ("channels", 3),
        ("height", height),
        ("width", width),
    ):
        if key not in obj:
            raise invalid(f"{where}: missing field {key!r}")
        if obj[key] != expected or type(obj[key]) is not type(expected):
            raise invalid(f"{where}: {key} must be {expected!r}, got {str(obj[key])[:40]!r}")
    data = obj.get("data")
    if not isinstance(data, str):
        raise invalid(f"{where}: data must be a base64 string")
    if len(data) > (max_png_bytes * 4) // 3 + 4:
        raise invalid(f"{where}: PNG larger than {max_png_bytes} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"{where}: data is not standard base64 (no data: prefix, no line breaks)") from None
    h, w = png_header(raw, where)
    if (h, w) != (height, width):
        raise invalid(f"{where}: PNG is {h}x{w} (height x width), the profile needs {height}x{width}")
    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as image:
            image.load()
            array = np.asarray(image.convert("RGB") if image.mode != "RGB" else image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, zlib.error, Image.DecompressionBombError):
        raise invalid(f"{where}: PNG cannot be decoded") from None
    if array.shape != (height, width, 3):
        raise invalid(f"{where}: decoded PNG has shape {array.shape}")
    return array


# ---------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """One profile of a capabilities manifest: what a sample must look like."""

    profile_id: str
    height: int
    width: int
    context_min: int = 1
    context_max: int = 1
    prediction_min: int = 1
    prediction_max: int = 64
    action_dim: int = 14
    action_dtype: str = "float32"
    action_representation: str = "eef14-euler absolute target pose per frame"
    state_supported: bool = False
    state_dim: int = 0
    instruction_supported: bool = False

    def to_json(self) -> dict:
        return {
            "profile_id": self.profile_id,
            "image": {
                "encoding": "png_base64",
                "color_space": "RGB",
                "height": self.height,
                "width": self.width,
                "channels": 3,
            },
            "context_frames": {"min": self.context_min, "max": self.context_max},
            "prediction_frames": {"min": self.prediction_min, "max": self.prediction_max},
            "action": {
                "dtype": self.action_dtype,
                "dimension": self.action_dim,
                "representation": self.action_representation,
            },
            "state": {
                "supported": self.state_supported,
                "dimension": self.state_dim if self.state_supported else None,
            },
            "instruction": {"supported": self.instruction_supported},
        }

    @classmethod
    def from_json(cls, data) -> Profile:
        """Parse and check one profile of someone's manifest; a problem raises ValueError naming it."""
        try:
            image, ctx, pred, action = (
                data["image"],
                data["context_frames"],
                data["prediction_frames"],
                data["action"],
            )
            state = data.get("state") or {}
            instruction = data.get("instruction") or {}
            profile = cls(
                profile_id=_text(data["profile_id"], "profile_id"),
                height=_count(image["height"], "image.height"),
                width=_count(image["width"], "image.width"),
                context_min=_count(ctx["min"], "context_frames.min"),
                context_max=_count(ctx["max"], "context_frames.max"),
                prediction_min=_count(pred["min"], "prediction_frames.min"),
                prediction_max=_count(pred["max"], "prediction_frames.max"),
                action_dim=_count(action["dimension"], "action.dimension", 0),
                action_dtype=str(action.get("dtype", "float32")),
                action_representation=str(action.get("representation", "")),
                state_supported=bool(state.get("supported", False)),
                state_dim=_count(state.get("dimension") or 0, "state.dimension", 0),
                instruction_supported=bool(instruction.get("supported", False)),
            )
            if (
                image.get("encoding") != "png_base64"
                or image.get("color_space") != "RGB"
                or image.get("channels") != 3
            ):
                raise ValueError("image must be png_base64, RGB, 3 channels")
        except (KeyError, TypeError) as exc:
            raise ValueError(f"profile lacks or mistypes {exc}") from None
        if profile.context_min > profile.context_max or profile.prediction_min > profile.prediction_max:
            raise ValueError(f"profile {profile.profile_id!r}: a frame range has min > max")
        if profile.state_supported and profile.state_dim < 1:
            raise ValueError(f"profile {profile.profile_id!r}: state supported without a dimension")
        return profile


@dataclass(frozen=True)
class Limits:
    max_batch_size: int = 4
    max_request_bytes: int = 64 * 2**20
    max_concurrency: int = 2
    recommended_timeout_ms: int = 120_000

    def to_json(self) -> dict:
        return {
            k: getattr(self, k)
            for k in ("max_batch_size", "max_request_bytes", "max_concurrency", "recommended_timeout_ms")
        }

    @classmethod
    def from_json(cls, data) -> Limits:
        try:
            return cls(
                **{
                    k: _count(data[k], f"limits.{k}")
                    for k in (
                        "max_batch_size",
                        "max_request_bytes",
                        "max_concurrency",
                        "recommended_timeout_ms",
                    )
                }
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"limits lack or mistype {exc}") from None


def parse_capabilities(data) -> tuple[str, list[Profile], Limits, dict]:
    """(model_version, profiles, limits, determinism) of a manifest; ValueError naming a problem."""
    if not isinstance(data, dict):
        raise ValueError("capabilities must be a JSON object")
    if data.get("api_version") != API_VERSION:
        raise ValueError(f"api_version must be {API_VERSION!r}, got {data.get('api_version')!r}")
    version = _text(data.get("model_version"), "model_version")
    profiles = data.get("profiles")
    if not isinstance(profiles, list) or not profiles:
        raise ValueError("profiles must be a non-empty list")
    parsed = [Profile.from_json(p) for p in profiles]
    determinism = data.get("determinism")
    if not isinstance(determinism, dict) or not all(
        isinstance(determinism.get(k), bool) for k in ("seed_supported", "same_seed_same_pixels")
    ):
        raise ValueError("determinism must hold booleans seed_supported and same_seed_same_pixels")
    return version, parsed, Limits.from_json(data.get("limits")), determinism


def _count(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _text(value, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


# ---------------------------------------------------------------------------- the episode <-> API mapping


def sample_id_of(task: str, episode: str, trial: str) -> str:
    return f"{task}/{episode}/{trial}"


def parse_sample_id(sample_id: str) -> tuple[str, str, str] | None:
    """(task, episode, trial) of an id in our ``<task>/<episode>/<trial>`` form, else None."""
    match = SAMPLE_ID.match(sample_id)
    return match.groups() if match else None  # type: ignore[return-value]


def request_to_sample(request: GenerationRequest, profile: Profile) -> dict:
    """One API sample (JSON, images encoded) for a trial's request; see the module docstring."""

    memory = request.memory_frames.get(HEAD_VIEW)
    if memory is None or len(memory) == 0:
        raise EwmbenchError(f"{sample_id_of(*request.ids)}: no head-view memory frame to send as context")
    indices = (
        list(request.memory_indices)[-len(memory) :] if request.memory_indices else [request.start_frame]
    )
    frames = list(resize_frames(np.asarray(memory), profile.height, profile.width))
    if len(indices) != len(frames):
        indices = [request.start_frame] * len(frames)
    while len(frames) < profile.context_min:
        frames.insert(0, frames[0])
        indices.insert(0, indices[0])
    frames, indices = frames[-profile.context_max :], indices[-profile.context_max :]
    predictions = request.num_frames - 1
    if profile.action_dim == 0:
        context_actions: list = [[] for _ in range(len(frames) - 1)]
        future: list = [[] for _ in range(predictions)]
        states = None
    else:
        if request.actions is None:
            raise EwmbenchError(
                f"{sample_id_of(*request.ids)}: the service needs {profile.action_dim}-D actions and the episode has none"
            )
        actions = np.asarray(request.actions, dtype=np.float64)
        if actions.shape[1] != profile.action_dim:
            raise EwmbenchError(
                f"{sample_id_of(*request.ids)}: the service takes {profile.action_dim}-D actions, the episode's are {actions.shape[1]}-D"
            )
        last = len(actions) - 1
        rows = [min(i, last) for i in indices]
        context_actions = [actions[max(rows[i], rows[i + 1])].tolist() for i in range(len(rows) - 1)]
        future = [actions[min(request.start_frame + k, last)].tolist() for k in range(1, predictions + 1)]
        states = [actions[r, : profile.state_dim].tolist() for r in rows] if profile.state_supported else None
    return {
        "sample_id": sample_id_of(*request.ids),
        "seed": int(request.seed) % (MAX_SEED + 1),
        "context": {
            "frames": [encode_image(f) for f in frames],
            "actions": context_actions,
            "states": states,
            "instruction": request.instruction
            if profile.instruction_supported and request.instruction
            else None,
        },
        "actions": future,
    }


@dataclass
class Sample:
    """A validated API sample with its images decoded."""

    sample_id: str
    seed: int
    frames: np.ndarray  # (F, H, W, 3)
    context_actions: np.ndarray  # (F - 1, D)
    states: np.ndarray | None  # (F, S)
    instruction: str | None
    actions: np.ndarray  # (P, D)


def sample_to_request(sample: Sample, profile: Profile) -> GenerationRequest:
    """The generation request a served adapter receives for one sample (module docstring)."""
    ids = parse_sample_id(sample.sample_id) or (
        "api",
        sample.sample_id.replace("/", "_")[:64] or "sample",
        "1",
    )
    count = len(sample.frames)
    request = GenerationRequest(
        task=ids[0],
        episode=ids[1],
        trial=ids[2],
        seed=sample.seed,
        num_frames=len(sample.actions) + 1,
        height=profile.height,
        width=profile.width,
        views=(HEAD_VIEW,),
        start_frame=count - 1,
        instruction=sample.instruction or "",
        memory_frames={HEAD_VIEW: sample.frames},
        memory_indices=list(range(count)),
    )
    if profile.action_dim > 0:
        moves = np.concatenate([sample.context_actions.reshape(-1, profile.action_dim), sample.actions])
        if sample.states is not None and profile.state_dim == profile.action_dim:
            first = sample.states[:1]
        else:
            first = moves[:1]
        request.actions = np.concatenate([first, moves])
    return request
