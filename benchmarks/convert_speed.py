"""Conversion speed (episodes/s, frames/s) and peak memory on a synthetic 100-episode LeRobot dataset.

Writes a LeRobot dataset (two cameras, H.264 mp4 as LeRobot datasets ship them, 14-D actions, 16-D
state) in each layout, then converts it with ``ewmbench data convert lerobot`` in a fresh process
per case, so each case's peak resident memory (VmHWM, Linux) is its own. Cases run one after the
other in one run, so machine load affects them alike. A case with 4x longer episodes shows
whether memory grows with episode length (it should not: frames are streamed one at a time).

    python benchmarks/convert_speed.py [--episodes 100] [--frames 30] [--size 320x240]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def synthetic_lerobot(root: Path, version: str, episodes: int, frames: int, width: int, height: int) -> Path:
    """Like tests/helpers/source_formats.write_lerobot, with lossy H.264 videos of a moving square."""
    from ewmbench.data.video import write_mp4
    from tests.helpers.source_formats import write_lerobot

    small = write_lerobot(root, version, [frames] * episodes, fps=10.0)  # metadata, parquet, tiny videos
    info = json.loads((small / "meta/info.json").read_text())
    for key in ("observation.images.top", "observation.images.wrist_left"):
        info["features"][key]["shape"] = [height, width, 3]
    (small / "meta/info.json").write_text(json.dumps(info, indent=4))
    rng = np.random.default_rng(0)
    background = rng.integers(40, 200, size=(height, width, 3), dtype=np.uint8)

    def clip(offset: int, count: int):
        for t in range(count):  # a generator: the writer takes one frame at a time
            frame = background.copy()
            x = (offset + 5 * t) % (width - 40)
            frame[40:80, x : x + 40] = (230, 40, 40)
            yield frame

    for video in sorted(small.glob("videos/**/*.mp4")):  # replace each with a full-size H.264 one
        count = frames if version == "v2.1" else frames * len(_episodes_in(small, video))
        write_mp4(clip(zlib.crc32(video.name.encode()) % 50, count), video, fps=10.0)
    return small


def _episodes_in(root: Path, video: Path) -> list[int]:
    import pyarrow.parquet as pq

    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    file_index = int(video.stem.split("-")[1])
    return [r["episode_index"] for r in rows if r["videos/observation.images.top/file_index"] == file_index]


CHILD = """
import json, sys, time
from pathlib import Path
from ewmbench.data.converters.common import ConvertSettings
from ewmbench.data.converters.lerobot import LeRobotMapping, convert_lerobot
from ewmbench.data.converters.mapping import parse_selection
source, output, image_format = sys.argv[1], sys.argv[2], sys.argv[3]
mapping = LeRobotMapping(views={"head": "observation.images.top", "hand_left": "observation.images.wrist_left"},
                         actions=parse_selection("action", "--actions"), eef_pose=parse_selection("observation.state[0:14]", "--eef-pose"))
start = time.perf_counter()
report = convert_lerobot(Path(source), Path(output), mapping, settings=ConvertSettings(image_format=image_format), progress=False)
elapsed = time.perf_counter() - start
# VmHWM: this process's own peak resident memory (ru_maxrss would include the parent's peak at fork)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": elapsed, "episodes": len(report.written), "frames": report.frames, "peak_mb": peak_kb / 1024}))
"""


def run_case(source: Path, output: Path, image_format: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(output), image_format],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", default="320x240")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [
            ("v3.0", args.frames, "png"),
            ("v3.0", args.frames, "jpg"),
            ("v2.1", args.frames, "png"),
            ("v3.0", args.frames * 4, "png"),
        ]
        sources = {}
        print(f"{args.episodes} episodes, 2 cameras at {width}x{height}, 10 fps; timings on this machine")
        print(
            "| layout | frames/episode | output | episodes/s | frames/s (head) | frames/s (all views) | peak memory (MB) |"
        )
        print("|---|---|---|---|---|---|---|")
        for version, frames, image_format in cases:
            key = (version, frames)
            if key not in sources:
                sources[key] = synthetic_lerobot(
                    tmp / f"src-{version}-{frames}", version, args.episodes, frames, width, height
                )
            result = run_case(sources[key], tmp / f"out-{version}-{frames}-{image_format}", image_format)
            seconds = result["seconds"]
            print(
                f"| {version} | {frames} | {image_format} | {result['episodes'] / seconds:.2f} | {result['frames'] / seconds:.0f} | "
                f"{2 * result['frames'] / seconds:.0f} | {result['peak_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
