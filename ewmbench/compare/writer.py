"""Writing a report folder: ``report.json``, ``report.csv``, ``figures/`` and ``report.html``."""

from __future__ import annotations

from pathlib import Path

from ewmbench.compare.html import render_html
from ewmbench.compare.report import Comparison, to_dict, to_table
from ewmbench.files import write_json, write_text


def write_report(comparison: Comparison, output: Path | str, figures: bool = True) -> Path:
    """Write ``report.json``, ``report.csv``, ``figures/`` and ``report.html`` into ``output``."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    figure_files: dict[str, object] = {}
    if figures:
        from ewmbench.compare.figures import draw_all  # matplotlib, only when drawing

        figure_files = draw_all(comparison, output)
    data = to_dict(comparison, figure_files)
    write_json(output / "report.json", data)
    write_text(output / "report.csv", to_table(comparison).to_csv(index=False, float_format="%.10g"))
    write_text(output / "report.html", render_html(comparison, data, output))
    return output
