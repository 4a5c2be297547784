"""Cross-check our v1 output files against the official tool's own table writer.

For each case, random per-trial values (random ids, column subsets, an infinite PSNR) are written
with ``ewmbench.results.official.write_official_files``; the official tool's table writer, loaded from a
local checkout of the official code, then builds ``ewmbm_final_table.csv`` from our
``<name>_results.json``, and the two tables are compared byte for byte. This checks the JSON
shape (the official writer reads it) and every table rule at once.

    python benchmarks/official_files_check.py --official /path/to/EWMBench --cases 200

Nothing from the checkout is copied: its ``EWMBench/__init__.py`` is parsed and only the method
``merge_all_metrics_to_csv`` is run (the module itself imports GPU-only packages).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import io
import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from ewmbench.protocols import load_protocol
from ewmbench.results.official import OFFICIAL_COLUMNS, write_official_files


def official_writer(checkout: Path):
    """The official ``merge_all_metrics_to_csv`` as a plain function (``self`` unused)."""
    source = (checkout / "EWMBench" / "__init__.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "merge_all_metrics_to_csv":
            namespace = {"csv": csv, "re": re, "defaultdict": defaultdict}
            exec(compile(ast.Module([node], type_ignores=[]), "official-writer", "exec"), namespace)
            return namespace["merge_all_metrics_to_csv"]
    raise SystemExit(f"{checkout}: no merge_all_metrics_to_csv in EWMBench/__init__.py")


def random_case(rng: np.random.Generator) -> pd.DataFrame:
    tasks = rng.choice(["1", "2", "10", "23"], size=rng.integers(1, 4), replace=False)
    episodes = rng.choice(["3", "12", "0007", "101"], size=rng.integers(1, 4), replace=False)
    trials = ["1", "2", "3"][: rng.integers(1, 4)]
    ids = [(t, e, r) for t in tasks for e in episodes for r in trials]
    rows = pd.DataFrame(ids, columns=["task_id", "episode_id", "trial_id"])
    columns = [c for c in OFFICIAL_COLUMNS if rng.random() < 0.7] or ["psnr"]
    for column in columns:
        rows[column] = rng.uniform(0, 1, len(rows)) * (40 if column in ("psnr", "CLIPScore") else 1)
    if "logic_constraints" in rows:
        rows["logic_constraints"] = rows["logic_constraints"].round()
    if "diversity" in rows:
        per_episode = rows.groupby(["task_id", "episode_id"])["diversity"].transform("first")
        rows["diversity"] = per_episode / 100
    if "psnr" in rows and rng.random() < 0.3:
        rows.loc[int(rng.integers(len(rows))), "psnr"] = np.inf  # an identical frame pair
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--official", type=Path, required=True, help="a checkout of the official EWMBench code"
    )
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    merge = official_writer(args.official)
    protocol = load_protocol("ewmbench-v1")
    rng = np.random.default_rng(args.seed)
    identical, cells = 0, 0
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for case in range(args.cases):
            rows = random_case(rng)
            write_official_files(out, rows, "mine", "/data/mine_dataset", protocol)
            data = json.loads((out / "mine_results.json").read_text())
            with contextlib.redirect_stdout(io.StringIO()):
                merge(None, "mine", data, str(out / "official.csv"))
            ours, theirs = (out / "ewmbm_final_table.csv").read_bytes(), (out / "official.csv").read_bytes()
            cells += ours.count(b",") + ours.count(b"\r\n")
            if ours == theirs:
                identical += 1
            else:
                print(
                    f"case {case}: tables differ\n--- ours\n{ours.decode()}\n--- official writer\n{theirs.decode()}"
                )
    print(f"{identical} of {args.cases} cases byte-identical ({cells} cells written)")


if __name__ == "__main__":
    main()
