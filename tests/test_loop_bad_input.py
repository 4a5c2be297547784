"""Bad input in the loop: each broken episode is marked failed with its reason, the rest continue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ewmbench.loop import rollout as rollout_module
from ewmbench.loop.judges import Judge, Verdict
from ewmbench.loop.policies import Policy, PolicyError, PolicySpec, check_chunk
from ewmbench.loop.rollout import LoopConfig, evaluate_policy
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import Capabilities
from ewmbench.models.request import GenerationResult
from tests.helpers.datasets import make_ground_truth


class EchoWorld(WorldModel):
    """Repeats the current frame; returns the commanded actions as state. ``short_on``: an episode
    (task, episode) for which it returns one frame too few."""

    name = "echo"
    capabilities = Capabilities(conditioning=frozenset({"image", "actions"}))

    def __init__(self, short_on=None):
        super().__init__()
        self.short_on = short_on

    def generate(self, request):
        count = request.num_frames - (1 if (request.task, request.episode) == self.short_on else 0)
        frames = {v: np.repeat(m[-1:], count, axis=0) for v, m in request.memory_frames.items()}
        rows = np.asarray(request.actions)[request.start_frame : request.start_frame + request.num_frames]
        return GenerationResult(frames, state={"eef_pose": rows})


class FinalXJudge(Judge):
    """Success when the left hand ends beyond x = 0.25 (what the ``StepPolicy`` reaches)."""

    name = "final-x"

    def judge(self, rollout):
        x = float(rollout.state[-1, 0])
        return Verdict(x > 0.25, float(x > 0.25), [], {"final_x": x})


class StepPolicy(Policy):
    """Moves the left hand +5 cm per step; the n-th episode (1-based) misbehaves as ``faults`` says."""

    name = "step"

    def __init__(self, faults: dict[int, str]):
        self.faults, self.episode = faults, 0

    def reset(self, instruction, observation):
        self.episode += 1

    def act(self, observation):
        chunk = np.tile(observation.state, (2, 1))
        chunk[:, 0] += [0.05, 0.10]
        fault = self.faults.get(self.episode)
        if fault == "width":
            return chunk[:, :13]
        if fault == "nan":
            chunk[1, 3] = np.nan
        if fault == "crash":
            raise RuntimeError("policy bug")
        return chunk


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_ground_truth(tmp_path / "gt")  # tasks 1, 2 x episodes 10, 11; 6 frames of 48x64


def _evaluate(monkeypatch, dataset, tmp_path, policy, world, horizon=None, judge=None):
    monkeypatch.setattr(rollout_module, "make_world_model", lambda name, options, device=None: world)
    monkeypatch.setattr(rollout_module, "make_judge", lambda name, options: judge or FinalXJudge())
    monkeypatch.setattr(rollout_module, "make_policy", lambda spec: policy)
    config = LoopConfig(
        PolicySpec("step", "scripted", {}), "echo", tmp_path / "out", dataset=str(dataset), horizon=horizon
    )
    return evaluate_policy(config, progress=False)


def test_each_broken_episode_fails_with_its_reason_and_the_rest_continue(monkeypatch, dataset, tmp_path):
    # Episodes run round-robin over tasks: (1, 10), (2, 10), (1, 11), (2, 11).
    policy = StepPolicy({1: "width", 3: "nan"})
    summary = _evaluate(monkeypatch, dataset, tmp_path, policy, EchoWorld(short_on=("2", "10")))
    by_key = {(r["task"], r["episode"]): r for r in summary["episodes"]}
    assert "shape (2, 13)" in by_key[("1", "10")]["reason"] and by_key[("1", "10")]["status"] == "failed"
    # the current frame and 2 actions ask for 3 frames; it returned 2
    assert (
        "returned frames of shape (2, 48, 64, 3)" in by_key[("2", "10")]["reason"]
        and "expected 3 frames" in by_key[("2", "10")]["reason"]
    )
    assert "non-finite" in by_key[("1", "11")]["reason"]
    ok = by_key[("2", "11")]
    assert ok["status"] == "ok" and ok["verdict"]["success"] is True and ok["steps"] == 6
    assert summary["counts"] == {"episodes": 4, "judged": 1, "failed": 3, "succeeded": 1}
    assert summary["success_rate"] == 1.0 and len(summary["failures"]) == 3
    # Failed episodes left nothing half-written in the generated layout.
    trials = sorted(
        p.relative_to(tmp_path / "out" / "rollouts_dataset").as_posix()
        for p in (tmp_path / "out" / "rollouts_dataset").glob("*/*/*")
    )
    assert trials == ["2/11/1"]


def test_a_policy_crash_is_contained_and_failed_episodes_rerun_on_resume(monkeypatch, dataset, tmp_path):
    summary = _evaluate(monkeypatch, dataset, tmp_path, StepPolicy({2: "crash"}), EchoWorld())
    failed = [r for r in summary["episodes"] if r["status"] != "ok"]
    assert len(failed) == 1 and "RuntimeError in the loop: policy bug" in failed[0]["reason"]
    again = _evaluate(monkeypatch, dataset, tmp_path, StepPolicy({}), EchoWorld())
    assert again["counts"]["failed"] == 0 and again["counts"]["judged"] == 4


def test_horizon_is_respected_and_commanded_state_is_recorded(monkeypatch, dataset, tmp_path):
    class NoStateWorld(EchoWorld):
        def generate(self, request):
            result = super().generate(request)
            result.state = {}
            return result

    summary = _evaluate(monkeypatch, dataset, tmp_path, StepPolicy({}), NoStateWorld(), horizon=4)
    record = summary["episodes"][0]
    assert record["steps"] == 4 and record["state_source"] == "commanded" and record["policy_calls"] == 2
    assert record["verdict"]["evidence"]["final_x"] == pytest.approx(
        0.1 + 0.10 + 0.05
    )  # x0 = 0.1, +0.10, then +0.05 (chunk cut to the horizon)


def test_hanging_and_closing_servers_fail_episodes_not_the_run(monkeypatch, dataset, tmp_path):
    from ewmbench.loop.openpi import OpenPIPolicy
    from tests.test_loop_policies import OpenPIServer

    for mode, reason in (("hang", "did not answer within"), ("close", "closed the connection")):
        server = OpenPIServer(mode)
        try:
            summary = _evaluate(
                monkeypatch,
                dataset,
                tmp_path / mode,
                OpenPIPolicy(port=server.port, views="head", timeout=0.3),
                EchoWorld(),
            )
        finally:
            server.stop()
        assert summary["counts"]["failed"] == 4 and summary["counts"]["judged"] == 0
        assert all(reason in f["reason"] for f in summary["failures"]), summary["failures"]


@pytest.mark.parametrize(
    "actions, message",
    [
        ([[0.0] * 14], None),
        ([[0.0] * 15], "shape"),
        ([], "shape"),
        ([[0.0] * 13 + [float("inf")]], "non-finite"),
        ([["a"] * 14], "not numbers"),
    ],
)
def test_check_chunk(actions, message):
    if message is None:
        assert check_chunk(actions).actions.shape == (1, 14)
    else:
        with pytest.raises(PolicyError, match=message):
            check_chunk(actions)


def test_a_judge_may_stop_a_rollout_early(monkeypatch, dataset, tmp_path):
    class StopWhenPast(FinalXJudge):
        def should_stop(self, rollout):
            return float(rollout.state[-1, 0]) > 0.25

    summary = _evaluate(monkeypatch, dataset, tmp_path, StepPolicy({}), EchoWorld(), judge=StopWhenPast())
    record = summary["episodes"][0]
    # x: 0.1 at frame 0, then +0.05, +0.10 per chunk of 2: 0.15, 0.2 | 0.25, 0.3 -> stop after the second chunk
    assert record["stopped_early"] is True and record["steps"] == 5 and record["policy_calls"] == 2
    assert record["verdict"]["success"] is True


def test_state_judge_early_stop_option_is_checked():
    from ewmbench.errors import ConfigError
    from ewmbench.loop.judges import StateJudge

    assert StateJudge(early_stop="true").early_stop is True and StateJudge().early_stop is False
    with pytest.raises(ConfigError, match="early_stop"):
        StateJudge(early_stop="sometimes")


def test_bad_policy_options_are_refused_before_anything_is_written(monkeypatch, dataset, tmp_path):
    from ewmbench.errors import ConfigError
    from ewmbench.loop.policies import parse_policy_spec

    monkeypatch.setattr(rollout_module, "make_world_model", lambda name, options, device=None: EchoWorld())
    config = LoopConfig(
        parse_policy_spec("scripted:give_up=7"), "echo", tmp_path / "out", dataset=str(dataset)
    )
    with pytest.raises(ConfigError, match="give_up must be from 0.0 to 1.0"):
        evaluate_policy(config, progress=False)
    assert not (tmp_path / "out").exists()


def test_a_server_error_fails_one_episode_and_the_next_reconnects(monkeypatch, dataset, tmp_path):
    from ewmbench.loop.openpi import OpenPIPolicy
    from tests.test_loop_policies import OpenPIServer

    server = OpenPIServer(fail_on=(1,))  # the traceback as text, then close code 1011
    try:
        policy = OpenPIPolicy(port=server.port, views="head", timeout=5)
        summary = _evaluate(monkeypatch, dataset, tmp_path, policy, EchoWorld())
    finally:
        server.stop()
    counts = summary["counts"]
    assert (counts["episodes"], counts["judged"], counts["failed"]) == (4, 3, 1)
    assert "model exploded" in summary["failures"][0]["reason"]
    assert [r["status"] for r in summary["episodes"]] == ["failed", "ok", "ok", "ok"]
    assert server.connections == 2  # one at the start, one after the error


def test_an_unreachable_server_stops_the_run_before_the_first_episode(monkeypatch, dataset, tmp_path):
    import socket

    from ewmbench.errors import Unavailable
    from ewmbench.loop.openpi import OpenPIPolicy

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unavailable, match=f"ws://127.0.0.1:{port}.*fix: start the policy server"):
        _evaluate(monkeypatch, dataset, tmp_path, OpenPIPolicy(port=port, timeout=1), EchoWorld())
    assert not (tmp_path / "out").exists()
