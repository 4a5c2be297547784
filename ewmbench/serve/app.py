"""``ewmbench serve``: any registered adapter as a WorldArena 2.0 Track 2 world-model service (API 1.0).

The request path, in order: the request headers within the header timeout (else 408, from the
connection itself); authentication (bearer token; none on loopback without a token): a missing or
invalid token is answered 401 before the body is parsed, the body drained rather than left to
reset the connection; the body read with its byte limit (413 before anything is decoded) and its
time limit (408: a slow client frees its place), at most ``BODY_READERS`` bodies at once; JSON
with a value-count limit checked before parsing and a depth limit; the concurrency gate (429
OVERLOADED with Retry-After past ``max_concurrency``: only requests whose bodies are whole take a
compute slot); then the whole request validated (versions, profile, ids, every sample, every
image) before any sample runs; the idempotency store; then each sample generated on its own (its
pixels never depend on the batch). Every error answers ``{"error": {code, message, request_id,
retryable}}``; messages never carry paths, host names or tracebacks, and log lines never carry
tokens, payloads or raw control characters. The budgets are in ``ewmbench.data.budgets``.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ewmbench.data import budgets
from ewmbench.data.datasets import resolve_dataset
from ewmbench.data.layout import HEAD_VIEW, GroundTruth
from ewmbench.data.video import video_size
from ewmbench.errors import ConfigError, EwmbenchError, require
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import ACTION_SPACES
from ewmbench.models.invoke import (
    FRAME_0_FIELD,
    ResultError,
    call_model,
    conform_result,
    load_model,
    open_model,
)
from ewmbench.models.wire import (
    API_VERSION,
    MAX_SEED,
    ApiError,
    Limits,
    Profile,
    Sample,
    decode_image,
    encode_image,
    invalid,
    parse_sample_id,
    sample_to_request,
)
from ewmbench.text import for_terminal

log = logging.getLogger("ewmbench.serve")
TOKEN_ENV = "EWMBENCH_SERVE_TOKEN"
PROFILE_ID = "default"
MIN_PUBLIC_TOKEN_CHARS = 16
MAX_JSON_DEPTH = int(budgets.JSON_DEPTH.default)
MAX_ID_CHARS = 256
MAX_INSTRUCTION_CHARS = 4096
MAX_IMAGE_SIDE = 4096
_PATHLIKE = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][\w.\-~]+){2,}[/\\]?")


def scrub(message: str) -> str:
    """A message safe to send: file paths replaced, length capped."""
    return _PATHLIKE.sub("<path>", message)[:500]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: Path | None = None) -> str | None:
    """The bearer token: from ``token_file`` when given, else the EWMBENCH_SERVE_TOKEN variable."""
    import os

    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {token_file} ({exc.strerror})") from None
        if not token:
            raise ConfigError(f"token file {token_file} is empty")
        return token
    token = os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise ConfigError(f"{TOKEN_ENV} holds only white space; set a token or unset it")
    return token.strip() if token else None


# ---------------------------------------------------------------------------- the idempotency store


class AnswerStore:
    """Answers by request_id, bounded by count, total bytes and age (oldest dropped first)."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 256 * 2**20, max_age_s: float = 3600.0):
        self.max_entries, self.max_bytes, self.max_age_s = max_entries, max_bytes, max_age_s
        self._items: OrderedDict[str, tuple[str, bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, request_id: str) -> tuple[str, bytes] | None:
        with self._lock:
            self._expire(time.monotonic())
            item = self._items.get(request_id)
            return (item[0], item[1]) if item else None

    def put(self, request_id: str, digest: str, body: bytes) -> None:
        with self._lock:
            if request_id in self._items:
                self._bytes -= len(self._items.pop(request_id)[1])
            self._items[request_id] = (digest, body, time.monotonic())
            self._bytes += len(body)
            self._expire(time.monotonic())

    def _expire(self, now: float) -> None:
        while self._items:
            oldest_id, (_, body, stamp) = next(iter(self._items.items()))
            if (
                len(self._items) > self.max_entries
                or self._bytes > self.max_bytes
                or now - stamp > self.max_age_s
            ):
                self._items.pop(oldest_id)
                self._bytes -= len(body)
            else:
                break

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes


# ---------------------------------------------------------------------------- the service


@dataclass
class ServeConfig:
    model: str
    model_options: dict = field(default_factory=dict)
    dataset: str | None = None  # a ground-truth dataset for oracles (sim, ground-truth), found by sample_id
    size: tuple[int, int] | None = (
        None  # (height, width) of the profile; default: the dataset's, the model's, or 480x640
    )
    limits: Limits = field(default_factory=Limits)
    max_prediction_frames: int = 256
    device: str | None = None
    token: str | None = None
    profile_id: str = PROFILE_ID
    model_version: str | None = None  # default: the adapter's name and a hash of its configuration
    # the profile's actions, for a model that ignores them (an action-conditioned adapter fixes its own)
    action_dim: int | None = None
    action_representation: str | None = None
    oracle_reads_sample_id: bool = False  # an oracle finds its episode from the sample id: said explicitly
    max_response_bytes: int = int(budgets.RESPONSE_BYTES.default)
    header_timeout_s: float = float(budgets.HEADER_SECONDS.default)
    body_timeout_s: float = float(budgets.BODY_SECONDS.default)


class Service:
    """The model behind the API: loads in the background, validates and answers predictions."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.model: WorldModel = open_model(config.model, config.model_options)  # nothing loads yet
        self.gt = None
        if config.dataset is not None:
            self.gt = GroundTruth(resolve_dataset(config.dataset))
        elif self.model.oracle:
            raise ConfigError(
                f"model {config.model!r} reads the ground-truth episode; give the dataset it serves: --model-option dataset=NAME_OR_DIR"
            )
        if self.model.oracle and not config.oracle_reads_sample_id:
            raise ConfigError(
                f"model {config.model!r} is an oracle: it finds its ground-truth episode from each sample_id, which the "
                "Track 2 API forbids (sample ids are opaque); pass --oracle-reads-sample-id to serve it for local tests only"
            )
        caps = self.model.capabilities_now()
        # The API carries one image stream (the head view), actions, states and an instruction.
        unsupported = sorted(
            caps.conditioning & {"calibration"}
            | ({"scene"} & caps.conditioning if not self.model.oracle else set())
        )
        other_views = [v for v in caps.required_views if v != HEAD_VIEW]
        if unsupported or other_views:
            what = ", ".join([*unsupported, *(f"view {v!r}" for v in other_views)])
            raise ConfigError(
                f"model {config.model!r} needs {what}, which the Track 2 API does not carry (one head view, actions, states, instruction)"
            )
        if config.size is not None:
            height, width = config.size
        elif self.gt is not None and self.gt.episodes:
            _, height, width = video_size(self.gt.episodes[0].video_path())
        elif caps.native_size is not None:
            height, width = caps.native_size
        else:
            height, width = 480, 640
        if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
            raise ConfigError(f"profile size {height}x{width} is outside 1..{MAX_IMAGE_SIDE}")
        action_dim, representation, actions = self._action_space(config, caps)
        prediction_max = min(config.max_prediction_frames, self._predictions_within_budget(height, width))
        if prediction_max < 1:
            raise ConfigError(
                f"one {height}x{width} frame for each of {config.limits.max_batch_size} samples does not fit the "
                f"{config.max_response_bytes}-byte response budget; raise --max-response-mb or lower --max-batch-size"
            )
        if not isinstance(config.profile_id, str) or not 1 <= len(config.profile_id) <= MAX_ID_CHARS:
            raise ConfigError(f"--profile-id must be 1 to {MAX_ID_CHARS} characters")
        self.profile = Profile(
            profile_id=config.profile_id,
            height=height,
            width=width,
            context_min=1,
            context_max=max(1, caps.memory_frames),
            prediction_min=1,
            prediction_max=prediction_max,
            action_dim=action_dim,
            action_representation=representation,
            state_supported=actions,
            state_dim=action_dim if actions else 0,
            instruction_supported="text" in caps.conditioning,
        )
        if config.model_version is not None:
            if not re.fullmatch(r"[\x21-\x7e]{1,128}", config.model_version):
                raise ConfigError("--model-version must be 1 to 128 printable characters without spaces")
            self.model_version = config.model_version
        else:
            cfg = json.dumps(self.model.config(), sort_keys=True, default=str)
            self.model_version = f"{self.model.name}-{hashlib.sha256(cfg.encode()).hexdigest()[:12]}"
        self.store = AnswerStore(max_bytes=config.max_response_bytes)  # answers kept for retries
        self._pending: dict[str, tuple[str, threading.Event]] = {}
        self._pending_lock = threading.Lock()
        self.status = "starting"
        self._model_lock = threading.Lock()
        self._gate = threading.Lock()
        self._in_flight = 0

    def _action_space(self, config: ServeConfig, caps) -> tuple[int, str, bool]:
        """(dimension, representation, conditioned): an action-conditioned adapter's own action
        space; a model that ignores actions accepts rows of the declared dimension (the option, the
        served dataset's actions, else EWMBench's 14-D end-effector poses) and never advertises 0."""

        if "actions" in caps.conditioning:
            space = caps.action_space or "eef14-euler"
            dim = ACTION_SPACES[space][0] if space in ACTION_SPACES else 14
            if config.action_dim is not None and config.action_dim != dim:
                raise ConfigError(
                    f"--action-dim {config.action_dim}: model {config.model!r} takes {dim}-D actions ({space})"
                )
            text = config.action_representation or (
                f"{space}: [L xyz, L rpy, L gripper, R xyz, R rpy, R gripper], absolute target pose per frame"
                if space == "eef14-euler"
                else space
            )
            return dim, text, True
        dim = config.action_dim
        if dim is None and self.gt is not None and self.gt.episodes:
            sidecar = self.gt.episodes[0].sidecar
            actions = None if sidecar is None else sidecar.actions
            dim = int(actions.shape[1]) if actions is not None and actions.ndim == 2 else None
        dim = 14 if dim is None else dim
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 4096:
            raise ConfigError(f"--action-dim must be an integer from 1 to 4096, got {dim!r}")
        text = config.action_representation or (
            "eef14-euler: [L xyz, L rpy, L gripper, R xyz, R rpy, R gripper], absolute target pose per frame "
            "(accepted and ignored: this model is not conditioned on actions)"
            if dim == 14
            else f"{dim}-D rows (accepted and ignored: this model is not conditioned on actions)"
        )
        return dim, text, False

    def _predictions_within_budget(self, height: int, width: int) -> int:
        """Most predicted frames per sample whose response, at the largest batch, fits the response
        budget even when no frame compresses (base64 of a stored PNG: 4/3 of its raw rows)."""
        frame = 4 * (height * (3 * width + 1) + 1024) // 3 + 200
        # one frame more per sample: the model's own frame 0 (FRAME_0_FIELD) travels with them
        return self.config.max_response_bytes // (self.config.limits.max_batch_size * frame) - 1

    # -- lifecycle
    def load(self) -> None:
        try:
            device = self.config.device
            if device is None and not (self.model.needs_gpu or self.model.needs_weights):
                device = "cpu"  # a weight-free model: no reason to import torch to look for a GPU
            device = load_model(self.model, device)
            self.status = "ready"
            log.info("model %s loaded (%s), version %s", self.model.name, device, self.model_version)
        except Exception as exc:  # the service stays up and says so; the reason goes to the operator's log
            self.status = "degraded"
            log.error("model %s failed to load: %s", self.model.name, for_terminal(scrub(str(exc))))

    def health(self) -> dict:
        return {"status": self.status, "api_version": API_VERSION, "model_version": self.model_version}

    def capabilities(self) -> dict:
        return {
            "api_version": API_VERSION,
            "model_version": self.model_version,
            "profiles": [self.profile.to_json()],
            "limits": self.config.limits.to_json(),
            "determinism": {"seed_supported": True, "same_seed_same_pixels": True},
        }

    # -- the concurrency gate
    def enter(self) -> bool:
        with self._gate:
            if self._in_flight >= self.config.limits.max_concurrency:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._gate:
            self._in_flight -= 1

    # -- predict
    def predict(self, payload) -> bytes:
        """The response body for a decoded request; ApiError for every refusal."""
        if self.status != "ready":
            raise ApiError("NOT_READY", f"the model is {self.status}")
        request_id = validate_head(payload, self.model_version, self.profile.profile_id)
        samples = self.validate_samples(payload["samples"])
        digest = hashlib.sha256(
            json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        # One computation per request_id: a retry of a request still running waits for its answer.
        with self._pending_lock:
            stored = self.store.get(request_id)
            running = self._pending.get(request_id)
            if stored is None and running is None:
                done = threading.Event()
                self._pending[request_id] = (digest, done)
        for known, _ in [x for x in (stored, running) if x is not None]:
            if known != digest:
                raise ApiError("REQUEST_ID_CONFLICT", "request_id was already used with a different payload")
        if stored is not None:
            return stored[1]
        if running is not None:
            running[1].wait(self.config.limits.recommended_timeout_ms / 1000)
            again = self.store.get(request_id)
            if again is None:
                raise ApiError(
                    "DEADLINE_EXCEEDED",
                    "the first request with this request_id has not finished; retry later",
                )
            return again[1]
        try:
            predictions = []
            for sample in samples:
                frames = self.run_sample(sample)
                predictions.append(
                    {
                        "sample_id": sample.sample_id,
                        "frames": [encode_image(f) for f in frames[1:]],
                        FRAME_0_FIELD: encode_image(frames[0]),  # optional: Track 2 clients ignore it
                    }
                )
            body = json.dumps(
                {
                    "api_version": API_VERSION,
                    "request_id": request_id,
                    "model_version": self.model_version,
                    "predictions": predictions,
                }
            ).encode()
            self.store.put(request_id, digest, body)
        finally:
            with self._pending_lock:
                self._pending.pop(request_id, None)
            done.set()
        return body

    def validate_samples(self, samples) -> list[Sample]:
        limit = self.config.limits.max_batch_size
        if not isinstance(samples, list) or not 1 <= len(samples) <= limit:
            raise invalid(f"samples must be a list of 1 to {limit} samples")
        parsed, seen = [], set()
        for index, sample in enumerate(samples):
            item = parse_sample(
                sample, f"samples[{index}]", self.profile, self.config.limits.max_request_bytes
            )
            if item.sample_id in seen:
                raise invalid(f"samples[{index}].sample_id {item.sample_id!r} repeats an earlier sample")
            seen.add(item.sample_id)
            if self.gt is not None:
                self.episode_of(item.sample_id, f"samples[{index}]")
            try:
                sample_to_request(item, self.profile).validate()  # what the adapter will receive
            except EwmbenchError as exc:
                raise invalid(f"samples[{index}]: {scrub(str(exc))}") from None
            parsed.append(item)
        return parsed

    def episode_of(self, sample_id: str, where: str):
        ids = parse_sample_id(sample_id)
        if ids is None:
            raise invalid(
                f"{where}.sample_id {sample_id!r} is not <task>/<episode>/<trial>, which this served dataset needs"
            )
        for episode in self.gt.episodes:
            if episode.key == ids[:2]:
                return episode
        raise invalid(f"{where}.sample_id {sample_id!r}: no episode {ids[0]}/{ids[1]} in the served dataset")

    def run_sample(self, sample: Sample) -> np.ndarray:
        """The sample's frames at the profile size: the model's own frame 0 (sent as the optional
        ``FRAME_0_FIELD``, :mod:`ewmbench.models.invoke`) and the predicted frames after it."""
        request = sample_to_request(sample, self.profile)
        episodes = None
        if self.model.oracle:
            episode = self.episode_of(sample.sample_id, "sample")
            sidecar = episode.sidecar
            request.fps = sidecar.fps if sidecar else None
            if sidecar is not None and "scene" in sidecar.meta:
                request.scene = {k: sidecar.meta[k] for k in ("scene", "subject") if k in sidecar.meta}
            episodes = [episode]
        with self._model_lock:  # adapters are not written for concurrent calls
            try:
                (result,) = call_model(self.model, [request], episodes)
            except ApiError:
                raise
            except ResultError as exc:
                log.error("model %s: %s", self.model.name, for_terminal(scrub(str(exc))))
                raise ApiError("INTERNAL", "the model returned frames of the wrong shape or type") from None
            except EwmbenchError as exc:
                raise invalid(
                    f"the model refused sample {sample.sample_id!r}: {scrub(getattr(exc, 'problem', None) or str(exc))}"
                ) from None
        size = (self.profile.height, self.profile.width)
        frames, _, _ = conform_result(request, result, {HEAD_VIEW: size}, result.info.get("fps"), request.fps)
        return frames[HEAD_VIEW]


def validate_head(payload, model_version: str, profile_id: str) -> str:
    """The request_id of a request whose top level is valid; ApiError otherwise."""
    if not isinstance(payload, dict):
        raise invalid("the request must be a JSON object")
    for key in ("api_version", "request_id", "model_version", "profile_id", "samples"):
        if key not in payload:
            raise invalid(f"missing field {key!r}")
    if payload["api_version"] != API_VERSION:
        raise ApiError(
            "UNSUPPORTED_VERSION",
            f"api_version {str(payload['api_version'])[:20]!r} is not supported; this service speaks {API_VERSION!r}",
        )
    request_id = payload["request_id"]
    if not isinstance(request_id, str) or len(request_id) > 64:
        raise invalid("request_id must be a UUID string")
    try:
        uuid.UUID(request_id)
    except ValueError:
        raise invalid("request_id must be a UUID string") from None
    if payload["model_version"] != model_version:
        raise ApiError(
            "UNSUPPORTED_VERSION",
            f"model_version {str(payload['model_version'])[:80]!r} is not served; this service serves {model_version!r}",
        )
    if payload["profile_id"] != profile_id:
        raise ApiError(
            "UNSUPPORTED_VERSION",
            f"profile_id {str(payload['profile_id'])[:80]!r} is not served; profiles: [{profile_id!r}]",
        )
    return request_id


def parse_sample(sample, where: str, profile: Profile, max_png_bytes: int) -> Sample:
    if not isinstance(sample, dict):
        raise invalid(f"{where} must be an object")
    for key in ("sample_id", "seed", "context", "actions"):
        if key not in sample:
            raise invalid(f"{where}: missing field {key!r}")
    sample_id = sample["sample_id"]
    if not isinstance(sample_id, str) or not 1 <= len(sample_id) <= MAX_ID_CHARS:
        raise invalid(f"{where}.sample_id must be a string of 1 to {MAX_ID_CHARS} characters")
    seed = sample["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise invalid(f"{where}.seed must be an integer from 0 to 2^63-1")
    context = sample["context"]
    if not isinstance(context, dict):
        raise invalid(f"{where}.context must be an object")
    for key in ("frames", "actions"):
        if key not in context:
            raise invalid(f"{where}.context: missing field {key!r}")
    frames = context["frames"]
    if not isinstance(frames, list) or not profile.context_min <= len(frames) <= profile.context_max:
        raise invalid(
            f"{where}.context.frames must be a list of {profile.context_min} to {profile.context_max} images"
        )
    decoded = np.stack(
        [
            decode_image(f, profile.height, profile.width, f"{where}.context.frames[{i}]", max_png_bytes)
            for i, f in enumerate(frames)
        ]
    )
    context_actions = _rows(
        context["actions"], len(frames) - 1, profile.action_dim, f"{where}.context.actions"
    )
    future = sample["actions"]
    if not isinstance(future, list) or not profile.prediction_min <= len(future) <= profile.prediction_max:
        raise invalid(
            f"{where}.actions must be a list of {profile.prediction_min} to {profile.prediction_max} actions (one per predicted frame)"
        )
    actions = _rows(future, len(future), profile.action_dim, f"{where}.actions")
    states = context.get("states")
    if states is not None and profile.state_supported:
        states = _rows(states, len(frames), profile.state_dim, f"{where}.context.states")
    else:
        states = None  # not used by this profile: ignored
    instruction = context.get("instruction")
    if instruction is not None and (
        not isinstance(instruction, str) or len(instruction) > MAX_INSTRUCTION_CHARS
    ):
        raise invalid(
            f"{where}.context.instruction must be null or a string of at most {MAX_INSTRUCTION_CHARS} characters"
        )
    return Sample(
        sample_id,
        seed,
        decoded,
        context_actions,
        states,
        instruction if profile.instruction_supported else None,
        actions,
    )


def _rows(value, count: int, dim: int, where: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != count:
        raise invalid(f"{where} must be a list of {count} rows")
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != dim:
            raise invalid(f"{where}[{i}] must be a list of {dim} numbers")
        for x in row:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise invalid(f"{where}[{i}] must hold finite numbers")
    return np.asarray(value, dtype=np.float64).reshape(count, dim)


def json_depth_ok(value, limit: int = MAX_JSON_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


# ---------------------------------------------------------------------------- the ASGI application


class BodyTimeout(Exception):
    """The client did not send its whole body within the body timeout."""


def create_app(service: Service, load_in_background: bool = True):
    """The FastAPI application over ``service``; the model loads when the server starts."""
    import asyncio
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @asynccontextmanager
    async def lifespan(app):
        if service.status == "starting":
            if load_in_background:
                threading.Thread(target=service.load, name="ewmbench-load", daemon=True).start()
            else:
                service.load()
        yield
        log.info("shutting down")

    app = FastAPI(
        title="ewmbench world-model service",
        version=API_VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    token = service.config.token
    limits = service.config.limits

    def error(exc: ApiError, request_id: str | None = None, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(exc.body(request_id), status_code=exc.status, headers=headers)

    def check_auth(request: Request) -> None:
        """401 for a missing or invalid token. This service has one token, which may do
        everything, so it never answers 403 (kept for a valid token without a permission)."""
        if token is None:
            return
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise ApiError("UNAUTHENTICATED", "missing bearer token (Authorization: Bearer <token>)")
        if not hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            raise ApiError("UNAUTHENTICATED", "the token is not valid for this service")

    readers = {"count": 0}
    max_readers = int(budgets.BODY_READERS.value())
    body_timeout = service.config.body_timeout_s
    min_rate = float(budgets.BODY_RATE.value())

    def body_deadline(start: float, size: int) -> float:
        # the grace period, then at least min_rate: a drip is cut, a large body on a slow link is not
        return start + body_timeout + size / min_rate

    async def read_body(request: Request) -> bytes:
        """The whole body within the byte and time limits (413, 408)."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limits.max_request_bytes):
            raise ApiError("PAYLOAD_TOO_LARGE", f"the body exceeds {limits.max_request_bytes} bytes")
        chunks, size = [], 0
        start = time.monotonic()
        stream = request.stream().__aiter__()
        while True:
            left = body_deadline(start, size) - time.monotonic()
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), max(left, 0.001))
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise BodyTimeout() from None
            size += len(chunk)
            if size > limits.max_request_bytes:
                raise ApiError("PAYLOAD_TOO_LARGE", f"the body exceeds {limits.max_request_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def drain(request: Request) -> bool:
        """Read and drop the body of a request answered without it, so that closing the
        connection does not reset it before the client has read the answer; False when the
        body is too large or too slow to drain (the answer then closes the connection)."""
        if request.headers.get("expect", "").lower() == "100-continue":
            return False  # the client waits for our answer before it sends the body
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limits.max_request_bytes):
            return False
        size, start = 0, time.monotonic()
        stream = request.stream().__aiter__()
        try:
            while True:
                left = body_deadline(start, size) - time.monotonic()
                chunk = await asyncio.wait_for(stream.__anext__(), max(left, 0.001))
                size += len(chunk)
                if size > limits.max_request_bytes:
                    return False
        except StopAsyncIteration:
            return True
        except (TimeoutError, Exception):  # noqa: BLE001  (a client gone mid-body: nothing to drain)
            return False

    def too_many_values(body: bytes) -> bool:
        # Objects, lists and the values they separate, counted in C before Python builds them.
        count = body.count(b",") + body.count(b"[") + body.count(b"{")
        return count > budgets.JSON_VALUES.value()

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception as exc:  # noqa: BLE001  (never a traceback to the client or the log)
            log.error(
                "%s %s failed: %s",
                for_terminal(request.method[:16]),
                for_terminal(request.url.path[:64]),
                type(exc).__name__,
            )
            response = error(ApiError("INTERNAL", "internal error"))
        log.info(
            "%s %s %d %.1f ms",
            for_terminal(request.method[:16]),
            for_terminal(request.url.path[:64]),
            response.status_code,
            1000 * (time.perf_counter() - start),
        )
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "NOT_FOUND", 413: "PAYLOAD_TOO_LARGE"}.get(exc.status_code, "INVALID_ARGUMENT")
        message = (
            "no such endpoint"
            if exc.status_code == 404
            else "method not allowed"
            if exc.status_code == 405
            else "bad request"
        )
        return JSONResponse(
            {"error": {"code": code, "message": message, "request_id": None, "retryable": False}},
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error(invalid("malformed request"))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.error(
            "%s %s failed: %s",
            for_terminal(request.method[:16]),
            for_terminal(request.url.path[:64]),
            type(exc).__name__,
        )
        return error(ApiError("INTERNAL", "internal error"))

    @app.get("/v1/health")
    async def health():
        return service.health()

    @app.get("/v1/capabilities")
    async def capabilities(request: Request):
        check_auth(request)
        return service.capabilities()

    @app.post("/v1/predict")
    async def predict(request: Request):
        try:
            check_auth(request)  # from the headers alone, before the body is parsed
        except ApiError as exc:
            whole = await drain(request)
            return error(exc, headers=None if whole else {"Connection": "close"})
        if readers["count"] >= max_readers:
            return error(
                ApiError("OVERLOADED", f"more than {max_readers} request bodies being received; retry later"),
                headers={"Retry-After": "1", "Connection": "close"},
            )
        request_id, entered, held = None, False, False
        readers["count"] += 1
        try:
            try:
                raw = await read_body(request)
            finally:
                readers["count"] -= 1
            if too_many_values(raw):
                raise invalid(
                    f"the body holds more than {budgets.JSON_VALUES.value()} JSON values, the request budget"
                )
            try:
                payload = json.loads(raw)
            except (ValueError, RecursionError):
                raise invalid("the body is not valid JSON") from None
            del raw
            if not json_depth_ok(payload):
                raise invalid(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(payload, dict) and isinstance(payload.get("request_id"), str):
                request_id = payload["request_id"][:64]
            if not service.enter():
                return error(
                    ApiError(
                        "OVERLOADED", f"more than {limits.max_concurrency} requests in flight; retry later"
                    ),
                    request_id,
                    headers={"Retry-After": "1"},
                )
            entered = True
            work = asyncio.ensure_future(run_in_threadpool(service.predict, payload))
            try:
                body = await asyncio.wait_for(asyncio.shield(work), limits.recommended_timeout_ms / 1000)
            except TimeoutError:
                # A running generation cannot be interrupted: it keeps its slot until it ends, and
                # its answer is stored, so a retry with the same request_id gets it.
                held = True
                work.add_done_callback(lambda _: service.leave())
                raise ApiError(
                    "DEADLINE_EXCEEDED",
                    f"no answer within {limits.recommended_timeout_ms} ms; retry with the same request_id",
                ) from None
            return Response(body, media_type="application/json")
        except BodyTimeout:
            return error(
                ApiError(
                    "REQUEST_TIMEOUT",
                    f"the body did not arrive within {body_timeout:g} s and then at {min_rate / 1024:g} KiB/s",
                ),
                headers={"Connection": "close"},
            )
        except ApiError as exc:
            closing = {"Connection": "close"} if exc.code == "PAYLOAD_TOO_LARGE" else None
            return error(exc, request_id, headers=closing)
        except Exception as exc:  # noqa: BLE001  (the type goes to the log; nothing else leaves)
            log.error("POST /v1/predict failed: %s", type(exc).__name__)
            return error(ApiError("INTERNAL", "internal error"), request_id)
        finally:
            if entered and not held:
                service.leave()

    return app


# ---------------------------------------------------------------------------- running it


def uvicorn_config(
    app,
    host: str,
    port: int,
    log_level: str = "info",
    header_timeout_s: float = float(budgets.HEADER_SECONDS.default),
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
):
    uvicorn = _uvicorn()
    # The access log names client addresses; our own middleware logs method, path, status, time.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
        date_header=True,
        http=header_timeout_protocol(header_timeout_s),
        limit_concurrency=int(budgets.CONNECTIONS.value()),
        h11_max_incomplete_event_size=64 * 1024,  # request line and headers
        ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
        ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile),
    )


def header_timeout_protocol(timeout_s: float):
    """uvicorn's HTTP/1.1 protocol with a header timeout: a connection that has not sent a whole
    request line and headers within ``timeout_s`` of opening (or of its previous answer) is
    answered 408 and closed, so slow clients cannot hold connections open."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    body = json.dumps(
        ApiError("REQUEST_TIMEOUT", f"the request headers did not arrive within {timeout_s:g} s").body(None)
    ).encode()
    answer = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(timeout_s, self._header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # the headers are in: the body has its own timeout

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            self.transport.write(answer)
            self.transport.close()

    return HeaderTimeoutProtocol


def _uvicorn():
    require("fastapi", "serve", "ewmbench serve")
    return require("uvicorn", "serve", "ewmbench serve")


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Run the service until interrupted (Ctrl-C or SIGTERM stop it gracefully)."""
    if not is_loopback(host):
        if config.token is None or not config.token.strip():
            raise ConfigError(
                f"refusing to listen on {host} without a token: set {TOKEN_ENV} or pass --token-file (no token is allowed on loopback only)"
            )
        if len(config.token.strip()) < MIN_PUBLIC_TOKEN_CHARS:
            raise ConfigError(
                f"refusing to listen on {host} with a token of fewer than {MIN_PUBLIC_TOKEN_CHARS} characters; "
                "use a long random one (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ConfigError("give both --ssl-certfile and --ssl-keyfile, or neither")
    for option, path in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{option} {path}: no such file")
    _uvicorn()
    service = Service(config)
    server = _uvicorn().Server(
        uvicorn_config(
            create_app(service), host, port, "info", config.header_timeout_s, ssl_certfile, ssl_keyfile
        )
    )
    server.run()


class BackgroundServer:
    """A service on a free 127.0.0.1 port in a thread of this process (tests, benchmarks, checks)."""

    def __init__(self, service: Service, load_in_background: bool = False):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.service = service
        self._server = _uvicorn().Server(
            uvicorn_config(
                create_app(service, load_in_background),
                "127.0.0.1",
                self.port,
                "warning",
                service.config.header_timeout_s,
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="ewmbench-serve", daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
