"""``summary.json``: the run's record as one readable page, with what scoring noticed on the way.

Everything in it comes from the :class:`~ewmbench.results.record.RunRecord`, except the notes of
the run itself (:class:`RunNotes`: what could not be scored and why, problems found in the
inputs, size mismatches, how many records were computed now), which a record does not keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ewmbench.results.record import RunRecord


@dataclass
class RunNotes:
    """What a run noticed besides its numbers (``summary.json`` only)."""

    generated_trials: int
    episodes_scored: int
    trials_scored: int
    notes: list[dict] = field(default_factory=list)  # per item: failed, skipped or warned
    problems: list[dict] = field(default_factory=list)  # {path, message, severity}
    trial_warnings: list[dict] = field(default_factory=list)  # trials whose size differs from the GT
    scored_now: int = 0  # records computed by this run (0: everything was reused)


def summary(record: RunRecord, notes: RunNotes) -> dict:
    """The ``summary.json`` of ``record``."""
    gt_episodes = record.dataset.episodes
    return {
        "model": record.model.name,
        "oracle": record.model.oracle,
        "protocol": {
            "name": record.protocol.name,
            "version": record.protocol.version,
            "source": record.protocol.source,
        },
        "counts": {
            "episodes": record.counts.episodes,
            "trials": record.counts.trials,
            "gt_episodes": gt_episodes,
            "generated_trials": notes.generated_trials,
            "episodes_scored": notes.episodes_scored,
            "trials_scored": notes.trials_scored,
        },
        "scored": f"{notes.episodes_scored} of {gt_episodes} episodes ({notes.trials_scored} of "
        f"{notes.generated_trials} generated trials)",
        "overall": dict(record.overall),
        "per_task": {c: per for c, per in record.per_task.items() if record.columns[c].level != "dataset"},
        "rows_counted": record.counts.rows_counted,
        "task_names": dict(record.dataset.task_names),
        "directions": {c: record.columns[c].direction for c in record.overall},
        "skipped_metrics": {name: {"reason": s.reason, "fix": s.fix} for name, s in record.skipped.items()},
        "notes": notes.notes,
        "problems": notes.problems,
        "trial_warnings": notes.trial_warnings,
        "scored_now": notes.scored_now,
    }
