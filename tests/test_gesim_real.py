"""ge-sim-2 and JudgeReward against a real GE-Sim-V2 checkout, installed with ``pip install -e``.

Selected by ``EWMBENCH_GESIM_REPO=/path/to/GE-Sim-V2`` (tested at commit
4a34498e326dfa88d6300b2e476e8a67795c430a); skipped otherwise. Slow (the sample through the model
twice, a server in a subprocess).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = os.environ.get("EWMBENCH_GESIM_REPO")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not REPO, reason="set EWMBENCH_GESIM_REPO to a GE-Sim-V2 checkout installed with pip install -e"
    ),
]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gesim():
    import gesim

    if Path(REPO).resolve() not in Path(gesim.__file__).resolve().parents:
        pytest.fail(f"the installed gesim ({gesim.__file__}) is not the checkout {REPO}")
    return gesim


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gesim_server(gesim):
    """``python -m gesim.server --model example`` on 127.0.0.1."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gesim.server",
            "--model",
            "example",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("gesim.server did not come up")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def ewmbench_run(output: Path, option: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "ewmbench", "run", "--model", "ge-sim-2", "--model-option", option]
    args += ["--dataset", "sample", "--trials", "1", "--metrics", "psnr,ssim", "--protocol", "ewmbench-v2"]
    args += ["--output", str(output), "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )


def test_the_sample_in_process_and_through_gesim_server_agree_within_the_jpeg_error(
    gesim, gesim_server, tmp_path
):
    runs = {  # side by side: each takes minutes on a CPU
        "local": ewmbench_run(tmp_path / "local", "world_model=example"),
        "served": ewmbench_run(tmp_path / "served", f"url={gesim_server}"),
    }
    for process in runs.values():
        output, _ = process.communicate(timeout=3600)
        assert process.returncode == 0, output[-3000:]
    rows = {name: pd.read_csv(tmp_path / name / "rows.csv") for name in runs}
    ids = ["task_id", "episode_id", "trial_id"]
    assert len(rows["local"]) == 8 and rows["local"][ids].equals(rows["served"][ids])
    assert np.all(np.isfinite(rows["local"]["psnr"])) and np.all(np.isfinite(rows["local"]["ssim"]))
    # gesim's wire format carries every frame as JPEG (quality 95) both ways
    np.testing.assert_allclose(rows["served"]["psnr"], rows["local"]["psnr"], atol=0.5)
    np.testing.assert_allclose(rows["served"]["ssim"], rows["local"]["ssim"], atol=0.02)
    from ewmbench.data.video import read_video

    for trial in sorted((tmp_path / "local" / "ge-sim-2_dataset").glob("*/*/1")):
        twin = tmp_path / "served" / trial.relative_to(tmp_path / "local")
        a, b = read_video(trial / "video"), read_video(twin / "video")
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < 3.0
        with (
            np.load(trial / "ewmbench" / "arrays.npz") as arrays,
            np.load(twin / "ewmbench" / "arrays.npz") as other,
        ):
            assert arrays["joint_state"].shape == (len(a), 16)
            np.testing.assert_allclose(arrays["joint_state"], other["joint_state"], atol=1e-5)
        meta = json.loads((trial / "ewmbench" / "meta.json").read_text())
        assert meta["info"]["fps"] == 30.0 and meta["info"]["band_upload"] == "episode"


def test_our_pose_conventions_are_gesims(gesim):
    from gesim.conditioning.band import _euler_to_quaternion_xyzw, render_traj
    from scipy.spatial.transform import Rotation

    rpy = np.array([[0.3, -0.2, 1.1], [np.pi, 0.1, -0.4]])
    np.testing.assert_allclose(
        _euler_to_quaternion_xyzw(rpy), Rotation.from_euler("xyz", rpy).as_quat(), atol=1e-7
    )
    # the band of a hand 1.15 m below a camera looking down (after gesim's 0.15 m tool offset):
    # its circle is centred at u = 400 * -0.1 / 1.15 + 256 = 221, v = 192
    c2w = np.eye(4)
    c2w[:3, :3] = [[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]
    c2w[:3, 3] = [0.0, 0.0, 1.0]
    eef = np.zeros((1, 14))
    eef[0, 1], eef[0, 3], eef[0, 7:10], eef[0, 10] = 0.1, np.pi, [0.0, -5.0, 0.0], np.pi
    k = np.array([[[400.0, 0.0, 256.0], [0.0, 400.0, 192.0], [0.0, 0.0, 1.0]]])
    band = np.asarray(render_traj(eef, c2w[None, None], k))
    background = 50 / 255
    assert band.shape == (3, 1, 1, 384, 512)
    assert not np.allclose(band[:, 0, 0, 192, 221], background)
    assert np.allclose(band[:, 0, 0, 192, 400], background) and np.allclose(
        band[:, 0, 0, 20, 221], background
    )


def short_bundle(tmp_path: Path, frames: int) -> Path:
    """gesim's demo_000 bundle cut to its first ``frames`` frames (the whole band of 456 frames
    takes gigabytes)."""
    import shutil

    source, target = Path(REPO) / "assets" / "demo_000", tmp_path / "demo"
    target.mkdir()
    for path in source.iterdir():
        if path.suffix == ".npy" and path.name != "intrinsic.npy":
            array = np.load(path)
            np.save(
                target / path.name, array[:, :frames] if path.name.startswith("extrinsic") else array[:frames]
            )
        else:
            shutil.copy(path, target / path.name)
    return target


def test_judge_reward_inside_gesims_world_model_env(gesim, gesim_server, tmp_path):
    from dataclasses import dataclass

    from gesim import WorldModelEnv
    from gesim.rewards.base import RewardClient

    from ewmbench.loop.gesim_reward import JudgeReward
    from ewmbench.loop.vlm_judge import VLMJudge
    from ewmbench.perception.captioner import FrameSampling, VideoCaptioner

    @dataclass
    class Canned(VideoCaptioner):
        seen: list | None = None

        def caption(self, videos):
            self.seen.append(videos[0].shape)
            return [
                f'{{"success": {"true" if len(videos[0]) == 25 else "false"}, "reward": {len(videos[0]) / 25}}}'
            ]

    seen: list = []
    judge = VLMJudge()
    judge._captioner = Canned(None, None, "", judge.system, FrameSampling(), seen=seen)
    reward = JudgeReward(judge, checkpoints=5)
    assert isinstance(reward, RewardClient)
    demo = short_bundle(tmp_path, frames=60)
    with WorldModelEnv(gesim_server, reward=reward) as env:
        env.reset(demo, conditioning="episode")
        actions = np.load(demo / "actions_0.npy").astype(np.float32)[:30]
        _, success, state, info = env.step(actions)  # compressed to one chunk of 25
    assert success.shape == (25,) and info.progress.shape == (25,)
    np.testing.assert_array_equal(success, [0.0] * 24 + [1.0])
    np.testing.assert_allclose(info.progress[[0, 3, 4, 9, 24]], [0.0, 0.0, 0.2, 0.4, 1.0], atol=1e-6)
    assert [s[0] for s in seen] == [5, 10, 15, 20, 25] and seen[0][1:] == (384, 512, 3)
    assert reward.history[-1]["evidence"]["prompt"].count("Pick up the kettle") == 1


def test_policy_eval_drives_gesims_example_with_the_policys_joints(gesim, tmp_path, monkeypatch):
    """The closed loop in process: an openpi server in GE-Sim 2.0's pi05 layout commands joints,
    gesim's own example model echoes the actions it stepped with, which hold those joints."""
    from typer.testing import CliRunner

    from ewmbench.cli import app
    from ewmbench.data.layout import GroundTruth
    from ewmbench.loop import rollout as rollout_module
    from ewmbench.loop.judges import Judge, Verdict
    from ewmbench.models.gesim import GESim2Model
    from tests.test_gesim import JointServer, write_dataset

    class AlwaysJudge(Judge):
        name = "always"

        def judge(self, rollout):
            return Verdict(True, 1.0, [], {})

    monkeypatch.setattr(rollout_module, "make_judge", lambda name, options: AlwaysJudge())
    answers = []
    original = GESim2Model.generate

    def recording(self, request):
        result = original(self, request)
        answers.append((request.start_frame, result.state["joint_state"]))
        return result

    monkeypatch.setattr(GESim2Model, "generate", recording)
    root = write_dataset(tmp_path / "gt", (8,), joint_names=None)
    server = JointServer()
    try:
        policy = f"openpi:port={server.port},layout=gesim-pi05,fk=tests.openpi_toy_kinematics:fk,timeout=60"
        args = ["policy-eval", "--policy", policy, "--world-model", "ge-sim-2"]
        args += ["--world-model-option", "world_model=example", "--dataset", str(root), "--device", "cpu"]
        done = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "out")])
    finally:
        server.stop()
    assert done.exit_code == 0, done.output
    (record,) = json.loads((tmp_path / "out" / "summary.json").read_text())["episodes"]
    assert record["status"] == "ok", record["reason"]
    initial = GroundTruth(root).episodes[0].sidecar.joint_positions[0]
    commands = np.concatenate([r[:, [*range(7), *range(8, 15)]] for r in server.replies])
    expected = np.concatenate([initial[None], commands])[:8]
    assert [start for start, _ in answers] == [0, 3, 6]
    for start, joint_state in answers:  # model frame 0 (30 fps) is the chunk's current frame
        np.testing.assert_allclose(joint_state[0, 0:7], expected[start, 0:7], atol=1e-6)
        np.testing.assert_allclose(joint_state[0, 8:15], expected[start, 7:14], atol=1e-6)
    with np.load(tmp_path / "out" / record["rollout"] / "ewmbench" / "arrays.npz") as arrays:
        np.testing.assert_array_equal(arrays["joint_positions"], expected)
