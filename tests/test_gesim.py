"""ge-sim-2 and JudgeReward against a stand-in of gesim (tests/helpers/gesim_standin) that mirrors
the real package's signatures; tests/test_gesim_real.py runs the same against a real checkout."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ewmbench.data.layout import GroundTruth, Sidecar, write_episode
from ewmbench.errors import ConfigError, DataError, Unavailable
from ewmbench.loop.gesim_reward import JudgeReward
from ewmbench.loop.vlm_judge import VLMJudge
from ewmbench.models.checks import check_request_fits
from ewmbench.models.gesim import (
    GESim2Model,
    arm_joint_columns,
    gesim_actions,
    gesim_eef,
    gesim_intrinsics,
    model_frame_count,
    our_frames,
)
from ewmbench.models.registry import load_model_class
from ewmbench.perception.captioner import FrameSampling, VideoCaptioner
from ewmbench.preflight import sidecar_fields
from ewmbench.runner import build_request

STANDIN = Path(__file__).parent / "helpers" / "gesim_standin"
VIEWS = ("head", "hand_left", "hand_right")
SAMPLE_JOINTS = [
    f"{arm}_{n}"
    for arm in ("left", "right")
    for n in [*(f"joint{i}" for i in range(1, 8)), "finger1", "finger2"]
]


@pytest.fixture
def gesim(monkeypatch):
    """The stand-in imported as ``gesim`` (a real installed gesim is set aside for the test)."""
    for name in [m for m in sys.modules if m == "gesim" or m.startswith("gesim.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(STANDIN))
    import gesim.conditioning.band as band
    import gesim.models.example as example

    example.CALLS.clear()
    band.CALLS.clear()
    yield sys.modules["gesim"]
    for name in [m for m in sys.modules if m == "gesim" or m.startswith("gesim.")]:
        del sys.modules[name]


def head_camera() -> np.ndarray:
    """Camera-to-base of a camera 1 m above the base origin looking straight down (OpenCV axes)."""
    c2b = np.eye(4)
    c2b[:3, :3] = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    c2b[:3, 3] = [0.0, 0.0, 1.0]
    return c2b


K = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])  # 64x48, centres at integers


def smooth_frames(count: int, shade: int) -> np.ndarray:
    """Gradients with a square moving across: pictures (JPEG's case), not noise."""
    y, x = np.mgrid[0:48, 0:64]
    base = np.stack([x * 3 + 20 * shade, y * 4, np.full_like(x, 90 + 40 * shade)], axis=-1).astype(np.uint8)
    frames = np.repeat(base[None], count, axis=0)
    for t in range(count):
        frames[t, 10:22, 2 + 2 * t : 14 + 2 * t] = (250, 30, 30)
    return frames


def write_dataset(root: Path, frames_per_episode=(8, 20), joint_names=SAMPLE_JOINTS) -> Path:
    """Episodes with ``joint_names`` columns of joint positions (None: 14 columns, 7 per arm, unnamed)."""
    rng = np.random.default_rng(0)
    for index, count in enumerate(frames_per_episode):
        eef = np.zeros((count, 14))
        eef[:, 0] = np.linspace(0.0, 0.2, count)  # left hand moves along x, at the base origin's height
        eef[:, 1] = 0.1
        eef[:, 3] = np.pi  # pointing down
        eef[:, 6] = np.linspace(1.0, 0.0, count)  # opens -> closes
        eef[:, 7:10] = [0.0, -0.1, 0.0]
        eef[:, 10] = np.pi
        eef[:, 13] = 1.0
        joints = rng.normal(size=(count, len(joint_names) if joint_names else 14))
        frames = {v: smooth_frames(count, shade) for shade, v in enumerate(VIEWS)}
        write_episode(
            root,
            "1",
            str(index),
            frames["head"],
            instruction="Pick up the cube.",
            extra_views={v: frames[v] for v in VIEWS[1:]},
            sidecar=Sidecar(
                fps=10,
                views=list(VIEWS),
                eef_pose=eef,
                actions=eef,
                joint_positions=joints,
                intrinsics={v: K for v in VIEWS},
                extrinsics={v: np.repeat(head_camera()[None], count, axis=0) for v in VIEWS},
                meta={"joint_names": list(joint_names)} if joint_names else {},
            ),
        )
    return root


# ---------------------------------------------------------------------------- the mappings


def test_arm_joints_are_found_by_name_or_as_seven_and_seven():
    assert arm_joint_columns(18, SAMPLE_JOINTS) == (list(range(7)), list(range(9, 16)))
    shuffled = ["right_joint2", "left_joint1", *[f"left_joint{i}" for i in range(2, 8)], "right_joint1"]
    shuffled += [f"right_joint{i}" for i in range(3, 8)]
    assert arm_joint_columns(14, shuffled) == ([1, 2, 3, 4, 5, 6, 7], [8, 0, 9, 10, 11, 12, 13])
    assert arm_joint_columns(14, None) == (list(range(7)), list(range(7, 14)))
    with pytest.raises(ConfigError, match="18 columns and no joint_names"):
        arm_joint_columns(18, None)
    with pytest.raises(ConfigError, match="6 left arm joints"):
        arm_joint_columns(13, [n for n in SAMPLE_JOINTS if n != "left_joint7"][:13])


def test_actions_take_arm_joints_and_the_inverted_openness():
    joints = np.arange(2 * 18, dtype=float).reshape(2, 18)
    eef = np.zeros((2, 14))
    eef[:, 6] = [1.0, 0.25]  # left: open, then mostly closed
    eef[:, 13] = [0.0, 0.5]
    actions = gesim_actions(joints, SAMPLE_JOINTS, eef)
    assert actions.shape == (2, 16)
    np.testing.assert_array_equal(actions[1, 0:7], [18, 19, 20, 21, 22, 23, 24])
    np.testing.assert_array_equal(actions[1, 8:15], [27, 28, 29, 30, 31, 32, 33])
    np.testing.assert_array_equal(actions[:, 7], [0.0, 0.75])  # gesim: 0 open .. 1 closed
    np.testing.assert_array_equal(actions[:, 15], [1.0, 0.5])
    band = gesim_eef(eef)
    np.testing.assert_array_equal(band[:, 6], [0.0, 0.75])
    np.testing.assert_array_equal(band[:, [0, 1, 2, 3, 4, 5]], eef[:, :6])
    assert eef[0, 6] == 1.0  # the input is not modified


def test_intrinsics_move_to_the_corner_convention_at_the_model_size():
    # 64x48 -> 512x384 is x8: fx 50 -> 400; cx 31.5 (+0.5 corner) -> 32 * 8 = 256; cy 23.5 -> 24 * 8 = 192
    np.testing.assert_allclose(
        gesim_intrinsics(K, (48, 64)), [[400.0, 0.0, 256.0], [0.0, 400.0, 192.0], [0.0, 0.0, 1.0]]
    )


def test_frame_counts_and_views():
    assert model_frame_count(24, 10.0, 30.0) == 70  # 2.3 s of the sample at 30 fps
    assert model_frame_count(8, 10.0, 30.0) == 22
    assert model_frame_count(25, 30.0, 30.0) == 25
    frames = np.zeros((2, 3, 3, 4, 5), dtype=np.float32)
    frames[:, :, 1] = 1.0  # the second gesim view, left_wrist
    out = our_frames(frames)
    assert list(out) == ["head", "hand_left", "hand_right"]
    assert out["hand_left"].shape == (2, 4, 5, 3) and out["hand_left"].max() == 255 and out["head"].max() == 0


# ---------------------------------------------------------------------------- options and refusals


def test_options_name_what_is_missing():
    with pytest.raises(ConfigError, match="exactly one of"):
        GESim2Model()
    with pytest.raises(ConfigError, match="exactly one of"):
        GESim2Model(world_model="example", url="http://127.0.0.1:9000")
    with pytest.raises(ConfigError, match="config=CFG.yaml"):
        GESim2Model(world_model="gesim_v2")
    with pytest.raises(ConfigError, match="http"):
        GESim2Model(url="localhost:9000")
    assert GESim2Model(world_model="gesim_v2", config="x.yaml").needs_gpu
    assert not GESim2Model(world_model="example").needs_gpu
    assert load_model_class("ge-sim-2") is GESim2Model


def test_without_gesim_the_fix_is_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(Unavailable) as info:
        GESim2Model(world_model="example").check_available()
    assert "GE-Sim-V2" in info.value.fix and "--no-deps" in info.value.fix


def test_a_dataset_without_joint_positions_is_refused_naming_the_field(tmp_path):
    root = write_dataset(tmp_path / "gt", (8,))
    episode = GroundTruth(root).episodes[0]
    present = sidecar_fields(episode)
    check_request_fits(GESim2Model(world_model="example"), episode.views, present, episode.path)
    present["joint_positions"] = False
    with pytest.raises(DataError, match="`joint_positions`"):
        check_request_fits(GESim2Model(world_model="example"), episode.views, present, episode.path)


def test_the_closed_loop_refuses_a_policy_without_joint_commands(gesim, tmp_path):
    from typer.testing import CliRunner

    from ewmbench.cli import app

    root = write_dataset(tmp_path / "gt", (8,))
    args = ["policy-eval", "--policy", "scripted", "--world-model", "ge-sim-2"]
    args += ["--world-model-option", "world_model=example", "--dataset", str(root), "--device", "cpu"]
    done = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "out")])
    assert done.exit_code != 0
    assert "gives end-effector actions only" in " ".join(done.output.split())
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- generation


def loaded(**options) -> GESim2Model:
    model = GESim2Model(**options)
    model.check_available()
    model.load("cpu")
    return model


def test_in_process_generation_feeds_gesim_its_conventions(gesim, tmp_path):
    from gesim.conditioning.band import CALLS as BAND
    from gesim.models.example import CALLS

    root = write_dataset(tmp_path / "gt", (8,))
    episode = GroundTruth(root).episodes[0]
    model = loaded(world_model="example")
    request = build_request(episode, "1", seed=3, model=model)
    assert request.extra["joint_names"] == SAMPLE_JOINTS and request.joint_positions.shape == (8, 18)
    result = model.generate(request)

    names = [c[0] for c in CALLS]
    assert names == ["reset", "set_camera_params", "set_episode_data", "set_episode_traj", "step"]
    _, intrinsic, extrinsic = CALLS[1]
    np.testing.assert_allclose(intrinsic[0], [[400, 0, 256], [0, 400, 192], [0, 0, 1]], atol=1e-4)
    np.testing.assert_allclose(extrinsic[0], head_camera(), atol=1e-6)
    assert CALLS[2][1].shape == (3, 3, 384, 512)
    _, band, c2w = CALLS[3]
    assert band.shape == (3, 3, 22, 384, 512) and c2w.shape == (3, 22, 4, 4)  # 8 frames at 10 fps -> 22 at 30
    actions = CALLS[4][1]
    assert actions.shape == (22, 16)
    joints = episode.sidecar.joint_positions
    np.testing.assert_allclose(actions[0, 0:7], joints[0, 0:7], atol=1e-6)
    np.testing.assert_allclose(
        actions[3, 8:15], joints[1, 9:16], atol=1e-6
    )  # model frame 3 = dataset frame 1
    np.testing.assert_allclose(actions[[0, 21], 7], [0.0, 1.0], atol=1e-6)  # opening 1 -> 0 is gesim's 0 -> 1
    # The band: at model frame 0 the left hand (0, 0.1, 0) with gesim's 0.15 m tool offset pointing
    # down is at (0, 0.1, -0.15); 1.15 m below the camera: u = 400 * -0.1 / 1.15 + 256 = 221.2 -> 221,
    # v = 400 * 0 / 1.15 + 192 = 192.
    assert BAND[0]["gripper_offset"] == 0.15 and BAND[0]["sample_size"] == (384, 512)
    assert band[0, 0, 0, 192, 221] == pytest.approx(1.0, abs=0.01)
    assert result.frames["head"].shape == (22, 384, 512, 3)
    assert result.state["joint_state"].shape == (22, 16)  # the example echoes the actions
    assert result.info["fps"] == 30.0 and result.info["band_upload"] == "per chunk"


def test_a_band_of_two_chunks_or_more_is_uploaded_once(gesim, tmp_path):
    from gesim.models.example import CALLS

    root = write_dataset(tmp_path / "gt", (20,))
    model = loaded(world_model="example", gripper_offset=0.0)
    result = model.generate(build_request(GroundTruth(root).episodes[0], "1", seed=3, model=model))
    names = [c[0] for c in CALLS]
    assert names == [
        "reset",
        "set_camera_params",
        "set_episode_data",
        "set_episode_traj",
        "step",
        "step",
        "step",
    ]
    assert CALLS[3][1].shape[2] == 58  # 20 frames at 10 fps -> 58 at 30
    assert [c[1].shape[0] for c in CALLS[4:]] == [25, 25, 8]
    assert result.info["band_upload"] == "episode" and result.frames["head"].shape[0] == 58


def test_non_finite_frames_from_gesim_are_an_error_not_black_frames(gesim, tmp_path, monkeypatch):
    from gesim.models.base import StepResult

    root = write_dataset(tmp_path / "gt", (8,))
    model = loaded(world_model="example")
    step = model.world.step
    monkeypatch.setattr(model.world, "step", lambda actions: StepResult(step(actions).frames * np.nan, None))
    with pytest.raises(ConfigError, match="non-finite frames"):
        model.generate(build_request(GroundTruth(root).episodes[0], "1", seed=3, model=model))


def test_the_server_mode_answers_as_in_process_within_the_jpeg_error(gesim, tmp_path):
    from gesim.models.base import get_world_model
    from gesim.server.app import WorldModelServer

    root = write_dataset(tmp_path / "gt", (20,))
    episode = GroundTruth(root).episodes[0]
    local = loaded(world_model="example")
    request = build_request(episode, "1", seed=3, model=local)
    expected = local.generate(request)
    server = WorldModelServer(get_world_model("example").from_config({}), host="127.0.0.1", port=0)
    server.start()
    try:
        remote = loaded(url=f"http://127.0.0.1:{server.port}")
        answer = remote.generate(request)
        remote.close()
    finally:
        server.stop()
    assert answer.info["mode"] == "server"
    for view in VIEWS:
        difference = np.abs(answer.frames[view].astype(int) - expected.frames[view].astype(int))
        assert 0 < difference.mean() < 3.0  # JPEG quality 95, twice (first frame up, frames down)
    np.testing.assert_allclose(answer.state["joint_state"], expected.state["joint_state"], atol=1e-6)


def test_ewmbench_run_writes_frames_and_the_predicted_state(gesim, tmp_path):
    from typer.testing import CliRunner

    from ewmbench.cli import app

    root = write_dataset(tmp_path / "gt", (8,))
    out = tmp_path / "run"
    args = ["run", "--model", "ge-sim-2", "--model-option", "world_model=example", "--dataset", str(root)]
    args += [
        "--output",
        str(out),
        "--trials",
        "1",
        "--metrics",
        "psnr",
        "--protocol",
        "ewmbench-v2",
        "--device",
        "cpu",
    ]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    trial = out / "ge-sim-2_dataset" / "1" / "0" / "1"
    with np.load(trial / "ewmbench" / "arrays.npz") as arrays:
        assert arrays["joint_state"].shape == (8, 16)  # resampled back to the dataset's 8 frames
    assert (trial / "ewmbench" / "views" / "hand_left").is_dir()


# ---------------------------------------------------------------------------- JudgeReward


@dataclass
class CountingCaptioner(VideoCaptioner):
    """Says the task succeeded once it has seen at least ``needed`` frames; reward = share seen."""

    needed: int = 0
    total: int = 1
    seen: list | None = None

    def caption(self, videos):
        self.seen.append(len(videos[0]))
        done = len(videos[0]) >= self.needed
        return [f'{{"success": {str(done).lower()}, "reward": {len(videos[0]) / self.total}}}']


def counting_judge(needed: int, total: int) -> tuple[VLMJudge, list]:
    seen: list = []
    judge = VLMJudge()
    judge._captioner = CountingCaptioner(
        None, None, "", judge.system, FrameSampling(), needed=needed, total=total, seen=seen
    )
    return judge, seen


def test_checkpoints_are_spread_evenly_ending_at_the_last_frame():
    judge, _ = counting_judge(1, 1)
    assert JudgeReward(judge, checkpoints=4).checkpoint_frames(10) == [
        2,
        4,
        7,
        9,
    ]  # ceil(2.5, 5, 7.5, 10) - 1
    assert JudgeReward(judge, checkpoints=4).checkpoint_frames(1) == [0]
    assert JudgeReward(judge, checkpoints=3).checkpoint_frames(3) == [0, 1, 2]
    with pytest.raises(ConfigError):
        JudgeReward(judge, checkpoints=0)


def test_judge_reward_is_a_gesim_reward_client_scoring_every_frame(gesim):
    from gesim.rewards.base import RewardClient, RewardResult

    judge, seen = counting_judge(needed=8, total=10)
    reward = JudgeReward(judge, checkpoints=4)
    assert isinstance(reward, RewardClient)
    frames = np.zeros((10, 16, 16, 3), dtype=np.uint8)
    result = reward.evaluate(frames, "Pick up the cube.")
    assert isinstance(result, RewardResult)
    assert seen == [3, 5, 8, 10]  # prefixes ending at frames 2, 4, 7, 9
    np.testing.assert_array_equal(result.success, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(result.progress, [0, 0, 0.3, 0.3, 0.5, 0.5, 0.5, 0.8, 0.8, 1.0], atol=1e-6)
    assert result.success.dtype == np.float32 and len(reward.history) == 4
    assert "Pick up the cube." in reward.history[0]["evidence"]["prompt"]
    with pytest.raises(ConfigError, match="uint8"):
        reward.evaluate(frames.astype(np.float32), "x")


def test_judge_reward_refuses_a_judge_that_needs_object_state():
    from ewmbench.loop.judges import StateJudge

    with pytest.raises(ConfigError, match="object state"):
        JudgeReward(StateJudge())


# ---------------------------------------------------------------------------- the closed loop


class JointServer:
    """A loopback openpi server speaking GE-Sim 2.0's pi05 layout: each reply is three rows of
    [L7 arm joints, L gripper, R7 arm joints, R gripper], distinct per call; keeps every reply."""

    def __init__(self):
        from websockets.sync.server import serve

        self.replies: list[np.ndarray] = []
        self.server = serve(self.handle, "127.0.0.1", 0, max_size=None, compression=None)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, websocket):
        from ewmbench.loop.openpi import pack, unpack

        websocket.send(pack({"action_dim": 16}))
        for message in websocket:
            unpack(message)
            call = len(self.replies) + 1
            reply = np.zeros((3, 16), dtype=np.float32)
            reply[:, 0:7] = 0.1 * call + 0.01 * np.arange(7) + 0.001 * np.arange(3)[:, None]
            reply[:, 8:15] = -0.1 * call - 0.01 * np.arange(7)
            reply[:, [7, 15]] = 0.25  # a quarter closed
            self.replies.append(reply)
            websocket.send(pack({"actions": reply}))

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


def test_policy_eval_feeds_the_policys_joint_commands_to_ge_sim_2(gesim, tmp_path, monkeypatch):
    from gesim.models.example import CALLS
    from typer.testing import CliRunner

    from ewmbench.cli import app
    from ewmbench.loop import rollout as rollout_module
    from ewmbench.loop.judges import Judge, Verdict

    class AlwaysJudge(Judge):
        name = "always"

        def judge(self, rollout):
            return Verdict(True, 1.0, [], {})

    monkeypatch.setattr(rollout_module, "make_judge", lambda name, options: AlwaysJudge())
    requests = []
    original = GESim2Model.gesim_inputs

    def recording(self, request):
        requests.append(request)
        return original(self, request)

    monkeypatch.setattr(GESim2Model, "gesim_inputs", recording)
    root = write_dataset(tmp_path / "gt", (8,), joint_names=None)  # 14 joints: 7 left, 7 right
    server = JointServer()
    try:
        policy = f"openpi:port={server.port},layout=gesim-pi05,fk=tests.openpi_toy_kinematics:fk,timeout=30"
        args = ["policy-eval", "--policy", policy, "--world-model", "ge-sim-2"]
        args += ["--world-model-option", "world_model=example", "--dataset", str(root), "--device", "cpu"]
        done = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "out")])
    finally:
        server.stop()
    assert done.exit_code == 0, done.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    (record,) = summary["episodes"]
    assert record["status"] == "ok", record["reason"]
    assert record["policy_calls"] == 3  # 8 frames: the initial one, then 3 + 3 + 1 actions

    # The joints over the rollout: the episode's first row, then each reply's arm joints as sent.
    initial = GroundTruth(root).episodes[0].sidecar.joint_positions[0]
    commands = np.concatenate([r[:, [*range(7), *range(8, 15)]] for r in server.replies]).astype(np.float64)
    expected = np.concatenate([initial[None], commands])[:8]
    assert [len(r.joint_positions) for r in requests] == [4, 7, 8]
    assert [r.start_frame for r in requests] == [0, 3, 6]
    for request in requests:
        np.testing.assert_array_equal(request.joint_positions, expected[: len(request.joint_positions)])
        assert request.action_space == "eef14-euler" and "joint_names" not in request.extra
    # Beside them, the end-effector actions from the layout's fk (left xyz = home + 0.01 x joints
    # 0-2) and the gripper openness 1 - 0.25.
    last = requests[-1].actions
    np.testing.assert_allclose(last[1:, 0:3], [0.47, 0.3, 0.36] + 0.01 * expected[1:, 0:3], atol=1e-12)
    np.testing.assert_allclose(last[1:, [6, 13]], 0.75, atol=1e-6)
    # gesim's step takes them at its 30 fps: model frame 0 is the chunk's current frame.
    steps = [c[1] for c in CALLS if c[0] == "step"]
    assert len(steps) == 3
    np.testing.assert_allclose(steps[-1][0, 0:7], expected[6, 0:7], atol=1e-6)
    np.testing.assert_allclose(steps[-1][0, 8:15], expected[6, 7:14], atol=1e-6)
    np.testing.assert_allclose(steps[-1][-1, [7, 15]], 0.25, atol=1e-6)  # gesim's 0 open .. 1 closed
    trial = tmp_path / "out" / record["rollout"]
    with np.load(trial / "ewmbench" / "arrays.npz") as arrays:
        np.testing.assert_array_equal(arrays["joint_positions"], expected)


def test_joint_commands_must_cover_the_episodes_joint_vector():
    from ewmbench.loop.policies import ActionChunk, PolicyError, check_chunk
    from ewmbench.loop.rollout import _joint_commands

    eef = np.zeros((2, 14))
    joints = np.arange(28.0).reshape(2, 14)
    np.testing.assert_array_equal(_joint_commands(check_chunk(ActionChunk(eef, joints)), 14), joints)
    with pytest.raises(PolicyError, match="commanded 14 joints; the world model takes the episode's 18"):
        _joint_commands(check_chunk(ActionChunk(eef, joints)), 18)
    with pytest.raises(PolicyError, match="without joint commands"):
        _joint_commands(check_chunk(eef), 14)
    with pytest.raises(PolicyError, match=r"joint commands of shape \(1, 14\) for 2 actions"):
        check_chunk(ActionChunk(eef, joints[:1]))
    with pytest.raises(PolicyError, match="non-finite joint commands"):
        check_chunk(ActionChunk(eef, np.full((2, 14), np.nan)))
