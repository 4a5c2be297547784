"""Stand-in for gesim.client.transport.WorldModelClient: the same methods and HTTP protocol."""

from __future__ import annotations

import json

import numpy as np
import requests

from gesim.client.codecs import BlockReader, decode_frame_jpeg, encode_frame_jpeg, pack_block
from gesim.exceptions import GesimConnectionError, ServerError


class WorldModelClient:
    def __init__(self, server_url: str, *, user_name: str = "gesim", timeout: float = 300.0):
        self.base_url = server_url.rstrip("/")
        self.timeout = float(timeout)
        self.session = requests.Session()
        self.client_id = None
        self.client_id = self._post("/init", json={"user_name": user_name}).json()["client_id"]

    def reset(self) -> None:
        self._post("/reset", json={"client_id": self.client_id})

    def set_task(self, task: str) -> None:
        self._post("/set_task", json={"client_id": self.client_id, "task": task})

    def set_camera_params(self, intrinsic: np.ndarray, extrinsic: np.ndarray | None = None) -> None:
        payload = {"client_id": self.client_id, "intrinsic": np.asarray(intrinsic, dtype=np.float32).tolist()}
        if extrinsic is not None:
            payload["extrinsic"] = np.asarray(extrinsic, dtype=np.float32).tolist()
        self._post("/set_camera_params", json=payload)

    def close(self) -> None:
        if self.client_id is not None:
            self._post("/close", json={"client_id": self.client_id})
            self.client_id = None

    def set_episode_data(self, first_frame: np.ndarray) -> None:
        first_frame = np.asarray(first_frame, dtype=np.float32)
        meta = {"client_id": self.client_id, "frame_shape": list(first_frame.shape)}
        self._post(
            "/set_episode_data", data=pack_block(encode_frame_jpeg(first_frame)) + pack_block(_dumps(meta))
        )

    def set_episode_traj(self, traj: np.ndarray, c2w: np.ndarray) -> None:
        traj = np.asarray(traj, dtype=np.float32)
        c2w = np.asarray(c2w, dtype=np.float32)
        section = b"".join(pack_block(encode_frame_jpeg(traj[:, :, t])) for t in range(traj.shape[2]))
        meta = {"client_id": self.client_id, "traj_shape": list(traj.shape), "c2w_shape": list(c2w.shape)}
        self._post(
            "/set_episode_traj",
            data=pack_block(section) + pack_block(c2w.tobytes(order="C")) + pack_block(_dumps(meta)),
        )

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        actions = np.asarray(actions, dtype=np.float32)
        meta = {"client_id": self.client_id, "action_shape": list(actions.shape)}
        reader = BlockReader(
            self._post("/step", data=pack_block(actions.tobytes()) + pack_block(_dumps(meta))).content
        )
        answer = json.loads(reader.read_block())
        shape = answer["frame_shape"]
        frames = np.stack([decode_frame_jpeg(reader.read_block(), shape[1:]) for _ in range(shape[0])])
        state_bytes = reader.read_block()
        state = None
        if answer.get("state_shape"):
            state = np.frombuffer(state_bytes, dtype=np.float32).reshape(answer["state_shape"]).copy()
        return frames, state

    def _post(self, path: str, **body):
        try:
            response = self.session.post(f"{self.base_url}{path}", timeout=(10.0, self.timeout), **body)
        except requests.exceptions.ConnectionError as exc:
            raise GesimConnectionError(f"cannot reach world-model server at {self.base_url}") from exc
        if response.status_code >= 400:
            raise ServerError(response.status_code, response.text)
        return response

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()


def _dumps(obj: dict) -> bytes:
    return json.dumps(obj).encode("utf-8")
