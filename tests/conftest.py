"""Shared fixtures. Shared code (datasets, tiny models, the reference oracle) lives in
``tests/helpers/`` and is imported as ``tests.helpers.<module>``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.datasets import make_ground_truth, sample_dataset


@pytest.fixture
def gt_dataset(tmp_path: Path) -> Path:
    return make_ground_truth(tmp_path / "gt")


@pytest.fixture(scope="session")
def sample_cache(tmp_path_factory) -> Path:
    """A fresh cache root for ``EWMBENCH_CACHE`` whose default sample is the shared one (linked, not
    copied or regenerated): ``--dataset sample`` resolves to it, and nothing else lands in the shared cache."""
    from ewmbench.data.datasets import DEFAULT_SAMPLE_NAME

    root = tmp_path_factory.mktemp("sample-cache")
    sample = sample_dataset(root / "generated")
    (root / "datasets").mkdir()
    (root / "datasets" / DEFAULT_SAMPLE_NAME).symlink_to(sample, target_is_directory=True)
    return root
