"""The ``sim`` world model: exact replay of the ground truth and graded, monotone degradations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ewmbench.data.layout import GroundTruth, write_episode, write_trial
from ewmbench.data.video import read_video
from ewmbench.errors import ConfigError, DataError, Unavailable
from ewmbench.models import GenerationRequest, load_model_class
from ewmbench.models.checks import check_request_fits
from ewmbench.models.request import fit_length
from ewmbench.models.sim import SimModel, degrade_actions, drop_frames
from ewmbench.runner import build_request, sidecar_fields
from ewmbench.sim.record import episode_sidecar, record_episode

W, H, FRAMES = 160, 120, 12  # small renders keep the suite fast; the geometry is the same


def psnr_after_first(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR over every frame but the first (identical by construction), from the pooled MSE."""
    mse = np.mean((pred[1:].astype(np.float64) - gt[1:].astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    root = tmp_path_factory.mktemp("gt")
    recorded = record_episode(3, "pick_place", 0, FRAMES, width=W, height=H)
    frames = recorded.recording.frames
    write_episode(
        root,
        "1",
        "0",
        frames["head"],
        recorded.plan.instruction,
        sidecar=episode_sidecar(recorded, 3),
        extra_views={"hand_left": frames["hand_left"], "hand_right": frames["hand_right"]},
    )
    return GroundTruth(root).episode("1", "0"), frames


def request(episode, views=("head",), seed=0, num_frames=FRAMES, actions=None) -> GenerationRequest:
    """The runner's request for the sim model, with the test's views, length and actions."""
    built = build_request(episode, "0", seed, SimModel())
    built.views, built.num_frames, built.fps, built.height, built.width = views, num_frames, 10.0, H, W
    if actions is not None:
        built.actions = actions
    return built


def test_registered_as_action_conditioned():
    cls = load_model_class("sim")
    assert cls is SimModel
    assert cls.capabilities.conditioning == frozenset({"image", "actions", "scene"})
    assert cls.oracle  # it is handed the exact initial simulator state


def test_undegraded_replay_reproduces_the_ground_truth_exactly(simulated, tmp_path):
    episode, frames = simulated
    result = SimModel().generate(request(episode, views=("head", "hand_left", "hand_right")))
    for view in ("head", "hand_left", "hand_right"):
        assert result.frames[view].shape == (FRAMES, H, W, 3)
        assert psnr_after_first(result.frames[view], frames[view]) == math.inf
    # written as a trial (lossless PNG), it decodes to exactly the replayed pixels; the GT video on
    # disk holds the same pixels after JPEG compression, so they differ only by that compression
    trial = write_trial(tmp_path / "sim_dataset", "1", "0", "0", result.frames["head"])
    np.testing.assert_array_equal(read_video(trial.video_path()), result.frames["head"])
    assert psnr_after_first(read_video(trial.video_path()), read_video(episode.video_path())) > 40


def test_request_actions_override_the_sidecar(simulated):
    episode, frames = simulated
    still = np.repeat(episode.sidecar.actions[:1], FRAMES, axis=0)
    result = SimModel().generate(request(episode, actions=still))
    assert psnr_after_first(result.frames["head"], frames["head"]) < 40
    np.testing.assert_array_equal(result.frames["head"][0], frames["head"][0])


def test_more_action_noise_gives_lower_psnr(simulated):
    episode, frames = simulated
    scores = [
        psnr_after_first(SimModel(action_noise=s).generate(request(episode)).frames["head"], frames["head"])
        for s in (0.003, 0.015, 0.05)
    ]
    assert math.inf > scores[0] > scores[1] > scores[2], scores


def test_more_lag_gives_lower_psnr(simulated):
    episode, frames = simulated
    scores = [
        psnr_after_first(SimModel(lag=k).generate(request(episode)).frames["head"], frames["head"])
        for k in (1, 3, 6)
    ]
    assert math.inf > scores[0] > scores[1] > scores[2], scores


def test_more_dropped_frames_gives_lower_psnr(simulated):
    episode, frames = simulated
    scores = [
        psnr_after_first(SimModel(drop_frames=p).generate(request(episode)).frames["head"], frames["head"])
        for p in (0.2, 0.6)
    ]
    assert math.inf > scores[0] > scores[1], scores


def test_wrong_colour_changes_only_the_object(simulated):
    episode, frames = simulated
    result = SimModel(wrong_color=True).generate(request(episode)).frames["head"]
    changed = np.any(result != frames["head"], axis=-1)
    # the object covers a small part of the image: some pixels change, most do not
    assert 0 < changed[0].mean() < 0.05
    subject_colour = episode.sidecar.meta["scene"]["objects"][0]["colour"]
    assert subject_colour in episode.instruction


def test_seeded_noise_is_reproducible(simulated):
    episode, _ = simulated
    actions = episode.sidecar.actions
    same = degrade_actions(actions, 0.02, 0, seed=5), degrade_actions(actions, 0.02, 0, seed=5)
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(same[0], degrade_actions(actions, 0.02, 0, seed=6))


def test_degrade_actions_hand_worked():
    actions = np.arange(5 * 14, dtype=float).reshape(5, 14)
    # lag 2: the first row is held two extra frames, then the sequence, cut to 5 rows
    lagged = degrade_actions(actions, 0.0, 2, seed=0)
    np.testing.assert_array_equal(lagged, actions[[0, 0, 0, 1, 2]])
    # noise touches only positions after the first frame, and scales linearly with its std
    small, large = (
        degrade_actions(actions, 0.01, 0, 0) - actions,
        degrade_actions(actions, 0.03, 0, 0) - actions,
    )
    np.testing.assert_allclose(large, 3 * small)
    assert np.all(small[0] == 0)
    assert np.all(small[:, [3, 4, 5, 6, 10, 11, 12, 13]] == 0)
    assert np.all(small[1:, [0, 1, 2, 7, 8, 9]] != 0)


def test_drop_frames_and_fit_length_hand_worked():
    frames = {"head": np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1).repeat(3, axis=3)}
    assert drop_frames(frames, 0.0, 0) is frames
    everything = drop_frames(frames, 1.0, 0)["head"]
    assert np.all(everything == 0)  # each frame repeats the previous one, back to frame 0
    actions = np.arange(3 * 14, dtype=float).reshape(3, 14)
    np.testing.assert_array_equal(fit_length(actions, 2), actions[:2])
    np.testing.assert_array_equal(fit_length(actions, 5), actions[[0, 1, 2, 2, 2]])


def test_real_episodes_are_unavailable(tmp_path):
    frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    episode = write_episode(tmp_path, "1", "0", frames, "do something")
    with pytest.raises(DataError, match="lacks `actions`.*`scene`"):
        check_request_fits(SimModel(), episode.views, sidecar_fields(episode), episode.path)
    with pytest.raises(Unavailable, match="no simulator state") as info:
        SimModel().generate(request(episode))
    assert "ewmbench data sample" in info.value.fix


@pytest.mark.parametrize(
    "options, message",
    [
        ({"action_noise": -0.1}, "action_noise"),
        ({"action_noise": "lots"}, "must be a number"),
        ({"lag": 1.5}, "integer"),
        ({"lag": -1}, "lag"),
        ({"drop_frames": 2}, "drop_frames"),
        ({"wrong_color": "maybe"}, "true or false"),
        (
            {"blur": 1},
            "has no option 'blur'; it accepts: action_noise, drop_frames, friction, gripper_slip, lag, mass, render_offset, wrong_color",
        ),
        ({"lagg": 1}, "did you mean 'lag'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        SimModel(**options)


def test_cli_style_options_are_parsed():
    model = SimModel(
        action_noise="0.02",
        lag="3",
        drop_frames="0.1",
        wrong_color="true",
        friction="0.5",
        gripper_slip="1",
        render_offset="4",
    )
    assert model.config() == {
        "action_noise": 0.02,
        "lag": 3,
        "drop_frames": 0.1,
        "wrong_color": True,
        "friction": 0.5,
        "mass": 1.0,
        "gripper_slip": 1.0,
        "render_offset": 4,
    }


def test_unknown_view_is_refused(simulated):
    episode, _ = simulated
    with pytest.raises(DataError, match="renders views"):
        SimModel().generate(request(episode, views=("top",)))
