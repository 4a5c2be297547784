"""Realistic synthetic motion trials: smooth 2-D gripper tracks from random waypoints; each
episode has 3 generated trials that follow the GT with a random time warp, drift, detection noise
and dropped detections, and some failed generations that wander off."""

from __future__ import annotations

import numpy as np


def smooth_path(
    rng: np.random.Generator, frames: int, waypoints: int, low: float, high: float, dims: int = 2
) -> np.ndarray:
    """A smooth path through random waypoints (cubic-ish by repeated linear smoothing)."""
    knots = rng.uniform(low, high, (waypoints, dims))
    t = np.linspace(0, waypoints - 1, frames)
    path = np.stack([np.interp(t, np.arange(waypoints), knots[:, d]) for d in range(dims)], axis=1)
    kernel = np.ones(9) / 9
    for _ in range(3):
        padded = np.pad(path, ((4, 4), (0, 0)), mode="edge")
        path = np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(dims)], axis=1)
    return path


def gt_track(rng: np.random.Generator, frames: int) -> np.ndarray:
    active = smooth_path(rng, frames, int(rng.integers(3, 7)), 0.15, 0.85)
    idle = smooth_path(rng, frames, 2, 0.2, 0.8) * 0.2 + rng.uniform(0.2, 0.6, 2)
    arms = [active, idle] if rng.random() < 0.5 else [idle, active]
    track = np.stack(arms, axis=1) + rng.normal(0, 0.003, (frames, 2, 2))
    return drop_detections(rng, np.clip(track, 0, 1), rng.uniform(0.0, 0.1))


def generated_track(rng: np.random.Generator, gt_clean: np.ndarray) -> np.ndarray:
    frames = len(gt_clean)
    if rng.random() < 0.1:  # a failed generation: the grippers wander elsewhere
        track = np.stack([smooth_path(rng, frames, 3, 0.1, 0.9) for _ in range(2)], axis=1)
    else:
        warp = np.cumsum(rng.uniform(0.6, 1.4, frames))
        warp = (warp - warp[0]) / (warp[-1] - warp[0]) * (frames - 1)
        track = np.stack(
            [
                np.stack([np.interp(warp, np.arange(frames), gt_clean[:, arm, d]) for d in range(2)], axis=1)
                for arm in range(2)
            ],
            axis=1,
        )
        drift = np.linspace(0, 1, frames)[:, None, None] * rng.normal(0, 0.04, (1, 2, 2))
        track = track + drift + rng.normal(0, rng.uniform(0.003, 0.02), track.shape)
    return drop_detections(rng, np.clip(track, 0, 1), rng.uniform(0.0, 0.3))


def drop_detections(rng: np.random.Generator, track: np.ndarray, rate: float) -> np.ndarray:
    track = track.astype(np.float32)
    lost = rng.random(track.shape[:2]) < rate
    if rng.random() < 0.3:  # a longer occlusion of one gripper
        start = int(rng.integers(0, len(track)))
        lost[start : start + int(rng.integers(5, 20)), int(rng.integers(0, 2))] = True
    track[lost] = -1
    return track


def make_trials(
    episodes: int, seed: int, frames_range: tuple[int, int] = (60, 150)
) -> list[tuple[np.ndarray, np.ndarray]]:
    """3 generated tracks per episode against its GT track; episode lengths drawn from
    ``frames_range`` (low inclusive, high exclusive)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(episodes):
        frames = int(rng.integers(*frames_range))
        gt = gt_track(rng, frames)
        clean = np.where(gt == -1, np.nan, gt)
        for arm in range(2):  # the generated tracks follow the GT motion, not its dropouts
            for d in range(2):
                known = ~np.isnan(clean[:, arm, d])
                clean[:, arm, d] = np.interp(np.arange(frames), np.flatnonzero(known), clean[known, arm, d])
        pairs.extend((generated_track(rng, clean), gt) for _ in range(3))
    return pairs
