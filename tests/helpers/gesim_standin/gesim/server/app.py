"""Stand-in for gesim.server.app.WorldModelServer: one model behind the gesim HTTP protocol."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from gesim.client.codecs import BlockReader, decode_frame_jpeg, encode_frame_jpeg, pack_block
from gesim.models.base import WorldModel


class WorldModelServer:
    def __init__(
        self, model: WorldModel, host: str = "0.0.0.0", port: int = 9000, *, model_name: str = "world_model"
    ):
        self.model = model
        self.host, self.port = host, port
        self.client_id = None
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.port = self._httpd.server_address[1]
        self._thread = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def handle(self, path: str, body: bytes):
        if path == "/init":
            self.client_id = uuid.uuid4().hex
            self.model.reset()
            return {"success": True, "client_id": self.client_id}
        if path in ("/reset", "/set_task", "/set_camera_params", "/close"):
            payload = json.loads(body)
            self._check(payload)
            if path == "/reset" or path == "/close":
                self.model.reset()
            elif path == "/set_task":
                self.model.set_task(str(payload.get("task", "")))
            else:
                extrinsic = payload.get("extrinsic")
                self.model.set_camera_params(
                    np.asarray(payload["intrinsic"], dtype=np.float32),
                    None if extrinsic is None else np.asarray(extrinsic, dtype=np.float32),
                )
            return {"success": True}
        reader = BlockReader(body)
        if path == "/set_episode_data":
            jpeg = reader.read_block()
            meta = json.loads(reader.read_block())
            self._check(meta)
            self.model.set_episode_data(decode_frame_jpeg(jpeg, meta["frame_shape"]))
            return {"success": True}
        if path == "/set_episode_traj":
            section, c2w = reader.read_block(), reader.read_block()
            meta = json.loads(reader.read_block())
            self._check(meta)
            channels, views, frames, height, width = meta["traj_shape"]
            inner = BlockReader(section)
            traj = np.stack(
                [
                    decode_frame_jpeg(inner.read_block(), (channels, views, height, width))
                    for _ in range(frames)
                ],
                axis=2,
            )
            self.model.set_episode_traj(
                traj, np.frombuffer(c2w, dtype=np.float32).reshape(meta["c2w_shape"]).copy()
            )
            return {"success": True}
        if path == "/step":
            actions = reader.read_block()
            meta = json.loads(reader.read_block())
            self._check(meta)
            result = self.model.step(
                np.frombuffer(actions, dtype=np.float32).reshape(meta["action_shape"]).copy()
            )
            frames = np.asarray(result.frames, dtype=np.float32)
            answer = {
                "frame_shape": list(frames.shape),
                "state_shape": None if result.state is None else list(result.state.shape),
            }
            out = pack_block(json.dumps(answer).encode())
            out += b"".join(pack_block(encode_frame_jpeg(f)) for f in frames)
            return out + pack_block(
                b"" if result.state is None else np.asarray(result.state, dtype=np.float32).tobytes()
            )
        raise KeyError(path)

    def _check(self, payload: dict) -> None:
        if payload.get("client_id") != self.client_id:
            raise PermissionError("unknown client_id; POST /init first")


def _handler(server: WorldModelServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                answer = server.handle(self.path, body)
                code = 200
            except PermissionError as exc:
                answer, code = {"error": str(exc)}, 403
            except (KeyError, ValueError, RuntimeError) as exc:
                answer, code = {"error": f"{type(exc).__name__}: {exc}"}, 400
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
