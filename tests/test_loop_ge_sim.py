"""The loop drives a generative action-conditioned adapter (ge-sim, against the stand-in of GE's
entry points) chunk by chunk through the adapter interface: history in, current frame first."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ewmbench.data.layout import Generated, write_episode
from ewmbench.data.video import read_video
from ewmbench.loop import rollout as rollout_module
from ewmbench.loop.judges import Judge, Verdict
from ewmbench.loop.policies import parse_policy_spec
from ewmbench.loop.rollout import LoopConfig, evaluate_policy, read_rollout
from tests.helpers.ge_standin import write_checkout

W, H, FRAMES, CHUNK_ACTIONS = 64, 48, 24, 4
GE_CHUNK, GE_SIZE = 9, (32, 48)


class AlwaysJudge(Judge):
    name = "always"

    def judge(self, rollout):
        return Verdict(True, 1.0, [], {"frames": {v: list(f.shape) for v, f in rollout.frames.items()}})


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from ewmbench.sim.record import episode_sidecar, record_episode

    root = tmp_path_factory.mktemp("gt")
    recorded = record_episode(0, "push", 0, FRAMES, width=W, height=H)
    frames = recorded.recording.frames
    write_episode(
        root,
        "2",
        "0",
        frames["head"],
        recorded.plan.instruction,
        sidecar=episode_sidecar(recorded, 0),
        extra_views={"hand_left": frames["hand_left"], "hand_right": frames["hand_right"]},
    )
    return root


def test_scripted_policy_in_ge_sim_chunk_by_chunk(simulated, tmp_path, monkeypatch):
    record = tmp_path / "calls.jsonl"
    repo = write_checkout(tmp_path / "Genie-Envisioner", record, GE_CHUNK, GE_SIZE)
    monkeypatch.setattr(rollout_module, "make_judge", lambda name, options: AlwaysJudge())
    config = LoopConfig(
        parse_policy_spec(f"scripted:chunk={CHUNK_ACTIONS}"),
        "ge-sim",
        tmp_path / "out",
        dataset=str(simulated),
        world_model_options={"repo": str(repo), "fps": 10.0, "tool_offset": 0.23},  # poses passed as they are
        horizon=10,
        device="cpu",
    )
    summary = evaluate_policy(config, progress=False)
    record_ = summary["episodes"][0]
    assert record_["status"] == "ok", record_.get("reason", record_)
    # 10 frames: the initial one, then chunks of 4, 4 and 1 actions (cut at the horizon)
    assert record_["steps"] == 10 and record_["policy_calls"] == 3 and record_["state_source"] == "commanded"
    trial = Generated(tmp_path / "out" / "rollouts_dataset").trials[0]
    assert read_video(trial.video_path()).shape == (10, H, W, 3)  # conformed back from GE's 32x48
    for view in ("hand_left", "hand_right"):
        assert read_video(trial.video_path(view)).shape == (10, H, W, 3)
    meta, arrays = read_rollout(trial.path)
    assert (
        arrays["actions"].shape == (10, 14)
        and meta["state_source"] == "commanded"
        and meta["model"] == "ge-sim"
    )
    actions = arrays["actions"]
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    # one stateless request per policy chunk, each within GE's 9-frame window
    assert sum(line["kind"] == "infer_sim" for line in lines) == 3
    calls = [line for line in lines if line["kind"] == "traj_maps"]
    # Each request's pose maps hold 4 memory rows, then the window; the actions are the policy's, in 16-D.
    for call in calls:
        assert np.array(call["pose"]).shape == (4 + GE_CHUNK, 16)

    # Which rollout frame each of GE's action rows belongs to (matched on the acting right hand):
    # 4 memory rows spread evenly over the frames so far (the last is the current frame), then the
    # chunk's frames, the last action held to fill GE's window.
    def frames_of(call):
        rows = np.array(call["pose"])[:, 8:11]
        return [int(np.argmin(np.abs(actions[:, 7:10] - r).sum(1))) for r in rows]

    assert [frames_of(c) for c in calls] == [
        [0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4, 4, 4],  # current frame 0; memory = the initial frame
        [0, 1, 3, 4, 5, 6, 7, 8, 8, 8, 8, 8, 8],  # current frame 4; memory over frames 0-4
        [0, 3, 5, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9],  # current frame 8; one action left to the horizon
    ]
    assert len(np.unique(actions[:, 8])) > 5  # the right hand moves, so the matching means something
