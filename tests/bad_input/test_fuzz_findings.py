"""Inputs found by ``benchmarks/fuzz_readers.py`` that once escaped as foreign exceptions; each
must now be one of our errors naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ewmbench.data.layout import Sidecar
from ewmbench.data.trajectory import load_traj
from ewmbench.errors import DataError

FINDINGS = Path(__file__).parent / "fuzz_findings"


def test_sidecar_arrays_with_an_encrypted_member(tmp_path):
    """Was: RuntimeError("File 'eef_pose.npy' is encrypted, password required for extraction")."""
    folder = tmp_path / "episode" / "ewmbench"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text('{"format": "ewmbench-sidecar/1"}')
    shutil.copy(FINDINGS / "arrays-encrypted-member.npz", folder / "arrays.npz")
    with pytest.raises(DataError, match=r"arrays.npz: unreadable sidecar arrays \(RuntimeError: .*encrypted"):
        Sidecar.load(tmp_path / "episode")


def test_traj_npy_with_a_mangled_header(tmp_path):
    """Was: tokenize.TokenError('EOF in multi-line statement') from numpy's header parser."""
    path = tmp_path / "traj.npy"
    shutil.copy(FINDINGS / "traj-mangled-header.npy", path)
    with pytest.raises(DataError, match=r"traj.npy: not a readable .npy array"):
        load_traj(path)


def test_traj_npy_that_is_an_npz_archive(tmp_path):
    import numpy as np

    path = tmp_path / "traj.npy"
    with open(path, "wb") as fh:
        np.savez(fh, track=np.zeros((3, 2, 2)))
    with pytest.raises(DataError, match="an .npz archive"):
        load_traj(path)
