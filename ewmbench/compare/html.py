"""``report.html``: one self-contained page (SVG inline, PNG as data URIs, no network, no script)."""

from __future__ import annotations

import base64
import math
import re
from html import escape
from pathlib import Path

from ewmbench.compare.report import OVERALL, Comparison, difference_text

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1180px;
       color: #1d1d1f; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 7px; text-align: right; white-space: nowrap; }
th { background: #f5f5f7; } td.name, th.name { text-align: left; }
td.better { background: #e3f4e6; } td.worse { background: #fbe4e4; } td.missing { color: #999; font-style: italic; }
.ci { color: #666; font-size: 11px; } .p { color: #666; font-size: 11px; }
.note { background: #fff4d6; border: 1px solid #e8c969; padding: 8px 12px; margin: 8px 0; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.figure svg, .figure img { max-width: 100%; height: auto; }
.strip img { max-width: 100%; border: 1px solid #eee; }
.muted { color: #666; font-size: 12px; } code { background: #f5f5f7; padding: 1px 4px; }
"""


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:.4g}"
    if magnitude >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _inline_svg(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^<\?xml[^>]*>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    return text


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure(output: Path, relative: str | None, caption: str) -> str:
    if not relative:
        return ""
    path = output / relative
    if path.suffix == ".svg":
        body = _inline_svg(path)
    else:
        body = f'<img src="{_data_uri(path)}" alt="{escape(caption)}">'
    return f'<div class="figure"><h3>{escape(caption)}</h3>{body}</div>'


def _table(comparison: Comparison, scope: str) -> str:
    labels = comparison.labels
    head = ['<th class="name">metric</th>']
    for label in labels:
        head.append(f"<th>{escape(label)}</th>")
        if label != comparison.baseline:
            head.append(f"<th>{escape(label)} &minus; {escape(comparison.baseline)}</th>")
    body = []
    for metric in comparison.metrics:
        arrow = "&uarr;" if metric.direction == "higher" else "&darr;"
        cells = [
            f'<td class="name">{escape(metric.column)} {arrow} <span class="muted">{escape(metric.group)}</span></td>'
        ]
        for label in labels:
            interval = comparison.values.get((scope, metric.column, label))
            run_value = comparison.run_level.get((metric.column, label)) if scope == OVERALL else None
            if interval is not None:
                cells.append(
                    f'<td>{_number(interval.estimate)} <span class="ci">[{_number(interval.low)}, {_number(interval.high)}]</span></td>'
                )
            elif run_value is not None:
                cells.append(f'<td>{_number(run_value)} <span class="ci">(run-level, no CI)</span></td>')
            elif scope != OVERALL and (metric.column, label) in comparison.run_level:
                cells.append('<td class="missing">run-level only</td>')
            else:
                cells.append('<td class="missing">missing</td>')
            if label == comparison.baseline:
                continue
            diff = comparison.differences.get((scope, metric.column, label))
            if diff is None:
                cells.append('<td class="missing">-</td>')
                continue
            verdict = diff.verdict(comparison.settings.alpha)
            mark = {"better": " &#9650;", "worse": " &#9660;"}.get(verdict, "")
            css = f' class="{verdict}"' if verdict in ("better", "worse") else ""
            value, interval, p_text = difference_text(diff)
            cells.append(
                f'<td{css}>{value}{mark} <span class="ci">{interval}</span> <span class="p">{p_text}</span></td>'
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{''.join(head)}</tr>{''.join(body)}</table>"


def render_html(comparison: Comparison, data: dict, output: Path) -> str:
    """The page; ``data`` is ``report.json``'s content (figure paths relative to ``output``)."""
    figures = data.get("figures", {})
    s = comparison.settings
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ewmbench report: {escape(', '.join(comparison.labels))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>ewmbench report: {escape(' vs '.join(comparison.labels))}</h1>",
    ]
    for note in comparison.notes:
        parts.append(f'<div class="note"><b>Runs differ.</b> {escape(note)}</div>')
    runs_rows = "".join(
        f'<tr><td class="name">{escape(r["label"])}{" (baseline)" if r["label"] == comparison.baseline else ""}</td>'
        f'<td class="name">{escape(r["model"])}</td><td class="name">{escape(r["protocol"])} <span class="muted">{escape(r["protocol_hash"][:12])}</span></td>'
        f'<td class="name"><span class="muted">{escape(r["dataset_hash"][:12])}</span></td><td>{r["episodes"]}</td><td>{r["rows_counted"]}</td>'
        f'<td class="name">{escape(", ".join(r["missing_columns"]) or "-")}</td></tr>'
        for r in data["runs"]
    )
    parts.append(
        '<table><tr><th class="name">run</th><th class="name">model</th><th class="name">protocol</th><th class="name">dataset</th>'
        f'<th>episodes</th><th>rows counted</th><th class="name">missing metrics</th></tr>{runs_rows}</table>'
    )
    parts.append(
        f'<p class="muted">Each cell: value [{s.level:.0%} bootstrap CI over episodes]. Difference columns: run &minus; baseline '
        f"[{s.level:.0%} interval inverted from the paired sign-flip test over episodes, so it excludes 0 exactly when "
        f"p &lt; {1 - s.level:.2g}], p = that test's p-value; Holm = corrected over the metrics of the run and scope. "
        f"&#9650; significantly better, &#9660; significantly worse (p &lt; {s.alpha}), direction-aware: "
        f"&uarr; higher is better, &darr; lower is better. Seed {s.seed}, {s.resamples} resamples.</p>"
    )
    parts.append("<h2>Overall</h2>" + _table(comparison, OVERALL))
    parts.append('<div class="figures">')
    parts.append(_figure(output, figures.get("radar"), "Radar: each run relative to the best"))
    parts.append(_figure(output, figures.get("agreement"), "Metric agreement (Kendall tau across trials)"))
    parts.append("</div>")
    parts.append(_figure(output, figures.get("tasks"), "Per task, with 95% CIs"))
    parts.append("<h2>Per task</h2>")
    for scope in comparison.scopes[1:]:
        parts.append(f"<h3>task {escape(scope)}</h3>" + _table(comparison, scope))
    worst = figures.get("worst", {})
    if worst:
        parts.append(
            '<h2>Worst episodes</h2><p class="muted">Per metric and run, the lowest-scoring episodes (highest for '
            "lower-is-better metrics): ground truth above, generated below, evenly spaced frames; for motion metrics the "
            "last panel draws the GT (green) and generated (red) gripper tracks over the first frame.</p>"
        )
        for metric in comparison.metrics:
            for label, relative in worst.get(metric.column, {}).items():
                parts.append(
                    f'<div class="strip">{_figure(output, relative, f"{metric.column}: {label}")}</div>'
                )
    parts.append(
        f'<p class="muted">Episodes compared: {len(comparison.episodes)}. Every number on this page is in '
        "<code>report.json</code>; <code>report.csv</code> holds the tables.</p></body></html>"
    )
    return "\n".join(p for p in parts if p) + "\n"
