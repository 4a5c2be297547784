"""The whole hostile-input suite for resources, with each case's cost: peak resident memory of the
process that read the input, and wall time. The cases are ``tests/bad_input/hostile.py``'s (the
tests assert 500 MiB and 10 s per case); this prints the figures that docs/bad-input.md quotes,
plus ``evaluate`` on the two hostile videos (its process imports torch before it reads anything,
so its baseline is printed beside it).

    PYTHONPATH=. python benchmarks/hostile_inputs.py
    PYTHONPATH=. python benchmarks/hostile_inputs.py --skip-evaluate   # a minute less
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.bad_input.hostile import (  # noqa: E402
    MEMORY_BOUND_MIB,
    TIME_BOUND_S,
    Outcome,
    blank_token_case,
    evaluate_cases,
    import_cases,
    lerobot_cases,
    measured,
    reader_cases,
    server_cases,
)


def row(outcome: Outcome, peak: str | None = None) -> str:
    first = " ".join(outcome.output.split())[:110].replace("|", "/")
    peak = peak or f"{outcome.peak_mib:7.0f}"
    return f"| {outcome.name} | {outcome.code} | {peak} | {outcome.seconds:6.2f} | {first} |"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-evaluate", action="store_true", help="leave out the two evaluate runs")
    args = parser.parse_args()
    print(f"bounds: {MEMORY_BOUND_MIB} MiB, {TIME_BOUND_S:g} s per case")
    print("| case | exit / HTTP | peak MiB | seconds | answer (start) |")
    print("|---|---|---|---|---|")
    over = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        groups = [("import", import_cases), ("read", reader_cases)]
        for name, run in groups:
            (tmp / name).mkdir()
            for outcome in run(tmp / name):
                print(row(outcome))
                over += not outcome.within_bounds()
        (tmp / "lerobot").mkdir()
        for outcome, _ in lerobot_cases(tmp / "lerobot"):
            print(row(outcome))
            over += not outcome.within_bounds()
        (tmp / "serve").mkdir()
        outcomes, peak, log = server_cases(tmp / "serve")
        for outcome in outcomes:
            print(row(outcome, peak="(server)"))
            over += outcome.seconds > TIME_BOUND_S
        print(f"| serve: the server's peak over all attacks | | {peak:7.0f} | | |")
        over += peak > MEMORY_BOUND_MIB
        raw = sum(ch in log for ch in "\x1b\x07\r")
        print(f"| serve: raw control characters in its log | | | | {raw} |")
        (tmp / "token").mkdir()
        outcome = blank_token_case(tmp / "token")
        print(row(outcome))
        over += not outcome.within_bounds()
        if not args.skip_evaluate:
            (tmp / "evaluate").mkdir()
            baseline = measured("python_import_torch", ["-c", "import torch"], tmp / "evaluate")
            print(row(baseline) + " (baseline: evaluate imports torch)")
            for outcome in evaluate_cases(tmp / "evaluate"):
                print(row(outcome))
    print(f"{over} case(s) over the bounds")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
