"""FID and FVD in shards of whole episodes: each shard's features reduced to moments (count, sum,
sum of outer products) in a work item of its own, merged by the run's dataset item; the merged
value is the whole-run one. The Inception is replaced by a mean-colour probe (no weights)."""

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


def test_merged_shard_moments_equal_the_moments_of_all(tmp_path, probe_inception, monkeypatch):
    videos = VideoCache(tmp_path / "cache")
    inputs = [TrialInputs(e, t, videos) for e, t in _pairs(tmp_path)]
    monkeypatch.setattr(FID, "shard_trials", 3)
    shards = dataset_shards(inputs, lambda item: item.episode.key, 3)
    assert [len(s) for s in shards] == [2, 3, 3]  # episodes of 2 | 3 | 1 + 2 trials
    parts = [FID().score_shard(shard, SETTINGS) for shard in shards]
    # the features the metric used (float32, cached per video), pooled at once in float64
    generated = np.concatenate(
        [FID().video_features(i.trial.video_path(), inputs[0], SETTINGS) for i in inputs]
    )
    reference = np.concatenate(
        [FID().video_features(v, inputs[0], SETTINGS) for v in distinct_gt_videos(inputs)]
    )
    assert generated.shape == (24, 3) and reference.shape == (12, 3)  # 8 trials, 4 episodes, 3 frames each
    for side, features in (("generated", generated), ("reference", reference)):
        merged = FeatureMoments.merged(
            FeatureMoments(int(p[f"{side}_count"]), p[f"{side}_total"], p[f"{side}_outer"]) for p in parts
        )
        whole = FeatureMoments.of(features)
        assert merged.count == whole.count
        np.testing.assert_allclose(merged.total, whole.total, rtol=0, atol=1e-9)
        np.testing.assert_allclose(merged.outer, whole.outer, rtol=0, atol=1e-9)
        for ours, theirs in zip(merged.statistics(), feature_statistics(features)):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    sharded = FID().score_shards(parts, SETTINGS)["fid"]
    assert sharded == pytest.approx(frechet_distance_of_features(generated, reference), rel=1e-9, abs=1e-9)
    assert FID().score_dataset(inputs, SETTINGS)["fid"] == pytest.approx(sharded, rel=1e-12)
    monkeypatch.setattr(FID, "shard_trials", 1000)  # one shard: the whole run at once
    at_once = FID().score_dataset(inputs, SETTINGS)["fid"]
    assert at_once == pytest.approx(sharded, rel=1e-9, abs=1e-9)
    # ... bit for bit the value of pooling every video's moments in order (as before shards)
    pooled = [
        FeatureMoments.merged(
            FeatureMoments.of(FID().video_features(video, inputs[0], SETTINGS)) for video in side
        )
        for side in ([i.trial.video_path() for i in inputs], distinct_gt_videos(inputs))
    ]
    assert at_once == frechet_distance_of_moments(*pooled)


def test_executors_run_shards_as_items_and_the_dataset_item_merges_them(
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
    stored = sorted((tmp_path / "out" / "scores" / "fid" / "shards").glob("*.npz"))
    assert len(stored) == 3
    collected = Scorer(job.output, protocol, VideoCache(job.cache_dir), "cpu").stored_dataset(FID(), pairs)
    cached = TrialInputs(pairs[0][0], pairs[0][1], VideoCache(tmp_path / "cache"))
    generated = np.concatenate([FID().video_features(t.video_path(), cached, SETTINGS) for _, t in pairs])
    gt_videos = dict.fromkeys(e.video_path() for e, _ in pairs)
    reference = np.concatenate([FID().video_features(v, cached, SETTINGS) for v in gt_videos])
    assert collected["status"] == "ok"
    assert collected["values"]["fid"] == pytest.approx(
        frechet_distance_of_features(generated, reference), rel=1e-9, abs=1e-9
    )
    # the dataset item reads the stored shards: with the network gone it still merges them
    (tmp_path / "out" / "scores" / "fid" / "dataset.json").unlink()
    monkeypatch.setattr(
        rf, "load_fid_inception", lambda path, device: (_ for _ in ()).throw(AssertionError("not stored"))
    )
    scorer = Scorer(job.output, protocol, VideoCache(tmp_path / "empty-cache"), "cpu")
    again = scorer.score_dataset(FID(), pairs)
    assert again["values"]["fid"] == collected["values"]["fid"] and scorer.computed == 1
