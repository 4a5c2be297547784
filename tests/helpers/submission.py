"""A scored run and its submission bundle, as the leaderboard tests and the WorldArena tests need."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import ewmbench

MODEL_README = """---
model_name: Static baseline
version: "1"
organization: Lab
release_year: 2026
source_type: open_source
control_type: text_driven
---
Repeats the initial frame.
"""


def submit_static_run(root: Path, gt: Path, env: dict, target: str | None = None) -> Path:
    """Run the static baseline on ``gt`` (2 trials, PSNR and SSIM) into ``root/run``, submit it with
    :data:`MODEL_README`, and return the bundle's path (``root/bundle.tar.gz``)."""
    run = root / "run"
    ewmbench(
        "run",
        "--model",
        "static",
        "--dataset",
        gt,
        "--trials",
        "2",
        "--metrics",
        "psnr,ssim",
        "--output",
        run,
        env=env,
    )
    (root / "model_readme.md").write_text(MODEL_README)
    bundle = root / "bundle.tar.gz"
    extra = ("--target", target) if target else ()
    ewmbench("submit", run, "--readme", root / "model_readme.md", "--output", bundle, *extra, env=env)
    return bundle
