"""docs/first-hour.md, run as written: every CPU command on the page (lines starting with
``ewmbench`` in its bash blocks, except those marked ``# GPU`` or ``# network``), in order, in one folder."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "first-hour.md"


def page_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [
        line for line in lines if line.startswith("ewmbench ") and not line.endswith(("# GPU", "# network"))
    ]


def test_the_page_has_the_commands_a_user_needs():
    commands = page_commands()
    assert "ewmbench run --model static --dataset sample --output runs/static --trials 1" in commands
    assert "ewmbench models try ltx-video" in commands
    assert not any("ge-base" in c for c in commands)  # the GPU steps are marked and left out


@pytest.mark.slow
def test_first_hour_commands_run_as_written(sample_cache, tmp_path):
    cache = tmp_path / "cache"
    (cache / "datasets").mkdir(parents=True)
    for entry in (sample_cache / "datasets").iterdir():
        (cache / "datasets" / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
    env = {**os.environ, "EWMBENCH_CACHE": str(cache), "COLUMNS": "80"}
    outputs = {}
    for command in page_commands():
        argv = [sys.executable, "-m", "ewmbench", *shlex.split(command)[1:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, command
        outputs[command] = done.stdout
    run = outputs["ewmbench run --model static --dataset sample --output runs/static --trials 1"]
    assert "pick_place" in run and "inf: PSNR of identical frames" in run  # what the page promises
    assert sum(line.startswith("skipped") for line in run.splitlines()) == 1
    assert "…" not in outputs["ewmbench models"] and "cosmos-predict2" in outputs["ewmbench models"]
    assert (tmp_path / "reports" / "static" / "report.html").is_file()
    assert "ltx-video runs here" in outputs["ewmbench models try ltx-video"]
