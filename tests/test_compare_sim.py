"""The report on the sim ladder of the sample: a planted difference is found with its sign, and the
HTML renders in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import ewmbench
from ewmbench.compare.report import OVERALL
from tests.helpers.datasets import sample_dataset

pytestmark = pytest.mark.slow
MOTION = ("hsd", "ndtw", "dyn")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def sim_ladder(tmp_path_factory):
    """Exact replay vs action noise 0.08 m on the sample: 1 trial, PSNR and the motion metrics."""
    from ewmbench.run import RunConfig, run

    root = tmp_path_factory.mktemp("ladder")
    gt = sample_dataset(root)
    runs = {}
    for name, options in (("exact", {}), ("noise0.08", {"action_noise": 0.08})):
        config = RunConfig(
            output=root / name,
            dataset=str(gt),
            model="sim",
            model_options=options,
            trials=1,
            protocol="ewmbench-v2",
            metrics=["psnr", "trajectory_consistency"],
            cache_dir=root / "cache",
        )
        runs[name] = run(config, show_progress=False).output
    return runs


@pytest.fixture(scope="session")
def ladder_report(sim_ladder, tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder-report") / "report"
    comparison = ewmbench.compare([sim_ladder["exact"], sim_ladder["noise0.08"]], output=out)
    return comparison, out


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_three_run_report_is_small_and_shows_no_perfect_episode(sim_ladder, tmp_path):
    """Three runs (the noisy one twice: the most strips) fit in 2 MB, the page and its files."""
    runs = [sim_ladder["exact"], sim_ladder["noise0.08"], sim_ladder["noise0.08"]]
    comparison = ewmbench.compare(runs, output=tmp_path / "report")
    assert comparison.labels == ["exact", "noise0.08", "noise0.08-2"]
    assert _folder_size(tmp_path / "report") < 2_000_000
    assert (tmp_path / "report" / "report.html").stat().st_size < 200_000
    # the exact replay follows the recorded path: hsd at its best (1) everywhere, so no hsd strip;
    # strips are shown only for episodes below a metric's best possible value
    exact = comparison.selected_rows["exact"]
    worst = {(w.metric, w.run) for w in comparison.worst}
    assert (exact["hsd"] == 1.0).all() and ("hsd", "exact") not in worst
    for column in ("hsd", "ndtw"):
        assert (column, "noise0.08") in worst, column
    assert all(w.value < 1.0 for w in comparison.worst if w.metric in MOTION)
    perfect = {
        (column, task, episode)
        for column in MOTION
        for task, episode, value in zip(exact["task_id"], exact["episode_id"], exact[column])
        if value == 1.0
    }
    shown = {(w.metric, w.task_id, w.episode_id) for w in comparison.worst if w.run == "exact"}
    assert not perfect & shown  # no episode at the ceiling is shown as a worst case


def test_planted_difference_is_significant_with_the_right_sign(ladder_report):
    comparison, _ = ladder_report
    assert len(comparison.episodes) == 8
    for column in (*MOTION, "psnr"):
        diff = comparison.differences[(OVERALL, column, "noise0.08")]
        assert diff.difference < 0 and diff.high < 0, column  # noise makes every one of them worse
        assert diff.p_adjusted < 0.05 and diff.verdict() == "worse", column
    # the other way round, the exact replay is significantly better
    reverse = ewmbench.compare([comparison.run("noise0.08"), comparison.run("exact")], figures=False)
    for column in MOTION:
        assert reverse.significant(OVERALL, column, "exact") == "better", column


def test_worst_motion_cases_show_gripper_tracks(ladder_report):
    comparison, out = ladder_report
    data = json.loads((out / "report.json").read_text())
    worst_hsd = [w for w in data["worst"] if w["metric"] == "hsd" and w["run"] == "noise0.08"]
    assert len(worst_hsd) == 2 and worst_hsd[0]["value"] <= worst_hsd[1]["value"]  # worst first
    assert (out / data["figures"]["worst"]["hsd"]["noise0.08"]).is_file()
    # the tracks came from the run's own cache (the detector ran during the run, not again here)
    assert list((Path(comparison.run("exact").cache_dir)).rglob("*.npy"))


def test_html_renders_in_chromium_without_errors(ladder_report, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    _, out = ladder_report
    errors, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console", lambda message: errors.append(message.text) if message.type == "error" else None
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto((out / "report.html").resolve().as_uri())
            page.evaluate("Array.from(document.images).forEach(i => { i.loading = 'eager'; })")
            page.wait_for_load_state("load")
            # lazy thumbnails switched to eager start loading after the page's load event: wait for them
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30_000)
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
            svgs = page.evaluate("document.querySelectorAll('img[src$=\".svg\"]').length")
            height = page.evaluate("document.documentElement.scrollHeight")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            # a folded section opens on a click; a thumbnail opens its full-size strip
            page.click("summary:has-text('Per task')")
            opened = page.evaluate("document.querySelectorAll('details[open]').length")
            links = page.evaluate("Array.from(document.querySelectorAll('.thumb a')).map(a => a.href)")
        finally:
            browser.close()
    assert errors == []
    assert images and all(complete and width > 0 for complete, width in images)  # no broken image
    assert svgs == 3  # radar, agreement, per-task bars
    folder = out.resolve().as_uri()
    assert requests[0] == (out / "report.html").resolve().as_uri()
    assert all(url.startswith(folder + "/") for url in requests)  # only the report folder's own files
    assert height < 4000  # the folded page: overall, figures, thumbnails of the worst episodes
    assert opened == 4
    assert links and all(Path(url.removeprefix("file://")).is_file() for url in links)
    assert shot.stat().st_size > 50_000
    keep = os.environ.get("EWMBENCH_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "report.png")
