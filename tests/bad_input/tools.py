"""The bad-input suite's tools: tiny datasets, a hash of every input tree, and one way to run the
command line (in-process through typer's runner, or as a real subprocess) that checks what every
case must hold: the inputs are byte-identical afterwards and no traceback is printed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ewmbench.data.video import write_frames

FRAMES = 4


def tree_hash(root: Path) -> str:
    """Names, bytes and link targets of everything under ``root`` (links are not followed)."""
    digest = hashlib.sha256()
    root = Path(root)
    if not os.path.lexists(root):
        return "absent"
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            digest.update(os.fsencode(path.relative_to(root)))
            if path.is_symlink():
                digest.update(b"->" + os.fsencode(os.readlink(path)))
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class Outcome:
    code: int
    output: str  # stdout and stderr, whitespace collapsed (rich wraps long lines)

    def says(self, *needles: str) -> bool:
        return all(n in self.output for n in needles)


@dataclass
class Workspace:
    """A fresh copy of the tiny datasets for one case."""

    root: Path
    gt: Path = field(init=False)
    gen: Path = field(init=False)
    out: Path = field(init=False)

    def __post_init__(self):
        self.gt = self.root / "gt"
        self.gen = self.root / "mine_dataset"
        self.out = self.root / "out"

    def gt_frame(self, task="1", episode="10", index=0) -> Path:
        return self.gt / task / episode / "video" / f"frame_{index:05d}.jpg"

    def gen_frame(self, task="1", episode="10", trial="1", index=0) -> Path:
        return self.gen / task / episode / trial / "video" / f"frame_{index:05d}.png"

    def meta(self, task="1", episode="10") -> Path:
        return self.gt / task / episode / "ewmbench" / "meta.json"

    def arrays(self, task="1", episode="10") -> Path:
        return self.gt / task / episode / "ewmbench" / "arrays.npz"

    def evaluate(self, *extra: str, metrics: str | None = "psnr") -> list[str]:
        args = ["evaluate", "--gt", str(self.gt), "--generated", str(self.gen), "--output", str(self.out)]
        return args + (["--metrics", metrics] if metrics else []) + list(extra)

    def inputs(self) -> list[Path]:
        return [self.gt, self.gen]


def write_generated(root: Path, task: str, episode: str, trial: str, frames: np.ndarray) -> Path:
    """A trial folder written directly (no sidecar, any name length)."""
    folder = root / task / episode / trial / "video"
    write_frames(frames, folder, suffix=".png")
    return folder.parent


def run_cli(
    args: list[str], inputs: list[Path], as_subprocess: bool = False, env: dict | None = None
) -> Outcome:
    """Run ``ewmbench args``; assert the inputs are unchanged and nothing printed a traceback."""
    before = {str(p): tree_hash(p) for p in inputs}
    if as_subprocess:
        done = subprocess.run(
            [sys.executable, "-m", "ewmbench", *args],
            capture_output=True,
            env={**os.environ, **(env or {})},
            timeout=300,
        )
        text = (done.stdout + done.stderr).decode("utf-8", "backslashreplace")
        code = done.returncode
    else:
        from typer.testing import CliRunner

        from ewmbench.cli import app

        result = CliRunner().invoke(app, args, env=env)
        text, code = result.output, result.exit_code
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            raise AssertionError(
                "the command raised "
                + "".join(traceback.format_exception(result.exception))
                + "\noutput:\n"
                + text
            )
    after = {str(p): tree_hash(p) for p in inputs}
    assert after == before, f"an input was modified: {[p for p in before if before[p] != after[p]]}\n{text}"
    assert "Traceback" not in text, text
    return Outcome(code, " ".join(text.split()))
