"""Dynamic time warping of 2-D point sequences, batched over many sequence pairs.

Two algorithms, both returning the accumulated cost D and the number of steps L of the warping
path:

* :func:`fastdtw_batch`: FastDTW (Salvador and Chan) exactly as the ``fastdtw`` package computes
  it (the official EWMBench tool calls ``fastdtw(P, G, dist=euclidean)`` with the default radius
  1): coarsen both series by averaging pairs until one is shorter than ``radius + 2``, solve that
  level exactly, then at each finer level solve DTW inside the previous path dilated by
  ``radius`` and upsampled by two. Same point distance, same additions in the same order, same
  tie-breaking between predecessors (vertical, then horizontal, then diagonal; the first of
  equal sums wins), so D and L are bit-identical to the package, not just close.
* :func:`dtw_batch`: exact DTW over the full grid, same recursion and tie-breaking.

The dynamic programme runs row by row over a band (each window row is one contiguous run of
columns), vectorised across all pairs of a batch: the per-cell Python work of the package
becomes a few numpy operations per band column shared by hundreds of pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Elements of the (pairs x rows x band) work arrays held at once; bounds memory to ~100 MB.
_CHUNK_ELEMENTS = 4_000_000


def euclidean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between matching rows of ``a`` and ``b`` (..., 2), float64.

    ``scipy.spatial.distance.euclidean`` (used by the official tool through fastdtw) computes
    the norm with BLAS ``dnrm2``, which on x86-64 sums the squares in 80-bit extended precision.
    Doing the same here keeps DTW costs bit-identical; on platforms without extended precision
    ``longdouble`` is float64 and the last bit may differ (far below any reported digit).
    """
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return _norm_of(diff[..., 0], diff[..., 1])


def _norm_of(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    squared = np.square(dx, dtype=np.longdouble)  # cast element-wise, no long double copies
    squared += np.square(dy, dtype=np.longdouble)
    return np.sqrt(squared, out=squared).astype(np.float64)


def reduce_by_half(x: np.ndarray) -> np.ndarray:
    """FastDTW coarsening: means of consecutive pairs (a trailing odd point is dropped)."""
    even = len(x) - len(x) % 2
    return (x[0:even:2] + x[1:even:2]) / 2


class _Job:
    """One windowed DTW problem: series x (n, 2), y (m, 2), window rows [lo_i, hi_i]."""

    __slots__ = ("x", "y", "lo", "hi", "width", "cost", "length", "row_min", "row_max")

    def __init__(self, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray):
        self.x, self.y, self.lo, self.hi = x, y, lo, hi
        self.width = int((hi - lo).max()) + 1  # the band: widest window row
        self.cost = 0.0
        self.length = 0
        self.row_min: np.ndarray | None = None  # path extent per row, for the next finer window
        self.row_max: np.ndarray | None = None


def _solve_one(job: _Job, need_extent: bool) -> None:
    """The same dynamic programme for a single pair, in plain Python floats: for one pair, numpy
    calls on one-element slices cost more than the arithmetic they do."""
    n = len(job.x)
    lo, hi = job.lo.tolist(), job.hi.tolist()
    rows = np.repeat(np.arange(n), job.hi - job.lo + 1)
    columns = np.concatenate([np.arange(a, b + 1) for a, b in zip(lo, hi)])
    costs = _norm_of(job.x[rows, 0] - job.y[columns, 0], job.x[rows, 1] - job.y[columns, 1]).tolist()
    inf = math.inf
    previous: list[float] = []
    choices: list[bytearray] = []
    at = 0
    for r in range(n):
        first, last = lo[r], hi[r]
        p_first, p_last = (lo[r - 1], hi[r - 1]) if r else (0, -1)
        current = [0.0] * (last - first + 1)
        chosen = bytearray(last - first + 1)
        left = inf
        for k, j in enumerate(range(first, last + 1)):
            dt = costs[at + k]
            if r:
                up = previous[j - p_first] if p_first <= j <= p_last else inf
                diag = previous[j - 1 - p_first] if p_first <= j - 1 <= p_last else inf
            else:
                up, diag = inf, (0.0 if j == 0 else inf)
            best, pick = up + dt, 0  # the package's order: up, left, diagonal; first minimum wins
            if left + dt < best:
                best, pick = left + dt, 1
            if diag + dt < best:
                best, pick = diag + dt, 2
            current[k] = left = best
            chosen[k] = pick
        at += last - first + 1
        previous = current
        choices.append(chosen)
    job.cost = previous[len(job.y) - 1 - lo[n - 1]]
    i, j, length = n - 1, len(job.y) - 1, 0
    row_min, row_max = [-1] * n, [-1] * n
    while i >= 0 or j >= 0:
        length += 1
        row_min[i] = j
        row_max[i] = max(row_max[i], j)
        pick = choices[i][j - lo[i]]
        i, j = i - (pick != 1), j - (pick != 0)
    job.length = length
    if need_extent:
        job.row_min, job.row_max = np.array(row_min), np.array(row_max)


def _solve_chunk(jobs: list[_Job], need_extent: bool) -> None:
    count = len(jobs)
    if count == 1:
        _solve_one(jobs[0], need_extent)
        return
    n = np.array([len(job.x) for job in jobs])
    m = np.array([len(job.y) for job in jobs])
    rows, band = int(n.max()), max(job.width for job in jobs)
    lo = np.zeros((count, rows), dtype=np.int64)
    width = np.zeros((count, rows), dtype=np.int64)  # 0 on padding rows: nothing reachable there
    for b, job in enumerate(jobs):
        lo[b, : n[b]] = job.lo
        width[b, : n[b]] = job.hi - job.lo + 1
    # Costs of the window cells only, laid out band-major (rows, band, pairs): the sequential
    # loop below reads one contiguous (pairs,) slice per band column.
    xs = np.concatenate([job.x for job in jobs])
    ys = np.concatenate([job.y for job in jobs])
    x_start = np.concatenate([[0], np.cumsum(n)[:-1]])
    y_start = np.concatenate([[0], np.cumsum(m)[:-1]])
    offsets = np.arange(band)
    columns_t = lo.T[:, None, :] + offsets[None, :, None]  # (rows, band, count)
    inside = np.flatnonzero(offsets[None, :, None] < width.T[:, None, :])
    r_in, rest = np.divmod(inside, band * count)
    k_in, b_in = np.divmod(rest, count)
    x_at = x_start[b_in] + r_in
    y_at = y_start[b_in] + lo[b_in, r_in] + k_in
    cost = np.full(rows * band * count, np.inf)
    cost[inside] = _norm_of(
        xs[:, 0].take(x_at) - ys[:, 0].take(y_at), xs[:, 1].take(x_at) - ys[:, 1].take(y_at)
    )
    cost = cost.reshape(rows, band, count)

    choice = np.empty((rows, band, count), dtype=np.int8)  # 0 up, 1 left, 2 diagonal
    final = np.full(count, np.inf)
    # D rows, band-major, with one extra slot per pair that stays inf ("outside the window").
    previous = np.full((band + 1, count), np.inf)
    current = np.full((band + 1, count), np.inf)
    s_left = np.full((band, count), np.inf)
    pair = np.arange(count)[None, :]
    offsets_t = offsets[:, None]
    for r in range(rows):
        dt = cost[r]
        if r == 0:
            # D row 0 is all inf except D[0, 0] = 0, which is the diagonal of column 0.
            s_up = np.full((band, count), np.inf)
            s_diag = np.where(columns_t[0] == 0, 0.0, np.inf) + dt
        else:
            # Window rows start at non-decreasing columns: column lo_r + k of this row sits at
            # offset k + shift of the previous row; offsets past its width hold inf already.
            # (Padding rows past a pair's end restart at column 0; their costs are inf anyway.)
            shifted = offsets_t + np.maximum(lo[:, r] - lo[:, r - 1], 0)[None, :]
            up_flat = np.minimum(shifted, band) * count + pair
            diag_flat = np.where(shifted > 0, np.minimum(shifted - 1, band), band) * count + pair
            s_up = previous.take(up_flat) + dt
            s_diag = previous.take(diag_flat) + dt
        # The package takes the minimum of the three candidate sums; the minimum's value does not
        # depend on the order of comparison, so the only sequential part (the left neighbour) is
        # one addition and one minimum per column. Which candidate won is recovered after.
        not_left = np.minimum(s_up, s_diag)
        current[0] = not_left[0]
        for k in range(1, band):
            np.add(current[k - 1], dt[k], out=s_left[k])
            np.minimum(not_left[k], s_left[k], out=current[k])
        # Tie-breaking of the package: up; left if strictly smaller; diagonal if strictly
        # smaller than both.
        row_choice = choice[r]
        np.less(s_left, s_up, out=row_choice, casting="unsafe")
        row_choice[s_diag < np.minimum(s_up, s_left)] = 2
        ends = np.flatnonzero(n - 1 == r)
        if ends.size:
            final[ends] = current[m[ends] - 1 - lo[ends, r], ends]
        previous, current = current, previous

    # Backtrack every path at once, from (n-1, m-1) to (0, 0).
    i, j = n - 1, m - 1
    length = np.zeros(count, dtype=np.int64)
    active = np.ones(count, dtype=bool)
    row_min = np.full((count, rows), -1, dtype=np.int64)
    row_max = np.full((count, rows), -1, dtype=np.int64)
    while active.any():
        b = np.flatnonzero(active)
        ib, jb = i[b], j[b]
        length[b] += 1
        if need_extent:
            row_min[b, ib] = jb  # visited in decreasing j: the last write is the row minimum
            row_max[b, ib] = np.maximum(row_max[b, ib], jb)
        step = choice[ib, jb - lo[b, ib], b]
        i[b] = ib - (step != 1)
        j[b] = jb - (step != 0)
        active[b] = ~((i[b] < 0) & (j[b] < 0))
    for b, job in enumerate(jobs):
        job.cost, job.length = float(final[b]), int(length[b])
        if need_extent:
            job.row_min, job.row_max = row_min[b, : n[b]], row_max[b, : n[b]]


def _solve(jobs: list[_Job], need_extent: bool) -> None:
    """Solve jobs in chunks of similar band width, so one wide window does not widen them all."""
    widths = [job.width for job in jobs]
    order = sorted(range(len(jobs)), key=lambda k: (widths[k], len(jobs[k].x)))
    start = 0
    while start < len(order):
        stop, rows, band = start + 1, len(jobs[order[start]].x), widths[order[start]]
        while stop < len(order):
            k = order[stop]
            grown_rows, grown_band = max(rows, len(jobs[k].x)), max(band, widths[k])
            if (stop - start + 1) * grown_rows * grown_band > _CHUNK_ELEMENTS or widths[k] > 1.5 * widths[
                order[start]
            ] + 4:
                break
            rows, band, stop = grown_rows, grown_band, stop + 1
        _solve_chunk([jobs[k] for k in order[start:stop]], need_extent)
        start = stop


def _full_window(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, dtype=np.int64), np.full(n, m - 1, dtype=np.int64)


def expand_windows(
    row_mins: Sequence[np.ndarray],
    row_maxs: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
    radius: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """FastDTW's windows for (n, m) grids from the path extent per row of their half-size grids.

    The package dilates the coarse path by a (2r+1)^2 square, upsamples each cell to 2x2 and
    keeps, per row, the run of cells reachable from the previous row's first column. A warping
    path is monotone, so each dilated row is one contiguous run whose start never decreases:
    coarse row a spans [min_j(row a-r) - r, max_j(row a+r) + r]; fine rows 2a and 2a+1 span
    twice that, clipped to the grid. All pairs are expanded in one vectorised pass.
    """
    coarse_rows = np.array([len(r) for r in row_mins])
    base = np.concatenate([[0], np.cumsum(coarse_rows)[:-1]])
    fine_rows = np.array([n for n, _ in sizes])
    fine_cols = np.array([m for _, m in sizes])
    owner = np.repeat(np.arange(len(sizes)), fine_rows)
    a = (np.arange(fine_rows.sum()) - np.repeat(np.cumsum(fine_rows) - fine_rows, fine_rows)) // 2
    last = coarse_rows[owner] - 1
    lo = np.concatenate(row_mins)[base[owner] + np.minimum(np.maximum(a - radius, 0), last)] - radius
    hi = np.concatenate(row_maxs)[base[owner] + np.minimum(a + radius, last)] + radius
    lo = np.maximum(2 * lo, 0)
    hi = np.minimum(2 * hi + 1, fine_cols[owner] - 1)
    ends = np.cumsum(fine_rows).tolist()
    starts = [0, *ends[:-1]]
    return [(lo[a:b], hi[a:b]) for a, b in zip(starts, ends)]


def expand_window(
    row_min: np.ndarray, row_max: np.ndarray, n: int, m: int, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`expand_windows` of one pair."""
    return expand_windows([row_min], [row_max], [(n, m)], radius)[0]


def _halve_all(points: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`reduce_by_half` of every concatenated series at once (same arithmetic)."""
    halves = lengths // 2
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    first = np.repeat(starts, halves) + 2 * (
        np.arange(halves.sum()) - np.repeat(np.cumsum(halves) - halves, halves)
    )
    return (points[first] + points[first + 1]) / 2, halves


def _pyramids(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], radius: int
) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per pair, its FastDTW levels: the series, then halved while both have >= radius + 2 points."""
    if not pairs:
        return []
    xs = [np.asarray(x, np.float64).reshape(-1, 2) for x, _ in pairs]
    ys = [np.asarray(y, np.float64).reshape(-1, 2) for _, y in pairs]
    x_len, y_len = np.array([len(x) for x in xs]), np.array([len(y) for y in ys])
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    pyramids = [[(x, y)] for x, y in zip(xs, ys)]
    deeper = (x_len >= radius + 2) & (y_len >= radius + 2)
    while deeper.any():
        x_all, x_len = _halve_all(x_all, x_len)
        y_all, y_len = _halve_all(y_all, y_len)
        x_end, y_end = np.cumsum(x_len).tolist(), np.cumsum(y_len).tolist()
        x_size, y_size = x_len.tolist(), y_len.tolist()
        for p in np.flatnonzero(deeper).tolist():
            x_stop, y_stop = x_end[p], y_end[p]
            pyramids[p].append((x_all[x_stop - x_size[p] : x_stop], y_all[y_stop - y_size[p] : y_stop]))
        deeper &= (x_len >= radius + 2) & (y_len >= radius + 2)
    return pyramids


def fastdtw_batch(pairs: Sequence[tuple[np.ndarray, np.ndarray]], radius: int = 1) -> list[tuple[float, int]]:
    """FastDTW cost and path length of each (x, y) pair of (n, 2) point series."""
    if radius < 1:
        raise ValueError("fastdtw radius must be at least 1")
    pyramids = _pyramids(pairs, radius)
    # Round t solves level (depth - t) of every pair deep enough: the coarsest level exactly,
    # every finer one inside the window grown from the level below it.
    previous: dict[int, _Job] = {}
    results: list[tuple[float, int]] = [(0.0, 0)] * len(pairs)
    for t in range(max((len(levels) for levels in pyramids), default=0)):
        active = [p for p, levels in enumerate(pyramids) if len(levels) - 1 - t >= 0]
        series = [pyramids[p][len(pyramids[p]) - 1 - t] for p in active]
        if t == 0:
            windows = [_full_window(len(x), len(y)) for x, y in series]
        else:
            windows = expand_windows(
                [previous[p].row_min for p in active],
                [previous[p].row_max for p in active],
                [(len(x), len(y)) for x, y in series],
                radius,
            )
        jobs = {p: _Job(x, y, lo, hi) for p, (x, y), (lo, hi) in zip(active, series, windows)}
        _solve(list(jobs.values()), need_extent=True)
        for p, job in jobs.items():
            if len(pyramids[p]) - 1 - t == 0:
                results[p] = (job.cost, job.length)
        previous = jobs
    return results


def dtw_batch(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, int]]:
    """Exact DTW cost and path length of each (x, y) pair of (n, 2) point series."""
    jobs = []
    for x, y in pairs:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        jobs.append(_Job(x, y, *_full_window(len(x), len(y))))
    _solve(jobs, need_extent=False)
    return [(job.cost, job.length) for job in jobs]


def time_aware_dtw_batch(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], step_penalty: float, floor: float
) -> list[float]:
    """DTW cost of each (x, y) pair of (n, 2) / (m, 2) point series with two changes that make it
    see time (``ewmbench-v2``'s NDTW):

    * every point distance is reduced by ``floor`` (never below 0): distances within the detector's
      jitter cost nothing, so an exact replay costs exactly 0;
    * every step that is not diagonal (a frame of one series held while the other moves on) adds
      ``step_penalty``: warping is no longer free, so a lag or a stutter costs what it distorts.

    ``D[i, j] = c(i, j) + min(D[i-1, j-1], D[i-1, j] + penalty, D[i, j-1] + penalty)`` from
    ``D[0, 0] = c(0, 0)``; the cost is ``D[n-1, m-1]``. Each row is solved without a Python loop
    over columns: with ``S`` the running sum of ``c + penalty`` along the row and ``A`` the best
    entry from the row above, ``D[i, j] = S[j] + min over k <= j of (A[k] - S[k])``, a running
    minimum. Pairs are stacked (zero-padded: a padded cell never precedes a real one).
    """
    results: list[float] = []
    penalty = float(step_penalty)
    for start in range(0, len(pairs), 256):
        chunk = [
            (np.asarray(x, np.float64), np.asarray(y, np.float64)) for x, y in pairs[start : start + 256]
        ]
        n = np.array([len(x) for x, _ in chunk])
        m = np.array([len(y) for _, y in chunk])
        rows, columns = int(n.max()), int(m.max())
        xs = np.zeros((len(chunk), rows, 2))
        ys = np.zeros((len(chunk), columns, 2))
        for b, (x, y) in enumerate(chunk):
            xs[b, : len(x)] = x
            ys[b, : len(y)] = y
        final = np.empty(len(chunk))
        previous = None
        for i in range(rows):
            distance = _norm_of(xs[:, i, None, 0] - ys[:, :, 0], xs[:, i, None, 1] - ys[:, :, 1])
            cost = np.maximum(distance - floor, 0.0)  # (pairs, columns)
            running = np.cumsum(cost + penalty, axis=1)  # S
            if previous is None:  # row 0: from (0, 0), left moves only
                current = cost[:, :1] + (running - running[:, :1])
            else:
                reach = previous + penalty  # from above
                reach[:, 1:] = np.minimum(reach[:, 1:], previous[:, :-1])  # diagonal
                entry = cost + reach  # A: the best way into (i, j) not from the left
                current = running + np.minimum.accumulate(entry - running, axis=1)
            ends = np.flatnonzero(n - 1 == i)
            final[ends] = current[ends, m[ends] - 1]
            previous = current
        results.extend(float(v) for v in final)
    return results
