"""The command line as a user runs it: ``python -m ewmbench ...`` in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys


def ewmbench(
    *args, env: dict | None = None, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run ``ewmbench ARGS`` (each argument str()-ed); fail with its output when ``check`` and it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "ewmbench", *map(str, args)],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
        check=False,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done
