"""Motion metrics: trajectory consistency of a generated end-effector track against ground truth.

Tracks are (T, 2, 2) arrays: frames x [left, right gripper] x (x, y) in normalised image
coordinates, (-1, -1) marking a missing detection. Per trial, one gripper is scored:

1. Gap filling per gripper: more than ``invalid_missing_fraction`` of frames missing makes the
   gripper *invalid* (left unfilled); otherwise missing points are filled by linear interpolation
   over the frame index (leading/trailing gaps copy the nearest valid point).
2. Gripper choice: the valid GT gripper with the largest spatial *spread*.
3. HSD = 1 / (H + eps), H the symmetric Hausdorff distance between the two point sets.
4. NDTW = 1 / (D / L + eps), D the DTW cost (FastDTW radius 1 in v1, exact DTW in v2.0) and L the
   number of steps of the warping path; each raw score is divided by the protocol's bound and
   capped at 1. From v2.1 (``dtw: time_aware``) NDTW sees time: D is the DTW cost with point
   distances reduced by the jitter floor and a penalty per non-diagonal step, and
   ndtw = 1 / (1 + bound * D / max(n, m)), 1 exactly when D is 0 (no cap needed).
5. DYN = w_v * r_v / W_v + w_a * r_a / W_a, from the speed and (signed) acceleration series:
   r the ratio of their ranges, W the 1-D Wasserstein-1 distance of their distributions (from
   v2.1 reduced by the jitter floor, never below 0).
6. HSD and DYN are divided by the protocol's bound and capped at 1.

Every constant and policy is a protocol setting (``metrics: trajectory_consistency:``); the
``ewmbench-v1`` values reproduce the official tool, quirks included, and the inputs on which the
official tool crashes get a defined value and an :class:`OfficialCrashWarning`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ewmbench.data.trajectory import validate_traj
from ewmbench.errors import ConfigError
from ewmbench.metrics.base import Metric, TrialInputs, register_metric
from ewmbench.metrics.dtw import dtw_batch, fastdtw_batch, time_aware_dtw_batch
from ewmbench.perception.detector import TrackingSettings
from ewmbench.protocols import DEFAULT_PROTOCOL, ProtocolLike, metric_settings
from ewmbench.results import best_of_n_positions

METRIC_NAME = "trajectory_consistency"
SCORE_KEYS = ("hsd", "ndtw", "dyn")


class DegenerateTrajectoryWarning(UserWarning):
    """A trajectory on which a score is not defined by its formula; a documented value is used."""


class OfficialCrashWarning(DegenerateTrajectoryWarning):
    """Input on which the official EWMBench tool crashes; ``ewmbench-v1`` returns a defined value."""


# The start of the note a trial gets when its 0 comes from a gripper the detector did not find.
GRIPPER_NOT_DETECTED = "no gripper detected in the generated video"


class GripperNotDetectedWarning(DegenerateTrajectoryWarning):
    """The scored gripper is missing from too many frames of the generated video: hsd, ndtw and
    dyn are 0 by the protocol's rule, and the trial's notes say why (a 0 is never silent)."""


@dataclass(frozen=True)
class MotionSettings:
    """The ``trajectory_consistency`` settings of a protocol (see the protocol YAML files)."""

    invalid_missing_fraction: float
    spread: str  # "official_hull_edges" | "hull_diameter"
    gripper_choice: str  # "official_position" | "gripper_index"
    dtw: str  # "fastdtw" | "exact" | "time_aware"
    dtw_radius: int
    hsd_epsilon: float
    ndtw_epsilon: float
    dyn_range_epsilon: float
    dyn_wasserstein_epsilon: float
    dyn_speed_weight: float
    dyn_acceleration_weight: float
    bounds: Mapping[str, float]
    cap: float
    no_valid_gt_gripper: str  # "zero" | "nan"
    official_crash_cases: bool
    jitter_floor: float = 0.0  # normalised image units; 0 before ewmbench-v2.1
    ndtw_step_penalty: float = 0.0  # with dtw: time_aware

    _CHOICES = {
        "spread": ("official_hull_edges", "hull_diameter"),
        "gripper_choice": ("official_position", "gripper_index"),
        "dtw": ("fastdtw", "exact", "time_aware"),
        "no_valid_gt_gripper": ("zero", "nan"),
    }

    @classmethod
    def from_dict(cls, settings: Mapping) -> MotionSettings:
        try:
            dyn = settings["dyn"]
            parsed = cls(
                invalid_missing_fraction=float(settings["invalid_missing_fraction"]),
                spread=str(settings["spread"]),
                gripper_choice=str(settings["gripper_choice"]),
                dtw=str(settings["dtw"]),
                dtw_radius=int(settings["dtw_radius"]),
                hsd_epsilon=float(settings["hsd_epsilon"]),
                ndtw_epsilon=float(settings["ndtw_epsilon"]),
                dyn_range_epsilon=float(dyn["range_epsilon"]),
                dyn_wasserstein_epsilon=float(dyn["wasserstein_epsilon"]),
                dyn_speed_weight=float(dyn["speed_weight"]),
                dyn_acceleration_weight=float(dyn["acceleration_weight"]),
                bounds={key: float(settings["normalisation"][key]) for key in SCORE_KEYS},
                cap=float(settings["cap"]),
                no_valid_gt_gripper=str(settings["no_valid_gt_gripper"]),
                official_crash_cases=bool(settings["official_crash_cases"]),
                jitter_floor=float(settings.get("jitter_floor", 0.0)),
                ndtw_step_penalty=float(settings.get("ndtw_step_penalty", 0.0)),
            )
        except KeyError as exc:
            raise ConfigError(f"{METRIC_NAME} settings lack {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{METRIC_NAME} settings: {exc}") from None
        for name, allowed in cls._CHOICES.items():
            if getattr(parsed, name) not in allowed:
                raise ConfigError(
                    f"{METRIC_NAME} setting {name}={getattr(parsed, name)!r}; expected one of {allowed}"
                )
        if parsed.jitter_floor < 0 or parsed.ndtw_step_penalty < 0:
            raise ConfigError(f"{METRIC_NAME} settings jitter_floor and ndtw_step_penalty must be >= 0")
        if parsed.dtw_radius < 1:
            raise ConfigError(f"{METRIC_NAME} setting dtw_radius must be >= 1, got {parsed.dtw_radius}")
        return parsed


def _degenerate(settings: MotionSettings, message: str) -> None:
    category = OfficialCrashWarning if settings.official_crash_cases else DegenerateTrajectoryWarning
    prefix = "the official EWMBench tool crashes here; " if settings.official_crash_cases else ""
    warnings.warn(prefix + message, category, stacklevel=4)


# ---------------------------------------------------------------- gap filling


def fill_gaps(points: np.ndarray, invalid_missing_fraction: float = 0.8) -> tuple[np.ndarray, bool]:
    """Fill the missing (-1, -1) points of one gripper's (T, 2) track.

    Returns (track, valid). An invalid track (more than ``invalid_missing_fraction`` of its frames
    missing) is returned unchanged. Interpolation runs in float64 over the frame index and the
    result is stored back as float32, the dtype the official tool loads tracks in.
    """
    points = np.asarray(points, dtype=np.float32)
    missing = (points[:, 0] == -1) & (points[:, 1] == -1)
    count = np.count_nonzero(missing)
    if count / len(points) > invalid_missing_fraction:
        return points.copy(), False
    if count == 0:
        return points.copy(), True
    frames = np.arange(len(points))
    known = ~missing
    filled = points.copy()
    for axis in range(2):
        # np.interp holds the end values outside the known range: leading gaps copy the next
        # valid point, trailing gaps the previous one.
        filled[missing, axis] = np.interp(
            frames[missing], frames[known], points[known, axis].astype(np.float64)
        )
    return filled, True


# ---------------------------------------------------------------- gripper choice


def diameter(points: np.ndarray) -> float:
    """Largest distance between any two points of a (T, 2) set (0 for one point)."""
    unique = np.unique(np.asarray(points, np.float64), axis=0)
    if len(unique) < 2:
        return 0.0
    diff = unique[:, None, :] - unique[None, :, :]
    return float(np.sqrt((diff * diff).sum(-1).max()))


def official_hull_spread(points: np.ndarray) -> float:
    """The official tool's "spread": hull vertices v0..v(n-1) in qhull order;
    max(longest hull edge |v_i - v_(i+1 mod n)|, |v0 - v2|).

    Raises ``QhullError`` / ``ValueError`` where qhull does (static or collinear points, fewer
    than 3 points), as the official tool does.
    """
    from scipy.spatial import ConvexHull  # imported when scored: listing metrics imports no scipy

    points = np.asarray(points, np.float64)
    hull = ConvexHull(points)
    vertices = points[hull.vertices]
    step = vertices - np.concatenate([vertices[1:], vertices[:1]])
    longest_edge = math.sqrt((step * step).sum(axis=1).max())
    return max(longest_edge, math.dist(vertices[0], vertices[2]))


def gripper_spread(points: np.ndarray, settings: MotionSettings) -> float:
    from scipy.spatial import QhullError

    if settings.spread == "hull_diameter":
        return diameter(points)
    try:
        return official_hull_spread(points)
    except (QhullError, ValueError, IndexError):
        value = diameter(points)
        _degenerate(
            settings,
            f"GT gripper track is static, collinear or shorter than 3 frames (no 2-D convex hull); spread = its diameter {value:.6g}",
        )
        return value


def choose_gripper(spreads: Sequence[float], valid: Sequence[int], settings: MotionSettings) -> int:
    """Index (0 left, 1 right) of the scored gripper, given the spreads of the valid GT grippers.

    ``official_position`` reproduces the official quirk: the argmax *position* in the list of
    valid grippers is used as the gripper index (so with only the right gripper valid, the left
    one is scored). ``gripper_index`` uses the argmax gripper itself. Ties: the first wins.
    """
    position = int(np.argmax(spreads))
    return position if settings.gripper_choice == "official_position" else int(valid[position])


# ---------------------------------------------------------------- the three scores


def symmetric_hausdorff(p: np.ndarray, g: np.ndarray) -> float:
    """max(directed(P, G), directed(G, P)) of two (n, 2) point sets, Euclidean, in float64."""
    p, g = np.asarray(p, np.float64), np.asarray(g, np.float64)
    dx = p[:, None, 0] - g[None, :, 0]
    dy = p[:, None, 1] - g[None, :, 1]
    squared = dx * dx + dy * dy  # the same sum, in the same order, as scipy's directed_hausdorff
    return float(max(math.sqrt(squared.min(axis=1).max()), math.sqrt(squared.min(axis=0).max())))


def wasserstein_1d(u: np.ndarray, v: np.ndarray) -> float:
    """Wasserstein-1 distance between the empirical distributions of two 1-D samples:
    the integral of |F_u - F_v| over the merged support."""
    u, v = np.sort(np.asarray(u, np.float64)), np.sort(np.asarray(v, np.float64))
    merged = np.sort(np.concatenate([u, v]), kind="mergesort")
    u_cdf = np.searchsorted(u, merged[:-1], side="right") / len(u)
    v_cdf = np.searchsorted(v, merged[:-1], side="right") / len(v)
    return float(np.sum(np.abs(u_cdf - v_cdf) * np.diff(merged)))


def speeds(track: np.ndarray) -> np.ndarray:
    """|p_(t+1) - p_t| per step of a (T, 2) track: T-1 values (float64)."""
    step = np.diff(np.asarray(track, np.float64), axis=0)
    return np.sqrt(step[:, 0] * step[:, 0] + step[:, 1] * step[:, 1])


def _dynamics_term(pred: np.ndarray, gt: np.ndarray, settings: MotionSettings, what: str) -> float:
    if len(pred) == 0 or len(gt) == 0:
        _degenerate(settings, f"too few frames for a {what} series; its DYN term is 0")
        return 0.0
    range_pred, range_gt = float(np.ptp(pred)), float(np.ptp(gt))
    eps = settings.dyn_range_epsilon
    ratio = (min(range_gt, range_pred) + eps) / (max(range_gt, range_pred) + eps)
    distance = max(wasserstein_1d(pred, gt) - settings.jitter_floor, 0.0) + settings.dyn_wasserstein_epsilon
    # v1 (no epsilon): identical distributions give W = 0, and the official code scores the term 0.
    return 0.0 if distance == 0 else ratio / distance


def dynamics_raw(pred: np.ndarray, gt: np.ndarray, settings: MotionSettings) -> float:
    """Unnormalised DYN of two (T, 2) tracks."""
    v_pred, v_gt = speeds(pred), speeds(gt)
    term_v = _dynamics_term(v_pred, v_gt, settings, "speed")
    term_a = _dynamics_term(np.diff(v_pred), np.diff(v_gt), settings, "acceleration")
    return settings.dyn_speed_weight * term_v + settings.dyn_acceleration_weight * term_a


# ---------------------------------------------------------------- the same, for many pairs at once
# Identical formulas, evaluated over all pairs with segment operations instead of one numpy call
# per quantity per pair; tests check them against the per-pair functions above.


def _concat(tracks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate(tracks).astype(np.float64), np.array([len(t) for t in tracks])


def _segment_diff(values: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within-segment differences of concatenated segments (each loses one value)."""
    step = np.diff(values, axis=0)
    crossing = np.cumsum(lengths)[:-1] - 1  # steps from one segment into the next
    keep = np.ones(len(step), dtype=bool)
    keep[crossing] = False
    return step[keep], lengths - 1


def wasserstein_1d_segments(
    u: np.ndarray, u_lengths: np.ndarray, v: np.ndarray, v_lengths: np.ndarray
) -> np.ndarray:
    """:func:`wasserstein_1d` of each (u segment, v segment) pair of concatenated samples."""
    equal = u_lengths == v_lengths
    if equal.all():
        return _wasserstein_equal_sizes(u, v, u_lengths)
    return _wasserstein_merged(u, u_lengths, v, v_lengths)


def _rows(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated segments as the rows of a matrix, each sorted, padded with +inf."""
    rows = np.full((len(lengths), int(lengths.max())), np.inf)
    column = np.arange(len(values)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    rows[np.repeat(np.arange(len(lengths)), lengths), column] = values
    return np.sort(rows, axis=1)


def _wasserstein_equal_sizes(u: np.ndarray, v: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    # With n points on each side, F_u - F_v changes only at sample points and the integral is
    # the mean distance between the i-th smallest values: sum_i |u_(i) - v_(i)| / n.
    u_rows, v_rows = _rows(u, lengths), _rows(v, lengths)
    valid = np.arange(u_rows.shape[1])[None, :] < lengths[:, None]
    gaps = np.abs(np.where(valid, u_rows, 0.0) - np.where(valid, v_rows, 0.0))
    return gaps.sum(axis=1) / lengths


def _wasserstein_merged(
    u: np.ndarray, u_lengths: np.ndarray, v: np.ndarray, v_lengths: np.ndarray
) -> np.ndarray:
    count = len(u_lengths)
    pair = np.concatenate([np.repeat(np.arange(count), u_lengths), np.repeat(np.arange(count), v_lengths)])
    values = np.concatenate([u, v])
    from_u = np.concatenate([np.ones(len(u)), np.zeros(len(v))])
    by_value = np.argsort(values, kind="stable")
    order = by_value[np.argsort(pair[by_value], kind="stable")]  # by pair, then value
    values, pair, from_u = values[order], pair[order], from_u[order]
    sizes = u_lengths + v_lengths
    before = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    u_seen = np.cumsum(from_u)
    v_seen = np.arange(1, len(values) + 1) - u_seen
    # Counts up to and including each position, within its own pair.
    u_base = np.repeat(np.concatenate([[0], u_seen[before[1:] - 1]]), sizes)
    v_base = np.repeat(np.concatenate([[0], v_seen[before[1:] - 1]]), sizes)
    u_cdf = (u_seen - u_base) / u_lengths[pair]
    v_cdf = (v_seen - v_base) / v_lengths[pair]
    same = pair[1:] == pair[:-1]
    area = np.abs(u_cdf[:-1] - v_cdf[:-1]) * (values[1:] - values[:-1])
    return np.bincount(pair[:-1][same], weights=area[same], minlength=count)


def _dynamics_terms(
    p: np.ndarray, p_len: np.ndarray, g: np.ndarray, g_len: np.ndarray, settings: MotionSettings
) -> np.ndarray:
    p_start = np.concatenate([[0], np.cumsum(p_len)[:-1]])
    g_start = np.concatenate([[0], np.cumsum(g_len)[:-1]])
    range_p = np.maximum.reduceat(p, p_start) - np.minimum.reduceat(p, p_start)
    range_g = np.maximum.reduceat(g, g_start) - np.minimum.reduceat(g, g_start)
    eps = settings.dyn_range_epsilon
    ratio = (np.minimum(range_g, range_p) + eps) / (np.maximum(range_g, range_p) + eps)
    distance = (
        np.maximum(wasserstein_1d_segments(p, p_len, g, g_len) - settings.jitter_floor, 0.0)
        + settings.dyn_wasserstein_epsilon
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(distance == 0, 0.0, ratio / distance)


def dynamics_raw_batch(
    preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], settings: MotionSettings
) -> np.ndarray:
    """:func:`dynamics_raw` of many (pred, gt) pairs of (T, 2) tracks."""
    result = np.empty(len(preds))
    short = [k for k in range(len(preds)) if min(len(preds[k]), len(gts[k])) < 3]
    for k in short:  # too short for an acceleration series: the per-pair path warns
        result[k] = dynamics_raw(preds[k], gts[k], settings)
    full = [k for k in range(len(preds)) if min(len(preds[k]), len(gts[k])) >= 3]
    if full:
        (p, p_len), (g, g_len) = _concat([preds[k] for k in full]), _concat([gts[k] for k in full])
        p_step, p_len = _segment_diff(p, p_len)
        g_step, g_len = _segment_diff(g, g_len)
        p_speed = np.sqrt(p_step[:, 0] * p_step[:, 0] + p_step[:, 1] * p_step[:, 1])
        g_speed = np.sqrt(g_step[:, 0] * g_step[:, 0] + g_step[:, 1] * g_step[:, 1])
        term_v = _dynamics_terms(p_speed, p_len, g_speed, g_len, settings)
        p_acc, pa_len = _segment_diff(p_speed, p_len)
        g_acc, ga_len = _segment_diff(g_speed, g_len)
        term_a = _dynamics_terms(p_acc, pa_len, g_acc, ga_len, settings)
        result[full] = settings.dyn_speed_weight * term_v + settings.dyn_acceleration_weight * term_a
    return result


def _reciprocal(value: float, eps: float, settings: MotionSettings, what: str) -> float:
    if value + eps == 0:
        _degenerate(
            settings,
            f"{what} is 0 (identical tracks), its reciprocal is infinite; the score is capped at {settings.cap}",
        )
        return math.inf
    return 1.0 / (value + eps)


def normalise(raw: Mapping[str, float], settings: MotionSettings) -> dict[str, float]:
    """raw / bound, capped (v1: hsd / 24.979, ndtw / 50.202, dyn / 22.519, each at most 1)."""
    return {key: float(min(raw[key] / settings.bounds[key], settings.cap)) for key in SCORE_KEYS}


# ---------------------------------------------------------------- per trial, batched


@dataclass
class _Prepared:
    pred: np.ndarray | None = None  # the scored gripper's (T, 2) tracks; None: fixed result
    gt: np.ndarray | None = None
    fixed: float | None = None  # value of all three raw scores when not computed


def _prepare(pred: np.ndarray, gt: np.ndarray, settings: MotionSettings, spread_cache: dict) -> _Prepared:
    key = id(gt)
    if key not in spread_cache:
        filled = [fill_gaps(gt[:, k], settings.invalid_missing_fraction) for k in range(2)]
        valid = [k for k in range(2) if filled[k][1]]
        spreads = [gripper_spread(filled[k][0], settings) for k in valid]
        spread_cache[key] = (gt, filled, valid, spreads)  # gt kept alive so id() stays unique
    _, gt_filled, valid, spreads = spread_cache[key]
    if not valid:
        if settings.no_valid_gt_gripper == "nan":
            _degenerate(settings, "no GT gripper has enough detections; the trial is not scored (NaN)")
            return _Prepared(fixed=math.nan)
        _degenerate(settings, "no GT gripper has enough detections; all scores are 0")
        return _Prepared(fixed=0.0)
    gripper = choose_gripper(spreads, valid, settings)
    pred_track, pred_valid = fill_gaps(pred[:, gripper], settings.invalid_missing_fraction)
    if not pred_valid:
        # The model lost the gripper (or never drew one): all three raw scores are 0, said aloud.
        missing = int(np.count_nonzero((pred[:, gripper] == -1).all(axis=1)))
        side = ("left", "right")[gripper]
        warnings.warn(
            f"{GRIPPER_NOT_DETECTED}: the {side} gripper is missing in {missing} of {len(pred)} frames "
            f"(more than {settings.invalid_missing_fraction:.0%}); hsd, ndtw and dyn are 0",
            GripperNotDetectedWarning,
            stacklevel=3,
        )
        return _Prepared(fixed=0.0)
    return _Prepared(pred=pred_track, gt=gt_filled[gripper][0])


def scores_with_settings(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], settings: MotionSettings | Mapping
) -> list[dict[str, float]]:
    """Normalised {hsd, ndtw, dyn} of each (pred, gt) pair of validated (T, 2, 2) tracks."""
    if not isinstance(settings, MotionSettings):
        settings = MotionSettings.from_dict(settings)
    cache: dict = {}
    prepared = [_prepare(pred, gt, settings, cache) for pred, gt in pairs]
    computed = [k for k, item in enumerate(prepared) if item.fixed is None]
    dtw_pairs = [(prepared[k].pred, prepared[k].gt) for k in computed]
    if settings.dtw == "fastdtw":
        warped = fastdtw_batch(dtw_pairs, radius=settings.dtw_radius)
    elif settings.dtw == "exact":
        warped = dtw_batch(dtw_pairs)
    else:
        costs = time_aware_dtw_batch(dtw_pairs, settings.ndtw_step_penalty, settings.jitter_floor)
        warped = [(cost, max(len(p), len(g))) for cost, (p, g) in zip(costs, dtw_pairs)]
    results: list[dict[str, float]] = []
    preds = [prepared[k].pred for k in computed]
    gts = [prepared[k].gt for k in computed]
    hausdorff = [symmetric_hausdorff(p, g) for p, g in zip(preds, gts)]
    dynamics = dynamics_raw_batch(preds, gts, settings)
    where = {k: n for n, k in enumerate(computed)}
    for k, item in enumerate(prepared):
        if item.fixed is not None:
            raw = dict.fromkeys(SCORE_KEYS, item.fixed)
        else:
            n = where[k]
            cost, length = warped[n]
            raw = {
                "hsd": _reciprocal(
                    float(hausdorff[n]), settings.hsd_epsilon, settings, "the Hausdorff distance"
                ),
                "ndtw": _reciprocal(cost / length, settings.ndtw_epsilon, settings, "the DTW cost"),
                "dyn": float(dynamics[n]),
            }
        if math.isnan(raw["hsd"]):
            results.append(dict(raw))
            continue
        scores = normalise(raw, settings)
        if settings.dtw == "time_aware" and item.fixed is None:
            cost, length = warped[where[k]]
            scores["ndtw"] = time_aware_ndtw(cost, length, settings.bounds["ndtw"])
        results.append(scores)
    return results


def time_aware_ndtw(cost: float, length: int, bound: float) -> float:
    """``ewmbench-v2.1`` NDTW: 1 / (1 + bound * D / length), D the time-aware DTW cost and length
    the longer track's frame count. 1 exactly when D is 0; for large costs it meets the official
    form min(1 / (D / L) / bound, 1) (the same bound), without the cap that hid errors below
    1 / bound (about 13 px at 640 px wide) and so every lag or stutter."""
    return 1.0 / (1.0 + bound * cost / length)


def trajectory_scores_batch(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], protocol: ProtocolLike | Mapping = DEFAULT_PROTOCOL
) -> list[dict[str, float]]:
    """:func:`trajectory_scores` of many (pred, gt) pairs at once: the DTW of all pairs runs
    vectorised together, which is where the time goes. Pairs sharing the same GT array object
    compute its gripper choice once."""
    checked = [(validate_traj(p, f"pred[{k}]"), g) for k, (p, g) in enumerate(pairs)]
    gts: dict[int, np.ndarray] = {}
    for k, (_, g) in enumerate(checked):
        if id(g) not in gts:
            gts[id(g)] = validate_traj(g, f"gt[{k}]")
    return scores_with_settings([(p, gts[id(g)]) for p, g in checked], metric_settings(protocol, METRIC_NAME))


def trajectory_scores(
    pred: np.ndarray, gt: np.ndarray, protocol: ProtocolLike | Mapping = DEFAULT_PROTOCOL
) -> dict[str, float]:
    """Trajectory consistency of one generated track against its GT track.

    ``pred`` and ``gt``: (T, 2, 2) arrays (frames x [left, right] x (x, y)) in normalised image
    coordinates, (-1, -1) marking a missing detection; lengths may differ. ``protocol``: a
    protocol name, a protocol YAML path, a loaded protocol, or the metric's settings mapping. Returns {"hsd", "ndtw", "dyn"},
    normalised as the protocol defines and not rounded. Pure: no file is read or written.
    """
    return trajectory_scores_batch([(pred, gt)], protocol)[0]


def select_best_trials(
    rows: Sequence[Mapping], column: str = "hsd", higher_is_better: bool = True
) -> list[Mapping]:
    """Best-of-N trial selection: per (task_id, episode_id), the row with the best ``column``.

    With ``hsd`` (a normalised reciprocal Hausdorff distance) the best row is the trial with the
    lowest Hausdorff distance, as the EWMBench paper describes. Ties (e.g. several trials capped
    at 1) go to the first row in input order; rows whose value is NaN are never selected unless
    all are NaN. Output keeps the order in which episodes first appear. The selection itself is
    :func:`ewmbench.results.best_of_n_positions`, which the runner's aggregation uses too.
    """
    rows = list(rows)
    episodes = [(row["task_id"], row["episode_id"]) for row in rows]
    return [
        rows[i] for i in best_of_n_positions(episodes, [float(row[column]) for row in rows], higher_is_better)
    ]


@register_metric
class TrajectoryConsistency(Metric):
    name = METRIC_NAME
    needs = frozenset({"trajectories"})
    uses_frames = False  # tracks from traj.npy, or from the video (then keyed by its content)
    group = "motion"
    columns = ("dyn", "hsd", "ndtw")
    level = "trial"
    description = "End-effector trajectory consistency: Hausdorff (hsd), normalised DTW (ndtw), dynamics (dyn); higher is better."

    @classmethod
    def best_value(cls, column: str, settings: Mapping) -> float | None:
        """Each score is ``min(raw / bound, cap)``: the protocol's cap (1) is the best."""
        return float(settings["cap"]) if "cap" in settings else None

    def score_trial(self, inputs: TrialInputs, settings: dict) -> dict[str, float]:
        tracking = TrackingSettings.from_metric_settings(settings)  # tracks follow this metric's own settings
        return scores_with_settings(
            [(inputs.trajectory(tracking), inputs.gt_trajectory(tracking))], settings
        )[0]

    def score_trials(self, inputs: Sequence[TrialInputs], settings: dict) -> list[dict[str, float]]:
        """Many trials through the batched path (the DTW of every pair vectorised together); the
        trials of one episode share its GT track array, whose gripper choice is then made once."""
        tracking = TrackingSettings.from_metric_settings(settings)
        gt_tracks: dict = {}
        pairs = []
        for item in inputs:
            video = item.episode.video_path()
            if video not in gt_tracks:
                gt_tracks[video] = item.gt_trajectory(tracking)
            pairs.append((item.trajectory(tracking), gt_tracks[video]))
        return scores_with_settings(pairs, settings)
