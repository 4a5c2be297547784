"""Frames a reader must refuse or convert: oversize headers, 16-bit PNG, broken links, junk."""

from __future__ import annotations

import os
import struct
import zlib
from io import BytesIO

import cv2
import numpy as np
import pytest
from PIL import Image

from ewmbench.data.video import list_frames, read_image, read_video, video_size
from ewmbench.errors import DataError
from ewmbench.metrics.fidelity import psnr
from tests.bad_input.cases import check, parametrize, registry

CASES, case = registry()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG with its frame header (SOF0) patched to claim another size."""
    buffer = BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@case(1, "frame_00000.png", "too large to read safely", nothing_written=False)
def png_header_claiming_ten_billion_pixels(ws):
    ws.gen_frame().write_bytes(png_claiming(100_000, 100_000))
    return ws.evaluate()


@case(1, "frame_00000.png", "claims 8000x8000 pixels", "EWMBENCH_MAX_FRAME_PIXELS", nothing_written=False)
def png_header_above_our_limit(ws):
    ws.gen_frame().write_bytes(png_claiming(8000, 8000))
    return ws.evaluate()


@case(1, "frame_00000.jpg", "too large to read safely", nothing_written=False)
def jpeg_header_claiming_a_huge_size(ws):
    ws.gt_frame().write_bytes(jpeg_claiming(60_000, 60_000))
    return ws.evaluate()


@case(1, "frame_00001.png", "broken symbolic link", nothing_written=False)
def dangling_symlink_frame(ws):
    frame = ws.gen_frame(index=1)
    frame.unlink()
    frame.symlink_to(ws.root / "gone.png")
    return ws.evaluate()


@case(1, "frame_00002.png", "broken symbolic link", nothing_written=False)
def symlink_loop_frame(ws):
    frame = ws.gen_frame(index=2)
    frame.unlink()
    os.symlink(frame.name, frame)  # points at itself
    return ws.evaluate()


@case(1, "frame_00001.jpg", "broken symbolic link", nothing_written=False)
def dangling_symlink_in_ground_truth(ws):
    frame = ws.gt_frame(index=1)
    frame.unlink()
    frame.symlink_to("/nonexistent/frame.jpg")
    return ws.evaluate()


@case(1, "frame_00003.png", "holds a folder", nothing_written=False)
def folder_named_like_a_frame(ws):
    frame = ws.gen_frame(index=3)
    frame.unlink()
    frame.mkdir()
    return ws.evaluate()


@case(1, "frame_00000.png", "unreadable image", nothing_written=False)
def truncated_png(ws):
    frame = ws.gen_frame()
    frame.write_bytes(frame.read_bytes()[:60])
    return ws.evaluate()


@case(1, "frame_00000.png", "unreadable image", nothing_written=False)
def empty_frame_file(ws):
    ws.gen_frame().write_bytes(b"")
    return ws.evaluate()


@case(1, "frame_00000.jpg", "unreadable image", nothing_written=False)
def text_file_named_jpg(ws):
    ws.gt_frame().write_text("hello, I am not a picture")
    return ws.evaluate()


@case(1, "frames have different sizes", nothing_written=False)
def frames_of_different_sizes(ws):
    Image.new("RGB", (32, 24)).save(ws.gen_frame(index=2))
    return ws.evaluate()


@case(1, "video folder has no frames", nothing_written=False)
def ground_truth_video_folder_empty(ws):
    for frame in (ws.gt / "1" / "10" / "video").iterdir():
        frame.unlink()
    return ws.evaluate()


@case(0, "scored 2 of 2 episodes", nothing_written=False)
def palette_grey_and_alpha_frames_are_read(ws):
    frames = [ws.gen_frame(index=i) for i in range(3)]
    Image.open(frames[0]).convert("P").save(frames[0])
    Image.open(frames[1]).convert("L").save(frames[1])
    Image.open(frames[2]).convert("RGBA").save(frames[2])
    return ws.evaluate()


@case(0, "scored 2 of 2 episodes", nothing_written=False)
def sixteen_bit_png_frames_are_scored(ws):
    for index in range(4):
        frame = ws.gen_frame(index=index)
        rgb = np.asarray(Image.open(frame).convert("RGB")).astype(np.uint16) * 257
        cv2.imwrite(str(frame), rgb[..., ::-1])
    return ws.evaluate()


@parametrize(CASES)
def test_image_case(case, ws):
    check(case, ws)


# ---------------------------------------------------------------- the reader itself


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 4000, 32896], [65535, 65534, 128, 129]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    cv2.imwrite(str(path), values)
    assert Image.open(path).mode.startswith("I")  # PIL's own convert("RGB") clips these to 255
    image = read_image(path)
    # round(v / 257): 4000 / 257 = 15.56 -> 16; 32896 / 257 = 128 exactly; 128 / 257 -> 0; 129 / 257 -> 1
    expected = np.array([[0, 1, 16, 128], [255, 255, 0, 1]], dtype=np.uint8)
    assert image.shape == (2, 4, 3) and (image == expected[..., None]).all()


def test_sixteen_bit_rgb_png_keeps_channel_order_and_rounds(tmp_path):
    rgb = np.zeros((1, 2, 3), dtype=np.uint16)
    rgb[0, 0] = (65535, 32896, 0)  # red-ish
    rgb[0, 1] = (385, 386, 640)  # 1.498 -> 1, 1.502 -> 2, 2.49 -> 2
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), rgb[..., ::-1])
    assert read_image(path).tolist() == [[[255, 128, 0], [1, 2, 2]]]


def test_sixteen_bit_copy_of_a_video_scores_as_identical(tmp_path):
    """A 16-bit export of the very frames must not change PSNR (it was 24 dB lower when clipped)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 12, 16, 3), dtype=np.uint8)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame_{index:05d}.png"), (frame.astype(np.uint16) * 257)[..., ::-1])
    assert np.array_equal(read_video(tmp_path), frames)
    assert psnr(read_video(tmp_path), frames, "mean_over_matched", 255, 100) == 100


def test_size_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "frame_00000.png"
    Image.new("RGB", (40, 30)).save(path)
    monkeypatch.setenv("EWMBENCH_MAX_FRAME_PIXELS", str(40 * 30 - 1))
    with pytest.raises(DataError, match="claims 40x30 pixels"):
        read_image(path)
    with pytest.raises(DataError, match="claims 40x30"):
        video_size(tmp_path)
    monkeypatch.setenv("EWMBENCH_MAX_FRAME_PIXELS", str(40 * 30))
    assert read_image(path).shape == (30, 40, 3)


def test_broken_links_are_errors_not_skipped_frames(tmp_path):
    for index in range(3):
        Image.new("RGB", (4, 4)).save(tmp_path / f"frame_{index:05d}.png")
    (tmp_path / "frame_00001.png").unlink()
    (tmp_path / "frame_00001.png").symlink_to(tmp_path / "missing.png")
    with pytest.raises(DataError, match="frame_00001.png: frame is a broken symbolic link"):
        list_frames(tmp_path)
    (tmp_path / "frame_00001.png").unlink()
    (tmp_path / "frame_00001.png").symlink_to(tmp_path / "frame_00000.png")  # a working link is a frame
    assert [p.name for p in list_frames(tmp_path)] == [
        "frame_00000.png",
        "frame_00001.png",
        "frame_00002.png",
    ]


def test_unwritten_temporary_frames_are_not_frames(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "frame_00000.png")
    (tmp_path / ".tmp-abc.png").write_bytes(b"partial")
    assert [p.name for p in list_frames(tmp_path)] == ["frame_00000.png"]


def test_every_png_kind_reads_as_pil_converts_it(tmp_path):
    """8-bit RGB and RGBA PNGs (decoded by OpenCV), interlaced or not, and the kinds PIL reads
    (grey, palette, grey + alpha) give the pixels of PIL's ``convert("RGB")``."""
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    images = {
        "rgb": Image.fromarray(rgba[..., :3]),
        "rgba": Image.fromarray(rgba, "RGBA"),
        "grey": Image.fromarray(rgba[..., 0]),
        "grey_alpha": Image.fromarray(rgba[..., :2], "LA"),
        "palette": Image.fromarray(rgba[..., :3]).quantize(64),
    }
    for name, image in images.items():
        for options in ({}, {"interlace": 1}):
            path = tmp_path / f"{name}{len(options)}.png"
            image.save(path, **options)
            with Image.open(path) as stored:
                expected = np.asarray(stored.convert("RGB"))
            got = read_image(path)
            assert got.dtype == np.uint8 and got.shape == (37, 53, 3), name
            np.testing.assert_array_equal(got, expected, err_msg=name)


def test_truncated_or_corrupt_rgb_png_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "frame_00000.png"
    Image.fromarray(np.random.default_rng(6).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="frame_00000.png: unreadable image"):
        read_image(path)
    corrupt = bytearray(whole)
    corrupt[len(whole) // 2] ^= 0xFF  # inside the compressed data: the checksum fails
    path.write_bytes(bytes(corrupt))
    with pytest.raises(DataError, match="frame_00000.png: unreadable image"):
        read_image(path)
