"""The feature store: keys, atomic shared files; FID/FVD moments that merge across shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ewmbench.metrics.features import feature_stage_key
from ewmbench.metrics.fidelity import (
    FeatureMoments,
    feature_statistics,
    frechet_distance_of_features,
    frechet_distance_of_moments,
)
from ewmbench.store import FeatureStore, stage_key


def test_key_changes_with_stage_settings_weights_and_version_only():
    base = stage_key("fid-inception-pool3", {"frame_stride": 1}, "sha256:aa")
    assert stage_key("fid-inception-pool3", {"frame_stride": 1}, "sha256:aa").folder == base.folder
    others = [
        stage_key("fvd-i3d", {"frame_stride": 1}, "sha256:aa"),
        stage_key("fid-inception-pool3", {"frame_stride": 2}, "sha256:aa"),
        stage_key("fid-inception-pool3", {"frame_stride": 1}, "sha256:bb"),
        stage_key("fid-inception-pool3", {"frame_stride": 1}, "sha256:aa", version=2),
    ]
    assert len({k.folder for k in others} | {base.folder}) == 5
    assert base.folder.startswith("fid-inception-pool3/")
    with pytest.raises(ValueError):
        stage_key("a/b")


def test_store_computes_once_writes_atomically_and_describes_the_key(tmp_path):
    store, calls = FeatureStore(tmp_path), []
    key = stage_key("eef-track", {"conf": 0.25}, "sha256:cafe")

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    first = store.array(key, "0123abcd", compute)
    again = FeatureStore(tmp_path).array(key, "0123abcd", compute)  # another worker sharing the folder
    assert calls == [1] and again.dtype == np.float32 and again.tolist() == first.tolist()
    folder = tmp_path / key.folder
    assert sorted(p.name for p in folder.iterdir()) == ["0123abcd.npy", "key.json"]  # no temporary file left
    assert json.loads((folder / "key.json").read_text())["weights"] == "sha256:cafe"
    (folder / "0123abcd.npy").write_bytes(b"torn")  # an unreadable file is computed again, not trusted
    assert store.array(key, "0123abcd", compute).tolist() == first.tolist() and calls == [1, 1]
    assert store.text(stage_key("captions"), "0123abcd", lambda: "a caption") == "a caption"
    assert store.text(stage_key("captions"), "0123abcd", lambda: "never") == "a caption"
    with pytest.raises(ValueError, match="not a content hash"):
        store.path(key, "../x", ".npy")


def test_feature_keys_follow_the_weights_content_not_their_path(tmp_path, monkeypatch):
    """Same bytes elsewhere: the same features; other bytes under the same path: other features
    (the FID/FVD key's test, kept by the store)."""
    settings = {"weights": "fid-inception", "frame_stride": 1, "batch_size": 8}
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    a.write_bytes(b"weights one")
    b.write_bytes(b"weights one")
    monkeypatch.setenv("EWMBENCH_WEIGHTS_FID_INCEPTION", str(a))
    key_a = feature_stage_key("fid-inception-pool3", settings)
    monkeypatch.setenv("EWMBENCH_WEIGHTS_FID_INCEPTION", str(b))
    assert feature_stage_key("fid-inception-pool3", settings).folder == key_a.folder
    assert (
        feature_stage_key("fid-inception-pool3", {**settings, "batch_size": 64}).folder == key_a.folder
    )  # speed only
    b.write_bytes(b"weights two")
    assert feature_stage_key("fid-inception-pool3", settings).folder != key_a.folder


def test_moments_hand_worked():
    m = FeatureMoments.of(np.array([[1.0, 2.0], [3.0, 6.0]]))
    assert (
        m.count == 2 and m.total.tolist() == [4.0, 8.0] and m.outer.tolist() == [[10.0, 20.0], [20.0, 40.0]]
    )
    mean, cov = m.statistics()
    assert mean.tolist() == [2.0, 4.0] and cov.tolist() == [
        [2.0, 4.0],
        [4.0, 8.0],
    ]  # unbiased: (1, 2) deviations
    with pytest.raises(ValueError, match="at least 2"):
        FeatureMoments.of(np.ones((1, 2))).statistics()
    with pytest.raises(ValueError, match="sizes differ"):
        FeatureMoments.of(np.ones((2, 2))) + FeatureMoments.of(np.ones((2, 3)))


def test_sharded_moments_equal_the_whole():
    rng = np.random.default_rng(0)
    generated, reference = rng.normal(0.3, 1.0, (300, 16)), rng.normal(0.0, 1.2, (200, 16))
    shards = [generated[:7], generated[7:7], generated[7:150], generated[150:]]
    merged = FeatureMoments.merged(FeatureMoments.of(s) for s in shards)
    mean, cov = merged.statistics()
    whole_mean, whole_cov = feature_statistics(generated)
    np.testing.assert_allclose(mean, whole_mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, whole_cov, rtol=0, atol=1e-12)
    ref = FeatureMoments.of(reference[:50]) + FeatureMoments.of(reference[50:])
    assert frechet_distance_of_moments(merged, ref) == pytest.approx(
        frechet_distance_of_features(generated, reference), rel=1e-10
    )
