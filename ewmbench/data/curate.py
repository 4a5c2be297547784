"""IoU-diverse split curation, as the EWMBench paper builds its benchmark.

Per task, each episode's 3-D end-effector trajectories (both arms) are voxelised on a global
grid; two episodes overlap by the IoU of their occupied voxel sets; episodes are then picked
greedily, each time the one that overlaps least with those already picked.

Voxelisation: the grid is anchored at the origin of the robot base frame, voxel (i, j, k) holds
points with floor(p / voxel_size) = (i, j, k). Each arm's polyline is sampled at steps of at most
half a voxel, so a fast motion leaves no holes between frames. The arms are kept apart: a voxel
occupied by the left arm of one episode and the right arm of another does not count as overlap.

Greedy rule (deterministic): the next pick minimises, in this order, (1) the sum of its IoUs
with the episodes already picked, (2) the sum of its IoUs with all other episodes, (3) its index.
So the first pick is the episode with the least total overlap with the rest (lowest index on a
tie), and ties later in the order also go to the globally more distinct episode, then the lower
index. With k >= N every index is returned, in pick order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ewmbench.errors import ConfigError, DataError
from ewmbench.files import write_json

DEFAULT_VOXEL_SIZE = 0.02  # metres: about a gripper's width, so distinct approach paths do not merge
SPLIT_FORMAT = "ewmbench-split/1"
LEFT_ARM_XYZ = [0, 1, 2]  # columns of the sidecar's eef_pose (T, 14)
RIGHT_ARM_XYZ = [7, 8, 9]


def _check_trajectory(trajectory: np.ndarray, where: str) -> np.ndarray:
    array = np.asarray(trajectory)
    if array.dtype.kind not in "fiu" or array.ndim != 3 or array.shape[1:] != (2, 3):
        raise DataError(
            where,
            f"trajectory must be a numeric (T, 2, 3) array (frames x arm x xyz), got shape {array.shape}",
        )
    if len(array) == 0:
        raise DataError(where, "trajectory has no frames")
    if not np.isfinite(array).all():
        raise DataError(where, "trajectory contains NaN or inf poses")
    return array.astype(np.float64)


def densify(points: np.ndarray, step: float) -> np.ndarray:
    """Points along a (T, 3) polyline, consecutive ones at most ``step`` apart (vertices kept)."""
    if len(points) < 2:
        return points
    segments = np.diff(points, axis=0)
    pieces = np.maximum(np.ceil(np.linalg.norm(segments, axis=1) / step).astype(np.int64), 1)
    starts = np.repeat(points[:-1], pieces, axis=0)
    fractions = np.concatenate([np.arange(n) / n for n in pieces])
    inner = starts + np.repeat(segments, pieces, axis=0) * fractions[:, None]
    return np.vstack([inner, points[-1:]])


_BITS = 20  # per axis: voxel indices in [-2^19, 2^19), i.e. +-10 km at 2 cm voxels
_OFFSET = 1 << (_BITS - 1)


def _packed_voxels(trajectory: np.ndarray, voxel_size: float, where: str) -> np.ndarray:
    """Sorted unique occupied voxels of a (T, 2, 3) trajectory, each packed in one int64:
    arm << 60 | i << 40 | j << 20 | k (indices offset to be non-negative)."""
    packed = []
    for arm in range(2):
        index = np.floor(densify(trajectory[:, arm], voxel_size / 2) / voxel_size) + _OFFSET
        if index.min() < 0 or index.max() >= 1 << _BITS:
            raise DataError(
                where, f"positions too far from the origin for voxel size {voxel_size} (|index| >= {_OFFSET})"
            )
        index = index.astype(np.int64)
        packed.append((arm << 3 * _BITS) | (index[:, 0] << 2 * _BITS) | (index[:, 1] << _BITS) | index[:, 2])
    return np.unique(np.concatenate(packed))


def voxel_keys(trajectory: np.ndarray, voxel_size: float) -> np.ndarray:
    """Sorted unique (arm, i, j, k) voxels occupied by a (T, 2, 3) trajectory, as (n, 4) int64."""
    packed = _packed_voxels(_check_trajectory(trajectory, "trajectory"), voxel_size, "trajectory")
    mask = (1 << _BITS) - 1
    return np.column_stack(
        [
            packed >> 3 * _BITS,
            (packed >> 2 * _BITS & mask) - _OFFSET,
            (packed >> _BITS & mask) - _OFFSET,
            (packed & mask) - _OFFSET,
        ]
    )


def pairwise_iou(trajectories: Sequence[np.ndarray], voxel_size: float = DEFAULT_VOXEL_SIZE) -> np.ndarray:
    """(N, N) IoU of the occupied voxel sets (1 on the diagonal). Memory O(N^2 + total voxels)."""
    if voxel_size <= 0:
        raise ConfigError(f"voxel size must be positive, got {voxel_size}")
    sets = [
        _packed_voxels(_check_trajectory(t, f"trajectories[{k}]"), voxel_size, f"trajectories[{k}]")
        for k, t in enumerate(trajectories)
    ]
    count = len(sets)
    if count == 0:
        return np.zeros((0, 0))
    from scipy import sparse  # here, not at import: `ewmbench.data` is imported by every command

    # One column per distinct voxel; intersections are the Gram matrix of the 0/1 incidence.
    _, column = np.unique(np.concatenate(sets), return_inverse=True)
    row = np.repeat(np.arange(count), [len(s) for s in sets])
    incidence = sparse.csr_matrix((np.ones(len(row)), (row, column.ravel())), shape=(count, column.max() + 1))
    intersection = (incidence @ incidence.T).toarray()
    sizes = np.diag(intersection).copy()
    union = sizes[:, None] + sizes[None, :] - intersection
    return intersection / union


def greedy_diverse(iou: np.ndarray, k: int) -> list[int]:
    """Greedy least-overlap order on an IoU matrix (see the module docstring for the rule)."""
    count = len(iou)
    if k < 0:
        raise ConfigError(f"k must be >= 0, got {k}")
    off_diagonal = iou - np.diag(np.diag(iou))
    overall = off_diagonal.sum(axis=1)
    with_picked = np.zeros(count)
    available = np.ones(count, dtype=bool)
    picked: list[int] = []
    for _ in range(min(k, count)):
        candidates = np.flatnonzero(available)
        # lexsort: last key is primary; candidates are in ascending index order, which breaks
        # the remaining ties by the lower index (lexsort is stable).
        best = int(candidates[np.lexsort((overall[candidates], with_picked[candidates]))[0]])
        picked.append(best)
        available[best] = False
        with_picked += iou[best]
    return picked


def select_diverse(
    trajectories: Sequence[np.ndarray], k: int, voxel_size: float = DEFAULT_VOXEL_SIZE
) -> list[int]:
    """Indices of ``k`` mutually least-overlapping trajectories, in pick order.

    ``trajectories``: (T, 2, 3) arrays (frames x [left, right arm] x xyz, metres), lengths may
    differ. ``voxel_size`` in the same unit. Deterministic; k >= N returns all N indices.
    """
    return greedy_diverse(pairwise_iou(trajectories, voxel_size), k)


def mean_pairwise_iou(iou: np.ndarray, subset: Sequence[int]) -> float:
    """Mean IoU over the unordered pairs of ``subset`` (0 for fewer than two)."""
    subset = np.asarray(subset, dtype=np.int64)
    if len(subset) < 2:
        return 0.0
    block = iou[np.ix_(subset, subset)]
    upper = np.triu_indices(len(subset), k=1)
    return float(block[upper].mean())


# ---------------------------------------------------------------- datasets and split files


def episode_trajectory(episode) -> np.ndarray:
    """The (T, 2, 3) EEF positions of a GT episode, from its sidecar's ``eef_pose``."""
    sidecar = episode.sidecar
    if sidecar is None or sidecar.eef_pose is None:
        raise DataError(
            episode.path,
            f"episode {episode.task}/{episode.episode} has no end-effector poses (ewmbench/arrays.npz: eef_pose); "
            "curation needs them",
        )
    pose = np.asarray(sidecar.eef_pose)
    return _check_trajectory(
        np.stack([pose[:, LEFT_ARM_XYZ], pose[:, RIGHT_ARM_XYZ]], axis=1),
        str(episode.path / "ewmbench" / "arrays.npz"),
    )


def curate_split(source: Path, per_task: int, voxel_size: float = DEFAULT_VOXEL_SIZE) -> dict:
    """The split of a GT dataset: per task, ``per_task`` IoU-diverse episode ids in pick order."""
    from ewmbench import __version__
    from ewmbench.data.layout import GroundTruth

    if per_task < 1:
        raise ConfigError(f"--per-task must be at least 1, got {per_task}")
    episodes = GroundTruth(Path(source)).episodes
    if not episodes:
        raise DataError(source, "no episodes found (expected <task>/<episode>/ folders)")
    digest = hashlib.sha256()
    by_task: dict[str, list] = {}
    for episode in episodes:
        trajectory = episode_trajectory(episode)
        digest.update(f"{episode.task}/{episode.episode}:{trajectory.shape}\n".encode())
        digest.update(np.ascontiguousarray(trajectory).tobytes())
        by_task.setdefault(episode.task, []).append((episode.episode, trajectory))
    tasks = {}
    for task, items in by_task.items():
        iou = pairwise_iou([t for _, t in items], voxel_size)
        order = greedy_diverse(iou, per_task)
        tasks[task] = {
            "episodes": [items[i][0] for i in order],
            "available": len(items),
            "mean_pairwise_iou": mean_pairwise_iou(iou, order),
            "mean_pairwise_iou_all": mean_pairwise_iou(iou, range(len(items))),
        }
    return {
        "format": SPLIT_FORMAT,
        "method": "iou-diverse-greedy",
        "parameters": {
            "per_task": per_task,
            "voxel_size": voxel_size,
            "poses": "sidecar eef_pose columns 0:3 (left xyz) and 7:10 (right xyz)",
            "arms": "voxelised separately",
            "sampling": "polyline sampled every voxel_size / 2",
            "greedy": "min sum IoU with picked, then min sum IoU with all, then lowest index",
        },
        "source": {"path": str(source), "episodes": len(episodes), "sha256": digest.hexdigest()},
        "ewmbench_version": __version__,
        "tasks": tasks,
    }


def write_split(split: dict, output: Path) -> Path:
    """Write a split file atomically (JSON, sorted keys)."""
    output = Path(output)
    write_json(output, split, sort_keys=True)
    return output
