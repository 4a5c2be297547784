"""Seeded coverage simulation of the comparison statistics (the figures in docs/reports.md).

    python benchmarks/statistics_coverage.py

Prints, for the same seeded synthetic data as ``tests/test_compare_statistics.py``: how often the
bootstrap CI of a run's value covers the true mean, how often the paired difference's interval
(inverted from the sign-flip test) covers the true difference, how often the test rejects a true
null, and how often an interval that excludes 0 sits beside p >= 1 - level (must be never).
"""

from __future__ import annotations

import numpy as np

from ewmbench.compare.statistics import bootstrap_ci, paired_comparison


def rows(by_episode: dict) -> list[dict]:
    return [
        {"task_id": "1", "episode_id": e, "trial_id": str(t + 1), "x": v}
        for e, values in by_episode.items()
        for t, v in enumerate(values)
    ]


def main() -> None:
    rng = np.random.default_rng(2024)
    hits = 0
    for r in range(400):
        effect = 2.0 + rng.normal(size=40)
        data = rows({f"{e:03d}": list(effect[e] + rng.normal(scale=0.5, size=3)) for e in range(40)})
        ci = bootstrap_ci(data, "x", resamples=1000, seed=r)
        hits += ci.low <= 2.0 <= ci.high
    print(f"bootstrap CI covers the true mean (400 runs, 40 episodes x 3 trials): {hits / 400:.3f}")

    rng = np.random.default_rng(7)
    covered = rejected = contradictions = 0
    repeats = 300
    for r in range(repeats):
        effect = rng.normal(size=30)
        a = rows({f"{e:02d}": list(effect[e] + rng.normal(scale=0.5, size=2)) for e in range(30)})
        b = rows({f"{e:02d}": list(effect[e] + 0.3 + rng.normal(scale=0.5, size=2)) for e in range(30)})
        null = rows({f"{e:02d}": list(effect[e] + rng.normal(scale=0.5, size=2)) for e in range(30)})
        result = paired_comparison(a, b, "x", direction="higher", permutations=2000, seed=r)
        covered += result.low <= 0.3 <= result.high
        same = paired_comparison(a, null, "x", direction="higher", permutations=2000, seed=r)
        rejected += same.p_value < 0.05
        for c in (result, same):
            contradictions += (c.low > 0 or c.high < 0) != (c.p_value < 0.05)
    print(
        f"paired interval covers the true difference (300 pairs, 30 episodes x 2 trials): {covered / repeats:.3f}"
    )
    print(f"sign-flip test rejects a true null (300 pairs): {rejected / repeats:.3f}")
    print(f"interval and p-value disagree: {contradictions} of {2 * repeats}")


if __name__ == "__main__":
    main()
