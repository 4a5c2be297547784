"""A representative set of the bad-input cases run as a user runs them: ``python -m ewmbench`` in a
subprocess (the other cases use typer's in-process runner, which shares this code path)."""

from __future__ import annotations

import pytest

from tests.bad_input import test_bad_datasets, test_bad_files, test_bad_images, test_bad_options
from tests.bad_input.cases import check

# Mostly refusals (they stop before torch loads, so each takes about a second); two that score.
CHOSEN = {
    "gt_and_generated_the_same_folder",
    "no_episode_in_common",
    "meta_is_a_list",
    "misspelled_max_db",
    "protocol_of_random_bytes",
    "option_value_not_yaml",
    "absurd_trials",
    "output_inside_ground_truth",
    "split_naming_a_missing_episode",
    "curate_voxel_size_nan",
    "device_tpu",
    "version",
    "paths_that_look_like_markup",
    "dangling_symlink_frame",
}
ALL = (
    test_bad_datasets.CASES
    + test_bad_images.CASES
    + test_bad_files.SIDECAR
    + test_bad_files.PROTOCOL
    + test_bad_options.CASES
)
CASES = [c for c in ALL if c.name in CHOSEN]


def test_every_chosen_case_exists():
    assert {c.name for c in CASES} == CHOSEN


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_as_a_subprocess(case, ws, monkeypatch):
    check(case, ws, as_subprocess=True)


REFUSED_EARLY = [
    ["run", "--model", "statik"],
    ["run", "--model", "static", "--model-option", "x=[1"],
    ["run", "--model", "sim", "--model-option", "lag=-3"],
    ["run", "--model", "static", "--trials", "0"],
    ["run", "--model", "static", "--device", "tpu"],
    ["run", "--model", "static", "--protocol", "ewmbench-v9"],
    ["run", "--model", "static", "--split", "missing.json"],
    ["run", "--model", "static", "--metrics", "psnr,ssmi"],
]


def test_refusals_come_before_heavy_imports(ws):
    """A wrong option is answered without loading torch (it takes seconds on a loaded machine)."""
    import json
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from ewmbench.cli import app\n"
        "out = []\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        app(args + ['--dataset', sys.argv[2], '--output', sys.argv[3]], prog_name='ewmbench')\n"
        "    except SystemExit as exc:\n"
        "        out.append([exc.code, sorted(m for m in ('torch', 'ultralytics', 'transformers', 'diffusers') if m in sys.modules)])\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(REFUSED_EARLY), str(ws.gt), str(ws.out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results == [[2, []]] * len(REFUSED_EARLY), done.stdout + done.stderr
    assert not ws.out.exists()


@pytest.mark.slow
def test_a_real_ctrl_c_says_how_to_resume(ws):
    """SIGINT to a running evaluation: one line, exit 130, and what was written stays resumable."""
    import signal
    import subprocess
    import sys

    script = (
        "import signal, sys, time\n"
        # Ctrl-C as in a terminal, even where the tests run as a background job (which ignores SIGINT)
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import ewmbench.run.runner as runner\n"
        "def slow(*args, **kwargs):\n"
        "    print('scoring', flush=True)\n"
        "    time.sleep(120)\n"
        "runner.score = slow\n"
        "from ewmbench.cli import app\n"
        "app(sys.argv[1:], prog_name='ewmbench')\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, *ws.evaluate()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stdout:
            if "scoring" in line:
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "interrupted; rerun the same command to resume" in err and "Traceback" not in err
    assert (ws.out / "config.json").is_file()  # the run folder is there to resume
