"""Stand-in for gesim's wire format: a (3, V, H, W) frame as one JPEG (quality 95) with the views
side by side; sections prefixed with their 4-byte big-endian length."""

import io

import numpy as np
from PIL import Image

JPEG_QUALITY = 95


def encode_frame_jpeg(frame: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    frame = np.asarray(frame, dtype=np.float32)
    tiled = np.concatenate(
        [(np.clip(v, 0.0, 1.0) * 255.0).round().astype(np.uint8) for v in frame.transpose(1, 2, 3, 0)], axis=1
    )
    buffer = io.BytesIO()
    Image.fromarray(tiled, mode="RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_frame_jpeg(data: bytes, shape) -> np.ndarray:
    _, views, _, _ = shape
    array = np.asarray(Image.open(io.BytesIO(data)))
    return np.stack(np.split(array, views, axis=1)).transpose(3, 0, 1, 2).astype(np.float32) / 255.0


def pack_block(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


class BlockReader:
    def __init__(self, data: bytes):
        self._data = data
        self._pos = 0

    def read_block(self) -> bytes:
        size = int.from_bytes(self._data[self._pos : self._pos + 4], "big")
        self._pos += 4
        block = self._data[self._pos : self._pos + size]
        self._pos += size
        return block
