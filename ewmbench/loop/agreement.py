"""How far a world model's verdicts can be trusted: the same policies, judged in the world model
and in a reference simulator whose outcome is exact.

Per policy, the success rate in each; over policies, the Pearson and Spearman correlation of the
two rates (WorldArena's "policy evaluator" measure); per episode, the share of verdicts that agree
(accuracy) and Cohen's kappa (agreement beyond what the two success rates alone give by chance);
and the judge's calibration: its score (a probability or reward in [0, 1]) against the reference
outcome, as a Brier score and an expected calibration error over equal-width bins.

An episode that failed on either side (a server error, a wrong frame count) is left out of the
per-episode comparison and listed with its reason. A figure that is undefined is ``None`` (JSON
``null``): a correlation over fewer than two policies or with no spread, kappa when chance
agreement is already 1.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from ewmbench.errors import ConfigError
from ewmbench.files import write_json
from ewmbench.loop.policies import PolicySpec, policy_class
from ewmbench.loop.rollout import LoopConfig, evaluate_policy

AGREEMENT_FORMAT = "ewmbench-agreement/1"
CALIBRATION_BINS = 5


def pearson(x: list[float], y: list[float]) -> float | None:
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    a, b = a - a.mean(), b - b.mean()
    return float(np.clip((a @ b) / math.sqrt((a @ a) * (b @ b)), -1.0, 1.0))


def spearman(x: list[float], y: list[float]) -> float | None:
    """Pearson's r of the ranks (ties share their mean rank)."""
    from scipy.stats import rankdata

    if len(x) < 2:
        return None
    return pearson(list(rankdata(x)), list(rankdata(y)))


def cohen_kappa(world: list[bool], reference: list[bool]) -> float | None:
    if not world:
        return None
    w, r = np.asarray(world, dtype=bool), np.asarray(reference, dtype=bool)
    observed = float(np.mean(w == r))
    chance = float(w.mean() * r.mean() + (1 - w.mean()) * (1 - r.mean()))
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def calibration(scores: list[float], outcomes: list[bool], bins: int = CALIBRATION_BINS) -> dict:
    """Brier score, expected calibration error and the reliability table of ``scores`` against ``outcomes``."""
    if not scores:
        return {"brier": None, "ece": None, "bins": []}
    s, o = np.asarray(scores, dtype=np.float64), np.asarray(outcomes, dtype=np.float64)
    index = np.minimum(
        (s * bins).astype(int), bins - 1
    )  # equal-width bins over [0, 1]; 1.0 falls in the last
    table, ece = [], 0.0
    for b in range(bins):
        members = index == b
        if not members.any():
            continue
        mean_score, frequency = float(s[members].mean()), float(o[members].mean())
        ece += members.mean() * abs(mean_score - frequency)
        table.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": int(members.sum()),
                "mean_score": mean_score,
                "reference_success": frequency,
            }
        )
    return {"brier": float(np.mean((s - o) ** 2)), "ece": float(ece), "bins": table}


def agreement(world: dict[str, dict], reference: dict[str, dict]) -> dict:
    """The agreement figures from per-policy summaries (``evaluate_policy``'s) in both environments."""
    policies, pairs, excluded = {}, [], []
    for label, world_summary in world.items():
        ref_summary = reference[label]
        ref_by_key = {(r["task"], r["episode"]): r for r in ref_summary["episodes"]}
        for record in world_summary["episodes"]:
            key = (record["task"], record["episode"])
            other = ref_by_key.get(key)
            if other is None:
                continue
            if record["status"] != "ok" or other["status"] != "ok":
                reasons = {
                    side: r["reason"]
                    for side, r in (("world_model", record), ("reference", other))
                    if r["status"] != "ok"
                }
                excluded.append({"policy": label, "task": key[0], "episode": key[1], "reasons": reasons})
                continue
            pairs.append(
                {
                    "policy": label,
                    "task": key[0],
                    "episode": key[1],
                    "world_model": bool(record["verdict"]["success"]),
                    "reference": bool(other["verdict"]["success"]),
                    "score": float(record["verdict"]["score"]),
                }
            )
        policies[label] = {
            "policy": world_summary["policy"],
            "world_model_success": world_summary["success_rate"],
            "reference_success": ref_summary["success_rate"],
            "world_model_counts": world_summary["counts"],
            "reference_counts": ref_summary["counts"],
        }
    rated = [
        p
        for p in policies.values()
        if p["world_model_success"] is not None and p["reference_success"] is not None
    ]
    x = [p["world_model_success"] for p in rated]
    y = [p["reference_success"] for p in rated]
    w = [p["world_model"] for p in pairs]
    r = [p["reference"] for p in pairs]
    return {
        "format": AGREEMENT_FORMAT,
        "pearson": pearson(x, y),
        "spearman": spearman(x, y),
        "accuracy": float(np.mean(np.asarray(w) == np.asarray(r))) if pairs else None,
        "kappa": cohen_kappa(w, r),
        "calibration": calibration([p["score"] for p in pairs], r),
        "episodes_compared": len(pairs),
        "policies": policies,
        "disagreements": [p for p in pairs if p["world_model"] != p["reference"]],
        "excluded": excluded,
        "pairs": pairs,
    }


def folder_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "policy"


def run_agreement(
    policies: list[PolicySpec],
    world: LoopConfig,
    reference: str = "sim",
    reference_options: dict | None = None,
    progress: bool = True,
) -> dict:
    """Run every policy in ``world``'s world model and in the reference simulator; write ``agreement.json``.

    ``world`` gives the world model, judge, dataset, episodes, horizon and size; its ``policy`` and
    ``output`` are replaced per policy. The reference is judged by its exact state; policies that
    act from the state alone are run there without rendering.
    """

    if reference != "sim":
        raise ConfigError(
            f"the reference environment must be the simulator ('sim'), whose outcome is exact; got {reference!r}"
        )
    if not policies:
        raise ConfigError("no policies given")
    folders = [folder_name(p.label) for p in policies]
    if len(set(folders)) != len(folders):
        raise ConfigError(f"policy labels collide as folder names: {', '.join(p.label for p in policies)}")
    output = Path(world.output)
    world_summaries, reference_summaries = {}, {}
    for spec, folder in zip(policies, folders):
        needs_frames = policy_class(spec.name).needs_frames
        world_summaries[spec.label] = evaluate_policy(
            replace(world, policy=spec, output=output / "policies" / folder / "world_model"),
            progress,
            f"{spec.label} in the world model ({world.world_model})",
        )
        ref_config = replace(
            world,
            policy=spec,
            output=output / "policies" / folder / "reference",
            world_model=reference,
            world_model_options=dict(reference_options or {}),
            judge="state",
            judge_options={},
            views=world.views if needs_frames else (),
        )
        reference_summaries[spec.label] = evaluate_policy(
            ref_config, progress, f"{spec.label} in the reference ({reference})"
        )
    result = agreement(world_summaries, reference_summaries)
    result["world_model"] = {
        "name": world.world_model,
        "options": world.world_model_options,
        "judge": world_summaries[policies[0].label]["judge"],
    }
    result["reference"] = {"name": reference, "options": dict(reference_options or {}), "judge": "state"}
    write_json(output / "agreement.json", result)
    return result
