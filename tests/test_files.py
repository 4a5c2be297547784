"""files.py: the cache root, file hashes, atomic writes, JSON conventions."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from ewmbench import files


def test_cache_root_reads_the_environment_at_each_call(monkeypatch, tmp_path):
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "a"))
    assert files.cache_root() == tmp_path / "a"
    monkeypatch.setenv("EWMBENCH_CACHE", str(tmp_path / "b"))
    assert files.cache_root() == tmp_path / "b"
    monkeypatch.delenv("EWMBENCH_CACHE")
    assert files.cache_root() == Path.home() / ".cache" / "ewmbench"


def test_sha256_file_matches_hashlib_and_follows_changes(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc" * 1000)
    assert files.sha256_file(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    path.write_bytes(b"other bytes")
    os.utime(path, ns=(1, 1))  # a new size and modification time: hashed again
    assert files.sha256_file(path) == hashlib.sha256(b"other bytes").hexdigest()


def test_atomic_writes_leave_no_temporary_file_and_keep_the_old_file_on_failure(tmp_path):
    target = tmp_path / "deep" / "out.json"
    files.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_written_files_get_the_usual_permissions(tmp_path):
    reference = tmp_path / "plain.txt"
    reference.write_text("x")
    files.write_text(tmp_path / "atomic.txt", "x")
    assert (tmp_path / "atomic.txt").stat().st_mode == reference.stat().st_mode


def test_arrays_round_trip_without_pickle(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    files.save_array(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(files.load_array(tmp_path / "a.npy"), array)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        files.load_array(tmp_path / "obj.npy")


def test_json_has_no_nan_or_infinity_tokens_and_takes_numpy_values():
    value = {
        "nan": math.nan,
        "inf": -math.inf,
        "arr": np.array([1.5, np.nan]),
        "i": np.int64(3),
        "p": Path("x"),
        2: (True,),
    }
    text = files.json_text(value, sort_keys=True)
    assert json.loads(text) == {"2": [True], "arr": [1.5, None], "i": 3, "inf": "-inf", "nan": None, "p": "x"}
    assert "NaN" not in text and "Infinity" not in text and text.endswith("}\n")
