"""Every file of a scored run, written from its record.

``record.json`` (the record itself), ``rows.csv`` and ``rows.parquet`` (its rows, at full
precision), ``summary.json`` (:mod:`ewmbench.results.summary`) and the table with its results
JSON: the official tool's (``output_format: official``, :mod:`ewmbench.results.official`) or ours
(``ewmbench``). The terminal table is printed from the same record (``ewmbench.cli.common``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ewmbench.files import atomic_path, write_json, write_text
from ewmbench.protocols import Protocol
from ewmbench.results.aggregate import TABLE_FILE, results_file, table
from ewmbench.results.official import write_official_files
from ewmbench.results.record import RunRecord
from ewmbench.results.summary import RunNotes, summary

if TYPE_CHECKING:
    import pandas as pd


def write_run(
    output: Path, record: RunRecord, notes: RunNotes, protocol: Protocol, generated_root: Path
) -> dict:
    """Write the run's files into ``output``; returns the summary written. ``protocol`` is the one
    the record was scored under; ``generated_root`` the trials (the official JSON names their
    videos). The record is written last: a folder with ``record.json`` is a finished run."""
    rows = record.rows_frame()
    written = summary(record, notes)
    write_rows(output, rows)
    write_json(output / "summary.json", written)
    if protocol.output_format == "official":
        write_official_files(output, rows, record.model.name, generated_root, protocol)
    else:
        write_own_files(output, rows, written, protocol, record.model.name)
    record.save(output)
    return written


def write_rows(output: Path, rows: pd.DataFrame) -> None:
    """``rows.csv`` and ``rows.parquet``: every row value at full precision, under every protocol."""
    write_text(output / "rows.csv", rows.to_csv(index=False))
    with atomic_path(output / "rows.parquet") as tmp:
        rows.to_parquet(tmp, index=False)


def write_own_files(output: Path, rows: pd.DataFrame, summary: dict, protocol: Protocol, name: str) -> None:
    """Our table and ``<name>_results.json`` (the overall values), for ``output_format: ewmbench``."""
    write_text(output / TABLE_FILE, table(rows, protocol).to_csv(index=False))
    write_json(output / results_file(name), summary["overall"])
