"""Time the submission path on the sample: submit (bundle), validate, add, add --rescore, build.

    python benchmarks/leaderboard_intake.py [--model static] [--trials 1]

Each step runs as the `ewmbench` command (a fresh process, as a user runs it), on a copy of the
shipped board in a temporary folder; prints wall seconds per step and the bundle's size.
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="static")
    parser.add_argument("--trials", default="1")
    args = parser.parse_args()
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
