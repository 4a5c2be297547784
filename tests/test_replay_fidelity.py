"""Replay fidelity: Frechet distance by hand, LPIPS / FID Inception / FVD I3D feature code on
random-weight networks (no downloads), the dataset-level metrics and their weights resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ewmbench.data.layout import write_episode, write_trial
from ewmbench.data.video_cache import VideoCache
from ewmbench.errors import ConfigError, Unavailable
from ewmbench.metrics import feature_statistics, frechet_distance, frechet_distance_of_features
from ewmbench.metrics.base import TrialInputs
from ewmbench.metrics.fidelity import FID, FVD, distinct_gt_videos, lpips
from ewmbench.metrics.registry import metric_registry
from ewmbench.perception import replay_networks as rf
from ewmbench.perception.model_cache import free_models
from ewmbench.protocols import load_protocol

# ---------------------------------------------------------------- Frechet distance


def test_frechet_distance_one_dimension():
    # |0 - 3|^2 + 1 + 4 - 2 sqrt(1 * 4) = 9 + 5 - 4 = 10
    assert frechet_distance(
        np.array([0.0]), np.array([[1.0]]), np.array([3.0]), np.array([[4.0]])
    ) == pytest.approx(10.0)


def test_frechet_distance_diagonal_two_dimensions():
    # mu diff (1, 2): 1 + 4 = 5; traces 1 + 4 = 5 and 9 + 16 = 25; sqrt(S1 S2) = diag(3, 8): -2 * 11
    # 5 + 5 + 25 - 22 = 13
    value = frechet_distance(
        np.array([0.0, 0.0]), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([9.0, 16.0])
    )
    assert value == pytest.approx(13.0)


def test_frechet_distance_of_identical_gaussians_is_zero():
    sigma = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_distance(np.ones(2), sigma, np.ones(2), sigma) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_singular_covariances_use_the_offset():
    # rank-1 covariances (fewer samples than dimensions): finite, and |mu diff|^2 = 4 when the covariances agree
    sigma = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert frechet_distance(np.zeros(2), sigma, np.array([2.0, 0.0]), sigma) == pytest.approx(4.0, abs=1e-4)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_feature_statistics_hand_worked():
    # x = (1, 3): mean 2, unbiased variance ((1-2)^2 + (3-2)^2) / (2 - 1) = 2
    mu, sigma = feature_statistics(np.array([[1.0], [3.0]]))
    assert mu.tolist() == [2.0] and sigma.tolist() == [[2.0]]
    with pytest.raises(ValueError):
        feature_statistics(np.zeros((1, 3)))


@hsettings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=3, max_size=3),
    st.lists(st.floats(0.1, 9), min_size=3, max_size=3),
    st.lists(st.floats(-5, 5), min_size=3, max_size=3),
    st.lists(st.floats(0.1, 9), min_size=3, max_size=3),
)
def test_frechet_distance_diagonal_closed_form(mu1, var1, mu2, var2):
    # diagonal Gaussians: sum (mu1 - mu2)^2 + sum (sqrt(v1) - sqrt(v2))^2
    expected = sum((a - b) ** 2 for a, b in zip(mu1, mu2)) + sum(
        (np.sqrt(a) - np.sqrt(b)) ** 2 for a, b in zip(var1, var2)
    )
    value = frechet_distance(np.array(mu1), np.diag(var1), np.array(mu2), np.diag(var2))
    assert value == pytest.approx(expected, abs=1e-7)
    assert value == pytest.approx(
        frechet_distance(np.array(mu2), np.diag(var2), np.array(mu1), np.diag(var1)), abs=1e-7
    )


def test_frechet_distance_of_shifted_samples():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 3))
    # the same samples shifted by (1, 1, 1): identical covariances, |shift|^2 = 3
    assert frechet_distance_of_features(a + 1, a) == pytest.approx(3.0, abs=1e-6)


# ---------------------------------------------------------------- LPIPS


@pytest.fixture(scope="module")
def lpips_model():
    torch.manual_seed(0)
    return rf.build_lpips(None)


def test_lpips_identical_is_zero_and_different_is_positive(lpips_model):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    assert lpips(lpips_model, gt, gt) == pytest.approx(0.0, abs=1e-7)
    other = rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    assert lpips(lpips_model, other, gt) > 0


def test_lpips_frame_matching(lpips_model):
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    pred = rng.integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    per_frame = rf.lpips_frames(lpips_model, pred, gt[:2])
    # mean over the 2 matched frames vs their sum over the 4 GT frames
    assert lpips(lpips_model, pred, gt, "mean_over_matched") == pytest.approx(per_frame.mean(), rel=1e-6)
    assert lpips(lpips_model, pred, gt, "zip_divide_by_gt") == pytest.approx(per_frame.sum() / 4, rel=1e-6)
    with pytest.raises(ConfigError):
        lpips(lpips_model, pred, gt, "nearest")


def test_lpips_resizes_prediction_and_batches_consistently(lpips_model):
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 255, (5, 48, 64, 3), dtype=np.uint8)
    pred = rng.integers(0, 255, (5, 24, 32, 3), dtype=np.uint8)  # half size: resized to 48x64
    assert lpips(lpips_model, pred, gt, batch_size=2) == pytest.approx(
        lpips(lpips_model, pred, gt, batch_size=16), rel=1e-5
    )


def test_lpips_backbone_state_is_loaded(lpips_model):
    import torchvision

    torch.manual_seed(3)
    alexnet = torchvision.models.alexnet(weights=None)
    model = rf.build_lpips(alexnet.state_dict())
    assert torch.equal(model.net.slice1[0].weight, alexnet.features[0].weight)
    assert torch.equal(getattr(model.net.slice5, "10").weight, alexnet.features[10].weight)
    with pytest.raises(Unavailable):
        rf.build_lpips({"features.0.weight": torch.zeros(1)} | {"bogus": torch.zeros(1)})


# ---------------------------------------------------------------- FID Inception


@pytest.fixture(scope="module")
def inception():
    torch.manual_seed(0)
    return rf.build_fid_inception(None)


def test_fid_inception_features_shape_and_batching(inception):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 60, 80, 3), dtype=np.uint8)
    features = rf.fid_frame_features(inception, frames, batch_size=1)
    assert features.shape == (2, 2048) and features.dtype == np.float64
    assert np.allclose(features, rf.fid_frame_features(inception, frames, batch_size=2), atol=1e-5)


def test_fid_inception_loads_its_own_state_and_rejects_others(inception, tmp_path):
    state = inception.net.state_dict()
    reloaded = rf.build_fid_inception(state)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.net.state_dict().values(), state.values()))
    with pytest.raises(Unavailable, match="missing keys"):
        rf.build_fid_inception({k: v for k, v in state.items() if not k.startswith("Mixed_7c")})


# ---------------------------------------------------------------- FVD I3D


class _ProbeI3D(torch.nn.Module):
    """Stands in for the I3D TorchScript: features = (T, H, W, mean, min, max) of each clip."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        b = x.shape[0]
        flat = x.reshape(b, -1)
        shape = torch.tensor(
            [float(x.shape[1]), float(x.shape[2]), float(x.shape[3]), float(x.shape[4])]
        ).repeat(b, 1)
        stats = torch.stack([flat.mean(1), flat.amin(1), flat.amax(1)], dim=1) * self.scale
        return torch.cat([shape, stats], dim=1)


@pytest.fixture()
def probe_i3d(tmp_path):
    path = tmp_path / "i3d_probe.pt"
    torch.jit.script(_ProbeI3D()).save(str(path))
    free_models()
    yield rf.load_i3d(path, "cpu")
    free_models()


def test_video_clips_hand_worked():
    # 40 frames, 16-frame clips: [0, 16), [16, 32); the 8-frame tail is dropped
    assert rf.video_clips(40, 16, "all") == [(0, 16), (16, 32)]
    assert rf.video_clips(40, 16, "first") == [(0, 16)]
    assert rf.video_clips(15, 16, "all") == [] and rf.video_clips(15, 16, "first") == []
    with pytest.raises(ValueError):
        rf.video_clips(40, 16, "random")


def test_i3d_input_resize_crop_and_range():
    frames = np.zeros((2, 48, 64, 3), np.uint8)
    frames[:, :, :32] = 255  # left half white
    video = rf.i3d_input(frames, resolution=24)
    # shorter side 48 -> 24 (scale 0.5), 64 -> 32; centre crop of 24 drops 4 columns on each side
    assert tuple(video.shape) == (3, 2, 24, 24)
    assert video.min().item() == -1.0 and video.max().item() == 1.0
    assert (
        video[0, 0, 0, 0].item() == 1.0 and video[0, 0, 0, -1].item() == -1.0
    )  # left still white, right black
    assert (
        video[0, 0, 0, 11].item() == 1.0 and video[0, 0, 0, 12].item() == -1.0
    )  # the edge stays at the centre


def test_i3d_clip_features_call_convention(probe_i3d):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (40, 60, 80, 3), dtype=np.uint8)
    features = rf.i3d_clip_features(
        probe_i3d, frames, clip_frames=16, clips="all", resolution=224, batch_size=1
    )
    # two clips, each (3, 16, 224, 224) in [-1, 1]
    assert features.shape == (2, 7)
    assert features[:, :4].tolist() == [[3, 16, 224, 224]] * 2
    assert np.all(features[:, 5] >= -1) and np.all(features[:, 6] <= 1)
    assert rf.i3d_clip_features(probe_i3d, frames[:10], 16).shape == (0, 0)


# ---------------------------------------------------------------- the metrics


@pytest.fixture()
def stand_in_weights(tmp_path, monkeypatch):
    """The replay metrics resolve the weights their settings name (and key their caches by the
    file); the networks themselves are replaced by probes in these tests."""
    for weight_id in ("lpips-alexnet", "fid-inception", "fvd-i3d"):
        path = tmp_path / "weights" / f"{weight_id}.pt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(weight_id.encode())
        monkeypatch.setenv("EWMBENCH_WEIGHTS_" + weight_id.upper().replace("-", "_"), str(path))


def _run(tmp_path, n_episodes=2, frames=20):
    rng = np.random.default_rng(0)
    preprocessor = VideoCache(tmp_path / "cache")
    inputs = []
    for e in range(n_episodes):
        episode = write_episode(
            tmp_path / "gt", "1", str(e), rng.integers(0, 255, (frames, 40, 48, 3), dtype=np.uint8), "task"
        )
        for t in ("1", "2"):
            trial = write_trial(
                tmp_path / "gen_dataset",
                "1",
                str(e),
                t,
                rng.integers(0, 255, (frames, 40, 48, 3), dtype=np.uint8),
            )
            inputs.append(TrialInputs(episode, trial, preprocessor))
    return inputs


def test_lpips_metric_scores_a_trial(tmp_path, stand_in_weights, lpips_model, monkeypatch):
    from ewmbench.metrics.fidelity import LPIPS

    monkeypatch.setattr(rf, "load_lpips", lambda path, device: lpips_model)
    item = _run(tmp_path, n_episodes=1)[0]
    settings = load_protocol("ewmbench-v1").settings("lpips")
    row = LPIPS().score_trial(item, settings)
    expected = rf.lpips_frames(lpips_model, item.frames(), item.gt_frames()).mean()
    assert set(row) == {"lpips"} and row["lpips"] == pytest.approx(expected, rel=1e-6) and row["lpips"] > 0


def test_dataset_level_metrics_are_registered():
    registry = metric_registry()
    assert registry["fid"].level == registry["fvd"].level == "dataset" and registry["lpips"].level == "trial"
    assert load_protocol("ewmbench-v1").settings("fvd") == load_protocol("ewmbench-v2").settings("fvd")


def test_fvd_metric_pools_clips_and_uses_each_gt_episode_once(
    tmp_path, stand_in_weights, probe_i3d, monkeypatch
):
    monkeypatch.setattr(rf, "load_i3d", lambda path, device: probe_i3d)
    inputs = _run(tmp_path)
    assert len(distinct_gt_videos(inputs)) == 2  # 4 trials, 2 episodes
    settings = {**load_protocol("ewmbench-v2").settings("fvd"), "clip_frames": 8}
    value = FVD().score_dataset(inputs, settings)["fvd"]
    # recompute by hand: 20 frames -> clips [0, 8), [8, 16); 4 trials -> 8 generated clips, 2 episodes -> 4 GT clips
    pre = inputs[0].videos
    gen = np.concatenate(
        [rf.i3d_clip_features(probe_i3d, pre.frames(i.trial.video_path()), 8) for i in inputs]
    )
    gt = np.concatenate(
        [rf.i3d_clip_features(probe_i3d, pre.frames(v), 8) for v in distinct_gt_videos(inputs)]
    )
    assert gen.shape[0] == 8 and gt.shape[0] == 4
    assert value == pytest.approx(frechet_distance_of_features(gen, gt), rel=1e-9)
    # features are cached by video content: a second run needs no network at all
    monkeypatch.setattr(
        rf, "load_i3d", lambda path, device: (_ for _ in ()).throw(AssertionError("not cached"))
    )
    assert FVD().score_dataset(inputs, settings)["fvd"] == pytest.approx(value, rel=1e-12)


def test_fvd_metric_needs_enough_clips(tmp_path, stand_in_weights, probe_i3d, monkeypatch):
    monkeypatch.setattr(rf, "load_i3d", lambda path, device: probe_i3d)
    inputs = _run(tmp_path, n_episodes=1)
    with pytest.raises(Unavailable, match="ground-truth side has 1"):
        FVD().score_dataset(inputs, {**load_protocol("ewmbench-v2").settings("fvd"), "clip_frames": 16})


def test_fid_metric_pools_frames(tmp_path, stand_in_weights, monkeypatch):
    class MeanColour(torch.nn.Module):  # stands in for the Inception: features = mean RGB of each image
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, images):
            return images.mean((2, 3)) * self.w

    monkeypatch.setattr(rf, "load_fid_inception", lambda path, device: MeanColour())
    inputs = _run(tmp_path)
    settings = {**load_protocol("ewmbench-v1").settings("fid"), "frame_stride": 2}
    value = FID().score_dataset(inputs, settings)["fid"]
    pre = inputs[0].videos
    gen = np.concatenate([pre.frames(i.trial.video_path())[::2].mean((1, 2)) / 255 for i in inputs])
    gt = np.concatenate([pre.frames(v)[::2].mean((1, 2)) / 255 for v in distinct_gt_videos(inputs)])
    assert gen.shape == (40, 3) and gt.shape == (20, 3)  # 4 trials x 10 frames, 2 episodes x 10 frames
    # Near-identical sets give an FID near 0, where float32 features differ from this float64
    # recomputation only in the 11th decimal.
    assert value == pytest.approx(frechet_distance_of_features(gen, gt), rel=1e-6, abs=1e-9)


def test_weights_without_hub_home_resolve_from_the_torch_hub_cache(tmp_path, monkeypatch):
    from ewmbench.perception import weights

    monkeypatch.setattr(weights, "url_cache_dir", lambda: tmp_path / "checkpoints")
    monkeypatch.delenv("EWMBENCH_WEIGHTS_FID_INCEPTION", raising=False)
    with pytest.raises(Unavailable) as info:
        weights.resolve("fid-inception")
    assert "pt_inception" in info.value.reason and "EWMBENCH_WEIGHTS_FID_INCEPTION" in info.value.reason
    assert info.value.fix == "ewmbench weights download fid-inception"
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth").write_bytes(b"x")
    assert weights.resolve("lpips-alexnet") == tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth"
    monkeypatch.setenv("EWMBENCH_WEIGHTS_FID_INCEPTION", str(tmp_path / "missing.pth"))
    with pytest.raises(Unavailable):
        weights.resolve("fid-inception")


def test_fvd_weights_resolve_through_the_manager(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("EWMBENCH_WEIGHTS_FVD_I3D", raising=False)
    with pytest.raises(Unavailable) as info:
        FVD().check_available(load_protocol("ewmbench-v1").settings("fvd"))
    assert info.value.fix == "ewmbench weights download fvd-i3d"


@pytest.mark.weights
def test_real_lpips_weights_give_the_published_scale():
    try:
        from ewmbench.perception.weights import resolve

        model = rf.load_lpips(resolve("lpips-alexnet"), "cpu")
    except Unavailable as exc:
        pytest.skip(f"LPIPS weights not available: {exc}")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (1, 64, 64, 3), dtype=np.uint8)
    assert lpips(model, a, a) == pytest.approx(0.0, abs=1e-6)
    assert (
        0.2 < lpips(model, a, 255 - a) < 1.5
    )  # inverted noise is perceptually far on LPIPS's calibrated scale


def test_fid_features_are_cached_per_weights_file(tmp_path, stand_in_weights, monkeypatch):
    """Features computed with one weights file are never reused for another (EWMBENCH_WEIGHTS_*)."""

    class ScaledMeanColour(
        torch.nn.Module
    ):  # features = mean RGB, scaled by a number read from the weights file
        def __init__(self, scale: float):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(scale))

        def forward(self, images):
            return images.mean((2, 3)) * self.scale

    monkeypatch.setattr(
        rf, "load_fid_inception", lambda path, device: ScaledMeanColour(float(Path(path).read_text()))
    )
    inputs = _run(tmp_path)
    # Both sides' features scale with the weights, so the FID of scale s is s^2 times that of scale 1.
    settings = load_protocol("ewmbench-v1").settings("fid")
    first, second = tmp_path / "first.pth", tmp_path / "second.pth"
    first.write_text("1.0")
    second.write_text("3.0")
    monkeypatch.setenv("EWMBENCH_WEIGHTS_FID_INCEPTION", str(first))
    with_first = FID().score_dataset(inputs, settings)["fid"]
    monkeypatch.setenv("EWMBENCH_WEIGHTS_FID_INCEPTION", str(second))
    with_second = FID().score_dataset(inputs, settings)["fid"]
    assert with_first > 0
    assert with_second == pytest.approx(9 * with_first, rel=1e-5)
