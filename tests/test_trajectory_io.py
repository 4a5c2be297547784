"""Reading and validating official traj.npy tracks."""

from __future__ import annotations

import numpy as np
import pytest

from ewmbench.data.trajectory import load_traj, missing_mask, validate_traj
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import DataError
from ewmbench.perception.detector import TrackingSettings
from ewmbench.perception.trajectories import trajectory_of
from ewmbench.protocols import DEFAULT_PROTOCOL, load_protocol


def _save(tmp_path, array, name="traj.npy"):
    path = tmp_path / name
    np.save(path, array)
    return path


def test_valid_track_is_float32_with_missing_markers(tmp_path):
    track = np.array([[[0.1, 0.2], [-1, -1]], [[1.0, 0.0], [0.5, 0.5]]], dtype=np.float64)
    loaded = load_traj(_save(tmp_path, track))
    assert loaded.dtype == np.float32
    assert loaded.shape == (2, 2, 2)
    np.testing.assert_array_equal(loaded, track.astype(np.float32))
    np.testing.assert_array_equal(missing_mask(loaded), [[False, True], [False, False]])


def test_input_file_is_not_modified(tmp_path):
    track = np.full((3, 2, 2), 0.5)
    path = _save(tmp_path, track)
    before = path.read_bytes()
    load_traj(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.zeros((4, 2)), "shape (T, 2, 2)"),
        (np.zeros((4, 3, 2)), "shape (T, 2, 2)"),
        (np.zeros((4, 2, 3)), "shape (T, 2, 2)"),
        (np.zeros((0, 2, 2)), "empty"),
        (np.array([[[0.1, np.nan], [0.2, 0.2]]]), "NaN or inf"),
        (np.array([[[0.1, 0.1], [np.inf, 0.2]]]), "NaN or inf"),
        (np.array([[[0.1, 1.5], [0.2, 0.2]]]), "outside [0, 1]"),
        (np.array([[[0.1, 0.1], [-0.2, 0.2]]]), "outside [0, 1]"),
        # Only the exact pair (-1, -1) marks a missing detection; a half marker is corrupt.
        (np.array([[[-1.0, 0.5], [0.2, 0.2]]]), "outside [0, 1]"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_malformed_tracks_raise_data_error_naming_the_file(tmp_path, array, problem):
    path = _save(tmp_path, array)
    with pytest.raises(DataError) as info:
        load_traj(path)
    assert info.value.path == path
    assert problem in info.value.problem


def test_out_of_range_error_names_frame_and_gripper():
    track = np.full((5, 2, 2), 0.5)
    track[3, 1] = (0.5, 2.0)
    with pytest.raises(DataError, match="frame 3, gripper 1"):
        validate_traj(track, "pred")


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_traj(tmp_path / "nope.npy")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an npy file")
    with pytest.raises(DataError, match="readable"):
        load_traj(bad)
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError):
        load_traj(pickled)


def test_preprocessor_uses_official_traj_when_present(tmp_path):
    track = np.full((4, 2, 2), 0.25, dtype=np.float32)
    (tmp_path / "traj").mkdir()
    path = _save(tmp_path / "traj", track)
    got = trajectory_of(
        path,
        tmp_path / "video",
        VideoCache(tmp_path / "cache"),
        TrackingSettings.from_protocol(load_protocol(DEFAULT_PROTOCOL)),
    )
    np.testing.assert_array_equal(got, track)
