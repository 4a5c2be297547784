"""The static site in a real browser: Debian's chromium driven by Playwright, opened from file://.

Screenshots at 1280 and 390 px are saved under ``test-artifacts/leaderboard/`` (git-ignored; CI
can keep the folder as an artefact), or under $EWMBENCH_TEST_ARTIFACTS.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from ewmbench.leaderboard.site import build_site, radar_svg

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "leaderboards" / "ewmbench"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def artifacts() -> Path:
    folder = Path(os.environ.get("EWMBENCH_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "leaderboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    board = tmp_path_factory.mktemp("board") / "ewmbench"
    shutil.copytree(BOARD, board, ignore=shutil.ignore_patterns("*.py"))
    # a self-reported entry beside the reported and verified ones, so every filter value is present
    entry = {
        "format": "ewmbench-entry/1",
        "id": "zeta-model-1",
        "benchmark": "ewmbench-sample-v1",
        "model": {
            "model_name": "Zeta <b>model</b>",
            "version": "1",
            "organization": "Lab & Co",
            "release_year": 2026,
            "source_type": "closed_source",
            "control_type": "action_driven",
        },
        "protocol": {"name": "ewmbench-v1", "version": "1.0", "sha256": "x"},
        "metrics": {
            "overall": {"psnr": "inf", "ssim": 0.9, "hsd": 0.7, "ndtw": 0.6, "dyn": 0.3},
            "per_task": {"psnr": {"1": 29.0, "2": 31.0}},
        },
        "provenance": {"kind": "self-reported", "record_sha256": "abc", "bundle_sha256": "def"},
    }
    (board / "entries" / "zeta-model-1.json").write_text(json.dumps(entry))
    out = tmp_path_factory.mktemp("site")
    build_site(board, out)
    return out


def test_site_files_and_data(site):
    for name in (
        "index.html",
        "style.css",
        "app.js",
        "leaderboard.csv",
        "leaderboard.json",
        "entries/zeta-model-1.html",
    ):
        assert (site / name).is_file(), name
    html = (site / "index.html").read_text()
    assert (
        "http://" not in html.replace('href="http', "") and '<script src="app.js"></script>' in html
    )  # no CDN
    assert "Zeta &lt;b&gt;model&lt;/b&gt;" in html and "<b>model</b>" not in html  # submitted text is escaped
    # the rule that ranks the board, in words; no literal Markdown anywhere
    assert "Ranked by Overall" in html and "SceneC + Motion (HSD + Dyn + nDTW)" in html
    for page in [site / "index.html", *sorted((site / "entries").glob("*.html"))]:
        text = page.read_text()
        assert "`" not in text and "**" not in text, page.name
    data = json.loads((site / "leaderboard.json").read_text())
    assert data["rule"]["method"] == "sum" and data["rule"]["score_label"] == "Overall"
    sample = next(b for b in data["benchmarks"] if b["id"] == "ewmbench-sample-v1")
    official = next(b for b in data["benchmarks"] if b["id"] == "ewmbench-official")
    top = [(e["id"], e["rank"], round(e["score"], 4)) for e in official["entries"][:2]]
    assert top == [("ewmbench-paper-enerverse-ft", 1, 4.701), ("ge-paper-ge-base", 1, 4.701)]
    assert all(
        e["kind"] != "reported" for e in sample["entries"]
    )  # never ranked with data measured elsewhere
    assert sample["tasks"]["1"] == "pick_place"
    csv_lines = (site / "leaderboard.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + sum(len(b["entries"]) for b in data["benchmarks"])
    # task names, not numbers; inf shown as such; radar only where three groups have values
    zeta = (site / "entries" / "zeta-model-1.html").read_text()
    assert "pick_place" in zeta and "radar" not in zeta
    enerverse = (site / "entries" / "ewmbench-paper-enerverse-ft.html").read_text()
    assert 'class="radar"' in enerverse


def test_site_with_the_ewmscore_rule(tmp_path):
    out = build_site(BOARD, tmp_path / "site", rule_name="ewmscore")
    html = out.read_text()
    assert "Ranked by EWMScore" in html and "per video" in html


def test_radar_draws_reported_groups_and_gaps():
    svg = radar_svg({"scene": 100.0, "motion": 50.0, "semantics": None, "diversity": 0.0, "fidelity": 25.0})
    assert svg.count("<circle") == 4 and "semantics n/r" in svg and 'class="shape"' in svg
    assert 'class="shape"' not in radar_svg({"scene": 94.0, "motion": None, "semantics": None})


def _numbers(page, table, col):
    return page.eval_on_selector_all(
        f"{table} tbody tr", f"rows => rows.map(r => r.children[{col}].getAttribute('data-v'))"
    )


@pytest.mark.slow
def test_site_in_a_real_browser(site):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    out = artifacts()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed {r.url}"))
            page.goto((site / "index.html").as_uri())
            # at 1280 px nothing scrolls sideways: neither the page nor any table
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280
            widths = page.eval_on_selector_all(
                ".table-wrap", "ws => ws.map(w => w.scrollWidth - w.clientWidth)"
            )
            assert widths and max(widths) <= 0, widths
            official = "#ewmbench-official table.ranking:not(.unranked)"
            names = page.eval_on_selector_all(
                f"{official} tbody th a", "links => links.map(a => a.textContent)"
            )
            assert names[:2] == ["EnerVerse", "GE-Base"] and "Kling" in names
            # unranked entries sit apart, under their own heading, with the reason
            unranked = "#ewmbench-sample-v1 table.unranked"
            assert page.locator(unranked).count() == 1
            assert "every group is needed" in page.inner_text(f"{unranked} tbody tr:first-child")
            # click "Overall": highest first; again: lowest first
            page.click(f"{official} thead button:has-text('Overall')")
            scores = [float(v) for v in _numbers(page, official, 3) if v]
            assert scores == sorted(scores, reverse=True)
            page.click(f"{official} thead button:has-text('Overall')")
            scores = [float(v) for v in _numbers(page, official, 3) if v]
            assert scores == sorted(scores)
            # keyboard: the header buttons sort with Enter too
            page.focus(f"{official} thead button:has-text('Model')")
            page.keyboard.press("Enter")
            models = page.eval_on_selector_all(
                f"{official} tbody th", "c => c.map(x => x.getAttribute('data-v'))"
            )
            assert models == sorted(models)
            # fidelity columns are shown on request, never part of the score
            assert not page.locator(f"{official} th.shown-only").first.is_visible()
            page.check("#show-fidelity")
            assert page.locator(f"{official} th.shown-only").first.is_visible()
            page.uncheck("#show-fidelity")
            # filters hide rows
            total = page.locator("table.ranking tbody tr").count()
            page.select_option("select[data-filter=kind]", "verified")
            visible = page.locator("table.ranking tbody tr:visible")
            assert 0 < visible.count() < total
            assert set(visible.evaluate_all("rows => rows.map(r => r.dataset.kind)")) == {"verified"}
            page.select_option("select[data-filter=kind]", "")
            assert "entries shown" in page.inner_text(".shown")
            page.reload()  # the ranking as it opens
            page.screenshot(path=str(out / "index-1280.png"), full_page=True)
            # an entry page opens, with its radar and provenance
            page.click("a:has-text('EnerVerse')")
            page.wait_for_load_state()
            assert page.url.endswith("entries/ewmbench-paper-enerverse-ft.html")
            assert page.locator("svg.radar polygon.shape").count() == 1
            assert "2505.09694v2" in page.inner_text("main") and "rank 1" in page.inner_text("header")
            page.screenshot(path=str(out / "entry-1280.png"), full_page=True)
            # a phone: the table scrolls inside its box, the page does not
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            phone.on("pageerror", lambda e: errors.append(str(e)))
            phone.goto((site / "index.html").as_uri())
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
            phone.screenshot(path=str(out / "index-390.png"), full_page=False)
            phone.goto((site / "entries" / "zeta-model-1.html").as_uri())
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
            phone.screenshot(path=str(out / "entry-390.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    for name in ("index-1280.png", "index-390.png", "entry-1280.png", "entry-390.png"):
        assert (out / name).stat().st_size > 5000
