"""The static site of a board: plain HTML, CSS and a little JavaScript, no server, no CDN.

``build_site(board, output)`` writes::

    index.html              one ranking per benchmark: aggregate, groups and every column, sortable,
                            with filters (control type, source type, provenance kind)
    entries/<id>.html       per entry: metadata, a radar chart of the normalised groups (inline
                            SVG), overall and per-task values with intervals, the paper's own
                            columns, provenance and the command that reproduces a verified entry
    leaderboard.csv/.json   every number of the tables
    style.css, app.js

Pages work opened from ``file://``: the script reads nothing over the network, and sorting and
filtering work on the table already in the page.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path

from ewmbench.leaderboard.entries import Entry, load_entries
from ewmbench.leaderboard.rule import Rule, Score, load_rule

KIND_LABELS = {"reported": "reported", "verified": "verified", "self-reported": "self-reported"}


@dataclass
class Ranked:
    entry: Entry
    score: Score
    rank: int | None


def rank_benchmark(rule: Rule, entries: list[Entry]) -> list[Ranked]:
    """Entries of one benchmark, best aggregate first; unranked ones (too few columns) last."""
    scored = [(e, rule.score(e.overall)) for e in entries]
    ranked = sorted((p for p in scored if rule.ranked(p[1])), key=lambda p: (-p[1].aggregate, p[0].id))
    rest = sorted((p for p in scored if not rule.ranked(p[1])), key=lambda p: p[0].id)
    out, previous, rank = [], None, 0
    for position, (entry, score) in enumerate(ranked, start=1):
        if previous is None or score.aggregate != previous:
            rank = position  # ties share a rank (1, 1, 3)
        previous = score.aggregate
        out.append(Ranked(entry, score, rank))
    return out + [Ranked(e, s, None) for e, s in rest]


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/r"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def fmt_score(value: float | None) -> str:
    """Aggregate and group scores (0-100): two decimals."""
    return "n/r" if value is None else f"{value:.2f}"


def _sort_value(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return (
        "1e308" if math.isinf(value) and value > 0 else "-1e308" if math.isinf(value) else repr(float(value))
    )


def board_data(rule: Rule, entries: list[Entry]) -> dict:
    """Everything the site shows, as plain data (written as leaderboard.json)."""
    benchmarks = []
    for benchmark in rule.benchmarks.values():
        rows = rank_benchmark(rule, [e for e in entries if e.benchmark == benchmark.id])
        benchmarks.append(
            {
                "id": benchmark.id,
                "title": benchmark.title,
                "description": benchmark.description,
                "dataset_sha256": benchmark.dataset_sha256,
                "entries": [
                    {
                        "id": r.entry.id,
                        "rank": r.rank,
                        "model": r.entry.model,
                        "kind": r.entry.kind,
                        "aggregate": r.score.aggregate,
                        "covered": r.score.covered,
                        "total": r.score.total,
                        "groups": r.score.groups,
                        "values": {c: r.entry.overall.get(c) for c in rule.columns},
                        "normalised": r.score.normalised,
                        "ci": r.entry.ci,
                        "provenance": r.entry.provenance,
                        "reported": r.entry.reported,
                        "counts": r.entry.counts,
                        "protocol": r.entry.protocol,
                    }
                    for r in rows
                ],
            }
        )
    return {
        "rule": {
            "name": rule.name,
            "title": rule.title,
            "version": rule.version,
            "protocol": rule.protocol,
            "protocol_version": rule.protocol_version,
            "groups": list(rule.groups),
            "rank_min_columns": rule.rank_min_columns,
            "columns": {
                c.name: {
                    "label": c.label,
                    "group": c.group,
                    "direction": c.direction,
                    "bounds": [c.low, c.high],
                }
                for c in rule.columns.values()
            },
        },
        "benchmarks": benchmarks,
    }


def _json_value(value):
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _csv_number(value) -> str:
    return "" if value is None else repr(float(value))


def board_csv(rule: Rule, data: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = list(rule.columns)
    writer.writerow(
        [
            "benchmark",
            "rank",
            "entry",
            "model_name",
            "version",
            "organization",
            "release_year",
            "source_type",
            "control_type",
            "kind",
            "aggregate",
            "columns_covered",
            "columns_total",
            *[f"group_{g}" for g in rule.groups],
            *columns,
            *[f"{c}_ci_low" for c in columns],
            *[f"{c}_ci_high" for c in columns],
        ]
    )
    for benchmark in data["benchmarks"]:
        for e in benchmark["entries"]:
            m = e["model"]
            writer.writerow(
                [
                    benchmark["id"],
                    e["rank"] or "",
                    e["id"],
                    m["model_name"],
                    m["version"],
                    m["organization"],
                    m["release_year"],
                    m["source_type"],
                    m["control_type"],
                    e["kind"],
                    _csv_number(e["aggregate"]),
                    e["covered"],
                    e["total"],
                    *[_csv_number(e["groups"][g]) for g in rule.groups],
                    *[_csv_number(e["values"][c]) for c in columns],
                    *[_csv_number(e["ci"].get(c, [None, None])[0]) for c in columns],
                    *[_csv_number(e["ci"].get(c, [None, None])[1]) for c in columns],
                ]
            )
    return buffer.getvalue()


# ---------------------------------------------------------------- pages


def _page(title: str, body: str, depth: int = 0) -> str:
    up = "../" * depth
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>{escape(title)}</title>\n<link rel="stylesheet" href="{up}style.css">\n</head>\n'
        f'<body>\n{body}\n<script src="{up}app.js"></script>\n</body>\n</html>\n'
    )


def _kind_badge(kind: str) -> str:
    return f'<span class="badge kind-{escape(kind)}">{escape(KIND_LABELS.get(kind, kind))}</span>'


def _filters(data: dict) -> str:
    options = {
        "control": ("Control", ["text_driven", "action_driven", "hybrid"]),
        "source": ("Source", ["open_source", "closed_source"]),
        "kind": ("Provenance", ["reported", "verified", "self-reported"]),
    }
    parts = []
    for key, (label, values) in options.items():
        choices = "".join(
            f'<option value="{escape(v)}">{escape(v.replace("_", " "))}</option>' for v in values
        )
        parts.append(
            f'<label>{label} <select data-filter="{key}"><option value="">all</option>{choices}</select></label>'
        )
    return (
        f'<form class="filters" aria-label="Filter entries">{"".join(parts)}'
        '<p class="shown" aria-live="polite"></p></form>'
    )


def _table(rule: Rule, benchmark: dict) -> str:
    groups = list(rule.groups)
    head = [
        '<th scope="col" aria-sort="ascending"><button type="button" data-col="0" data-type="num">Rank</button></th>',
        '<th scope="col" aria-sort="none"><button type="button" data-col="1" data-type="text">Model</button></th>',
        '<th scope="col" aria-sort="none"><button type="button" data-col="2" data-type="text">Provenance</button></th>',
        '<th scope="col" aria-sort="none"><button type="button" data-col="3" data-type="num">Score</button></th>',
    ]
    index = 4
    for group in groups:
        head.append(
            f'<th scope="col" aria-sort="none" class="group"><button type="button" data-col="{index}" data-type="num">{escape(group.title())}</button></th>'
        )
        index += 1
    for column in rule.columns.values():
        arrow = "↑" if column.direction == "higher" else "↓"
        title = (
            f"{column.label}: {column.direction} is better; normalised on [{column.low:g}, {column.high:g}]"
        )
        head.append(
            f'<th scope="col" aria-sort="none"><button type="button" data-col="{index}" data-type="num" title="{escape(title)}">'
            f'{escape(column.label)} <span aria-hidden="true">{arrow}</span></button></th>'
        )
        index += 1
    rows = []
    for e in benchmark["entries"]:
        m = e["model"]
        cells = [
            f'<td data-v="{e["rank"] if e["rank"] is not None else ""}">{e["rank"] if e["rank"] is not None else "–"}</td>',
            (
                f'<th scope="row" data-v="{escape(m["model_name"].lower())}"><a href="entries/{escape(e["id"])}.html">{escape(m["model_name"])}</a>'
                f'<span class="version">{escape(str(m["version"]))}</span><span class="org">{escape(m["organization"])}</span></th>'
            ),
            f'<td data-v="{escape(e["kind"])}">{_kind_badge(e["kind"])}</td>',
            (
                f'<td data-v="{_sort_value(e["aggregate"])}" class="score">{fmt_score(e["aggregate"])}'
                f'<span class="covered" title="columns in this score">{e["covered"]}/{e["total"]} cols</span></td>'
            ),
        ]
        for group in groups:
            value = e["groups"][group]
            cells.append(f'<td data-v="{_sort_value(value)}" class="group">{fmt_score(value)}</td>')
        for name in rule.columns:
            value = e["values"][name]
            ci = e["ci"].get(name)
            extra = (
                f'<span class="ci" title="95% bootstrap interval">[{fmt(ci[0])}, {fmt(ci[1])}]</span>'
                if ci
                else ""
            )
            label = ' title="not reported"' if value is None else ""
            cells.append(f'<td data-v="{_sort_value(value)}"{label}>{fmt(value)}{extra}</td>')
        rows.append(
            f'<tr data-control="{escape(m["control_type"])}" data-source="{escape(m["source_type"])}" '
            f'data-kind="{escape(e["kind"])}">{"".join(cells)}</tr>'
        )
    if not rows:
        return '<p class="empty">No entries yet.</p>'
    caption = f"Ranking on {escape(benchmark['title'])}: click a column heading to sort"
    return (
        f'<div class="table-wrap" tabindex="0" role="region" aria-label="{escape(benchmark["title"])} ranking">'
        f'<table class="ranking"><caption>{caption}</caption><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def index_page(rule: Rule, data: dict) -> str:
    sections = []
    for benchmark in data["benchmarks"]:
        description = f"<p>{escape(benchmark['description'])}</p>" if benchmark["description"] else ""
        sections.append(
            f'<section class="benchmark" id="{escape(benchmark["id"])}" aria-labelledby="h-{escape(benchmark["id"])}">'
            f'<h2 id="h-{escape(benchmark["id"])}">{escape(benchmark["title"])}</h2>{description}{_table(rule, benchmark)}</section>'
        )
    body = (
        f"<header><h1>{escape(rule.title)}</h1>"
        f"<p>Rule version {escape(rule.version)}. Computed entries are scored under <code>{escape(rule.protocol)}</code> "
        f"{escape(rule.protocol_version)}. Score: the mean of the normalised columns x 100 (1 best on each column); a column "
        "not reported (n/r) is left out, and each score says how many columns it covers. Entries covering fewer than "
        f"{rule.rank_min_columns} columns are listed without a rank. Entries measured on different data are ranked separately. "
        "Provenance: <em>reported</em> (copied from a paper), <em>verified</em> (computed by ewmbench, with 95% bootstrap intervals "
        "over episodes), <em>self-reported</em> (a submitter's run record).</p>"
        f"{_filters(data)}</header>\n<main>{''.join(sections)}</main>\n"
        '<footer><p>Data: <a href="leaderboard.csv">leaderboard.csv</a> · <a href="leaderboard.json">leaderboard.json</a></p></footer>'
    )
    return _page(rule.title, body)


def radar_svg(groups: dict[str, float | None], size: int = 340) -> str:
    """An inline SVG radar of group scores (0-100); groups without a value are drawn as gaps."""
    names = list(groups)
    n = len(names)
    centre, radius = size / 2, size / 2 - 78  # room for the labels outside the rings

    def point(i: int, r: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * i / n
        return centre + r * math.cos(angle), centre + r * math.sin(angle)

    margin = 40  # labels left and right of the chart
    parts = [
        f'<svg class="radar" viewBox="{-margin} 0 {size + 2 * margin} {size}" width="{size + 2 * margin}" height="{size}" role="img" '
        f'aria-labelledby="radar-title"><title id="radar-title">Normalised group scores: '
        + escape(", ".join(f"{g} {fmt_score(v)}" for g, v in groups.items()))
        + "</title>"
    ]
    for level in (0.25, 0.5, 0.75, 1.0):
        ring = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, radius * level) for i in range(n)))
        parts.append(f'<polygon points="{ring}" class="ring"/>')
    for i, name in enumerate(names):
        x, y = point(i, radius)
        parts.append(f'<line x1="{centre:.1f}" y1="{centre:.1f}" x2="{x:.1f}" y2="{y:.1f}" class="axis"/>')
        lx, ly = point(i, radius + 22)
        anchor = "middle" if abs(lx - centre) < 5 else ("start" if lx > centre else "end")
        value = groups[name]
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" class="label">{escape(name)} {fmt_score(value)}</text>'
        )
    values = [(i, v) for i, v in enumerate(groups.values()) if v is not None]
    if len(values) >= 3:
        shape = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, radius * v / 100) for i, v in values))
        parts.append(f'<polygon points="{shape}" class="shape"/>')
    for i, v in values:
        x, y = point(i, radius * v / 100)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" class="dot"/>')
    parts.append("</svg>")
    return "".join(parts)


def entry_page(rule: Rule, benchmark: dict, e: dict, entry: Entry) -> str:
    m = e["model"]
    meta = "".join(f"<dt>{escape(k.replace('_', ' '))}</dt><dd>{_link_or_text(v)}</dd>" for k, v in m.items())
    metric_rows = []
    for name, column in rule.columns.items():
        value, ci = e["values"][name], e["ci"].get(name)
        norm = e["normalised"][name]
        metric_rows.append(
            f'<tr><th scope="row">{escape(column.label)}</th><td>{escape(column.group)}</td><td>{escape(column.direction)}</td>'
            f"<td>{fmt(value)}</td><td>{f'[{fmt(ci[0])}, {fmt(ci[1])}]' if ci else '–'}</td>"
            f"<td>{fmt_score(None if norm is None else norm * 100)}</td></tr>"
        )
    tasks = sorted({t for per in entry.per_task.values() for t in per})
    per_task = ""
    if tasks:
        header = "".join(f'<th scope="col">{escape(t)}</th>' for t in tasks)
        body = "".join(
            f'<tr><th scope="row">{escape(rule.columns[c].label)}</th>'
            + "".join(f"<td>{fmt(entry.per_task[c].get(t))}</td>" for t in tasks)
            + "</tr>"
            for c in rule.columns
            if c in entry.per_task
        )
        per_task = (
            f'<h2>Per task</h2><div class="table-wrap" tabindex="0" role="region" aria-label="Per-task values">'
            f'<table><thead><tr><th scope="col">column</th>{header}</tr></thead><tbody>{body}</tbody></table></div>'
        )
    reported = ""
    if entry.reported:
        body = "".join(
            f'<tr><th scope="row">{escape(str(r["label"]))}</th><td>{escape(str(r["value"]))}</td><td class="text">{escape(str(r.get("note", "")))}</td></tr>'
            for r in entry.reported
        )
        reported = (
            f'<h2>As printed in the source</h2><div class="table-wrap"><table><thead><tr><th scope="col">column</th><th scope="col">value</th>'
            f'<th scope="col" class="text">note</th></tr></thead><tbody>{body}</tbody></table></div>'
        )
    provenance = "".join(
        f"<dt>{escape(str(k).replace('_', ' '))}</dt><dd>{_link_or_text(v)}</dd>"
        for k, v in entry.provenance.items()
        if k != "command"
    )
    command = entry.provenance.get("command")
    reproduce = f"<h2>Reproduce</h2><pre><code>{escape(command)}</code></pre>" if command else ""
    rank = f"rank {e['rank']}" if e["rank"] is not None else "not ranked"
    body = (
        f'<header><p><a href="../index.html#{escape(benchmark["id"])}">← {escape(benchmark["title"])}</a></p>'
        f'<h1>{escape(m["model_name"])} <span class="version">{escape(str(m["version"]))}</span></h1>'
        f"<p>{_kind_badge(e['kind'])} Score <strong>{fmt_score(e['aggregate'])}</strong> over {e['covered']} of {e['total']} columns, {rank}.</p></header>"
        f'<main><div class="entry-top"><section aria-labelledby="h-groups"><h2 id="h-groups">Groups (normalised, 0-100)</h2>{radar_svg(e["groups"])}</section>'
        f'<section aria-labelledby="h-model"><h2 id="h-model">Model</h2><dl>{meta}</dl></section></div>'
        f'<h2>Columns</h2><div class="table-wrap" tabindex="0" role="region" aria-label="Column values"><table><thead><tr>'
        '<th scope="col">column</th><th scope="col">group</th><th scope="col">better</th><th scope="col">value</th>'
        f'<th scope="col">95% CI</th><th scope="col">normalised x 100</th></tr></thead><tbody>{"".join(metric_rows)}</tbody></table></div>'
        f"{per_task}{reported}<h2>Provenance</h2><dl>{provenance}</dl>{reproduce}</main>"
    )
    return _page(f"{m['model_name']} {m['version']} - {rule.title}", body, depth=1)


def _link_or_text(value) -> str:
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return f'<a href="{escape(value)}">{escape(value)}</a>'
    if isinstance(value, dict):
        return escape(", ".join(f"{k}: {v}" for k, v in value.items()))
    return escape("–" if value is None else str(value))


def build_site(board: Path | str, output: Path | str) -> Path:
    """Write the site of ``board`` into ``output`` (created; files already there are replaced)."""
    board, output = Path(board), Path(output)
    rule = load_rule(board)
    entries = load_entries(board, rule)
    data = board_data(rule, entries)
    (output / "entries").mkdir(parents=True, exist_ok=True)
    static = resources.files("ewmbench.leaderboard") / "static"
    for name in ("style.css", "app.js"):
        (output / name).write_text((static / name).read_text(encoding="utf-8"), encoding="utf-8")
    (output / "index.html").write_text(index_page(rule, data), encoding="utf-8")
    by_id = {e.id: e for e in entries}
    for benchmark in data["benchmarks"]:
        for e in benchmark["entries"]:
            (output / "entries" / f"{e['id']}.html").write_text(
                entry_page(rule, benchmark, e, by_id[e["id"]]), encoding="utf-8"
            )
    (output / "leaderboard.json").write_text(
        json.dumps(_json_value(data), indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
    (output / "leaderboard.csv").write_text(board_csv(rule, data), encoding="utf-8")
    shutil.copyfile(rule.source, output / "rule.yaml")
    return output / "index.html"
