"""Wall time of listing commands in fresh processes, and which heavy libraries they import.

    PYTHONPATH=. python benchmarks/cli_startup.py [--repeats 5]

Times ``ewmbench metrics`` (availability of every metric under ewmbench-v1: weights found on
disk, packages found with ``importlib.util.find_spec``, nothing imported to find out) and, for
scale, a bare ``python -c pass``. Each command runs ``--repeats`` times; best and median are
printed. A second pass runs the command with ``-X importtime`` and lists the heavy libraries it
imported (none should be: torch, transformers, open_clip, huggingface_hub).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "open_clip", "huggingface_hub", "ultralytics", "pandas", "scipy", "cv2")


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def imported(command: list[str], env: dict) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]], capture_output=True, text=True, env=env
    )
    names = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return [name for name in HEAVY if name in names]


def measure(repeats: int) -> dict[str, tuple[list[float], list[str]]]:
    """Per command: its wall times over ``repeats`` fresh processes, and the heavy libraries it imported."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "ewmbench metrics": [sys.executable, "-m", "ewmbench", "metrics"],
        "ewmbench metrics --json": [sys.executable, "-m", "ewmbench", "metrics", "--json"],
    }
    for command in commands.values():
        timed(command, env)  # warm the file cache and the bytecode
    return {
        label: (
            [timed(command, env) for _ in range(repeats)],
            imported(command, env) if label.startswith("ewmbench") else [],
        )
        for label, command in commands.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for label, (times, heavy) in measure(args.repeats).items():
        print(
            f"{label:26s} best {min(times):5.2f} s, median {statistics.median(times):5.2f} s over {args.repeats}"
            + (f"; heavy imports: {', '.join(heavy) or 'none'}" if label.startswith("ewmbench") else "")
        )
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
