"""ge-base and ge-sim against a stand-in of GE's checkout with GE's real signatures (no catch-all
keywords), recording what it receives. The opt-in test on the real GE code is test_genie_real.py."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ewmbench.data.layout import GroundTruth, Sidecar, write_episode
from ewmbench.data.video import read_video
from ewmbench.errors import ConfigError, DataError
from ewmbench.models.conditioning import euler14_to_quat16, pose_matrix
from ewmbench.models.genie import (
    GE_SIM_PROMPT,
    GEBaseModel,
    GESimModel,
    checkpoint_mismatch,
    ge_fps,
    ge_intrinsics,
    ge_prompt,
    shift_along_tool_z,
)
from ewmbench.run import RunConfig, build_request, run
from tests.helpers.ge_standin import write_checkout

W, H, FRAMES = 160, 120, 12  # 12 frames at 10 fps; the model runs at 30 fps: 34 frames
CHUNK, SIZE = 9, (32, 48)
VIEWS = ("head", "hand_left", "hand_right")


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
def checkout(tmp_path, monkeypatch):
    """A stand-in checkout; the tests run from another folder (GE's class paths are relative)."""
    record = tmp_path / "calls.jsonl"
    repo = write_checkout(tmp_path / "Genie-Envisioner", record, CHUNK, SIZE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return repo, record


def calls(record, kind: str) -> list[dict]:
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    return [line for line in lines if line["kind"] == kind]


def loaded(cls, repo, **options):
    model = cls(repo=str(repo), **options)
    model.check_available()
    model.load("cpu")
    return model


def test_ge_base_run_from_another_folder_feeds_ge_its_own_call(simulated, checkout, tmp_path):
    repo, record = checkout
    config = RunConfig(
        output=tmp_path / "run",
        dataset=str(simulated),
        model="ge-base",
        model_options={"repo": str(repo)},
        trials=1,
        metrics=["psnr"],
        device="cpu",
        cache_dir=tmp_path / "cache",
    )
    result = run(config, show_progress=False)
    trial = result.output / "ge-base_dataset" / "1" / "0" / "1"
    assert read_video(trial / "video").shape == (FRAMES, H, W, 3)  # conformed to the GT
    for view in ("hand_left", "hand_right"):
        assert read_video(trial / "ewmbench" / "views" / view).shape == (FRAMES, H, W, 3)
    meta = json.loads((trial / "ewmbench" / "meta.json").read_text())
    assert meta["info"]["fps"] == 30.0 and meta["conform"]["head"]["time"] == "by frame rate"
    # 12 frames at 10 fps span 34 frames at 30 fps: windows of 1 + 9 frames -> 4 calls (10 + 9 + 9 + 9 >= 34)
    made = calls(record, "infer_base")
    assert len(made) == meta["info"]["chunks"] == 4
    first = made[0]
    assert first["image"]["shape"] == [3, 3, 4, *SIZE]
    assert -1.0 <= first["image"]["min"] and first["image"]["max"] <= 1.0
    assert first["image"]["dtype"] == "torch.float32"  # fp32 on the CPU
    assert all(np.allclose(slots, slots[0]) for slots in first["memory_slot_means"])  # one observation
    assert (first["guidance_scale"], first["n_view"], first["n_prev"], first["negative_prompt"]) == (
        1.0,
        3,
        4,
        "",
    )
    assert first["chunk"] == (CHUNK - 1) // 8 + 1 and first["n_chunk"] == 1
    assert first["num_inference_steps"] == 3  # the config's num_inference_step
    assert first["noise_seed"] != 0 and first["generator"] == "generator"
    assert (first["decode_timestep"], first["decode_noise_scale"], first["history_action_state"]) == (
        0.03,
        0.025,
        None,
    )
    assert first["return_video"] is True and first["return_action"] is False
    assert first["action_chunk"] == CHUNK and first["pixel_wise_timestep"] is False
    episode = GroundTruth(simulated).episode("1", "0")
    assert first["prompt"] == [ge_prompt(episode.instruction, episode.sidecar.substeps)]
    assert first["weight"] == 2.0  # the stand-in checkpoint (four 0.5s) was loaded
    # later chunks re-sample memory over what was generated: the slots now differ
    assert not all(np.allclose(slots, slots[0]) for slots in made[1]["memory_slot_means"])
    provenance = json.loads((result.output / "provenance.json").read_text())
    recorded = provenance["model"]["config"]
    assert recorded["sample_size"] == list(SIZE) and recorded["n_previous"] == 4
    assert recorded["notes"] == ["VAE slicing disabled (GE's sliced decode fails with timestep conditioning)"]


def test_ge_prompt_follows_ge_training_captions():
    # GE's own sample prompt: the task keeps "the"; the steps drop it and keep their periods.
    assert (
        ge_prompt(
            "Pickup items in the supermarket",
            ["Retrieve pear from the shelf.", "Place the held pear into the plastic bag."],
        )
        == "Pickup items in the supermarket: Retrieve pear from shelf., Place held pear into plastic bag."
    )
    assert ge_prompt("Push the block.", []) == "Push the block"  # the task alone, its period gone
    assert ge_prompt("Stack: cups", ["  ", "grasp the cup"]) == "Stack: cups: grasp cup"


def test_ge_fps_follows_the_config():
    assert ge_fps({"chunk": 9, "action_chunk": 54}) == 5  # GE-Base fast
    assert ge_fps({"chunk": 57, "action_chunk": 57}) == 30  # GE-Base slow
    assert ge_fps({"chunk": 25}) == 30  # no action_chunk: GE's default


def test_ge_base_fast_config_runs_at_5_fps(simulated, tmp_path, monkeypatch):
    record = tmp_path / "calls.jsonl"
    repo = write_checkout(tmp_path / "ge", record, CHUNK, SIZE, gesim=False, base_action_chunk=6 * CHUNK)
    monkeypatch.chdir(tmp_path)
    model = loaded(GEBaseModel, repo)
    assert model.fps == 5.0 and model.capabilities_now().fps == 5.0
    request = build_request(GroundTruth(simulated).episode("1", "0"), "1", 7, model)
    result = model.generate(request)
    # 12 frames at 10 fps span 1.1 s: 7 frames at 5 fps, one window of 1 + 9
    assert result.info["fps"] == 5.0 and result.info["chunks"] == 1
    assert len(result.frames["head"]) == 7  # the frames asked for: the first 7 of GE's 1 + 9
    assert calls(record, "infer_base")[0]["action_chunk"] == 54
    assert loaded(GEBaseModel, repo, fps=10).fps == 10.0  # the option overrides the config


def test_same_seed_same_pixels(simulated, checkout):
    repo, _ = checkout
    episode = GroundTruth(simulated).episode("1", "0")
    for cls in (GEBaseModel, GESimModel):
        model = loaded(cls, repo)
        first, again, other = (model.generate(build_request(episode, "1", s, model)) for s in (7, 7, 8))
        for view in VIEWS:
            np.testing.assert_array_equal(first.frames[view], again.frames[view])
        assert any(not np.array_equal(first.frames[v], other.frames[v]) for v in VIEWS)


def test_ge_sim_calls_infer_as_infer_gesim_does(simulated, checkout):
    repo, record = checkout
    model = loaded(GESimModel, repo)
    episode = GroundTruth(simulated).episode("1", "0")
    request = build_request(episode, "1", 7, model)
    assert request.instruction == ""  # GE-Sim is not conditioned on text
    result = model.generate(request)
    assert {v: f.shape for v, f in result.frames.items()} == {v: (34, *SIZE, 3) for v in VIEWS}
    first = calls(record, "infer_sim")[0]
    assert first["video"]["shape"] == [3, 4, 3, *SIZE]  # (views, frames, 3, H, W)
    assert first["cond_to_concat"]["shape"] == [3, 9, 4 + CHUNK, *SIZE]  # pose (3) + ray (6) maps
    assert first["num_frames"] == CHUNK and first["n_prev"] == 4 and first["n_view"] == 3
    assert first["output_type"] == "pt" and first["postprocess_video"] is False
    assert first["merge_view_into_width"] is False and first["guidance_scale"] == 1.0
    assert first["generator"] == "generator" and first["num_inference_steps"] == 3
    assert first["prompt"] == [GE_SIM_PROMPT]
    assert (first["height"], first["width"]) == SIZE
    # The first new frame follows the current frame: frame 0 of the result is the memory input
    # itself, frame 1 the pipeline's first frame (the stand-in's ramp starts near -1: dark).
    assert result.frames["head"][1].mean() < 10 and result.frames["head"][0].mean() > 10


def test_ge_sim_conditioning_uses_the_checkouts_renderers(simulated, checkout):
    repo, record = checkout
    model = loaded(GESimModel, repo, fps=10.0)  # the dataset's rate: rows are dataset frames
    episode = GroundTruth(simulated).episode("1", "0")
    model.generate(build_request(episode, "1", 7, model))
    traj, rays = calls(record, "traj_maps")[0], calls(record, "ray_maps")[0]
    assert traj["radius"] == "simple_radius_gen_func" and traj["sample_size"] == list(SIZE)
    poses = np.array(traj["pose"])
    assert poses.shape == (4 + CHUNK, 16)
    # rows 0-3: the memory frames (one observation: frame 0); row 4 + k: dataset frame 1 + k
    sidecar = episode.sidecar
    expected = shift_along_tool_z(euler14_to_quat16(sidecar.actions[[0, 1, 5]], (120.0, 35.0)), -0.23)
    for row, src in ((0, 0), (3, 0), (4, 1), (8, 2)):
        np.testing.assert_allclose(
            poses[row, [0, 1, 2, 7, 8, 9, 10, 15]], expected[src, [0, 1, 2, 7, 8, 9, 10, 15]], atol=1e-5
        )
    # the poses are the flange's: 0.23 m behind the sample's grasp point along tool z
    grasp = pose_matrix(sidecar.actions[0], 0)
    np.testing.assert_allclose(poses[0, 0:3], grasp[:3, 3] - 0.23 * grasp[:3, 2], atol=1e-5)
    # cameras: c2w per view and row, w2c its inverse; intrinsics scaled as GE's load_cam_infos
    c2w = np.array(traj["c2w"])
    for index, view in enumerate(VIEWS):
        np.testing.assert_allclose(c2w[index, 0], sidecar.extrinsics[view][0], atol=1e-5)
        np.testing.assert_allclose(c2w[index, 4], sidecar.extrinsics[view][1], atol=1e-5)
        k = ge_intrinsics(sidecar.intrinsics[view], (H, W), SIZE)
        np.testing.assert_allclose(np.array(traj["intrinsic"][index]), k, atol=1e-4)
    np.testing.assert_allclose(np.array(traj["w2c"])[0, 0], np.linalg.inv(c2w[0, 0]), atol=1e-4)
    assert np.array(rays["intrinsic"]).shape == (3 * (4 + CHUNK), 3, 3) and (rays["H"], rays["W"]) == SIZE
    # the maps reach the pipeline as (views, 9, T): pose maps * 2 - 1 first, then origin and direction
    cond = np.array(calls(record, "infer_sim")[0]["cond_means"])  # (views, 9, T)
    np.testing.assert_allclose(cond[0, 0], np.clip(poses[:, 7] / 120, 0, 1) * 2 - 1, atol=1e-5)
    np.testing.assert_allclose(cond[1, 3:6, 0], c2w[1, 0, :3, 3], atol=1e-5)


def test_ge_intrinsics_scale_as_ge_does():
    k = np.array([[100.0, 0, 79.5], [0, 90.0, 59.5], [0, 0, 1]])
    # 160x120 -> 48x32: x by 0.3, y by 0.2667, the principal point scaled with them (no half-pixel shift)
    np.testing.assert_allclose(
        ge_intrinsics(k, (120, 160), (32, 48)), [[30.0, 0, 23.85], [0, 24.0, 15.8667], [0, 0, 1]], atol=1e-4
    )


def test_gripper_and_tool_offset_conventions(simulated, checkout):
    repo, record = checkout
    model = loaded(GESimModel, repo, fps=10.0)
    assert model.gripper_range == (120.0, 35.0)  # AgiBot's raw effector position: high = closed
    request = build_request(GroundTruth(simulated).episode("1", "0"), "1", 7, model)
    actions = request.actions.copy()
    actions[:, 6], actions[:, 13] = 1.0, 0.0  # left fully open, right fully closed
    model.generate(replace(request, actions=actions))
    poses = np.array(calls(record, "traj_maps")[0]["pose"])
    assert np.allclose(poses[:, 7], 35.0) and np.allclose(poses[:, 15], 120.0)
    # an AgiBot G1 episode records flange poses (tool offset 0.23): passed through unchanged
    before = len(calls(record, "traj_maps"))
    model.generate(replace(request, actions=actions, embodiment="agibot-g1"))
    agibot = np.array(calls(record, "traj_maps")[before]["pose"])
    np.testing.assert_allclose(agibot[0, 0:3], actions[0, 0:3], atol=1e-6)
    # the option wins over the embodiment: 0.23 - 0.23 = no shift either
    before = len(calls(record, "traj_maps"))
    loaded(GESimModel, repo, fps=10.0, tool_offset=0.23).generate(replace(request, actions=actions))
    np.testing.assert_allclose(
        np.array(calls(record, "traj_maps")[before]["pose"])[0, 0:3], actions[0, 0:3], atol=1e-6
    )


def test_shift_along_tool_z_hand_worked():
    row = np.zeros(16)
    row[3:7] = Rotation.from_euler("x", 90, degrees=True).as_quat()  # tool z -> base -y
    row[11:15] = [0, 0, 0, 1]
    row[8:11] = [1.0, 2.0, 3.0]
    shifted = shift_along_tool_z(row[None], -0.23)[0]
    np.testing.assert_allclose(shifted[0:3], [0, 0.23, 0], atol=1e-12)
    np.testing.assert_allclose(shifted[8:11], [1.0, 2.0, 2.77], atol=1e-12)
    assert row[0] == 0 and row[10] == 3.0  # the input is not modified


def test_ge_sim_propagates_a_wrist_camera_known_only_at_frame_0(simulated, checkout):
    repo, record = checkout
    model = loaded(GESimModel, repo, fps=10.0)
    episode = GroundTruth(simulated).episode("1", "0")
    request = build_request(episode, "1", 7, model)
    request.extrinsics["hand_left"] = request.extrinsics["hand_left"][:1]
    model.generate(request)
    c2w = np.array(calls(record, "traj_maps")[0]["c2w"])[1]
    actions = episode.sidecar.actions
    for t in (1, 5):
        hand_t, hand_0 = pose_matrix(actions[t], 0), pose_matrix(actions[0], 0)
        np.testing.assert_allclose(
            c2w[4 + t - 1],
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
        request, actions=euler14_to_quat16(request.actions, model.gripper_range), action_space="eef16-quat"
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
        views=list(VIEWS),
        actions=np.zeros((4, 14)),
        intrinsics={v: np.eye(3) for v in VIEWS},
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


def test_checkout_errors_name_the_file_or_option(tmp_path, monkeypatch):
    record = tmp_path / "calls.jsonl"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="needs --model-option repo=DIR"):
        GEBaseModel()
    with pytest.raises(ConfigError, match="is not a folder"):
        GEBaseModel(repo=str(tmp_path / "missing")).check_available()
    only_sim = write_checkout(tmp_path / "only-sim", record, base=False)
    with pytest.raises(ConfigError, match="not a Genie-Envisioner checkout with video_gen_examples/infer.py"):
        GEBaseModel(repo=str(only_sim)).check_available()
    repo = write_checkout(tmp_path / "ge", record)
    config = repo / "configs" / "ltx_model" / "video_model_infer_slow.yaml"
    text = config.read_text()
    # a class file the config names is missing
    config.write_text(text.replace("models/pipeline/custom_pipeline.py", "models/pipeline/gone.py"))
    with pytest.raises(
        ConfigError, match=r"sets pipeline_class_path: models/pipeline/gone.py, and .*gone.py does not exist"
    ):
        loaded(GEBaseModel, repo)
    config.write_text(text)
    # the backbone folders and the checkpoint
    with pytest.raises(ConfigError, match="option pretrained=.* does not exist"):
        loaded(GEBaseModel, repo, pretrained=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ConfigError, match=r"empty/tokenizer is not a folder; pass --model-option pretrained=DIR"
    ):
        loaded(GEBaseModel, repo, pretrained=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="option checkpoint=.* does not exist"):
        loaded(GEBaseModel, repo, checkpoint=str(tmp_path / "nope.safetensors"))
    config.write_text(
        text.replace(str(repo / "standin_weights.safetensors"), "PATH_TO_CHECKPOINT_SAFETENSOR")
    )
    with pytest.raises(
        ConfigError,
        match="checkpoint PATH_TO_CHECKPOINT_SAFETENSOR .*does not exist; pass --model-option checkpoint=FILE",
    ):
        loaded(GEBaseModel, repo)
    config.write_text(text)
    # GE's own failures inside prepare_model become a ConfigError naming the config
    config.write_text(text.replace("width: 2", "width: 2\n    depth: 3"))
    with pytest.raises(
        ConfigError, match=r"GE's prepare_model failed on config .*video_model_infer_slow.yaml.*TypeError"
    ):
        loaded(GEBaseModel, repo)
    # a checkpoint that does not fit the config (GE's loader would load it non-strictly)
    config.write_text(text.replace("width: 2", "width: 3"))
    with pytest.raises(
        ConfigError,
        match=r"does not match diffusion_model.config .*proj.weight \[2, 2\] in the checkpoint, \[3, 3\] in the model",
    ):
        loaded(GEBaseModel, repo)
    assert loaded(GEBaseModel, repo, check_checkpoint=False).pipe is not None
    config.write_text(text)
    # the entry script's imports
    (repo / "video_gen_examples" / "infer.py").write_text("import ge_dependency_that_is_missing\n")
    with pytest.raises(ConfigError, match=r"importing .* failed \(ModuleNotFoundError.*ewmbench\[ge\]"):
        loaded(GEBaseModel, repo)
    (repo / "video_gen_examples" / "infer.py").write_text("def load_config(path):\n    return None\n")
    with pytest.raises(ConfigError, match="has no prepare_model"):
        loaded(GEBaseModel, repo)
    with pytest.raises(ConfigError, match="gripper_closed and gripper_open must differ"):
        GESimModel(repo=str(repo), gripper_closed=1, gripper_open=1)


def test_checkpoint_mismatch_lists_missing_and_reshaped_tensors():
    model = {"a": (2, 2), "b": (3,), "c": (1,)}
    checkpoint = {"a": (2, 2), "b": (4,), "extra": (5,)}
    assert checkpoint_mismatch(model, checkpoint) == [
        "c missing",
        "b [4] in the checkpoint, [3] in the model",
    ]
    assert checkpoint_mismatch(model, {**checkpoint, "b": (3,), "c": (1,)}) == []


def test_nan_frames_and_wrong_shapes_are_refused(simulated, checkout):
    import torch

    repo, _ = checkout
    model = loaded(GEBaseModel, repo)
    request = build_request(GroundTruth(simulated).episode("1", "0"), "1", 7, model)
    real_infer = model.pipe.infer

    def nan_infer(**given):
        (preds,) = real_infer(**given)
        preds["video"][:, :, -1] = torch.nan
        return (preds,)

    model.pipe.infer = nan_infer
    with pytest.raises(
        ConfigError, match="returned NaN or infinite frames for 1/0 .*standin_weights.safetensors"
    ):
        model.generate(request)
    model.pipe.infer = real_infer
    model.chunk = CHUNK + 1  # the config now disagrees with what the pipeline returns
    with pytest.raises(ConfigError, match="returned new frames of shape"):
        model.generate(request)


def test_an_unknown_keyword_fails_against_the_standin(checkout):
    """The stand-in mirrors GE's signatures without **kwargs: what GE would drop silently fails here."""
    repo, _ = checkout
    model = loaded(GESimModel, repo)
    with pytest.raises(TypeError, match="unexpected keyword argument 'actions'"):
        model.pipe.infer(actions=None)


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
    assert len(result.frames["head"]) == CHUNK + 1 and len(calls(record, "infer_sim")) == 1
    poses = np.array(calls(record, "traj_maps")[0]["pose"])
    expected = shift_along_tool_z(euler14_to_quat16(episode.sidecar.actions[[1, 3]], (120.0, 35.0)), -0.23)
    np.testing.assert_allclose(poses[1, :3], expected[0, :3], atol=1e-5)  # memory row 1: episode frame 1
    np.testing.assert_allclose(poses[3, :3], expected[1, :3], atol=1e-5)  # memory row 3: the current frame 3


def test_weights_registry_and_status_name_the_ge_checkpoints():
    from ewmbench.perception.weights import spec

    assert spec("ge-base-fast").filename == "GE_base_fast_v0.1.safetensors"
    assert spec("ge-base-fast").repo == "agibot-world/Genie-Envisioner"
    assert spec("ge-sim-cosmos").filename == "ge_sim_cosmos_v0.1.safetensors"
    assert "modelscope.cn/models/agibot_world/Genie-Envisioner" in spec("ge-sim-cosmos").url
    assert spec("ltx-video-components").repo == "Lightricks/LTX-Video"
    assert "ge-sim" in spec("cosmos-predict2-2b-video2world").used_by
    for name in ("ge-base-slow", "ge-base-fast", "ltx-video-components", "ge-sim-cosmos"):
        assert spec(name).sha256 is None and "sha256 unknown" in spec(name).description
    for cls in (GEBaseModel, GESimModel):
        assert "real GE code" in cls.status and "tiny random weights" in cls.status
