"""``openpi``: a client for openpi-style websocket policy servers (how GE-Act is served).

The wire protocol: one websocket connection; the server first sends its metadata; then each
request is one binary message and each reply one binary message, both msgpack with numpy arrays
encoded as ``{"__ndarray__": True, "data": bytes, "dtype": str, "shape": list}`` (openpi's
``msgpack_numpy``). A reply that is a text string is the server's error report.

Request keys (GE-Act's server): ``obs`` (views, H, W, 3) uint8 in ``views`` order, ``state``
float32 in the server's action space, ``prompt`` (the instruction; prefixed with ``<reset>`` on an
episode's first request, which clears the server's memory), ``execution_step`` (the index of the
observed frame). The reply's ``actions`` are (K, D) in the server's action space, named by the
``action_space`` option: ``eef14-euler`` (the sidecar's layout, as is) or ``eef16-quat`` (per arm
xyz, quaternion x y z w, gripper in ``0 .. gripper_max``), converted both ways here. A reply of
another width fails the episode with the reason; the layouts are never guessed.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ewmbench.errors import ConfigError, require
from ewmbench.loop.policies import Observation, Policy, PolicyError

RESET_PREFIX = "<reset>"


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
    description = "openpi-style websocket policy server"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        timeout: float = 60.0,
        views: str = "head,hand_left,hand_right",
        action_key: str = "actions",
        action_space: str = "eef14-euler",
        gripper_max: float = 1.0,
        **options,
    ):
        if options:
            raise ConfigError(
                f"unknown openpi policy option(s) {sorted(options)}; known: host, port, timeout, views, action_key, action_space, gripper_max"
            )
        if action_space not in ("eef14-euler", "eef16-quat"):
            raise ConfigError(f"openpi action_space must be eef14-euler or eef16-quat, got {action_space!r}")
        self.action_space = action_space
        try:
            self.gripper_max = float(gripper_max)
        except (TypeError, ValueError):
            raise ConfigError(f"openpi gripper_max must be a number, got {gripper_max!r}") from None
        if not self.gripper_max > 0:
            raise ConfigError(f"openpi gripper_max must be positive, got {gripper_max!r}")
        try:
            self.port = int(port)
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            raise ConfigError(
                f"openpi port must be an integer and timeout a number, got {port!r}, {timeout!r}"
            ) from None
        if not 0 < self.port < 65536 or self.timeout <= 0:
            raise ConfigError(f"openpi port must be 1-65535 and timeout positive, got {port!r}, {timeout!r}")
        self.host = str(host)
        self.views = tuple(v.strip() for v in str(views).split(",") if v.strip())
        self.action_key = str(action_key)
        self.metadata: dict | None = None
        self._socket = None
        self._instruction = ""
        self._first = True

    def config(self) -> dict:
        return {
            "host": self.host,
            "port": self.port,
            "timeout": self.timeout,
            "views": list(self.views),
            "action_space": self.action_space,
            "gripper_max": self.gripper_max,
            "server_metadata": self.metadata,
        }

    def _connect(self):
        require("msgpack", "loop", "the openpi policy")
        connect = require("websockets.sync.client", "loop", "the openpi policy").connect
        url = f"ws://{self.host}:{self.port}"
        try:
            self._stack = contextlib.ExitStack()
            self._socket = self._stack.enter_context(
                connect(url, open_timeout=self.timeout, close_timeout=1.0, max_size=None, compression=None)
            )
            self.metadata = unpack(self._socket.recv(timeout=self.timeout))
        except TimeoutError:
            self.close()
            raise PolicyError(f"openpi server at {url} sent no metadata within {self.timeout} s") from None
        except (OSError, Exception) as exc:  # refused, reset, handshake errors
            self.close()
            raise PolicyError(
                f"cannot connect to the openpi server at {url}: {type(exc).__name__}: {exc}"
            ) from None

    def reset(self, instruction: str, observation: Observation) -> None:
        self._instruction = instruction
        self._first = True
        if self._socket is None:
            self._connect()

    def act(self, observation: Observation) -> np.ndarray:
        from websockets.exceptions import ConnectionClosed

        if self._socket is None:
            self._connect()
        missing = [v for v in self.views if v not in observation.frames]
        if missing:
            raise PolicyError(
                f"the openpi policy sends views {list(self.views)}; the rollout renders {sorted(observation.frames)} (set the policy's views option or --views)"
            )
        prompt = (RESET_PREFIX + self._instruction) if self._first else self._instruction
        request = {
            "obs": np.stack([observation.frames[v] for v in self.views]).astype(np.uint8),
            "state": self._to_server(np.asarray(observation.state, dtype=np.float64)).astype(np.float32),
            "prompt": prompt,
            "execution_step": int(observation.step),
        }
        try:
            self._socket.send(pack(request))
            reply = self._socket.recv(timeout=self.timeout)
        except TimeoutError:
            self.close()
            raise PolicyError(f"openpi server did not answer within {self.timeout} s") from None
        except ConnectionClosed as exc:
            self.close()
            raise PolicyError(f"openpi server closed the connection ({exc})") from None
        self._first = False
        if isinstance(reply, str):
            raise PolicyError(f"openpi server reported an error: {reply[:500]}")
        try:
            answer = unpack(reply)
        except Exception as exc:
            raise PolicyError(
                f"openpi server sent an unreadable reply ({type(exc).__name__}: {exc})"
            ) from None
        if not isinstance(answer, dict) or self.action_key not in answer:
            raise PolicyError(
                f"openpi reply has no {self.action_key!r} (keys: {sorted(answer) if isinstance(answer, dict) else type(answer).__name__})"
            )
        return self._from_server(answer[self.action_key])

    def _to_server(self, state: np.ndarray) -> np.ndarray:
        if self.action_space == "eef14-euler":
            return state
        from ewmbench.models.conditioning import euler14_to_quat16

        return euler14_to_quat16(state[None], (0.0, self.gripper_max))[0]

    def _from_server(self, actions) -> np.ndarray:
        if self.action_space == "eef14-euler":
            return np.asarray(actions)
        from ewmbench.models.conditioning import quat16_to_euler14

        try:
            chunk = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"openpi reply's actions are not numbers ({exc})") from None
        if chunk.ndim != 2 or chunk.shape[1] != 16:
            raise PolicyError(
                f"openpi reply's actions have shape {chunk.shape}; action_space eef16-quat expects (K, 16)"
            )
        if not np.isfinite(chunk).all():
            raise PolicyError("openpi reply holds non-finite actions (NaN or inf)")
        return quat16_to_euler14(chunk, (0.0, self.gripper_max))

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._stack.close()
            except Exception:  # the server may already be gone; nothing more to release
                pass
            self._socket = None
