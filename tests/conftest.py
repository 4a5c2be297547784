"""Shared fixtures. Shared code (datasets, tiny models, the reference oracle) lives in
``tests/helpers/`` and is imported as ``tests.helpers.<module>``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.datasets import make_ground_truth


@pytest.fixture
def gt_dataset(tmp_path: Path) -> Path:
    return make_ground_truth(tmp_path / "gt")
