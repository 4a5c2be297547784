"""Time the submission path, and bound validation of hostile bundles.

    python benchmarks/leaderboard_intake.py [--model static] [--trials 1]
    python benchmarks/leaderboard_intake.py --hostile

The first runs each step as the `ewmbench` command (a fresh process, as a user runs it), on a copy
of the shipped board in a temporary folder: run on the sample, submit (bundle), validate, add, add
--rescore, build; it prints wall seconds per step and the bundle's size.

``--hostile`` builds the bundles of the board's threat list (a 1 GiB pax header, a 1 GiB GNU long
name, a pax record length of 300K digits, a YAML alias bomb, a 1 GiB decompression bomb, 20,001
members, a valid bundle of 64 videos of 1 MiB) and runs `ewmbench leaderboard validate` on each in
its own process, printing the refusal code, the wall time and the process's peak memory (maximum
resident set size). The board's bound: under 30 s and under 500 MiB for any bundle.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = """---
model_name: Benchmark submission
version: "1"
organization: ewmbench
release_year: 2026
source_type: open_source
control_type: text_driven
---
"""


def step(label: str, *args: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "ewmbench", *args], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{label} failed:\n{result.stdout}\n{result.stderr}")
    print(f"{label:<28} {elapsed:7.1f} s")
    return elapsed


MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "elapsed = time.perf_counter() - start\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
    "print(f'{elapsed:.2f} {peak:.0f} {result.returncode}')\n"
    "print((result.stdout + result.stderr).strip().replace(chr(10), ' ')[:160])\n"
)


def _header(name: bytes, kind: bytes, size: int) -> bytes:
    block = bytearray(512)
    block[: len(name)] = name
    block[100:108] = b"0000644\0"
    block[124:136] = f"{size:011o}\0".encode()
    block[136:148] = b"00000000000\0"
    block[156:157] = kind
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    return bytes(block)


def _raw(path: Path, body: bytes) -> Path:
    import gzip

    with gzip.open(path, "wb") as out:
        out.write(body + bytes(1024))
    return path


def _tar(path: Path, members) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _zeros_tar(path: Path, size: int) -> Path:
    """A tar.gz with one member of ``size`` zero bytes, streamed (never held in memory)."""
    import gzip

    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(
            _header(b"model_readme.md", b"0", len(README)) + README.encode() + bytes(-len(README) % 512)
        )
        out.write(_header(b"videos/1__1__1.mp4", b"0", size))
        chunk = bytes(2**20)
        for _ in range(size // len(chunk)):
            out.write(chunk)
        out.write(bytes(1024))
    return path


def hostile(tmp: Path) -> None:
    digits = b"99999" * 60000
    bomb = (
        "---\na: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)
        )
        + "---\n"
    )
    cases = {
        "pax header declaring 1 GiB": _raw(tmp / "pax.tar.gz", _header(b"pax", b"x", 2**30) + bytes(4096)),
        "GNU long name declaring 1 GiB": _raw(
            tmp / "gnu.tar.gz", _header(b"././@LongLink", b"L", 2**30) + bytes(4096)
        ),
        "pax record length of 300K digits": _raw(
            tmp / "digits.tar.gz", _header(b"pax", b"x", len(digits)) + digits + bytes(-len(digits) % 512)
        ),
        "YAML alias bomb front matter": _tar(
            tmp / "yaml.tar.gz", [("model_readme.md", bomb.encode()), ("videos/1__1__1.mp4", b"v")]
        ),
        "1 GiB of zeros (decompression bomb)": _zeros_tar(tmp / "zeros.tar.gz", 2**30),
        "20,001 members": _tar(
            tmp / "many.tar.gz",
            [("model_readme.md", README.encode())] + [(f"videos/1__{i}__1.mp4", b"v") for i in range(20001)],
        ),
        "valid: 64 videos of 1 MiB": _tar(
            tmp / "valid.tar.gz",
            [("model_readme.md", README.encode())]
            + [(f"videos/1__{i}__1.mp4", os.urandom(2**20)) for i in range(64)],
        ),
    }
    print(f"{'bundle':<38} {'size':>9} {'seconds':>8} {'peak MiB':>9}  outcome")
    for label, path in cases.items():
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                MEASURE,
                sys.executable,
                "-m",
                "ewmbench",
                "leaderboard",
                "validate",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        elapsed, peak, code = out[0].split()
        outcome = out[1] if len(out) > 1 else ""
        size = f"{path.stat().st_size / 2**20:.2f} MiB"
        print(f"{label:<38} {size:>9} {float(elapsed):8.2f} {float(peak):9.0f}  exit {code}: {outcome[:90]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="static")
    parser.add_argument("--trials", default="1")
    parser.add_argument(
        "--hostile", action="store_true", help="validate hostile bundles; time and peak memory"
    )
    args = parser.parse_args()
    if args.hostile:
        with tempfile.TemporaryDirectory() as tmp:
            hostile(Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        board = tmp / "board"
        shutil.copytree(ROOT / "leaderboards" / "ewmbench", board, ignore=shutil.ignore_patterns("*.py"))
        (tmp / "model_readme.md").write_text(README)
        step(
            f"run ({args.model}, sample)",
            "run",
            "--model",
            args.model,
            "--dataset",
            "sample",
            "--trials",
            args.trials,
            "--output",
            str(tmp / "run"),
        )
        step(
            "submit",
            "submit",
            str(tmp / "run"),
            "--readme",
            str(tmp / "model_readme.md"),
            "--output",
            str(tmp / "bundle.tar.gz"),
        )
        print(f"{'bundle size':<28} {os.path.getsize(tmp / 'bundle.tar.gz') / 2**20:7.1f} MiB")
        step("leaderboard validate", "leaderboard", "validate", str(tmp / "bundle.tar.gz"))
        step("leaderboard add", "leaderboard", "add", str(tmp / "bundle.tar.gz"), "--board", str(board))
        step(
            "leaderboard add --rescore",
            "leaderboard",
            "add",
            str(tmp / "bundle.tar.gz"),
            "--board",
            str(board),
            "--rescore",
            "--gt",
            "sample",
        )
        step(
            "leaderboard build", "leaderboard", "build", "--board", str(board), "--output", str(tmp / "site")
        )


if __name__ == "__main__":
    main()
