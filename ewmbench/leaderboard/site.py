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


def score_entry(rule: Rule, entry: Entry) -> Score:
    return rule.score(entry.overall, entry.benchmark, entry.groups, entry.per_video)


def rank_benchmark(rule: Rule, entries: list[Entry]) -> list[Ranked]:
    """Entries of one benchmark, best score first (compared at the rule's decimals, so equal
    printed scores share a rank: 1, 1, 3); entries the rule cannot rank come last, apart."""
    scored = [(e, score_entry(rule, e)) for e in entries]
    ranked = sorted(
        (p for p in scored if rule.ranked(p[1])), key=lambda p: (-rule.rounded(p[1].overall), p[0].id)
    )
    rest = sorted((p for p in scored if not rule.ranked(p[1])), key=lambda p: p[0].id)
    out, previous, rank = [], None, 0
    for position, (entry, score) in enumerate(ranked, start=1):
        shown = rule.rounded(score.overall)
        if previous is None or shown != previous:
            rank = position
        previous = shown
        out.append(Ranked(entry, score, rank))
    return out + [Ranked(e, s, None) for e, s in rest]


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/r"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def fmt_score(value: float | None, decimals: int = 2) -> str:
    """Scores: at the rule's decimals."""
    return "n/r" if value is None else f"{value:.{decimals}f}"


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
                "directions": {c: rule.direction(c, benchmark) for c in rule.columns},
                "tasks": dict(benchmark.tasks),
                "entries": [
                    {
                        "id": r.entry.id,
                        "rank": r.rank,
                        "model": r.entry.model,
                        "kind": r.entry.kind,
                        "score": r.score.overall,
                        "not_ranked_because": list(r.score.problems) if r.rank is None else [],
                        "covered": r.score.covered,
                        "total": r.score.total,
                        "groups": r.score.groups,
                        "group_sources": r.score.group_sources,
                        "values": {c: r.entry.overall.get(c) for c in rule.columns},
                        "normalised": r.score.normalised,
                        "normalised_from": r.score.normalised_from,
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
            "method": rule.method,
            "normalise": rule.normalise_mode,
            "score_label": rule.score_label,
            "summary": rule.summary,
            "decimals": rule.decimals,
            "protocol": rule.protocol,
            "protocol_version": rule.protocol_version,
            "protocol_sha256": rule.protocol_sha256,
            "groups": {g: rule.group_labels[g] for g in rule.groups},
            "rank_min_columns": rule.rank_min_columns,
            "columns": {
                c.name: {
                    "label": c.label,
                    "group": c.group,
                    "scored": c.aggregated,
                    "direction": c.direction,
                    "range": list(c.value_range),
                    "bounds": list(c.bounds),
                    "scale": c.scale,
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
    if value is None:
        return ""
    return "inf" if value == math.inf else "-inf" if value == -math.inf else repr(float(value))


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
            "score",
            "not_ranked_because",
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
                    _csv_number(e["score"]),
                    "; ".join(e["not_ranked_because"]),
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


def _head_button(index: int, kind: str, label: str, title: str = "", sort: str = "none") -> str:
    title_attr = f' title="{escape(title)}"' if title else ""
    return (
        f'<th scope="col" aria-sort="{sort}"><button type="button" data-col="{index}" data-type="{kind}"{title_attr}>'
        f"{label}</button></th>"
    )


def _columns_in_order(rule: Rule) -> list[tuple[str | None, list]]:
    """(group or None for shown, its columns) in the rule's order."""
    blocks = [(g, [c for c in rule.aggregated.values() if c.group == g]) for g in rule.groups]
    if rule.shown:
        blocks.append((None, list(rule.shown.values())))
    return blocks


def _table(rule: Rule, benchmark: dict, ranked: bool) -> str:
    """The ranking (``ranked``) or the entries listed without a rank, as one sortable table.

    Two header rows: groups (with their score) over their columns; the columns a rule only shows
    (pixel fidelity) sit in a block the reader opens with "Show fidelity columns", so the table
    fits 1280 px."""
    entries = [e for e in benchmark["entries"] if (e["rank"] is not None) == ranked]
    if not entries:
        return ""
    directions = benchmark["directions"]
    blocks = _columns_in_order(rule)
    top = ['<th scope="colgroup" colspan="4"></th>'] if ranked else ['<th scope="colgroup" colspan="3"></th>']
    head = []
    index = 0
    if ranked:
        head.append(_head_button(index, "num", "Rank", sort="ascending"))
        index += 1
    head.append(_head_button(index, "text", "Model"))
    index += 1
    head.append(_head_button(index, "text", "Provenance"))
    index += 1
    if ranked:
        head.append(
            _head_button(index, "num", escape(rule.score_label), f"{rule.score_label}: {rule.summary}")
        )
        index += 1
    else:
        head.append('<th scope="col" class="text">Why not ranked</th>')
        index += 1
    for group, columns in blocks:
        extra = ' class="shown-only"' if group is None else ""
        summed = group is not None and len(columns) > 1  # a one-column group's value is the column
        span = len(columns) + (1 if summed else 0)
        label = rule.group_labels[group] if group is not None else "Fidelity (shown, not scored)"
        top.append(f'<th scope="colgroup" colspan="{span}"{extra}>{escape(label)}</th>')
        if summed:
            what = "sum" if rule.method == "sum" else "mean of normalised x 100"
            head.append(
                _head_button(
                    index, "num", "Σ" if rule.method == "sum" else "∅", f"{rule.group_labels[group]}: {what}"
                ).replace("<th ", '<th class="group" ', 1)
            )
            index += 1
        for column in columns:
            direction = directions.get(column.name, column.direction)
            arrow = "↑" if direction == "higher" else "↓"
            scale = (
                f"; shown as the tool's value x {column.scale:g}, as the rule scores it"
                if column.scale != 1
                else ""
            )
            title = f"{column.label}: {direction} is better{scale}"
            cell = _head_button(
                index, "num", f'{escape(column.label)}<span aria-hidden="true">{arrow}</span>', title
            )
            if group is None:
                cell = cell.replace("<th ", '<th class="shown-only" ', 1)
            head.append(cell)
            index += 1
    rows = []
    for e in entries:
        m = e["model"]
        cells = []
        if ranked:
            cells.append(f'<td data-v="{e["rank"]}">{e["rank"]}</td>')
        cells.append(
            f'<th scope="row" data-v="{escape(m["model_name"].lower())}"><a href="entries/{escape(e["id"])}.html">{escape(m["model_name"])}</a>'
            f'<span class="version">{escape(str(m["version"]))}</span></th>'
        )
        cells.append(f'<td data-v="{escape(e["kind"])}">{_kind_badge(e["kind"])}</td>')
        if ranked:
            cells.append(
                f'<td data-v="{_sort_value(e["score"])}" class="score">{fmt_score(e["score"], rule.decimals)}</td>'
            )
        else:
            cells.append(f'<td class="text why">{escape("; ".join(e["not_ranked_because"]))}</td>')
        for group, columns in blocks:
            if group is not None and len(columns) > 1:
                value = e["groups"][group]
                source = e["group_sources"].get(group)
                mark = ' title="as printed in the source (group value)"' if source == "reported" else ""
                shown = fmt_score(value, rule.decimals) + ("*" if source == "reported" else "")
                cells.append(f'<td data-v="{_sort_value(value)}" class="group"{mark}>{shown}</td>')
            for column in columns:
                value = e["values"][column.name]
                ci = e["ci"].get(column.name)
                titles = []
                if ci:
                    titles.append(f"95% bootstrap interval [{fmt(ci[0])}, {fmt(ci[1])}]")
                if value is None:
                    titles.append("not reported")
                elif math.isinf(value):
                    titles.append("infinite (identical frames): shown, never scored as a maximum")
                if value is not None and column.scale != 1 and math.isfinite(value):
                    value = value * column.scale  # the rule's units (the paper's 0-1 CLIP)
                title = f' title="{escape("; ".join(titles))}"' if titles else ""
                extra = ' class="shown-only"' if group is None else ""
                cells.append(f'<td data-v="{_sort_value(value)}"{extra}{title}>{fmt(value)}</td>')
        rows.append(
            f'<tr data-control="{escape(m["control_type"])}" data-source="{escape(m["source_type"])}" '
            f'data-kind="{escape(e["kind"])}">{"".join(cells)}</tr>'
        )
    if ranked:
        caption = (
            f"Ranking on {escape(benchmark['title'])} by {escape(rule.score_label)}: click a heading to sort"
        )
        label = f"{benchmark['title']} ranking"
    else:
        caption = "Listed, not ranked: the rule cannot score these entries (reason in each row)"
        label = f"{benchmark['title']}: entries not ranked"
    css = "ranking" + ("" if ranked else " unranked")
    return (
        f'<div class="table-wrap" tabindex="0" role="region" aria-label="{escape(label)}">'
        f'<table class="{css}"><caption>{caption}</caption><thead><tr class="groups">{"".join(top)}</tr>'
        f"<tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _rule_in_words(rule: Rule) -> str:
    return (
        f'<p class="rule"><strong>Ranked by {escape(rule.score_label)}</strong> (rule <code>{escape(rule.name)}</code>, '
        f"version {escape(rule.version)}): {escape(rule.summary)}</p>"
    )


def index_page(rule: Rule, data: dict) -> str:
    sections = []
    for benchmark in data["benchmarks"]:
        description = f"<p>{_inline(benchmark['description'])}</p>" if benchmark["description"] else ""
        ranked = _table(rule, benchmark, ranked=True)
        unranked = _table(rule, benchmark, ranked=False)
        body = ranked + (f'<h3 class="apart">Not ranked</h3>{unranked}' if unranked else "")
        sections.append(
            f'<section class="benchmark" id="{escape(benchmark["id"])}" aria-labelledby="h-{escape(benchmark["id"])}">'
            f'<h2 id="h-{escape(benchmark["id"])}">{escape(benchmark["title"])}</h2>{description}'
            f"{body or '<p class=empty>No entries yet.</p>'}</section>"
        )
    star = (
        "<p>* a group value as printed by its source, where the source prints no per-metric values.</p>"
        if rule.method == "sum"
        else ""
    )
    body = (
        f"<header><h1>{escape(rule.title)}</h1>{_rule_in_words(rule)}"
        f"<p>Computed entries are scored under <code>{escape(rule.protocol)}</code> {escape(rule.protocol_version)}. "
        "Entries measured on different data are ranked separately. n/r: not reported. "
        "Provenance: <em>reported</em> (copied from a paper), <em>verified</em> (computed by ewmbench, with 95% bootstrap intervals "
        f"over episodes), <em>self-reported</em> (a submitter's run record).</p>{star}"
        f'{_filters(data)}<label class="toggle"><input type="checkbox" id="show-fidelity"> Show fidelity columns (not scored)</label>'
        f"</header>\n<main>{''.join(sections)}</main>\n"
        '<footer><p>Data: <a href="leaderboard.csv">leaderboard.csv</a> · <a href="leaderboard.json">leaderboard.json</a> · '
        '<a href="rule.yaml">rule.yaml</a></p></footer>'
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


def _inline(text: str) -> str:
    """Escaped text with `code` spans rendered (the only Markdown our data files use), so no
    literal backticks reach the page."""
    parts = escape(str(text)).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: leave the text as it is
        return escape(str(text))
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _radar_groups(rule: Rule, e: dict) -> dict[str, float | None] | None:
    """Group values on 0-100 for the radar, or None where a radar would carry no information
    (fewer than three groups with a value)."""
    values = {}
    for group in rule.groups:
        value = e["groups"][group]
        if value is not None and rule.method == "sum":
            members = [c for c in rule.aggregated.values() if c.group == group]
            most = sum(c.bounds[1] - c.bounds[0] for c in members) or 1.0
            value = 100.0 * value / most
        values[rule.group_labels[group]] = value
    return values if sum(v is not None for v in values.values()) >= 3 else None


def _reproduce(entry: Entry) -> str:
    """How to reproduce an entry, without any local path: the bundle by its sha256 and where it is
    published, or the run command."""
    p = entry.provenance
    command = p.get("command")
    parts = []
    if p.get("bundle_sha256"):
        where = (
            f' published at <a href="{escape(p["bundle_url"])}">{escape(p["bundle_url"])}</a>'
            if p.get("bundle_url")
            else " (not published: ask the submitter for it)"
        )
        parts.append(f"<p>The bundle: sha256 <code>{escape(p['bundle_sha256'])}</code>,{where}.</p>")
    if command:
        parts.append(f"<pre><code>{escape(command)}</code></pre>")
    return f"<h2>Reproduce</h2>{''.join(parts)}" if parts else ""


def entry_page(rule: Rule, benchmark: dict, e: dict, entry: Entry) -> str:
    m = e["model"]
    meta = "".join(f"<dt>{escape(k.replace('_', ' '))}</dt><dd>{_link_or_text(v)}</dd>" for k, v in m.items())
    metric_rows = []
    for name, column in rule.columns.items():
        value, ci = e["values"][name], e["ci"].get(name)
        norm = e["normalised"].get(name)
        group = rule.group_labels[column.group] if column.group else "shown, not scored"
        direction = benchmark["directions"].get(name, column.direction)
        inf_note = " (identical frames)" if value is not None and math.isinf(value) else ""
        if value is not None and column.scale != 1 and math.isfinite(value):
            inf_note = f" (the tool's {fmt(value)} x {column.scale:g})"
            value = value * column.scale
        metric_rows.append(
            f'<tr><th scope="row">{escape(column.label)}</th><td>{escape(group)}</td><td>{escape(direction)}</td>'
            f"<td>{fmt(value)}{inf_note}</td><td>{f'[{fmt(ci[0])}, {fmt(ci[1])}]' if ci else '–'}</td>"
            + (f"<td>{fmt_score(None if norm is None else norm * 100)}</td>" if rule.method != "sum" else "")
            + "</tr>"
        )
    tasks = sorted({t for per in entry.per_task.values() for t in per}, key=lambda t: (len(t), t))
    names = {**benchmark["tasks"], **entry.task_names}
    per_task = ""
    if tasks:
        header = "".join(
            f'<th scope="col">{escape(names.get(t, t))}{f" <span class=version>task {escape(t)}</span>" if t in names else ""}</th>'
            for t in tasks
        )
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
            f'<tr><th scope="row">{escape(str(r["label"]))}</th><td>{escape(str(r["value"]))}</td><td class="text">{_inline(r.get("note", ""))}</td></tr>'
            for r in entry.reported
        )
        reported = (
            f'<h2>As printed in the source</h2><div class="table-wrap"><table><thead><tr><th scope="col">column</th><th scope="col">value</th>'
            f'<th scope="col" class="text">note</th></tr></thead><tbody>{body}</tbody></table></div>'
        )
    provenance = "".join(
        f"<dt>{escape(str(k).replace('_', ' '))}</dt><dd>{_inline(v) if k == 'note' else _link_or_text(v)}</dd>"
        for k, v in entry.provenance.items()
        if k not in ("command", "bundle_url")
    )
    if e["rank"] is not None:
        standing = f"{escape(rule.score_label)} <strong>{fmt_score(e['score'], rule.decimals)}</strong>, rank {e['rank']}."
    else:
        standing = f"Not ranked: {escape('; '.join(e['not_ranked_because']))}."
    groups_shown = "".join(
        f"<dt>{escape(rule.group_labels[g])}</dt><dd>{fmt_score(v, rule.decimals)}"
        f"{' (as printed in the source)' if e['group_sources'].get(g) == 'reported' else ''}</dd>"
        for g, v in e["groups"].items()
    )
    radar_values = _radar_groups(rule, e)
    radar = (
        f'<p class="note">Each group as a share of its largest possible value.</p>{radar_svg(radar_values)}'
        if radar_values
        else ""
    )
    normalised = '<th scope="col">normalised x 100</th>' if rule.method != "sum" else ""
    body = (
        f'<header><p><a href="../index.html#{escape(benchmark["id"])}">← {escape(benchmark["title"])}</a></p>'
        f'<h1>{escape(m["model_name"])} <span class="version">{escape(str(m["version"]))}</span></h1>'
        f"<p>{_kind_badge(e['kind'])} {standing}</p>{_rule_in_words(rule)}</header>"
        f'<main><div class="entry-top"><section aria-labelledby="h-groups"><h2 id="h-groups">Groups</h2><dl>{groups_shown}</dl>{radar}</section>'
        f'<section aria-labelledby="h-model"><h2 id="h-model">Model</h2><dl>{meta}</dl></section></div>'
        f'<h2>Columns</h2><div class="table-wrap" tabindex="0" role="region" aria-label="Column values"><table><thead><tr>'
        '<th scope="col">column</th><th scope="col">group</th><th scope="col">better</th><th scope="col">value</th>'
        f'<th scope="col">95% CI</th>{normalised}</tr></thead><tbody>{"".join(metric_rows)}</tbody></table></div>'
        f"{per_task}{reported}<h2>Provenance</h2><dl>{provenance}</dl>{_reproduce(entry)}</main>"
    )
    return _page(f"{m['model_name']} {m['version']} - {rule.title}", body, depth=1)


def _link_or_text(value) -> str:
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return f'<a href="{escape(value)}">{escape(value)}</a>'
    if isinstance(value, dict):
        return escape(", ".join(f"{k}: {v}" for k, v in value.items()))
    return escape("–" if value is None else str(value))


def build_site(board: Path | str, output: Path | str, rule_name: str | None = None) -> Path:
    """Write the site of ``board`` into ``output`` (created; files already there are replaced),
    ranked by the board's default rule or by ``rule_name`` (one of its ``rules/``)."""
    board, output = Path(board), Path(output)
    rule = load_rule(board, rule_name)
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
