"""The README's picture of the board: build the site and photograph its top at 1280 px.

    python leaderboards/ewmbench/screenshot.py [--output docs/leaderboard-site.png]

Uses Debian's chromium (`apt-get install chromium`) through Playwright, as the site's browser test
does; the picture is reduced to a 64-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from ewmbench.leaderboard.site import build_site

HERE = Path(__file__).resolve().parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=HERE.parents[1] / "docs" / "leaderboard-site.png")
    parser.add_argument("--height", type=int, default=980)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = build_site(HERE, Path(tmp) / "site")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": args.height})
            page.goto(index.as_uri())
            raw = Path(tmp) / "raw.png"
            page.screenshot(path=str(raw))
            browser.close()
        Image.open(raw).convert("RGB").quantize(colors=64).save(args.output, optimize=True)
    print(f"{args.output}: {args.output.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
