"""A straightforward per-trial implementation of the official EWMBench trajectory consistency.

Written from the description of the official tool (per-trial Python loops, one scipy call per
quantity, ``fastdtw`` per trial), to check ``ewmbench.metrics.motion`` against it and to time
both. Like the official tool, it crashes on degenerate inputs (identical tracks, static or
collinear GT gripper, fewer than 3 frames, no valid GT gripper); that is the point of keeping it
plain. Not part of the package.
"""

from __future__ import annotations

import numpy as np
from fastdtw import fastdtw
from scipy.spatial import ConvexHull
from scipy.spatial.distance import directed_hausdorff, euclidean
from scipy.stats import wasserstein_distance

BOUND_HSD, BOUND_DYN, BOUND_NDTW = 24.979, 22.519, 50.202


def fill(track: np.ndarray) -> tuple[np.ndarray, bool]:
    track = track.copy()
    missing = [t for t in range(len(track)) if track[t, 0] == -1 and track[t, 1] == -1]
    if len(missing) / len(track) > 0.8:
        return track, False
    valid = [t for t in range(len(track)) if t not in set(missing)]
    for t in missing:
        before = [v for v in valid if v < t]
        after = [v for v in valid if v > t]
        if not before:
            track[t] = track[after[0]]
        elif not after:
            track[t] = track[before[-1]]
        else:
            a, b = before[-1], after[0]
            for axis in range(2):
                track[t, axis] = np.interp(t, [a, b], [float(track[a, axis]), float(track[b, axis])])
    return track, True


def spread(points: np.ndarray) -> float:
    hull = ConvexHull(points)
    v = points[hull.vertices]
    n = len(v)
    best = 0.0
    for i in range(n):
        best = max(best, float(np.linalg.norm(v[i] - v[(i + 1) % n])))
    return max(best, float(np.linalg.norm(v[0] - v[2])))


def dynamics(pred: np.ndarray, gt: np.ndarray) -> float:
    def series(track):
        v = [
            float(np.linalg.norm(track[t + 1].astype(np.float64) - track[t].astype(np.float64)))
            for t in range(len(track) - 1)
        ]
        a = [v[t + 1] - v[t] for t in range(len(v) - 1)]
        return np.array(v), np.array(a)

    vp, ap = series(pred)
    vg, ag = series(gt)
    total = 0.0
    for weight, p, g in ((0.007, vp, vg), (0.003, ap, ag)):
        rp, rg = p.max() - p.min(), g.max() - g.min()
        ratio = (min(rg, rp) + 1e-8) / (max(rg, rp) + 1e-8)
        w = wasserstein_distance(p, g)
        total += weight * (0.0 if w == 0 else ratio / w)
    return total


def score_trial(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    pred = np.asarray(pred, np.float32)
    gt = np.asarray(gt, np.float32)
    gt_tracks, gt_valid = zip(*(fill(gt[:, k]) for k in range(2)))
    valid = [k for k in range(2) if gt_valid[k]]
    spreads = [spread(gt_tracks[k].astype(np.float64)) for k in valid]
    index = int(np.argmax(spreads))  # the position among valid grippers, used as the index
    p, p_valid = fill(pred[:, index])
    if not p_valid:
        hsd_raw = ndtw_raw = dyn_raw = 0.0
    else:
        g = gt_tracks[index]
        h = max(directed_hausdorff(p, g)[0], directed_hausdorff(g, p)[0])
        hsd_raw = 1 / h
        distance, path = fastdtw(p, g, dist=euclidean)
        ndtw_raw = 1 / (distance / len(path))
        dyn_raw = dynamics(p, g)
    return {
        "hsd": min(hsd_raw / BOUND_HSD, 1),
        "ndtw": min(ndtw_raw / BOUND_NDTW, 1),
        "dyn": min(dyn_raw / BOUND_DYN, 1),
    }
