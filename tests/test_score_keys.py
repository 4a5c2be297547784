"""What a stored score is keyed by: every setting that changes a number. A resume with any of them
changed recomputes exactly the scores it changes (or, for the run's own identity, is refused)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ewmbench.data.layout import Generated, GroundTruth
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError
from ewmbench.metrics.registry import metric_registry
from ewmbench.models.adapter import WorldModel
from ewmbench.models.registry import register_model
from ewmbench.models.request import GenerationResult
from ewmbench.perception.detector_weights import DetectorChoice
from ewmbench.protocols import load_protocol
from ewmbench.registry import Option
from ewmbench.runner import RunConfig, Scorer, evaluate, run
from tests.bad_input.tools import write_generated
from tests.helpers.datasets import make_ground_truth, moving_square_frames

FRAMES = 4


@pytest.fixture
def pair(tmp_path):
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=FRAMES)
    write_generated(tmp_path / "mine_dataset", "1", "10", "1", moving_square_frames(FRAMES, seed=3))
    episode = GroundTruth(gt).episodes[0]
    trial = Generated(tmp_path / "mine_dataset").trials[0]
    return tmp_path, episode, trial


def key(
    tmp_path,
    episode,
    trial,
    metric="trajectory_consistency",
    protocol="ewmbench-v1",
    device="cpu",
    detector=DetectorChoice(),
):
    scorer = Scorer(
        tmp_path / "out", load_protocol(protocol), VideoCache(tmp_path / "cache"), device, detector
    )
    return scorer.trial_key(metric_registry()[metric](), episode, trial)


def test_detector_weights_are_keyed_by_content_not_path(pair):
    tmp_path, episode, trial = pair
    a, b, a_copy = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "elsewhere" / "a.pt"
    a.write_bytes(b"detector A")
    b.write_bytes(b"detector B")
    a_copy.parent.mkdir()
    shutil.copy(a, a_copy)
    with_a = key(tmp_path, episode, trial, detector=DetectorChoice(weights=a))
    assert with_a != key(tmp_path, episode, trial, detector=DetectorChoice(weights=b))
    assert with_a == key(tmp_path, episode, trial, detector=DetectorChoice(weights=a_copy))
    a.write_bytes(b"detector A, retrained")  # same path, other content
    assert with_a != key(tmp_path, episode, trial, detector=DetectorChoice(weights=a))
    # A metric that reads no trajectories does not depend on the detector.
    assert key(tmp_path, episode, trial, "psnr", detector=DetectorChoice(weights=a)) == key(
        tmp_path, episode, trial, "psnr", detector=DetectorChoice(weights=b)
    )


def test_trajectory_files_are_keyed_by_content(pair):
    tmp_path, episode, trial = pair
    trial.traj_path.parent.mkdir()
    np.save(trial.traj_path, np.full((FRAMES, 2, 2), 0.5, dtype=np.float32))
    first = key(tmp_path, episode, trial)
    np.save(trial.traj_path, np.full((FRAMES, 2, 2), 0.25, dtype=np.float32))
    assert key(tmp_path, episode, trial) != first


def test_tracking_settings_are_keyed(pair, tmp_path):
    _, episode, trial = pair
    import yaml

    import ewmbench

    data = yaml.safe_load((Path(ewmbench.__file__).parent / "protocols" / "ewmbench-v1.yaml").read_text())
    for name, conf in (("a.yaml", 0.8), ("b.yaml", 0.5)):
        data["metrics"]["trajectory_consistency"]["tracking"]["conf"] = conf
        (tmp_path / name).write_text(yaml.safe_dump({**data, "name": "custom"}))
    assert key(tmp_path, episode, trial, protocol=str(tmp_path / "a.yaml")) != key(
        tmp_path, episode, trial, protocol=str(tmp_path / "b.yaml")
    )
    # ... and a tracking setting does not touch PSNR's key.
    assert key(tmp_path, episode, trial, "psnr", protocol=str(tmp_path / "a.yaml")) == key(
        tmp_path, episode, trial, "psnr", protocol=str(tmp_path / "b.yaml")
    )


def test_device_precision_is_keyed_where_a_network_runs(pair):
    tmp_path, episode, trial = pair
    for metric in ("scene_consistency", "trajectory_consistency", "lpips"):
        assert key(tmp_path, episode, trial, metric, device="cpu") != key(
            tmp_path, episode, trial, metric, device="cuda"
        ), metric
        assert key(tmp_path, episode, trial, metric, device="cuda:0") == key(
            tmp_path, episode, trial, metric, device="cuda:1"
        ), metric
    for metric in ("psnr", "ssim"):  # exact arithmetic on the CPU whatever the device
        assert key(tmp_path, episode, trial, metric, device="cpu") == key(
            tmp_path, episode, trial, metric, device="cuda"
        ), metric


def test_protocol_settings_of_that_metric_only(pair):
    tmp_path, episode, trial = pair
    import yaml

    import ewmbench

    data = yaml.safe_load((Path(ewmbench.__file__).parent / "protocols" / "ewmbench-v2.yaml").read_text())
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({**data, "name": "custom"}))
    data["metrics"]["psnr"]["max_db"] = 60
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**data, "name": "custom"}))
    a, b = str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")
    assert key(tmp_path, episode, trial, "psnr", protocol=a) != key(
        tmp_path, episode, trial, "psnr", protocol=b
    )
    assert key(tmp_path, episode, trial, "ssim", protocol=a) == key(
        tmp_path, episode, trial, "ssim", protocol=b
    )


def test_resume_with_a_changed_trajectory_file_rescores_it(tmp_path):
    """End to end: the stored hsd/ndtw/dyn follow the traj.npy they were computed from."""
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=6)
    generated = tmp_path / "mine_dataset"
    write_generated(generated, "1", "10", "1", moving_square_frames(6, seed=1))
    line = np.stack([np.linspace(0.1, 0.9, 6), np.linspace(0.2, 0.6, 6)], axis=1)
    track = np.stack([line, line[::-1]], axis=1).astype(np.float32)  # (6, 2, 2)
    for folder, values in ((gt / "1" / "10", track), (generated / "1" / "10" / "1", track)):
        (folder / "traj").mkdir()
        np.save(folder / "traj" / "traj.npy", values)
    config = RunConfig(
        output=tmp_path / "out",
        gt=gt,
        generated=generated,
        metrics=["trajectory_consistency"],
        cache_dir=tmp_path / "cache",
    )
    first = evaluate(config, show_progress=False)
    np.save(generated / "1" / "10" / "1" / "traj" / "traj.npy", (track * 0.5 + 0.2).astype(np.float32))
    second = evaluate(config, show_progress=False)
    assert second.summary["scored_now"] == 1
    assert first.rows["hsd"].iloc[0] != second.rows["hsd"].iloc[0]
    third = evaluate(config, show_progress=False)
    assert third.summary["scored_now"] == 0 and third.rows["hsd"].iloc[0] == second.rows["hsd"].iloc[0]


def test_edited_protocol_rescores_only_the_metric_it_changes(tmp_path):
    import yaml

    import ewmbench

    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=FRAMES)
    generated = tmp_path / "mine_dataset"
    from ewmbench.data.video import read_video

    write_generated(generated, "1", "10", "1", read_video(gt / "1" / "10" / "video"))  # the GT's own pixels
    data = yaml.safe_load((Path(ewmbench.__file__).parent / "protocols" / "ewmbench-v2.yaml").read_text())
    data["metrics"] = {"psnr": data["metrics"]["psnr"], "ssim": data["metrics"]["ssim"]}
    protocol = tmp_path / "mine.yaml"
    protocol.write_text(yaml.safe_dump(data))
    config = RunConfig(
        output=tmp_path / "out",
        gt=gt,
        generated=generated,
        protocol=str(protocol),
        cache_dir=tmp_path / "cache",
    )
    first = evaluate(config, show_progress=False)
    assert first.rows["psnr"].iloc[0] == 100  # identical frames: the cap
    data["metrics"]["psnr"]["max_db"] = 60
    protocol.write_text(yaml.safe_dump(data))
    load_protocol.cache_clear()
    second = evaluate(config, show_progress=False)
    assert second.rows["psnr"].iloc[0] == 60 and second.summary["scored_now"] == 1  # psnr again, ssim reused


class Level(WorldModel):
    name = "level-test"
    options = (Option("level", int, 100, "grey level", 0, 255),)

    def generate(self, request):
        return GenerationResult(
            {
                "head": np.full(
                    (request.num_frames, request.height, request.width, 3), self.settings["level"], np.uint8
                )
            }
        )


def test_model_options_are_part_of_the_run_identity(tmp_path, monkeypatch):
    from ewmbench.models.registry import MODELS

    # registered for this test only
    monkeypatch.setattr(MODELS, "registered", dict(MODELS.registered))
    register_model(Level)
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=FRAMES)

    def config(level: int) -> RunConfig:
        return RunConfig(
            output=tmp_path / "out",
            model="level-test",
            model_options={"level": level},
            dataset=str(gt),
            trials=1,
            metrics=["psnr"],
            cache_dir=tmp_path / "cache",
            device="cpu",
        )

    first = run(config(50), show_progress=False)
    with pytest.raises(ConfigError, match=r"other settings \(model_options differ\)"):
        run(config(60), show_progress=False)
    again = run(config(50), show_progress=False)
    assert again.summary["scored_now"] == 0 and again.rows["psnr"].iloc[0] == first.rows["psnr"].iloc[0]
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["model"]["config"] == {"level": 50}
