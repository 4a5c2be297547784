"""The video cache: decoded frames (LRU), content hashes, derived data by stage key and content."""

from __future__ import annotations

import shutil

import numpy as np

from ewmbench.data.layout import write_trial
from ewmbench.data.video_cache import DecodedFrames, VideoCache
from tests.helpers.datasets import moving_square_frames


def test_derived_data_is_computed_once_per_stage_key_and_video_content(tmp_path):
    trial = write_trial(tmp_path / "a_dataset", "1", "1", "1", moving_square_frames(3))
    copy = tmp_path / "copy"
    shutil.copytree(trial.video_path(), copy)  # same content elsewhere
    cache = VideoCache(tmp_path / "cache")
    calls = []

    def compute():
        calls.append(1)
        return np.arange(3.0)

    first = cache.derived.array("stage/a", trial.video_path(), compute)
    assert cache.derived.array("stage/a", trial.video_path(), compute).tolist() == first.tolist() == [0, 1, 2]
    assert VideoCache(tmp_path / "cache").derived.array("stage/a", copy, compute).tolist() == [0, 1, 2]
    assert len(calls) == 1  # reused across the process, a new cache object and a copied video
    cache.derived.array("stage/b", trial.video_path(), compute)
    assert len(calls) == 2  # another stage key computes afresh
    assert cache.derived.text("captions/x", trial.video_path(), lambda: "a caption") == "a caption"
    assert cache.derived.text("captions/x", trial.video_path(), lambda: "never") == "a caption"
    assert (tmp_path / "cache" / "stage" / "a" / f"{cache.content_hash(copy)}.npy").is_file()


def test_decoded_frames_keep_the_last_few_videos_read_only(tmp_path):
    videos = [
        write_trial(tmp_path / "a_dataset", "1", "1", str(i), moving_square_frames(2, seed=i)).video_path()
        for i in range(3)
    ]
    decoded = DecodedFrames(capacity=2)
    first = decoded.get(videos[0])
    assert decoded.get(videos[0]) is first and not first.flags.writeable
    decoded.get(videos[1])
    decoded.get(videos[2])  # evicts videos[0], the least recently read
    assert decoded.get(videos[0]) is not first
    np.testing.assert_array_equal(decoded.get(videos[0]), first)
