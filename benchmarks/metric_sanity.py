"""Metric sanity ladder: every metric should rank world models of known quality in order.

Runs the simulator oracle ``sim`` with growing action noise (a ladder of known order), plus the
ground truth, other degradations and ``static`` for reference, on the sample dataset; prints a
markdown table of overall values and whether each metric ranks the noise ladder in order.

    python benchmarks/metric_sanity.py --output runs/sanity [--protocol ewmbench-v2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ewmbench.metrics import metric_registry
from ewmbench.run import RunConfig, run

# The checked ladder, best to worst: the same physical replay with growing action noise. Every
# metric must rank these strictly in order, in its own direction.
LADDER = [
    ("sim", "sim", {}),
    ("sim noise 0.01 m", "sim", {"action_noise": 0.01}),
    ("sim noise 0.03 m", "sim", {"action_noise": 0.03}),
    ("sim noise 0.08 m", "sim", {"action_noise": 0.08}),
]
# Reported beside the ladder without an order claim: the GT itself (its frames pass through one
# JPEG decode, an undegraded replay does not), other degradations, and a frozen video, which a
# metric may rank above or below a noisy moving one.
REFERENCES = [
    ("ground-truth", "ground-truth", {}),
    ("sim lag 3", "sim", {"lag": 3}),
    ("sim drop 0.3", "sim", {"drop_frames": 0.3}),
    ("sim wrong colour", "sim", {"wrong_color": True}),
    ("static", "static", {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/sanity"))
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--protocol", default="ewmbench-v2")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--metrics", default=None, help="comma-separated metric names (default: all)")
    args = parser.parse_args()

    results = []
    for index, (label, model, options) in enumerate(LADDER + REFERENCES):
        start = time.perf_counter()
        result = run(
            RunConfig(
                output=args.output / f"{index}-{model}",
                model=model,
                model_options=options,
                dataset=args.dataset,
                protocol=args.protocol,
                trials=args.trials,
                metrics=args.metrics.split(",") if args.metrics else None,
            ),
            show_progress=False,
        )
        results.append((label, result.summary, time.perf_counter() - start))

    columns = [c for c, v in results[0][1]["overall"].items() if v is not None]
    print(f"protocol {args.protocol}, dataset {args.dataset}, {args.trials} trial(s) per episode\n")
    print("| model | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label, summary, _ in results:
        cells = [_cell(summary["overall"].get(c)) for c in columns]
        print(f"| {label} | " + " | ".join(cells) + " |")
    lower_is_better = {c for m in metric_registry().values() for c in m.lower_is_better}
    orders = []
    for column in columns:
        values = [
            _num(s["overall"][column]) if s["overall"].get(column) is not None else None
            for _, s, _ in results[: len(LADDER)]
        ]
        sign = -1 if column in lower_is_better else 1
        # Best to worst down the ladder, strictly: a tie means the metric cannot tell two rungs apart.
        ok = all(a is not None and b is not None and sign * a > sign * b for a, b in zip(values, values[1:]))
        orders.append("yes" if ok else "NO")
    print("| noise ladder strictly in order | " + " | ".join(orders) + " |")
    print("\nwall time per run (s): " + ", ".join(f"{label}: {t:.0f}" for label, _, t in results))


def _num(value) -> float:
    return float("inf") if value == "inf" else float(value)


def _cell(value) -> str:
    if value is None:
        return "-"
    return "inf" if _num(value) == float("inf") else f"{_num(value):.3f}"


if __name__ == "__main__":
    main()
