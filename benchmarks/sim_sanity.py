"""Metric sanity on the simulated sample: do metrics rank world models of known quality correctly?

    PYTHONPATH=. python benchmarks/sim_sanity.py [--dataset sample] [--out DIR] [--protocol ewmbench-v1]

Generates trials on the sample dataset for a ladder of models whose quality is known by
construction: ``ground-truth`` (exact), ``sim`` undegraded (an exact replay), ``sim`` with growing
action noise, lag and dropped frames, and ``static`` (no motion at all), then scores every
registered metric that can run here and prints a Markdown table. A metric passes the ladder when
its mean score gets strictly worse as the noise grows (sim > noise 0.01 > noise 0.03 > noise
0.08), in the metric's own direction (higher is better unless the metric's name says otherwise).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ewmbench.data.layout import Generated, GroundTruth, write_trial
from ewmbench.data.sample import resolve_dataset
from ewmbench.errors import ConfigError, Unavailable
from ewmbench.metrics import TrialInputs, metric_registry
from ewmbench.models import GenerationRequest, model_registry
from ewmbench.models.baselines import initial_frame
from ewmbench.preprocess import Preprocessor
from ewmbench.protocols import load_protocol

# (column label, model name, options); the ladder metrics must respect, best first.
LADDER = [
    ("sim", "sim", {}),
    ("sim noise 0.01", "sim", {"action_noise": 0.01}),
    ("sim noise 0.03", "sim", {"action_noise": 0.03}),
    ("sim noise 0.08", "sim", {"action_noise": 0.08}),
]
# Outside the ladder: ground-truth re-encodes the decoded GT JPEGs (so it is not bit-exact, while
# an undegraded sim replay is), and how a frozen video compares with a noisy moving one is not
# known in advance.
OTHERS = [
    ("ground-truth", "ground-truth", {}),
    ("sim lag 3", "sim", {"lag": 3}),
    ("sim drop 0.3", "sim", {"drop_frames": 0.3}),
    ("sim wrong colour", "sim", {"wrong_color": True}),
    ("static", "static", {}),
]
LOWER_IS_BETTER = ("fvd", "dtw", "distance", "error", "hsd", "fid")


def generate(dataset: GroundTruth, out: Path, label: str, model_name: str, options: dict) -> Generated:
    root = out / f"{label.replace(' ', '_')}_dataset"
    model = model_registry()[model_name](**options)
    for episode in dataset.episodes:
        target = root / episode.task / episode.episode / "0"
        if target.is_dir():
            continue
        sidecar = episode.sidecar
        length = len(sidecar.actions)
        request = GenerationRequest(
            episode=episode, trial="0", seed=0, num_frames=length, fps=sidecar.fps, views=("head",),
            instruction=episode.instruction, substeps=sidecar.substeps,
            memory_frames={"head": initial_frame(episode, "head")[None]}, actions=sidecar.actions,
        )
        write_trial(root, episode.task, episode.episode, "0", model.generate(request).frames["head"])
    return Generated(root)


def score(dataset: GroundTruth, generated: Generated, protocol, preprocessor: Preprocessor) -> dict[str, float | str]:
    results: dict[str, float | str] = {}
    for name, cls in sorted(metric_registry().items()):
        metric = cls()
        if metric.level != "trial":
            continue
        try:
            settings = protocol.settings(name)
            metric.check_available(preprocessor, settings)
            rows = [
                metric.score_trial(TrialInputs(dataset.episode(t.task, t.episode), t, preprocessor), settings)
                for t in generated.trials
            ]
        except (Unavailable, ConfigError) as exc:
            results[name] = f"skipped ({getattr(exc, 'reason', exc)})"
            continue
        for column in metric.columns:
            results[f"{name}/{column}" if len(metric.columns) > 1 else name] = float(np.mean([r[column] for r in rows]))
    return results


def ladder_verdict(metric: str, values: list[float]) -> str:
    """"yes" when every rung scores strictly worse than the one above (in the metric's direction),
    "ties" when some rungs score the same (the metric cannot tell them apart), else "NO"."""
    sign = -1.0 if any(word in metric.lower() for word in LOWER_IS_BETTER) else 1.0
    signed = [sign * v for v in values]
    if all(a > b for a, b in zip(signed, signed[1:])):
        return "yes"
    if all(a >= b for a, b in zip(signed, signed[1:])):
        return "ties"
    return "NO"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--out", type=Path, default=Path("sanity-runs"))
    parser.add_argument("--protocol", default="ewmbench-v1")
    args = parser.parse_args()
    dataset = GroundTruth(resolve_dataset(args.dataset))
    protocol = load_protocol(args.protocol)
    preprocessor = Preprocessor()
    columns = LADDER + OTHERS
    table = {label: score(dataset, generate(dataset, args.out, label, model, options), protocol, preprocessor) for label, model, options in columns}
    metrics = sorted({m for scores in table.values() for m in scores})
    print(f"| metric | {' | '.join(label for label, _, _ in columns)} | ladder ranked correctly |")
    print("|---" * (len(columns) + 2) + "|")
    for metric in metrics:
        cells = [table[label].get(metric, "-") for label, _, _ in columns]
        numeric = [c for c in cells[: len(LADDER)] if isinstance(c, float)]
        verdict = ladder_verdict(metric, numeric) if len(numeric) == len(LADDER) else "-"
        print(f"| {metric} | {' | '.join(f'{c:.3f}' if isinstance(c, float) else str(c) for c in cells)} | {verdict} |")


if __name__ == "__main__":
    main()
