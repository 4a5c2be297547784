"""Datasets in the official EWMBench layout, our sidecar, the one video reader and its caches, curation."""

from ewmbench.data.curate import select_diverse
from ewmbench.data.layout import Episode, Generated, GroundTruth, Sidecar, Trial

__all__ = ["Episode", "Generated", "GroundTruth", "Sidecar", "Trial", "select_diverse"]
