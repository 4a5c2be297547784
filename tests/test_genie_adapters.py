"""ge-base and ge-sim against a stand-in of GE's entry points that records what it receives."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ewmbench.data.layout import GroundTruth, Sidecar, write_episode
from ewmbench.data.video import read_video
from ewmbench.errors import ConfigError, DataError
from ewmbench.models.conditioning import (
    euler14_to_quat16,
    pose_matrix,
    rescale_intrinsics,
    to_corner_convention,
)
from ewmbench.models.genie import GEBaseModel, GESimModel, ge_prompt
from ewmbench.runner import RunConfig, build_request, run
from tests.helpers.ge_standin import write_checkout

W, H, FRAMES = 160, 120, 12  # 12 frames at 10 fps; the model runs at 30 fps: 34 frames
CHUNK, SIZE = 9, (32, 48)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from ewmbench.sim.record import episode_sidecar, record_episode

    root = tmp_path_factory.mktemp("gt")
    recorded = record_episode(5, "pick_place", 0, FRAMES, width=W, height=H)
    frames = recorded.recording.frames
    write_episode(
        root,
        "1",
        "0",
        frames["head"],
        recorded.plan.instruction,
        sidecar=episode_sidecar(recorded, 5),
        extra_views={"hand_left": frames["hand_left"], "hand_right": frames["hand_right"]},
    )
    return root


@pytest.fixture
def checkout(tmp_path):
    record = tmp_path / "calls.jsonl"
    return write_checkout(tmp_path / "Genie-Envisioner", record, CHUNK, SIZE), record


def calls(record) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def loaded(cls, repo, **options):
    model = cls(repo=str(repo), **options)
    model.check_available()
    model.load("cpu")
    return model


def test_ge_base_run_writes_three_views_and_feeds_ge_its_conventions(simulated, checkout, tmp_path):
    repo, record = checkout
    config = RunConfig(
        output=tmp_path / "run",
        dataset=str(simulated),
        model="ge-base",
        model_options={"repo": str(repo), "checkpoint": str(repo)},
        trials=1,
        metrics=["psnr"],
        device="cpu",
        cache_dir=tmp_path / "cache",
    )
    result = run(config, show_progress=False)
    trial = result.output / "ge-base_dataset" / "1" / "0" / "1"
    assert read_video(trial / "video").shape == (
        FRAMES,
        H,
        W,
        3,
    )  # head view scored, at the GT's frames and size
    for view in ("hand_left", "hand_right"):
        assert read_video(trial / "ewmbench" / "views" / view).shape == (FRAMES, H, W, 3)
    meta = json.loads((trial / "ewmbench" / "meta.json").read_text())
    assert meta["info"]["fps"] == 30.0 and meta["conform"]["head"]["time"] == "by frame rate"
    # 12 frames at 10 fps span 34 frames at 30 fps: windows of 1 + 9 frames -> 4 calls (10 + 9 + 9 + 9 >= 34)
    made = calls(record)
    assert len(made) == meta["info"]["chunks"] == 4
    first = made[0]
    assert (
        first["image"]["shape"] == [3, 3, 4, *SIZE]
        and -1.0 <= first["image"]["min"]
        and first["image"]["max"] <= 1.0
    )
    assert first["image"]["dtype"] == "torch.float32"  # fp32 on the CPU
    # a single observation fills all four memory slots
    assert all(np.allclose(slots, slots[0]) for slots in first["memory_slot_means"])
    assert (
        first["guidance_scale"] == 1.0
        and first["n_view"] == 3
        and first["n_prev"] == 4
        and first["negative_prompt"] == ""
    )
    assert (
        first["chunk"] == (CHUNK - 1) // 8 + 1
        and first["noise_seed"] != 0
        and first["num_inference_steps"] == 50
    )
    assert (
        first["decode_timestep"] == 0.03
        and first["decode_noise_scale"] == 0.025
        and first["history_action_state"] is None
    )
    instruction = GroundTruth(simulated).episode("1", "0").instruction
    assert first["prompt"] == [
        ge_prompt(instruction, GroundTruth(simulated).episode("1", "0").sidecar.substeps)
    ]
    assert " the " not in first["prompt"][0]
    assert first["checkpoint"] == str(repo)  # the checkpoint option overrides the config's model_path
    # later chunks re-sample memory over what was generated: the slots now differ
    assert not all(np.allclose(slots, slots[0]) for slots in made[1]["memory_slot_means"])
    provenance = json.loads((result.output / "provenance.json").read_text())
    assert (
        provenance["model"]["config"]["sample_size"] == list(SIZE)
        and provenance["model"]["config"]["n_previous"] == 4
    )


def test_ge_prompt_format():
    assert (
        ge_prompt("Pick up the red cube.", ["reach the cube", "grasp it"])
        == "Pick up red cube: reach cube, grasp it"
    )
    assert ge_prompt("Push the block", []) == "Push block"


def test_ge_sim_actions_cameras_and_layout(simulated, checkout):
    repo, record = checkout
    model = loaded(GESimModel, repo)
    episode = GroundTruth(simulated).episode("1", "0")
    request = build_request(episode, "1", 7, model)
    assert request.actions is not None and set(request.extrinsics) == {"head", "hand_left", "hand_right"}
    assert request.instruction == ""  # GE-Sim is not conditioned on text
    result = model.generate(request)
    assert {v: f.shape for v, f in result.frames.items()} == {
        v: (34, *SIZE, 3) for v in ("head", "hand_left", "hand_right")
    }
    made = calls(record)
    first = made[0]
    assert first["prompt"] == [
        "best quality, consistent and smooth motion"
    ]  # the config's fixed prompt, not the instruction
    assert first["actions"]["shape"] == [1, 4 + CHUNK, 16]
    assert first["extrinsics"]["shape"] == [3, 4 + CHUNK, 4, 4] and first["intrinsics"]["shape"] == [3, 3, 3]
    actions = np.array(first["actions_values"][0])
    sidecar = episode.sidecar
    np.testing.assert_allclose(np.linalg.norm(actions[:, 3:7], axis=1), 1.0, atol=1e-5)
    assert 0.0 <= actions[:, [7, 15]].min() and actions[:, [7, 15]].max() <= 120.0
    # rows 0-3: the memory frames (the initial pose, one observation); row 4 + k - 1: model frame k.
    # Model frame 3 at 30 fps is dataset frame 1 at 10 fps exactly.
    expected = euler14_to_quat16(sidecar.actions[[0, 1]], (0.0, 120.0))
    for row, src in ((0, 0), (3, 0), (4 + 2, 1)):
        np.testing.assert_allclose(
            actions[row, [0, 1, 2, 7, 8, 9, 10, 15]], expected[src, [0, 1, 2, 7, 8, 9, 10, 15]], atol=1e-6
        )
        for q in (slice(3, 7), slice(11, 15)):
            assert abs(abs(np.dot(actions[row, q], expected[src, q])) - 1.0) < 1e-6  # same rotation (q ~ -q)
    extrinsics = np.array(first["extrinsics_values"])
    for index, view in enumerate(("head", "hand_left", "hand_right")):
        np.testing.assert_allclose(extrinsics[index, 0], sidecar.extrinsics[view][0], atol=1e-6)
        np.testing.assert_allclose(extrinsics[index, 4 + 2], sidecar.extrinsics[view][1], atol=1e-6)
        k = rescale_intrinsics(to_corner_convention(sidecar.intrinsics[view]), (H, W), SIZE, pixel_centre=0.5)
        np.testing.assert_allclose(np.array(first["intrinsics_values"][index]), k, atol=1e-5)
    # hand-worked: 160x120 -> 48x32 scales by 0.3 and 0.2667; the principal point (79.5, 59.5) moves to the centre (24, 16)
    np.testing.assert_allclose(np.array(first["intrinsics_values"][0])[:2, 2], [24.0, 16.0], atol=1e-5)


def test_ge_sim_propagates_a_wrist_camera_known_only_at_frame_0(simulated, checkout):
    repo, record = checkout
    model = loaded(
        GESimModel, repo, fps=10.0
    )  # at the dataset's rate: no resampling, rows are dataset frames
    episode = GroundTruth(simulated).episode("1", "0")
    request = build_request(episode, "1", 7, model)
    request.extrinsics["hand_left"] = request.extrinsics["hand_left"][:1]
    model.generate(request)
    extrinsics = np.array(calls(record)[0]["extrinsics_values"])[1]
    actions = episode.sidecar.actions
    for t in (1, 5):
        hand_t, hand_0 = pose_matrix(actions[t], 0), pose_matrix(actions[0], 0)
        np.testing.assert_allclose(
            extrinsics[4 + t - 1],
            hand_t @ np.linalg.inv(hand_0) @ episode.sidecar.extrinsics["hand_left"][0],
            atol=1e-5,
        )


def test_ge_sim_bad_requests(simulated, checkout):
    repo, _ = checkout
    model = loaded(GESimModel, repo)
    request = build_request(GroundTruth(simulated).episode("1", "0"), "1", 7, model)
    with pytest.raises(DataError, match="eef14-euler must be \\(T, 14\\).*got shape \\(12, 12\\)"):
        model.generate(replace(request, actions=request.actions[:, :12]))
    quat = replace(
        request, actions=euler14_to_quat16(request.actions, (0.0, 120.0)), action_space="eef16-quat"
    )
    model.generate(quat)  # a 16-D request is accepted as is
    with pytest.raises(DataError, match="eef16-quat must be \\(T, 16\\)"):
        model.generate(replace(quat, actions=request.actions))
    with pytest.raises(DataError, match="needs intrinsics and extrinsics for view 'hand_right'"):
        model.generate(
            replace(request, extrinsics={k: v for k, v in request.extrinsics.items() if k != "hand_right"})
        )
    with pytest.raises(ConfigError, match="unknown action space 'joints'"):
        model.generate(replace(request, action_space="joints"))


def test_dataset_without_extrinsics_is_refused_before_writing(checkout, tmp_path):
    repo, _ = checkout
    root = tmp_path / "gt"
    frames = np.zeros((4, 24, 32, 3), np.uint8)
    sidecar = Sidecar(
        fps=10.0,
        views=["head", "hand_left", "hand_right"],
        actions=np.zeros((4, 14)),
        intrinsics={v: np.eye(3) for v in ("head", "hand_left", "hand_right")},
        extrinsics={v: np.tile(np.eye(4), (4, 1, 1)) for v in ("head", "hand_right")},
    )
    write_episode(
        root,
        "1",
        "0",
        frames,
        "push",
        sidecar=sidecar,
        extra_views={"hand_left": frames, "hand_right": frames},
    )
    config = RunConfig(
        output=tmp_path / "run",
        dataset=str(root),
        model="ge-sim",
        model_options={"repo": str(repo)},
        trials=1,
        metrics=["psnr"],
        device="cpu",
        cache_dir=tmp_path / "cache",
    )
    with pytest.raises(DataError, match="lacks `extrinsics/hand_left`"):
        run(config, show_progress=False)
    assert not (tmp_path / "run").exists()


def test_checkout_errors(tmp_path):
    record = tmp_path / "calls.jsonl"
    with pytest.raises(ConfigError, match="needs --model-option repo=DIR"):
        GEBaseModel()
    with pytest.raises(ConfigError, match="is not a folder"):
        GEBaseModel(repo=str(tmp_path / "missing")).check_available()
    only_sim = write_checkout(tmp_path / "only-sim", record, base=False)
    with pytest.raises(ConfigError, match="not a Genie-Envisioner checkout with video_gen_examples/infer.py"):
        GEBaseModel(repo=str(only_sim)).check_available()
    broken = write_checkout(tmp_path / "broken", record, gesim=False)
    (broken / "video_gen_examples" / "infer.py").write_text("def load_config(path):\n    return None\n")
    with pytest.raises(ConfigError, match="has no prepare_model"):
        loaded(GEBaseModel, broken)
    (broken / "video_gen_examples" / "infer.py").write_text("import ge_dependency_that_is_missing\n")
    with pytest.raises(ConfigError, match="importing .* failed \\(ModuleNotFoundError.*requirements"):
        loaded(GEBaseModel, broken)
    with pytest.raises(ConfigError, match="checkpoint .* does not exist"):
        GEBaseModel(repo=str(broken), checkpoint=str(tmp_path / "nope.safetensors")).check_available()
    with pytest.raises(ConfigError, match="gripper_closed and gripper_open must differ"):
        GESimModel(repo=str(broken), gripper_closed=1, gripper_open=1)


def test_returned_shape_is_checked(simulated, checkout):
    repo, _ = checkout
    model = loaded(GEBaseModel, repo)
    model.chunk = CHUNK + 1  # the config now disagrees with what the pipeline returns
    request = build_request(GroundTruth(simulated).episode("1", "0"), "1", 7, model)
    with pytest.raises(ConfigError, match="returned video of shape"):
        model.generate(request)


def test_a_chunk_request_from_a_closed_loop_is_timed_in_model_frames(simulated, checkout):
    """A caller driving GE chunk by chunk sends history (memory at episode frames 0..3) and a start frame."""
    repo, record = checkout
    model = loaded(GESimModel, repo)
    episode = GroundTruth(simulated).episode("1", "0")
    request = build_request(episode, "1", 7, model)
    memory = {v: np.repeat(f, 4, axis=0) for v, f in request.memory_frames.items()}
    chunk = replace(
        request,
        start_frame=3,
        num_frames=4,
        memory_frames=memory,
        memory_indices=[0, 1, 2, 3],
        actions=request.actions[:7],
        extrinsics={v: e[:7] for v, e in request.extrinsics.items()},
    )
    timed = model.timed(chunk)
    # 10 fps -> 30 fps: frame 3 is model frame 9; the history and the 4 frames span model frames 0..18
    assert timed.start_frame == 9 and timed.memory_indices == [0, 3, 6, 9] and timed.num_frames == 10
    assert len(timed.actions) == 19 and all(len(e) == 19 for e in timed.extrinsics.values())
    result = model.generate(chunk)
    assert len(result.frames["head"]) == CHUNK + 1 and len(calls(record)) == 1
    actions = np.array(calls(record)[0]["actions_values"][0])
    expected = euler14_to_quat16(episode.sidecar.actions[[1, 3]], (0.0, 120.0))
    np.testing.assert_allclose(actions[1, :3], expected[0, :3], atol=1e-6)  # memory row 1: episode frame 1
    np.testing.assert_allclose(
        actions[3, :3], expected[1, :3], atol=1e-6
    )  # memory row 3: the current frame 3
