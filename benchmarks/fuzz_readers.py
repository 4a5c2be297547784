"""Coverage-guided fuzzing (atheris) of the readers that take user files: frames (PNG/JPEG), video
files, sidecars, protocols, split files and ``traj.npy``. Every input must give a value or an
``ewmbench.errors.EwmbenchError``; any other exception is a finding (atheris stops and writes the
input to ``crash-<hash>``). Not part of the test suite: run it for a bounded time, turn each
finding into a test under ``tests/bad_input/``.

    PYTHONPATH=. python benchmarks/fuzz_readers.py --target image --seconds 60
    PYTHONPATH=. python benchmarks/fuzz_readers.py --target all --seconds 30   # each target in turn

Targets: image, video, sidecar, arrays, protocol, split, traj.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TARGETS = ("image", "video", "sidecar", "arrays", "protocol", "split", "traj")
# Seeds: small valid files of each kind, so the fuzzer starts from the format, not from nothing.
SEED_NOTE = "seeds are written into the corpus folder on first run"


def seeds(target: str) -> list[bytes]:
    import io
    import json

    import numpy as np
    from PIL import Image

    if target in ("image", "video"):
        out = []
        for fmt in ("PNG", "JPEG"):
            buffer = io.BytesIO()
            Image.new("RGB", (6, 4), (200, 30, 30)).save(buffer, format=fmt)
            out.append(buffer.getvalue())
        grey16 = io.BytesIO()
        Image.fromarray(np.arange(24, dtype=np.uint16).reshape(4, 6) * 2000).save(grey16, format="PNG")
        return out + [grey16.getvalue()]
    if target == "sidecar":
        return [
            json.dumps(
                {"format": "ewmbench-sidecar/1", "fps": 10, "views": ["head"], "substeps": ["a"]}
            ).encode()
        ]
    if target in ("arrays", "traj"):
        buffer = io.BytesIO()
        if target == "arrays":
            np.savez(buffer, eef_pose=np.zeros((3, 14)), **{"intrinsics/head": np.eye(3)})
        else:
            np.save(buffer, np.full((3, 2, 2), 0.5, dtype=np.float32))
        return [buffer.getvalue()]
    if target == "protocol":
        return [
            (Path(__file__).resolve().parents[1] / "ewmbench" / "protocols" / "ewmbench-v2.yaml").read_bytes()
        ]
    if target == "split":
        return [
            json.dumps({"format": "ewmbench-split/1", "tasks": {"1": {"episodes": ["10", "11"]}}}).encode()
        ]
    raise ValueError(target)


def one_input(target: str, work: Path):
    """The function atheris calls with each input."""
    from ewmbench.errors import EwmbenchError

    def test(data: bytes) -> None:
        try:
            _read(target, work, data)
        except EwmbenchError:
            pass

    return test


def _read(target: str, work: Path, data: bytes) -> None:
    from ewmbench.data.layout import Sidecar
    from ewmbench.data.split import load_split
    from ewmbench.data.trajectory import load_traj
    from ewmbench.data.video import read_image, read_video, video_size
    from ewmbench.protocols import load_protocol

    if target == "image":
        for suffix in (".png", ".jpg"):
            path = work / f"frame_00000{suffix}"
            path.write_bytes(data)
            read_image(path)
            path.unlink()
    elif target == "video":
        folder = work / "video"
        folder.mkdir(exist_ok=True)
        path = folder / "clip.mp4"
        path.write_bytes(data)
        video_size(folder)
        read_video(folder, max_frames=4)
        path.unlink()
    elif target in ("sidecar", "arrays"):
        folder = work / "episode" / "ewmbench"
        folder.mkdir(parents=True, exist_ok=True)
        if target == "sidecar":
            (folder / "meta.json").write_bytes(data)
        else:
            (folder / "meta.json").write_text('{"format": "ewmbench-sidecar/1"}')
            (folder / "arrays.npz").write_bytes(data)
        Sidecar.load(work / "episode")
    elif target == "protocol":
        path = work / "p.yaml"
        path.write_bytes(data)
        load_protocol.cache_clear()
        load_protocol(str(path))
    elif target == "split":
        path = work / "split.json"
        path.write_bytes(data)
        load_split(path)
    elif target == "traj":
        path = work / "traj.npy"
        path.write_bytes(data)
        load_traj(path)


def fuzz(target: str, seconds: int, corpus: Path) -> int:
    import atheris

    with atheris.instrument_imports():  # imported here so that their code is instrumented for coverage
        pass
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(seeds(target)):
        (corpus / f"seed-{index}").write_bytes(seed)
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-"))
    atheris.Setup(
        [
            sys.argv[0],
            str(corpus),
            f"-max_total_time={seconds}",
            "-rss_limit_mb=4096",
            "-print_final_stats=1",
        ],
        one_input(target, work),
    )
    atheris.Fuzz()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--seconds", type=int, default=60, help="time per target")
    parser.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "ewmbench-fuzz-corpus")
    args = parser.parse_args()
    if args.target != "all":
        sys.exit(fuzz(args.target, args.seconds, args.corpus / args.target))
    # libFuzzer runs once per process: one child per target.
    failed = []
    for target in TARGETS:
        print(f"== {target} ({args.seconds} s)", flush=True)
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--target",
                target,
                "--seconds",
                str(args.seconds),
                "--corpus",
                str(args.corpus),
            ],
            env={**os.environ},
            check=False,
        )
        if done.returncode != 0:
            failed.append(target)
    print("findings in: " + ", ".join(failed) if failed else "no findings")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
