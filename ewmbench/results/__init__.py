"""Results: the run record and its writers.

``record.py``: :class:`RunRecord`, the one record of a run (``record.json``, ``ewmbench-run/1``)
and its reader :func:`load_run`. ``aggregate.py``: the per-trial rows, best-of-N and aggregation
under a protocol, our table. ``summary.py``: ``summary.json``. ``official.py``: the official
tool's table and results JSON. ``writers.py``: every file of a scored run, written from its
record. The face imports nothing heavy (no pandas, no numpy).
"""

from ewmbench.results.aggregate import (
    FIRST_TRIAL,
    ID_COLUMNS,
    TABLE_FILE,
    aggregate,
    best_of_n_positions,
    metric_columns,
    results_file,
    round_rows,
    select_trials,
    table,
    table_columns,
)

__all__ = [
    "FIRST_TRIAL",
    "ID_COLUMNS",
    "TABLE_FILE",
    "aggregate",
    "best_of_n_positions",
    "metric_columns",
    "results_file",
    "round_rows",
    "select_trials",
    "table",
    "table_columns",
]
