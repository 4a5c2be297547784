"""Regenerate the board's verified entries on the sample benchmark: baselines and the sim ladder.

    python leaderboards/ewmbench/make_verified.py [--runs runs/board] [--board leaderboards/ewmbench]

Each model is run on the embedded sample (1 trial per episode) under the board's protocol, with
the weight-free metrics and the shipped gripper detector (neural metrics are skipped offline), and
its run record becomes a verified entry with 95% bootstrap intervals over episodes. Existing
entries of the same ids are replaced; the runs stay in --runs so the numbers can be checked.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ewmbench.leaderboard.entries import entry_from_record, write_entry
from ewmbench.leaderboard.intake import check_record
from ewmbench.leaderboard.rule import load_rule
from ewmbench.results.record import load_run
from ewmbench.run import RunConfig, run

HERE = Path(__file__).resolve().parent
BASE = {"organization": "ewmbench", "release_year": 2026, "source_type": "open_source"}
# (entry id, adapter, options, model metadata, note)
MODELS = [
    (
        "sample-ground-truth",
        "ground-truth",
        {},
        {"model_name": "ground-truth", "version": "oracle", "control_type": "hybrid"},
        "Returns the ground-truth video: the upper bound of every metric (control_type has no value for an oracle).",
    ),
    (
        "sample-sim-exact",
        "sim",
        {},
        {"model_name": "sim", "version": "exact replay", "control_type": "action_driven"},
        "Replays the episode's recorded actions in the simulator that made the sample.",
    ),
    (
        "sample-sim-noise-0.01",
        "sim",
        {"action_noise": 0.01},
        {"model_name": "sim", "version": "action noise 0.01 m", "control_type": "action_driven"},
        "Replay with Gaussian noise (sd 0.01 m) on both hands' targets.",
    ),
    (
        "sample-sim-noise-0.03",
        "sim",
        {"action_noise": 0.03},
        {"model_name": "sim", "version": "action noise 0.03 m", "control_type": "action_driven"},
        "Replay with Gaussian noise (sd 0.03 m) on both hands' targets.",
    ),
    (
        "sample-sim-noise-0.08",
        "sim",
        {"action_noise": 0.08},
        {"model_name": "sim", "version": "action noise 0.08 m", "control_type": "action_driven"},
        "Replay with Gaussian noise (sd 0.08 m) on both hands' targets.",
    ),
    (
        "sample-static",
        "static",
        {},
        {"model_name": "static", "version": "initial frame", "control_type": "text_driven"},
        "Repeats the initial frame: the lower bound of motion (conditioned on the image only).",
    ),
]


def command_for(model: str, options: dict, protocol: str, output: Path) -> str:
    parts = [
        "ewmbench",
        "run",
        "--model",
        model,
        "--dataset",
        "sample",
        "--trials",
        "1",
        "--protocol",
        protocol,
    ]
    for key, value in options.items():
        parts += ["--model-option", f"{key}={value}"]
    return shlex.join(parts + ["--output", str(output)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, default=Path("runs/board"))
    parser.add_argument("--board", type=Path, default=HERE)
    parser.add_argument("--only", default=None, help="comma-separated entry ids")
    parser.add_argument(
        "--reuse", action="store_true", help="make entries from runs already in --runs (no new runs)"
    )
    args = parser.parse_args()
    rule = load_rule(args.board)
    wanted = set(args.only.split(",")) if args.only else None
    for entry_id, model, options, meta, note in MODELS:
        if wanted and entry_id not in wanted:
            continue
        output = args.runs / entry_id
        if args.reuse and (output / "record.json").is_file():
            print(f"{entry_id}: reusing {output}")
        else:
            run(
                RunConfig(
                    output=output,
                    protocol=rule.protocol,
                    model=model,
                    model_options=options,
                    dataset="sample",
                    trials=1,
                ),
                show_progress=False,
            )
        record = load_run(output)
        check_record(record, rule)  # the same checks a submitted record passes
        # the command as anyone reproduces it: a relative output folder, never this machine's path
        provenance = {
            "command": command_for(model, options, rule.protocol, Path("runs") / entry_id),
            "note": note,
        }
        entry = entry_from_record(record, rule, {**BASE, **meta}, "verified", entry_id, provenance)
        target = args.board / "entries" / f"{entry_id}.json"
        target.unlink(missing_ok=True)
        write_entry(args.board, entry)
        shown = ", ".join(f"{c} {v:.3f}" for c, v in entry.overall.items())
        print(f"{entry_id}: {shown}")


if __name__ == "__main__":
    main()
