"""Does each metric measure what it claims? The validity report of a dataset and a metric set.

For a ground-truth dataset, :func:`run_validity` scores, with the runner and the chosen protocol:

* **references**: the ground truth against itself, and against its own re-encodings (JPEG at
  each quality, H.264 at each CRF), its frame rate divided (each kept frame held, so the length
  stays) and its resolution scaled down and back up. A metric that moves a lot here measures the
  codec, not the model;
* **sensitivity**: the ``sim`` oracle (needs a simulated dataset such as the sample) replaying the
  recorded actions exactly, and each perturbation of the catalogue (the action-noise ladder, lag,
  dropped frames, a wrong colour, friction, a render offset): per metric the paired difference
  from the exact replay with its sign-flip interval and p-value (:mod:`ewmbench.compare.statistics`),
  and whether the ladder is ranked strictly in order;
* **rank stability**: for each pair of adjacent ladder rungs, how often the bootstrap (episodes
  redrawn within tasks, the same draw for both runs) flips their order;
* **agreement**: Kendall's tau between metrics, over the conditions' overall values (do two
  metrics rank the conditions alike?) and over all trials.

Everything lands in ``validity.json`` and ``validity.html`` (a report section, the report's
style). Sizes are options: episodes per task, the encodings, the perturbations, the resamples.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from html import escape
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

from ewmbench.compare import statistics as st
from ewmbench.compare.html import STYLE
from ewmbench.compare.report import counted_rows, signed
from ewmbench.compare.runs import compared_run
from ewmbench.data.datasets import resolve_dataset
from ewmbench.data.layout import GroundTruth, id_sort_key, write_trial
from ewmbench.data.video import read_video
from ewmbench.errors import ConfigError
from ewmbench.files import write_json, write_text
from ewmbench.protocols import DEFAULT_PROTOCOL
from ewmbench.run.plan import RunConfig
from ewmbench.run.runner import RunResult, evaluate, run

VALIDITY_FORMAT = "ewmbench-validity/1"
EXACT = "sim exact replay"
# The catalogue of simulator perturbations: name -> sim model options. The ladder's order is known
# by construction (more action noise is worse); the others are reported without an order claim.
PERTURBATIONS: dict[str, dict] = {
    "noise 0.01 m": {"action_noise": 0.01},
    "noise 0.03 m": {"action_noise": 0.03},
    "noise 0.08 m": {"action_noise": 0.08},
    "lag 3 frames": {"lag": 3},
    "30% dropped frames": {"drop_frames": 0.3},
    "wrong colour": {"wrong_color": True},
    "friction x0.3": {"friction": 0.3},
    "render offset 8 px": {"render_offset": 8},
}
LADDER = ("noise 0.01 m", "noise 0.03 m", "noise 0.08 m")


@dataclass(frozen=True)
class ValiditySettings:
    dataset: str = "sample"  # a dataset name or folder; the sim part needs a simulated one
    protocol: str = DEFAULT_PROTOCOL
    metrics: tuple[str, ...] | None = None  # None: every metric the protocol defines
    episodes_per_task: int | None = None  # None: every episode
    jpeg_qualities: tuple[int, ...] = (90, 50)
    h264_crfs: tuple[int, ...] = (23, 35)
    frame_rate_divisors: tuple[int, ...] = (2,)
    resolution_scales: tuple[float, ...] = (0.5,)
    perturbations: tuple[str, ...] = tuple(PERTURBATIONS)
    resamples: int = 1000
    level: float = st.DEFAULT_LEVEL
    seed: int = 0
    cache_dir: Path | None = None

    def check(self) -> None:
        unknown = [p for p in self.perturbations if p not in PERTURBATIONS]
        if unknown:
            raise ConfigError(
                f"unknown perturbation(s) {', '.join(map(repr, unknown))}; choose from {', '.join(PERTURBATIONS)}"
            )
        if any(not 1 <= q <= 100 for q in self.jpeg_qualities):
            raise ConfigError(f"--jpeg-quality must be in 1..100, got {list(self.jpeg_qualities)}")
        if any(not 0 <= c <= 51 for c in self.h264_crfs):
            raise ConfigError(f"--crf must be in 0..51 (H.264), got {list(self.h264_crfs)}")
        if any(d < 2 for d in self.frame_rate_divisors):
            raise ConfigError(f"--fps-divisor must be at least 2, got {list(self.frame_rate_divisors)}")
        if any(not 0 < s < 1 for s in self.resolution_scales):
            raise ConfigError(f"--scale must be in (0, 1), got {list(self.resolution_scales)}")
        if self.episodes_per_task is not None and self.episodes_per_task < 1:
            raise ConfigError(f"--episodes-per-task must be at least 1, got {self.episodes_per_task}")
        if self.resamples < 1:
            raise ConfigError(f"--resamples must be positive, got {self.resamples}")


@dataclass
class Condition:
    name: str
    kind: str  # "reference" | "sim"
    path: Path
    rows: pd.DataFrame = field(repr=False)
    overall: dict[str, float]
    directions: dict[str, str]
    rule: str = "mean_of_rows"  # the protocol's overall rule (mean_of_rows or mean_of_task_means)


# ------------------------------------------------------------------ the transformed ground truths


def jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    """Each frame encoded as JPEG at ``quality`` (4:2:0, as cameras and most tools write) and decoded."""
    from PIL import Image

    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        buffer = BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        out[index] = np.asarray(Image.open(BytesIO(buffer.getvalue())).convert("RGB"))
    return out


def h264(frames: np.ndarray, crf: int, fps: float) -> np.ndarray:
    """The frames through H.264 (libx264, yuv420p) at ``crf`` and back."""
    import imageio.v2 as imageio

    height, width = frames.shape[1:3]
    pad = ((0, 0), (0, height % 2), (0, width % 2), (0, 0))  # yuv420p needs even sizes
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "video.mp4"
        with imageio.get_writer(
            target,
            fps=fps,
            format="FFMPEG",
            codec="libx264",
            macro_block_size=1,
            pixelformat="yuv420p",
            ffmpeg_params=["-crf", str(crf)],
        ) as writer:
            for frame in np.pad(frames, pad, mode="edge"):
                writer.append_data(frame)
        decoded = read_video(target, max_frames=len(frames))
    return np.ascontiguousarray(decoded[: len(frames), :height, :width])


def lower_frame_rate(frames: np.ndarray, divisor: int) -> np.ndarray:
    """Every ``divisor``-th frame kept and held ``divisor`` times: the same length at 1/divisor fps."""
    return frames[(np.arange(len(frames)) // divisor) * divisor]


def lower_resolution(frames: np.ndarray, scale: float) -> np.ndarray:
    """Each frame scaled down by ``scale`` (area average) and back up to its size (bicubic)."""
    from PIL import Image

    height, width = frames.shape[1:3]
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.stack(
        [
            np.asarray(Image.fromarray(f).resize(small, Image.BOX).resize((width, height), Image.BICUBIC))
            for f in frames
        ]
    )


# H.264's CRF sets the quality of each frame; the stream's frame rate only labels it.
H264_FPS = 10.0


def _references(settings: ValiditySettings) -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = [("ground truth", None)]
    items += [(f"JPEG q{q}", lambda f, q=q: jpeg(f, q)) for q in settings.jpeg_qualities]
    items += [(f"H.264 CRF {c}", lambda f, c=c: h264(f, c, H264_FPS)) for c in settings.h264_crfs]
    items += [(f"fps / {d}", lambda f, d=d: lower_frame_rate(f, d)) for d in settings.frame_rate_divisors]
    items += [
        (f"resolution x{s:g}", lambda f, s=s: lower_resolution(f, s)) for s in settings.resolution_scales
    ]
    return items


# ------------------------------------------------------------------ running the conditions


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _subset(gt_root: Path, per_task: int | None, folder: Path) -> Path:
    """The dataset itself, or a copy holding the first ``per_task`` episodes of each task."""
    if per_task is None:
        return gt_root
    gt = GroundTruth(gt_root)
    chosen: dict[str, list] = {}
    for episode in sorted(gt.episodes, key=lambda e: (id_sort_key(e.task), id_sort_key(e.episode))):
        if len(chosen.setdefault(episode.task, [])) < per_task:
            chosen[episode.task].append(episode)
    if not (folder / ".complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        for episodes in chosen.values():
            for episode in episodes:
                shutil.copytree(episode.path, folder / episode.task / episode.episode)
        write_text(folder / ".complete", "")
    return folder


def _condition(name: str, kind: str, result: RunResult) -> Condition:
    """A scored condition from the run's record (its protocol's rows and overall rule)."""
    data = compared_run(result.record, name)
    overall = {
        c: float(v) for c, v in result.record.overall.items() if v is not None and c in data.metric_columns
    }
    rows, rule = counted_rows(data, set(data.episodes))
    return Condition(name, kind, result.output, rows, overall, dict(data.directions), rule)


def run_validity(output: Path, settings: ValiditySettings, progress: bool = True) -> dict:
    """Score every condition (resuming what an earlier call finished) and return ``validity.json``."""
    settings.check()
    output = Path(output)
    gt_root = _subset(resolve_dataset(settings.dataset), settings.episodes_per_task, output / "inputs" / "gt")
    gt = GroundTruth(gt_root)
    if not gt.episodes:
        raise ConfigError(f"dataset {settings.dataset!r} has no episodes")
    base = {
        "protocol": settings.protocol,
        "metrics": list(settings.metrics) if settings.metrics else None,
        "trials": 1,
        "cache_dir": settings.cache_dir,
    }
    conditions: list[Condition] = []
    for name, transform in _references(settings):
        folder = output / "runs" / _slug(name)
        if transform is None:
            result = run(
                RunConfig(output=folder, model="ground-truth", dataset=str(gt_root), **base), progress
            )
        else:
            generated = output / "inputs" / f"{_slug(name)}_dataset"
            for episode in gt.episodes:
                if not (generated / episode.task / episode.episode / "1").is_dir():
                    frames = read_video(episode.video_path())
                    write_trial(generated, episode.task, episode.episode, "1", transform(frames))
            result = evaluate(RunConfig(output=folder, gt=gt_root, generated=generated, **base), progress)
        conditions.append(_condition(name, "reference", result))
    if settings.perturbations:
        for name, options in [(EXACT, {})] + [(p, PERTURBATIONS[p]) for p in settings.perturbations]:
            folder = output / "runs" / _slug(name)
            config = RunConfig(
                output=folder, model="sim", model_options=options, dataset=str(gt_root), **base
            )
            conditions.append(_condition(name, "sim", run(config, progress)))
    report = summarise(conditions, settings)
    write_json(output / "validity.json", report)
    write_text(output / "validity.html", render_page(report))
    return report


# ------------------------------------------------------------------ the numbers


def _columns(conditions: list[Condition]) -> list[str]:
    columns: list[str] = []
    for condition in conditions:
        columns += [c for c in condition.overall if c not in columns]
    return columns


def summarise(conditions: list[Condition], settings: ValiditySettings) -> dict:
    """``validity.json`` from the scored conditions (pure: no file is read or written)."""
    columns = _columns(conditions)
    directions = {
        c: next((x.directions[c] for x in conditions if c in x.directions), "higher") for c in columns
    }
    rule = conditions[0].rule if conditions else "mean_of_rows"  # one protocol scored them all
    by_name = {c.name: c for c in conditions}

    def interval(condition: Condition, column: str, seed: int) -> dict | None:
        ci = st.bootstrap_ci(
            condition.rows,
            column,
            overall=rule,
            resamples=settings.resamples,
            level=settings.level,
            seed=seed,
        )
        return None if ci is None else {"estimate": ci.estimate, "low": ci.low, "high": ci.high}

    values = {
        c.name: {col: interval(c, col, settings.seed) for col in columns if col in c.rows.columns}
        for c in conditions
    }
    sensitivity = []
    exact = by_name.get(EXACT)
    if exact is not None:
        for condition in conditions:
            if condition.kind != "sim" or condition is exact:
                continue
            for column in columns:
                diff = st.paired_comparison(
                    exact.rows,
                    condition.rows,
                    column,
                    direction=directions[column],
                    overall=rule,
                    level=settings.level,
                    seed=settings.seed,
                )
                if diff is not None:
                    sensitivity.append(
                        {
                            "perturbation": condition.name,
                            "metric": column,
                            "difference": diff.difference,
                            "low": diff.low,
                            "high": diff.high,
                            "p_value": diff.p_value,
                            "ties": diff.ties,
                            "episodes": diff.episodes,
                            "verdict": diff.verdict(1 - settings.level),
                        }
                    )
    ladder_names = [EXACT] + [n for n in LADDER if n in by_name]
    ladder = {}
    stability = []
    if exact is not None and len(ladder_names) > 1:
        for column in columns:
            sign = 1.0 if directions[column] == "higher" else -1.0
            series = [by_name[n].overall.get(column, math.nan) for n in ladder_names]
            ladder[column] = bool(all(sign * a > sign * b for a, b in zip(series, series[1:])))
            for first, second in zip(ladder_names, ladder_names[1:]):
                flip = st.order_flip_rate(
                    by_name[first].rows,
                    by_name[second].rows,
                    column,
                    overall=rule,
                    resamples=settings.resamples,
                    seed=settings.seed,
                )
                if flip is not None:
                    stability.append({"metric": column, "better": first, "worse": second, "flip_rate": flip})
    overall_table = {col: [c.overall.get(col, math.nan) for c in conditions] for col in columns}
    pooled = pd.concat([c.rows for c in conditions], ignore_index=True)
    trial_table = {col: pooled[col].astype(float).to_numpy() for col in columns if col in pooled.columns}
    return {
        "format": VALIDITY_FORMAT,
        "settings": {
            **{k: v for k, v in asdict(settings).items() if k != "cache_dir"},
            "overall": rule,
            "difference": "paired sign-flip test over episodes and the interval inverted from it",
            "rank_stability": "share of bootstrap resamples (episodes within tasks, the same draw for "
            "both runs) in which the two runs' order differs from the full data's (ties count as flips)",
        },
        "episodes": int(sum(len(c.rows.groupby(["task_id", "episode_id"])) for c in conditions[:1])),
        "conditions": [{"name": c.name, "kind": c.kind, "overall": c.overall} for c in conditions],
        "directions": directions,
        "values": values,
        "sensitivity": sensitivity,
        "ladder_in_order": ladder,
        "rank_stability": stability,
        "agreement": {
            "over_conditions": st.kendall_agreement(overall_table, directions),
            "over_trials": st.kendall_agreement(trial_table, directions),
            "trials": len(pooled),
        },
    }


# ------------------------------------------------------------------ the HTML section


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}" if abs(value) >= 1000 else (f"{value:.2f}" if abs(value) >= 10 else f"{value:.3f}")


def render_section(report: dict) -> str:
    """The validity section of a report: references, sensitivity, ladder order, stability, agreement."""
    columns = list(report["directions"])
    arrow = {c: "&uarr;" if d == "higher" else "&darr;" for c, d in report["directions"].items()}
    head = "".join(f"<th>{escape(c)} {arrow[c]}</th>" for c in columns)
    parts = ["<h2>Validity</h2>"]
    level = report["settings"]["level"]
    parts.append(
        f'<p class="muted">Each cell: the overall value [{level:.0%} bootstrap CI over episodes]. '
        "References: the ground truth scored against itself and against its own re-encodings; "
        "sim: the simulator oracle, exact and perturbed.</p>"
    )
    rows = []
    for condition in report["conditions"]:
        cells = []
        for column in columns:
            value = report["values"][condition["name"]].get(column)
            cells.append(
                "<td>-</td>"
                if value is None
                else f'<td>{_number(value["estimate"])} <span class="ci">[{_number(value["low"])}, {_number(value["high"])}]</span></td>'
            )
        rows.append(
            f'<tr><td class="name">{escape(condition["name"])}</td><td class="name">{condition["kind"]}</td>{"".join(cells)}</tr>'
        )
    parts.append(
        f'<table><tr><th class="name">condition</th><th class="name">kind</th>{head}</tr>{"".join(rows)}</table>'
    )
    if report["ladder_in_order"]:
        cells = "".join(f"<td>{'yes' if report['ladder_in_order'].get(c) else 'NO'}</td>" for c in columns)
        parts.append(
            f'<h3>Noise ladder strictly in order</h3><table><tr><th class="name"></th>{head}</tr>'
            f'<tr><td class="name">exact &gt; 0.01 &gt; 0.03 &gt; 0.08 m</td>{cells}</tr></table>'
        )
    if report["sensitivity"]:
        by_key = {(s["perturbation"], s["metric"]): s for s in report["sensitivity"]}
        names = list(dict.fromkeys(s["perturbation"] for s in report["sensitivity"]))
        rows = []
        for name in names:
            cells = []
            for column in columns:
                s = by_key.get((name, column))
                if s is None:
                    cells.append("<td>-</td>")
                    continue
                mark = {"better": " &#9650;", "worse": " &#9660;"}.get(s["verdict"], "")
                cells.append(
                    f'<td>{signed(s["difference"])}{mark} <span class="ci">[{signed(s["low"])}, {signed(s["high"])}]</span> '
                    f'<span class="p">p={s["p_value"]:.2g}</span></td>'
                )
            rows.append(f'<tr><td class="name">{escape(name)}</td>{"".join(cells)}</tr>')
        parts.append(
            f'<h3>Sensitivity: perturbed &minus; exact replay</h3><p class="muted">Paired over episodes; the interval is '
            f"inverted from the sign-flip test, so it excludes 0 exactly when p &lt; {1 - level:.2g}.</p>"
            f'<table><tr><th class="name">perturbation</th>{head}</tr>{"".join(rows)}</table>'
        )
    if report["rank_stability"]:
        rows = "".join(
            f'<tr><td class="name">{escape(s["metric"])}</td><td class="name">{escape(s["better"])} vs {escape(s["worse"])}</td>'
            f"<td>{s['flip_rate']:.3f}</td></tr>"
            for s in report["rank_stability"]
        )
        parts.append(
            '<h3>Rank stability under the bootstrap</h3><p class="muted">How often a resample of the episodes '
            "puts the worse rung at or above the better one.</p>"
            f'<table><tr><th class="name">metric</th><th class="name">pair</th><th>flip rate</th></tr>{rows}</table>'
        )
    for key, title in (("over_conditions", "conditions' overall values"), ("over_trials", "all trials")):
        matrix = report["agreement"][key]
        names = list(matrix)
        rows = "".join(
            f'<tr><td class="name">{escape(a)}</td>'
            + "".join(f"<td>{_number(matrix[a][b])}</td>" for b in names)
            + "</tr>"
            for a in names
        )
        header = "".join(f"<th>{escape(n)}</th>" for n in names)
        parts.append(
            f"<h3>Kendall tau between metrics, over the {title}</h3>"
            f'<table><tr><th class="name"></th>{header}</tr>{rows}</table>'
        )
    return "\n".join(parts)


def render_page(report: dict) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ewmbench validity</title>'
        f"<style>{STYLE}</style></head><body><h1>ewmbench validity: {escape(str(report['settings']['dataset']))}, "
        f"{escape(str(report['settings']['protocol']))}</h1>{render_section(report)}</body></html>\n"
    )
