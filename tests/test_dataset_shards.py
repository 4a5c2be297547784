"""FID and FVD in shards of whole episodes: each shard computes its videos' features into the
feature store in a work item of its own, and the run's dataset item pools every video's features
in the run's order: bit for bit the value of one pass over the whole run. The Inception is
replaced by a mean-colour probe (no weights)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ewmbench.data.layout import write_episode, write_trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.metrics.base import TrialInputs, dataset_shards
from ewmbench.metrics.fidelity import (
    FID,
    FeatureMoments,
    distinct_gt_videos,
    feature_statistics,
    frechet_distance_of_features,
    frechet_distance_of_moments,
)
from ewmbench.perception import replay_networks as rf
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.protocols import load_protocol
from ewmbench.run import build_plan, chunked, executors
from ewmbench.run.items import Job
from ewmbench.run.scoring import Scorer

SETTINGS = {**load_protocol("ewmbench-v1").settings("fid"), "frame_stride": 2}


class MeanColour(torch.nn.Module):  # stands in for the Inception: features = mean RGB of each image
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, images):
        return images.mean((2, 3)) * self.w


@pytest.fixture
def probe_inception(tmp_path, monkeypatch):
    path = tmp_path / "weights" / "fid-inception.pt"
    path.parent.mkdir()
    path.write_bytes(b"fid-inception")
    monkeypatch.setenv("EWMBENCH_WEIGHTS_FID_INCEPTION", str(path))
    monkeypatch.setattr(rf, "load_fid_inception", lambda path, device: MeanColour())


def _pairs(tmp_path, trials_per_episode=(2, 3, 1, 2)):
    rng = np.random.default_rng(0)
    pairs = []
    for e, count in enumerate(trials_per_episode):
        frames = rng.integers(0, 255, (6, 16, 16, 3), dtype=np.uint8)
        episode = write_episode(tmp_path / "gt", "1", str(e), frames, "task")
        for t in range(1, count + 1):
            noisy = np.clip(frames + rng.integers(-60, 60, frames.shape), 0, 255).astype(np.uint8)
            pairs.append((episode, write_trial(tmp_path / "gen_dataset", "1", str(e), str(t), noisy)))
    return pairs


def test_shards_hold_whole_episodes_in_first_seen_order():
    trials = ["a1", "a2", "b1", "b2", "b3", "c1", "d1", "d2", "d3", "d4", "d5", "a3"]
    shards = dataset_shards(trials, lambda trial: trial[0], 4)
    # a (3 trials, a3 comes late) fits; b (3) does not fit beside it; c joins b; d (5) is too big alone
    assert shards == [["a1", "a2", "a3"], ["b1", "b2", "b3", "c1"], ["d1", "d2", "d3", "d4", "d5"]]
    assert dataset_shards([], lambda trial: trial, 4) == []


def _no_network(monkeypatch):
    monkeypatch.setattr(
        rf, "load_fid_inception", lambda path, device: (_ for _ in ()).throw(AssertionError("not stored"))
    )


def test_shards_store_the_features_and_the_run_pools_them_bit_for_bit(tmp_path, probe_inception, monkeypatch):
    pairs = _pairs(tmp_path)
    whole = FID().score_dataset(
        [TrialInputs(e, t, VideoCache(tmp_path / "one-pass")) for e, t in pairs], SETTINGS
    )
    inputs = [TrialInputs(e, t, VideoCache(tmp_path / "sharded")) for e, t in pairs]
    shards = dataset_shards(inputs, lambda item: item.episode.key, 3)
    assert [len(s) for s in shards] == [2, 3, 3]  # episodes of 2 | 3 | 1 + 2 trials
    for shard in shards:
        assert FID().score_shard(shard, SETTINGS) is None
    _no_network(monkeypatch)  # the run's item reads only what the shards stored
    sharded = FID().score_dataset(inputs, SETTINGS)
    assert sharded["fid"] == whole["fid"]  # the same sums in the same order
    generated = [FID().video_features(i.trial.video_path(), inputs[0], SETTINGS) for i in inputs]
    reference = [FID().video_features(v, inputs[0], SETTINGS) for v in distinct_gt_videos(inputs)]
    assert sum(len(f) for f in generated) == 24 and sum(len(f) for f in reference) == 12  # 3 frames each
    pooled = [FeatureMoments.merged(FeatureMoments.of(f) for f in side) for side in (generated, reference)]
    assert sharded["fid"] == frechet_distance_of_moments(*pooled)
    at_once = frechet_distance_of_features(np.concatenate(generated), np.concatenate(reference))
    assert sharded["fid"] == pytest.approx(at_once, rel=1e-9, abs=1e-9)
    mean, cov = pooled[0].statistics()
    np.testing.assert_allclose(mean, feature_statistics(np.concatenate(generated))[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(cov, feature_statistics(np.concatenate(generated))[1], rtol=0, atol=1e-9)


def test_executors_run_shards_as_items_and_the_dataset_item_pools_them(
    tmp_path, probe_inception, monkeypatch
):
    pairs = _pairs(tmp_path)
    monkeypatch.setattr(FID, "shard_trials", 3)
    items = build_plan([FID()], pairs)
    assert [(item.level, len(item.pairs)) for item in items] == [
        ("shard", 2),
        ("shard", 3),
        ("shard", 3),
        ("dataset", 8),
    ]
    chunks = chunked(items, 16)
    assert [len(phase) for phase in executors._phases(chunks)] == [3, 1]  # shards first, then the merge
    protocol = dataclasses.replace(load_protocol("ewmbench-v1"), metrics={"fid": SETTINGS})
    job = Job(tmp_path / "out", protocol, tmp_path / "cache", "cpu", DetectorChoice())
    try:
        executors.run_serial(job, items, lambda n: None)
    finally:
        executors._CURRENT.clear()
    stored = list((tmp_path / "cache").rglob("*.npy"))
    assert len(stored) == len(pairs) + len({e.key for e, _ in pairs})  # every video's features, once
    collected = Scorer(job.output, protocol, VideoCache(job.cache_dir), "cpu").stored_dataset(FID(), pairs)
    assert collected["status"] == "ok"
    one_pass = FID().score_dataset(
        [TrialInputs(e, t, VideoCache(tmp_path / "one-pass")) for e, t in pairs], SETTINGS
    )
    assert collected["values"]["fid"] == one_pass["fid"]
    # the dataset item pools the stored features: with the network gone it computes the same value
    (tmp_path / "out" / "scores" / "fid" / "dataset.json").unlink()
    _no_network(monkeypatch)
    scorer = Scorer(job.output, protocol, VideoCache(tmp_path / "cache"), "cpu")
    again = scorer.score_dataset(FID(), pairs)
    assert again["values"]["fid"] == collected["values"]["fid"] and scorer.computed == 1
