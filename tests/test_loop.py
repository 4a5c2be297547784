"""Closed-loop evaluation on the simulator: the scripted ladder, the state judge, rollouts, agreement."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ewmbench.errors import ConfigError
from ewmbench.loop.agreement import (
    agreement,
    calibration,
    cohen_kappa,
    pearson,
    spearman,
)
from ewmbench.loop.policies import LADDER, parse_policies, parse_policy_spec
from ewmbench.loop.rollout import LoopConfig, evaluate_policy
from tests.helpers.sim_loop import HEIGHT, WIDTH, write_sim_dataset

LADDER4 = ["expert", "late-release", "offset-3cm", "wrong-order"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_sim_dataset(tmp_path_factory.mktemp("loop") / "sim")


@pytest.fixture(scope="module")
def ladder():
    return [s for s in parse_policies("scripted-ladder") if s.label in LADDER4]


def _run_all(specs, base: Path, dataset: Path, **changes) -> dict:
    config = LoopConfig(specs[0], "sim", base, dataset=str(dataset), **changes)
    return {
        s.label: evaluate_policy(replace(config, policy=s, output=base / s.label), progress=False)
        for s in specs
    }


@pytest.fixture(scope="module")
def reference(ladder, dataset, tmp_path_factory):
    # The scripted policies act from state, so the reference needs no pictures.
    return _run_all(ladder, tmp_path_factory.mktemp("ref"), dataset, views=())


@pytest.fixture(scope="module")
def world_exact(ladder, dataset, tmp_path_factory):
    return _run_all(ladder, tmp_path_factory.mktemp("wm"), dataset)


@pytest.fixture(scope="module")
def world_slippery(ladder, dataset, tmp_path_factory):
    return _run_all(
        ladder, tmp_path_factory.mktemp("wm-friction"), dataset, world_model_options={"friction": 0.1}
    )


def test_ladder_true_success_rates_differ_by_design(reference):
    rates = [reference[label]["success_rate"] for label in LADDER4]
    assert rates[0] == 1.0  # the expert solves every task
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == len(rates), rates
    for summary in reference.values():
        assert summary["counts"] == {
            "episodes": 4,
            "judged": 4,
            "failed": 0,
            "succeeded": summary["counts"]["succeeded"],
        }


def test_exact_world_model_with_state_judge_agrees_perfectly(world_exact, reference):
    result = agreement(world_exact, reference)
    assert result["pearson"] == pytest.approx(1.0) and result["spearman"] == pytest.approx(1.0)
    assert result["accuracy"] == 1.0 and result["kappa"] == pytest.approx(1.0)
    assert result["disagreements"] == [] and result["episodes_compared"] == 16
    assert result["calibration"]["brier"] == 0.0
    for label in LADDER4:
        assert (
            result["policies"][label]["world_model_success"] == result["policies"][label]["reference_success"]
        )


def _replayed_outcome(folder: Path, dataset: Path, task: str, episode: str, physics) -> bool:
    """Independently of the loop: re-execute a stored rollout's actions and check the task's condition."""
    from ewmbench.loop.rollout import read_rollout
    from ewmbench.sim.execute import execute
    from ewmbench.sim.tasks import plan_episode

    trial = folder / "rollouts_dataset" / task / episode / "1"
    if not trial.is_dir():
        trial = folder / "states" / task / episode / "1"
    _, arrays = read_rollout(trial)
    gt_meta = json.loads((dataset / task / episode / "ewmbench" / "meta.json").read_text())
    plan = plan_episode(
        gt_meta["seed"], gt_meta["task_name"], gt_meta["episode_index"], gt_meta["layout_attempt"]
    )
    recording = execute(plan.spec, arrays["actions"], gt_meta["fps"], views=(), physics=physics)
    return bool(plan.check(recording, plan.spec)[0])


def test_physics_perturbed_world_model_disagrees_exactly_where_the_outcome_changed(
    world_slippery, reference, dataset
):
    from ewmbench.sim.execute import REFERENCE_PHYSICS, Physics

    result = agreement(world_slippery, reference)
    assert result["accuracy"] < 1.0 and result["kappa"] < 1.0 and result["pearson"] < 1.0
    # Low friction lets the pushed object slide past the target: the expert's push fails in the
    # world model although it succeeds in the reference.
    assert {"policy": "expert", "task": "2", "episode": "0"} in [
        {k: d[k] for k in ("policy", "task", "episode")} for d in result["disagreements"]
    ]
    changed = set()
    for label in LADDER4:
        for record in world_slippery[label]["episodes"]:
            task, episode = record["task"], record["episode"]
            wm_folder = Path(world_slippery[label]["output"])
            ref_folder = Path(reference[label]["output"])
            in_world = _replayed_outcome(wm_folder, dataset, task, episode, Physics(friction=0.1))
            in_reference = _replayed_outcome(ref_folder, dataset, task, episode, REFERENCE_PHYSICS)
            if in_world != in_reference:
                changed.add((label, task, episode))
    assert {(d["policy"], d["task"], d["episode"]) for d in result["disagreements"]} == changed
    assert len(changed) == round((1 - result["accuracy"]) * 16)


def test_rollouts_are_written_in_the_generated_layout_and_resume(world_exact, dataset, monkeypatch):
    from ewmbench.data.layout import Generated
    from ewmbench.loop import rollout

    summary = world_exact["expert"]
    folder = Path(summary["output"])
    generated = Generated(folder / "rollouts_dataset")
    assert generated.problems() == [] and len(generated.trials) == 4
    trial = generated.trials[0]
    meta, arrays = rollout.read_rollout(trial.path)
    assert arrays["actions"].shape == (24, 14) and arrays["eef_pose"].shape == (24, 14)
    assert arrays["object_pose/target"].shape == (24, 7) and len(meta["held"]) == 24
    assert meta["state_source"] == "world-model" and meta["model"] == "sim" and meta["policy"] == "scripted"
    assert (
        meta["embodiment"] == "ewmbench.sim/1"
    )  # the detector picks the sample's shipped gripper detector from it
    from ewmbench.data.video import read_video

    assert read_video(trial.video_path()).shape == (24, HEIGHT, WIDTH, 3)
    # Resuming with the same settings redoes nothing and gives the same summary.
    monkeypatch.setattr(
        rollout, "run_episode", lambda *a, **k: pytest.fail("a finished rollout was run again")
    )
    config = LoopConfig(parse_policy_spec(LADDER["expert"], "expert"), "sim", folder, dataset=str(dataset))
    again = evaluate_policy(config, progress=False)
    assert again["episodes"] == summary["episodes"]
    with pytest.raises(ConfigError, match="other settings"):
        evaluate_policy(replace(config, horizon=10), progress=False)


def test_chunked_calls_equal_one_call(dataset):
    """Stateless chunks carrying their history give what one call over the whole sequence gives."""
    from ewmbench.data.layout import GroundTruth
    from ewmbench.models.request import GenerationRequest
    from ewmbench.models.sim import SimModel

    episode = GroundTruth(dataset).episodes[0]
    actions = episode.sidecar.actions[:7]
    scene = {"scene": episode.sidecar.meta["scene"]}

    def request(start, count):
        return GenerationRequest(
            task=episode.task,
            episode=episode.episode,
            trial="1",
            seed=0,
            num_frames=count,
            fps=10.0,
            height=HEIGHT,
            width=WIDTH,
            start_frame=start,
            actions=actions[: start + count],
            scene=scene,
        )

    whole = SimModel().generate(request(0, 7))
    model = SimModel()
    first = model.generate(request(0, 3))  # frames 0-2
    second = model.generate(request(2, 5))  # frames 2-6: frame 0 of a chunk is the current frame
    assert np.array_equal(
        np.concatenate([first.frames["head"], second.frames["head"][1:]]), whole.frames["head"]
    )
    assert np.array_equal(second.state["eef_pose"], whole.state["eef_pose"][2:])
    assert np.array_equal(second.state["object_pose/target"], whole.state["object_pose/target"][2:])
    assert second.info["held"] == whole.info["held"][2:]
    fresh = SimModel().generate(request(2, 5))  # no live session: the history is replayed
    assert np.array_equal(fresh.frames["head"], second.frames["head"])
    shifted = SimModel(render_offset=3).generate(request(0, 7))
    assert np.array_equal(shifted.frames["head"][:, :, 3:], whole.frames["head"][:, :, :-3])
    assert np.array_equal(shifted.state["eef_pose"], whole.state["eef_pose"])  # perception only


def test_agreement_figures_by_hand():
    assert pearson([1.0, 0.5, 0.0], [1.0, 0.75, 0.5]) == pytest.approx(1.0)  # linear, any slope
    assert pearson([1.0, 0.0, 0.5], [0.0, 1.0, 0.5]) == pytest.approx(-1.0)
    assert pearson([0.5, 0.5], [0.1, 0.9]) is None and pearson([1.0], [1.0]) is None
    # ranks (1, 2, 3) and (1.5, 1.5, 3): r = 0.866...
    assert spearman([0.1, 0.2, 0.3], [0.0, 0.0, 1.0]) == pytest.approx(np.sqrt(3) / 2)
    # p_o = 0.75, chance = 0.5 * 0.25 + 0.5 * 0.75 = 0.5 -> kappa 0.5
    assert cohen_kappa([True, True, False, False], [True, False, False, False]) == pytest.approx(0.5)
    assert cohen_kappa([True, True], [True, True]) is None and cohen_kappa([], []) is None
    cal = calibration([0.9, 0.1, 0.6], [True, False, False])
    assert cal["brier"] == pytest.approx((0.01 + 0.01 + 0.36) / 3)
    assert cal["ece"] == pytest.approx((0.1 + 0.1 + 0.6) / 3)
    assert [b["count"] for b in cal["bins"]] == [1, 1, 1]


def _summary(label, outcomes, failed=()):
    episodes = [
        {
            "task": str(i),
            "episode": "0",
            "status": "failed" if i in failed else "ok",
            "reason": "boom" if i in failed else "",
            "verdict": {"success": o, "score": float(o)},
        }
        for i, o in enumerate(outcomes)
    ]
    ok = [e for e in episodes if e["status"] == "ok"]
    return {
        "policy": label,
        "episodes": episodes,
        "counts": {"failed": len(failed)},
        "success_rate": sum(e["verdict"]["success"] for e in ok) / len(ok),
    }


def test_failed_episodes_are_left_out_with_their_reason():
    world = {"a": _summary("a", [True, True, False], failed=(1,)), "b": _summary("b", [False, False, False])}
    ref = {"a": _summary("a", [True, False, True]), "b": _summary("b", [False, True, False])}
    result = agreement(world, ref)
    assert result["episodes_compared"] == 5
    assert result["excluded"] == [
        {"policy": "a", "task": "1", "episode": "0", "reasons": {"world_model": "boom"}}
    ]
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert {(d["policy"], d["task"]) for d in result["disagreements"]} == {("a", "2"), ("b", "1")}


def test_policy_lists_parse():
    specs = parse_policies(
        "scripted,scripted:give_up=0.5,wrong_order=true,http:url=http://127.0.0.1:9/p,timeout=2"
    )
    assert [(s.name, s.options) for s in specs] == [
        ("scripted", {}),
        ("scripted", {"give_up": 0.5, "wrong_order": True}),
        ("http", {"url": "http://127.0.0.1:9/p", "timeout": 2}),
    ]
    assert [s.label for s in parse_policies("scripted-ladder")] == list(LADDER)
    with pytest.raises(ConfigError, match="unknown policy"):
        parse_policies("juggler")
    with pytest.raises(ConfigError, match="more than once"):
        parse_policies("scripted,scripted")


@pytest.mark.slow
def test_agreement_command_end_to_end(dataset, tmp_path):
    out = tmp_path / "agree"
    command = [
        sys.executable,
        "-m",
        "ewmbench",
        "policy-eval",
        "agreement",
        "--policies",
        "scripted,scripted:give_up=0.5",
        "--world-model",
        "sim",
        "--world-model-option",
        "friction=0.1",
        "--dataset",
        str(dataset),
        "--episodes",
        "2",
        "--output",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((out / "agreement.json").read_text())
    for key in ("pearson", "spearman", "accuracy", "kappa"):
        assert key in data and (data[key] is None or isinstance(data[key], float))
    assert data["policies"]["scripted"]["reference_success"] == 1.0
    assert data["policies"]["scripted:give_up=0.5"]["reference_success"] == 0.0
    assert "pearson" in result.stdout and "scripted:give_up=0.5" in result.stdout


@pytest.mark.parametrize(
    "options, message",
    [
        ({"give_up": 2}, "give_up must be from"),
        ({"wrong_order": "maybe"}, "true or false"),
        ({"grasp_offset": "x"}, "must be a number"),
        ({"speed": 1}, "unknown scripted policy option"),
    ],
)
def test_scripted_options_are_checked(options, message):
    from ewmbench.loop.scripted import ScriptedPolicy

    with pytest.raises(ConfigError, match=message):
        ScriptedPolicy(**options)


def test_scripted_policy_needs_a_simulated_layout():
    from ewmbench.loop.policies import Observation, PolicyError
    from ewmbench.loop.scripted import ScriptedPolicy

    with pytest.raises(PolicyError, match="simulated episode's layout"):
        ScriptedPolicy().reset("x", Observation({}, np.zeros(14), 0, "x", episode_meta={"task_name": "push"}))
