"""``openpi``: a client for openpi websocket policy servers (openpi's own, GE-Act's, GE-Sim 2.0's pi05).

The wire protocol: one websocket connection; the server first sends its metadata; then each
request is one binary message and each reply one binary message, both msgpack with numpy arrays
encoded as ``{"__ndarray__": True, "data": bytes, "dtype": str, "shape": list}`` (openpi's
``msgpack_numpy``). A reply that is a text string is the server's error report (openpi's server
then closes the connection with code 1011).

What a request holds and how the reply reads is the server's *layout*
(:mod:`ewmbench.loop.openpi_layout`): ``layout=ge-act`` (default ``ge-act-eef14``), another shipped
layout, or a layout file's path.

Recovery: a server error, a closed connection or a call past ``timeout`` fails that episode and
drops the connection; the next call opens a fresh one and waits for its metadata within its own
``timeout`` (openpi's server runs inference inside its event loop, so a fresh connection is
answered once the abandoned call is done). :meth:`OpenPIPolicy.start` connects before the first
episode, so an unreachable server stops the run with its address and the fix.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from ewmbench.errors import ConfigError, Unavailable, require
from ewmbench.loop.openpi_layout import build_request, decode_actions, load_layout, shipped_layouts
from ewmbench.loop.policies import ActionChunk, Observation, Policy, PolicyError

DEFAULT_LAYOUT = "ge-act-eef14"
DEFAULT_PORT = 8000


def _encode(value):
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OVU":
            raise TypeError(f"cannot send arrays of dtype {value.dtype}")
        return {
            b"__ndarray__": True,
            b"data": value.tobytes(),
            b"dtype": value.dtype.str,
            b"shape": list(value.shape),
        }
    if isinstance(value, np.generic):
        return {b"__npgeneric__": True, b"data": value.item(), b"dtype": value.dtype.str}
    return value


def _decode(obj):
    if b"__ndarray__" in obj or "__ndarray__" in obj:
        get = (lambda k: obj[k.encode()]) if b"__ndarray__" in obj else (lambda k: obj[k])
        dtype = np.dtype(get("dtype").decode() if isinstance(get("dtype"), bytes) else get("dtype"))
        if dtype.kind in "OV":
            raise ValueError(f"refusing to decode arrays of dtype {dtype}")
        return np.frombuffer(get("data"), dtype=dtype).reshape(get("shape"))
    if b"__npgeneric__" in obj or "__npgeneric__" in obj:
        get = (lambda k: obj[k.encode()]) if b"__npgeneric__" in obj else (lambda k: obj[k])
        dtype = get("dtype")
        return np.dtype(dtype.decode() if isinstance(dtype, bytes) else dtype).type(get("data"))
    return obj


def pack(value) -> bytes:
    import msgpack

    return msgpack.packb(value, default=_encode, use_bin_type=True)


def unpack(data: bytes):
    import msgpack

    return msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=False)


class OpenPIPolicy(Policy):
    name = "openpi"
    description = "openpi websocket policy server"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        timeout: float = 60.0,
        layout: str = DEFAULT_LAYOUT,
        views: str | None = None,
        fk: str | None = None,
        api_key_env: str = "OPENPI_API_KEY",
        **options,
    ):
        retired = {"action_space", "gripper_max", "action_key"} & set(options)
        if retired:
            raise ConfigError(
                f"openpi option(s) {sorted(retired)} became layouts: use layout=ge-act (16-D quaternion, gripper "
                f"0..120) or layout=ge-act-eef14; shipped layouts: {', '.join(shipped_layouts())}"
            )
        if "api_key" in options:
            raise ConfigError(
                "openpi api_key is read from an environment variable so that it never lands in a run's records: "
                "export OPENPI_API_KEY=KEY (or name another variable with api_key_env=NAME)"
            )
        if options:
            raise ConfigError(
                f"unknown openpi policy option(s) {sorted(options)}; known: host, port, timeout, layout, views, fk, api_key_env"
            )
        try:
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            raise ConfigError(f"openpi timeout must be a number, got {timeout!r}") from None
        if not self.timeout > 0:
            raise ConfigError(f"openpi timeout must be positive, got {timeout!r}")
        self.url = server_url(str(host), port)
        self.layout = load_layout(str(layout))
        self.layout_source = str(layout)
        self.views = self.layout.views
        if views is not None:
            if self.layout.images.stack is None:
                raise ConfigError(
                    f"openpi views applies to stacked layouts; layout {self.layout.name!r} names one key per view "
                    "(copy its .yaml and edit images.keys)"
                )
            self.views = [v.strip() for v in str(views).split(",") if v.strip()]
            if not self.views:
                raise ConfigError("openpi views is empty")
        self.fk_name = fk
        self.fk = load_function(fk, "fk") if fk else None
        if self.layout.uses_joints and self.fk is None:
            raise ConfigError(
                f"openpi layout {self.layout.name!r} speaks joint space; give fk=module:function mapping "
                "(K, J) joint positions to (K, 14) end-effector poses"
            )
        self.api_key_env = str(api_key_env)
        self.metadata: dict | None = None
        self._socket = None
        self._stack: contextlib.ExitStack | None = None
        self._instruction = ""
        self._first = True
        self._joints: np.ndarray | None = None

    def config(self) -> dict:
        return {
            "url": self.url,
            "timeout": self.timeout,
            "layout": self.layout.name,
            "layout_file": self.layout_source if self.layout_source != self.layout.name else None,
            "views": list(self.views),
            "fk": self.fk_name,
            "joint_state": "commanded" if self.layout.uses_joints else None,
            "api_key": "from $" + self.api_key_env if os.environ.get(self.api_key_env) else None,
            "server_metadata": self.metadata,
        }

    def start(self) -> None:
        try:
            self._connect()
        except PolicyError as exc:
            raise Unavailable(
                str(exc),
                "start the policy server, or point the policy at it with host=HOST,port=PORT (or host=ws://HOST:PORT); "
                "a server behind TLS takes host=wss://HOST",
            ) from None

    def _connect(self):
        require("msgpack", "loop", "the openpi policy")
        connect = require("websockets.sync.client", "loop", "the openpi policy").connect
        key = os.environ.get(self.api_key_env)
        headers = {"Authorization": f"Api-Key {key}"} if key else None
        stack = contextlib.ExitStack()
        try:
            self._socket = stack.enter_context(
                connect(
                    self.url,
                    open_timeout=self.timeout,
                    close_timeout=1.0,
                    max_size=None,
                    compression=None,
                    additional_headers=headers,
                )
            )
            self._stack = stack
            self.metadata = unpack(self._socket.recv(timeout=self.timeout))
        except TimeoutError:
            self._stack = stack
            self.close()
            raise PolicyError(
                f"openpi server at {self.url} sent no metadata within {self.timeout} s"
            ) from None
        except Exception as exc:  # refused, reset, handshake errors, unreadable metadata
            self._stack = stack
            self.close()
            raise PolicyError(
                f"cannot connect to the openpi server at {self.url}: {type(exc).__name__}: {exc}"
            ) from None

    def reset(self, instruction: str, observation: Observation) -> None:
        self._instruction = instruction
        self._first = True
        self._joints = (
            None if observation.joints is None else np.asarray(observation.joints, dtype=np.float64)
        )
        if self._socket is None:
            self._connect()

    def commands_joints(self) -> bool:
        return any(p.part == "joints" for p in self.layout.actions.parts)

    def act(self, observation: Observation) -> np.ndarray | ActionChunk:
        """(K, 14) poses; for a layout answering in joint space, with the commanded joints."""
        from websockets.exceptions import ConnectionClosed

        if self._socket is None:
            self._connect()
        prompt = (self.layout.prompt.reset_prefix + self._instruction) if self._first else self._instruction
        state = np.asarray(observation.state, dtype=np.float64)
        request = build_request(
            self.layout, observation.frames, state, self._joints, prompt, observation.step, self.views
        )
        try:
            self._socket.send(pack(request))
            reply = self._socket.recv(timeout=self.timeout)
        except TimeoutError:
            self.close()  # abandoned: a late reply must not answer the next request
            raise PolicyError(f"openpi server at {self.url} did not answer within {self.timeout} s") from None
        except ConnectionClosed as exc:
            self.close()
            raise PolicyError(f"openpi server at {self.url} closed the connection ({exc})") from None
        self._first = False
        if isinstance(reply, str):
            self.close()  # the server closes after its error report (code 1011); the next call reconnects
            raise PolicyError(f"openpi server reported an error: {reply[-1500:]}")
        try:
            answer = unpack(reply)
        except Exception as exc:
            raise PolicyError(
                f"openpi server sent an unreadable reply ({type(exc).__name__}: {exc})"
            ) from None
        key = self.layout.actions.key
        if not isinstance(answer, dict) or key not in answer:
            raise PolicyError(
                f"openpi reply has no {key!r} (keys: {sorted(answer) if isinstance(answer, dict) else type(answer).__name__})"
            )
        chunk, commanded = decode_actions(
            self.layout, answer[key], state, self._joints, observation.fps, self.fk
        )
        if commanded is None:
            return chunk
        self._joints = commanded[-1]
        return ActionChunk(chunk, commanded)

    def close(self) -> None:
        if self._stack is not None:
            try:
                self._stack.close()
            except Exception:  # the server may already be gone; nothing more to release
                pass
        self._stack = None
        self._socket = None


def server_url(host: str, port) -> str:
    """``ws://HOST:PORT`` from a host or a ``ws://``/``wss://`` URL, as openpi's client accepts them.

    A URL keeps its scheme, port and path; ``port`` is added when the URL names none (8000 when
    neither does), and must agree with the URL's when both do.
    """
    from urllib.parse import urlsplit

    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise ConfigError(f"openpi port must be an integer, got {port!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"openpi port must be 1-65535, got {port}")
    text = host.strip()
    if "://" not in text:
        text = "ws://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"openpi host must be a host name or a ws:// or wss:// URL, got {host!r}")
    try:
        named = parts.port
    except ValueError:
        raise ConfigError(f"openpi host {host!r} names an invalid port") from None
    if named is not None and port is not None and named != port:
        raise ConfigError(f"openpi host {host!r} names port {named} and port={port}; give one")
    chosen = named or port or DEFAULT_PORT
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{netloc}:{chosen}{parts.path}"


def load_function(spec: str, option: str):
    """``module:function`` -> the function, or a :class:`ConfigError` naming the option."""
    import importlib

    module, _, name = str(spec).partition(":")
    if not module or not name:
        raise ConfigError(f"openpi {option} must be module:function, got {spec!r}")
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"openpi {option}={spec}: cannot load it ({type(exc).__name__}: {exc})") from None
    if not callable(function):
        raise ConfigError(f"openpi {option}={spec} is not callable")
    return function
