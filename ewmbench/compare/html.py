"""``report.html``: one page over its report folder (the charts' SVG files and the worst-episode
strips' thumbnails, linking to the full-size images, all in ``figures/``; no network, no script).

Every section is a ``<details>`` element: the overall table, the figures and the worst episodes
open, the per-task tables folded. A report of one run reads as one: no baseline, no difference
columns or their explanation, no radar (one run is its own best on every axis).
"""

from __future__ import annotations

import math
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
details.section { margin-top: 22px; } details.section > summary { cursor: pointer; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
details.section > summary h2 { display: inline; margin: 0; border: 0; }
.thumbs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; margin-bottom: 10px; }
.thumb { margin: 0; } .thumb img { width: 360px; max-width: 100%; height: auto; border: 1px solid #ddd; display: block; }
.thumb figcaption { font-size: 12px; margin-top: 3px; }
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


def _figure(relative: str | None, caption: str) -> str:
    """A chart, by its path in the report folder (its SVG's text is text: small and sharp)."""
    if not relative:
        return ""
    return f'<div class="figure"><h3>{escape(caption)}</h3><img src="{escape(relative)}" alt="{escape(caption)}"></div>'


def _section(title: str, body: str, *, open_: bool = True) -> str:
    """A collapsible section of the page."""
    return f'<details class="section"{" open" if open_ else ""}><summary><h2>{escape(title)}</h2></summary>{body}</details>'


def _ceiling_text(value: float) -> str:
    return f"{value:g}"


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


def _task_heading(comparison: Comparison, scope: str) -> str:
    name = comparison.task_names.get(scope)
    if not name:
        return f"task {escape(scope)}"
    return f'{escape(name)} <span class="muted">task {escape(scope)}</span>'


def _thumb(full: str, small: str, alt: str, caption: str) -> str:
    return (
        f'<figure class="thumb"><a href="{escape(full)}"><img src="{escape(small)}" alt="{escape(alt)}" '
        f'loading="lazy"></a><figcaption>{caption}</figcaption></figure>'
    )


def _worst_section(comparison: Comparison, figures: dict) -> str:
    """Each run's strip of its worst episodes per metric, as a thumbnail linking to the full image:
    one row per metric, or for one run one row of all its metrics. A run whose every episode scores
    the metric's best possible value has nothing to show, and the page says so."""
    if not figures:
        return ""  # drawn without figures: report.json lists the worst cases
    strips, thumbnails = figures.get("worst", {}), figures.get("thumbnails", {})
    rows, all_cards, at_best_notes = [], [], []
    for metric in comparison.metrics:
        scored = [
            label for label in comparison.labels if comparison.values.get((OVERALL, metric.column, label))
        ]
        if not scored:
            continue  # a run-level or missing metric: no episodes to show
        ceiling = comparison.ceilings.get(metric.column)
        best = f"best possible {_ceiling_text(ceiling)}" if ceiling is not None else ""
        cards, at_best = [], []
        for label in scored:
            cases = [w for w in comparison.worst if w.metric == metric.column and w.run == label]
            full = strips.get(metric.column, {}).get(label)
            if not cases:
                at_best.append(label)
            if not cases or full is None:
                continue
            small = thumbnails.get(metric.column, {}).get(label, full)
            values = escape(", ".join(f"{w.value:.4g}" for w in cases))
            name = escape(metric.column if comparison.single else label)
            detail = f"{best}; " if comparison.single and best else ""
            cards.append(
                _thumb(
                    full,
                    small,
                    f"worst {metric.column} episodes of {label}",
                    f'<b>{name}</b> <span class="muted">{detail}{escape(metric.column)} = {values}</span>',
                )
            )
        if at_best:
            what = (
                f"the best possible {escape(_ceiling_text(ceiling))}"
                if ceiling is not None
                else "no finite value"
            )
            who = "" if comparison.single else f" of {escape(', '.join(at_best))}"
            at_best_notes.append(f"{escape(metric.column)}: every episode{who} scores {what}")
        all_cards += cards
        if cards:
            heading = escape(metric.column) + (f' <span class="muted">{best}</span>' if best else "")
            rows.append(f'<h3>{heading}</h3><div class="thumbs">{"".join(cards)}</div>')
    if not all_cards and not at_best_notes:
        return ""
    intro = (
        f'<p class="muted">Per metric and run, the {comparison.settings.worst} lowest-scoring episodes (highest for '
        "lower-is-better metrics) among those below the metric's best possible value: ground truth above, generated "
        "below, evenly spaced frames; for motion metrics the last panel draws the GT (green) and generated (red) "
        "gripper tracks over the first frame. Click a strip to open it at full size.</p>"
    )
    body = f'<div class="thumbs">{"".join(all_cards)}</div>' if comparison.single else "".join(rows)
    if at_best_notes:
        body += f'<p class="muted">No worst episode to show for {"; ".join(at_best_notes)}.</p>'
    return _section("Worst episodes", intro + body)


def render_html(comparison: Comparison, data: dict, output: Path) -> str:
    """The page; ``data`` is ``report.json``'s content (figure paths relative to ``output``)."""
    figures = data.get("figures", {})
    s = comparison.settings
    single = comparison.single
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
        f'<tr><td class="name">{escape(r["label"])}{" (baseline)" if r["label"] == comparison.baseline and not single else ""}</td>'
        f'<td class="name">{escape(r["model"])}</td><td class="name">{escape(r["protocol"])} <span class="muted">{escape(r["protocol_hash"][:12])}</span></td>'
        f'<td class="name"><span class="muted">{escape(r["dataset_hash"][:12])}</span></td><td>{r["episodes"]}</td><td>{r["rows_counted"]}</td>'
        f'<td class="name">{escape(", ".join(r["missing_columns"]) or "-")}</td></tr>'
        for r in data["runs"]
    )
    parts.append(
        '<table><tr><th class="name">run</th><th class="name">model</th><th class="name">protocol</th><th class="name">dataset</th>'
        f'<th>episodes</th><th>rows counted</th><th class="name">missing metrics</th></tr>{runs_rows}</table>'
    )
    if single:
        explanation = (
            f'<p class="muted">Each cell: value [{s.level:.0%} bootstrap CI over episodes, resampled within tasks]; '
            f"&uarr; higher is better, &darr; lower is better. Seed {s.seed}, {s.resamples} resamples.</p>"
        )
    else:
        explanation = (
            f'<p class="muted">Each cell: value [{s.level:.0%} bootstrap CI over episodes]. Difference columns: run &minus; baseline '
            f"[{s.level:.0%} interval inverted from the paired sign-flip test over episodes, so it excludes 0 exactly when "
            f"p &lt; {1 - s.level:.2g}], p = that test's p-value; Holm = corrected over the metrics of the run and scope. "
            f"&#9650; significantly better, &#9660; significantly worse (p &lt; {s.alpha}), direction-aware: "
            f"&uarr; higher is better, &darr; lower is better. Seed {s.seed}, {s.resamples} resamples.</p>"
        )
    parts.append(_section("Overall", _table(comparison, OVERALL) + explanation))
    charts = [
        _figure(figures.get("radar"), "Radar: each run relative to the best"),
        _figure(figures.get("agreement"), "Metric agreement (Kendall tau across trials)"),
    ]
    body = ""
    if any(charts):
        body += '<div class="figures">' + "".join(charts) + "</div>"
    body += _figure(figures.get("tasks"), f"Per task, with {s.level:.0%} CIs")
    if body:
        parts.append(_section("Figures", body))
    tasks = comparison.scopes[1:]
    parts.append(
        _section(
            f"Per task ({len(tasks)})",
            "".join(
                f"<h3>{_task_heading(comparison, scope)}</h3>" + _table(comparison, scope) for scope in tasks
            ),
            open_=False,
        )
    )
    parts.append(_worst_section(comparison, figures))
    parts.append(
        f'<p class="muted">Episodes compared: {len(comparison.episodes)}. Every number on this page is in '
        "<code>report.json</code>; <code>report.csv</code> holds the tables.</p></body></html>"
    )
    return "\n".join(p for p in parts if p) + "\n"
