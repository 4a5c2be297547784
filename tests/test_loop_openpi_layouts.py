"""openpi request layouts as data: each shipped layout's keys, the conversions (hand-worked), the schema."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ewmbench.errors import ConfigError
from ewmbench.loop.openpi import OpenPIPolicy
from ewmbench.loop.openpi_layout import build_request, decode_actions, load_layout, shipped_layouts
from ewmbench.loop.policies import PolicyError
from tests.openpi_toy_kinematics import fk

FRAMES = {
    v: np.full((6, 8, 3), 10 * (i + 1), dtype=np.uint8)
    for i, v in enumerate(("head", "hand_left", "hand_right"))
}
# left: xyz (0.1, 0.2, 0.3), yaw 0.1, openness 0.5; right: xyz (0.4, -0.2, 0.3), no rotation, open
STATE = np.array([0.1, 0.2, 0.3, 0.0, 0.0, 0.1, 0.5, 0.4, -0.2, 0.3, 0.0, 0.0, 0.0, 1.0])
JOINTS = np.arange(18, dtype=np.float64)


def request(name: str, step: int = 5) -> dict:
    layout = load_layout(name)
    return build_request(
        layout,
        FRAMES,
        STATE,
        JOINTS,
        "<p>stack it" if name.startswith("ge-act") else "stack it",
        step,
        layout.views,
    )


def shape_of(value):
    return (
        {k: shape_of(v) for k, v in value.items()}
        if isinstance(value, dict)
        else ((tuple(value.shape), value.dtype.str) if isinstance(value, np.ndarray) else value)
    )


def test_the_shipped_layouts():
    assert shipped_layouts() == ["aloha", "droid", "ge-act", "ge-act-eef14", "gesim-pi05", "libero"]


@pytest.mark.parametrize(
    "name, expected",
    [
        # key names and shapes as the stock clients send them (upstream commits in each layout's source)
        (
            "ge-act",
            {
                "obs": ((3, 6, 8, 3), "|u1"),
                "state": ((16,), "<f4"),
                "prompt": "<p>stack it",
                "execution_step": 5,
            },
        ),
        (
            "ge-act-eef14",
            {
                "obs": ((3, 6, 8, 3), "|u1"),
                "state": ((14,), "<f4"),
                "prompt": "<p>stack it",
                "execution_step": 5,
            },
        ),
        (
            "gesim-pi05",
            {
                "observation.images.head": ((6, 8, 3), "|u1"),
                "observation.images.hand_left": ((6, 8, 3), "|u1"),
                "observation.images.hand_right": ((6, 8, 3), "|u1"),
                "observation.state": ((16,), "<f4"),
                "prompt": "stack it",
            },
        ),
        (
            "droid",
            {
                "observation/exterior_image_1_left": ((6, 8, 3), "|u1"),
                "observation/wrist_image_left": ((6, 8, 3), "|u1"),
                "observation/joint_position": ((7,), "<f4"),
                "observation/gripper_position": ((1,), "<f4"),
                "prompt": "stack it",
            },
        ),
        (
            "libero",
            {
                "observation/image": ((6, 8, 3), "|u1"),
                "observation/wrist_image": ((6, 8, 3), "|u1"),
                "observation/state": ((8,), "<f4"),
                "prompt": "stack it",
            },
        ),
        (
            "aloha",
            {
                "images": {
                    "cam_high": ((3, 6, 8), "|u1"),
                    "cam_left_wrist": ((3, 6, 8), "|u1"),
                    "cam_right_wrist": ((3, 6, 8), "|u1"),
                },
                "state": ((14,), "<f4"),
            },
        ),
    ],
)
def test_requests_carry_the_stock_clients_keys(name, expected):
    assert shape_of(request(name)) == expected


def test_state_vectors_hand_worked():
    ge = request("ge-act")["state"]
    # left quaternion of yaw 0.1: (0, 0, sin 0.05, cos 0.05); gripper 0.5 of 0..120 = 60; right open = 120
    assert np.allclose(ge[:8], [0.1, 0.2, 0.3, 0, 0, np.sin(0.05), np.cos(0.05), 60.0], atol=1e-6)
    assert np.allclose(ge[8:], [0.4, -0.2, 0.3, 0, 0, 0, 1, 120.0], atol=1e-6)
    # GE-Sim 2.0 pi05: [L7 joints, R7 joints, L grip, R grip], grip 0 open .. 1 closed
    pi05 = request("gesim-pi05")["observation.state"]
    assert np.allclose(pi05, [*range(14), 0.5, 0.0])
    # LIBERO: xyz, axis-angle (yaw 0.1 -> (0, 0, 0.1)), two fingers at half of 0.04, mirrored
    assert np.allclose(
        request("libero")["observation/state"], [0.1, 0.2, 0.3, 0, 0, 0.1, 0.02, -0.02], atol=1e-6
    )
    # DROID: joints 0-6, gripper position 0 open .. 1 closed
    droid = request("droid")
    assert (
        np.allclose(droid["observation/joint_position"], range(7))
        and droid["observation/gripper_position"][0] == 0.5
    )
    aloha = request("aloha")
    assert np.allclose(aloha["state"], [0, 1, 2, 3, 4, 5, 0.5, 6, 7, 8, 9, 10, 11, 1.0])
    assert aloha["images"]["cam_left_wrist"][:, 0, 0].tolist() == [20, 20, 20]


def test_libero_deltas_accumulate_from_the_current_pose():
    layout = load_layout("libero")
    reply = [[1.0, 0, 0, 0, 0, 0.2, -1.0], [1.0, 0, 0, 0, 0, 0.2, 1.0]]
    rows, commanded = decode_actions(layout, reply, STATE, None, 10.0, None)
    # x: 0.1 + 0.05, then + 0.05 (scale 0.05 m); yaw: 0.1 + 0.1, then + 0.1 (0.2 x 0.5 rad)
    assert np.allclose(rows[:, 0], [0.15, 0.20]) and np.allclose(rows[:, 5], [0.2, 0.3])
    # gripper command -1 open, +1 closed
    assert rows[:, 6].tolist() == [1.0, 0.0] and commanded is None
    assert np.allclose(rows[:, 7:], STATE[7:])  # the right arm holds


def test_droid_joint_velocities_integrate_over_the_frame_period():
    layout = load_layout("droid")
    joints = np.zeros(18)
    reply = [[1.0, 2.0, 0, 0, 0, 0, 0, 1.0], [1.0, 2.0, 0, 0, 0, 0, 0, 0.0]]
    rows, commanded = decode_actions(layout, reply, STATE, joints, 10.0, fk)
    assert np.allclose(commanded[:, :2], [[0.1, 0.2], [0.2, 0.4]]) and np.allclose(commanded[:, 2:], 0)
    # toy fk: left xyz = HOME + 0.01 x joints 0-2
    assert np.allclose(rows[:, 0:2], [[0.471, 0.302], [0.472, 0.304]])
    assert rows[:, 6].tolist() == [0.0, 1.0]  # gripper position 1 = closed
    with pytest.raises(PolicyError, match="no frame rate"):
        decode_actions(layout, reply, STATE, joints, None, fk)


def test_gesim_reply_reads_in_the_world_model_order():
    layout = load_layout("gesim-pi05")
    row = [*range(7), 1.0, *range(10, 17), 0.0]  # [L7, L grip, R7, R grip]
    rows, commanded = decode_actions(layout, [row], STATE, JOINTS, 30.0, fk)
    assert np.allclose(commanded[0, :14], [*range(7), *range(10, 17)]) and np.allclose(
        commanded[0, 14:], JOINTS[14:]
    )
    assert rows[0, 6] == 0.0 and rows[0, 13] == 1.0  # left closed, right open


def test_ge_act_quaternion_reply_back_to_euler():
    layout = load_layout("ge-act")
    quat = Rotation.from_euler("xyz", [0.1, -0.2, 0.3]).as_quat()
    row = [0.1, 0.2, 0.3, *quat, 30.0, 0.4, 0.5, 0.6, 0, 0, 0, 1, 120.0]
    rows, _ = decode_actions(layout, [row], STATE, None, None, None)
    assert np.allclose(rows[0], [0.1, 0.2, 0.3, 0.1, -0.2, 0.3, 0.25, 0.4, 0.5, 0.6, 0, 0, 0, 1.0])
    with pytest.raises(PolicyError, match=r"expects \(K, 16\)"):
        decode_actions(layout, [row[:14]], STATE, None, None, None)
    with pytest.raises(PolicyError, match="zero quaternion"):
        decode_actions(layout, [[0.0] * 16], STATE, None, None, None)


def test_joint_layouts_need_fk_and_joints(tmp_path):
    with pytest.raises(ConfigError, match="fk=module:function"):
        OpenPIPolicy(layout="aloha")
    with pytest.raises(ConfigError, match="cannot load"):
        OpenPIPolicy(layout="aloha", fk="tests.openpi_toy_kinematics:nothing")
    policy = OpenPIPolicy(layout="aloha", fk="tests.openpi_toy_kinematics:fk")
    assert policy.config()["joint_state"] == "commanded"
    layout = load_layout("aloha")
    with pytest.raises(PolicyError, match="joint_positions"):
        build_request(layout, FRAMES, STATE, None, "x", 0, layout.views)
    with pytest.raises(ConfigError, match="views applies to stacked layouts"):
        OpenPIPolicy(layout="libero", views="head")


def test_a_layout_file_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ndescription: one view, 14-D\nsource: my server\n"
        "images: {keys: {cam: head}}\n"
        "state: {s: [{part: xyz, arm: left}, {part: gripper, arm: left, range: [0, 1]}]}\n"
        "constants: {robot: panda}\n"
        "actions: {parts: [{part: xyz, arm: right}]}\n"
    )
    layout = load_layout(str(path))
    sent = build_request(layout, FRAMES, STATE, None, "go", 0, layout.views)
    assert sorted(sent) == ["cam", "prompt", "robot", "s"] and sent["robot"] == "panda"
    assert np.allclose(sent["s"], [0.1, 0.2, 0.3, 0.5])
    assert OpenPIPolicy(layout=str(path)).config()["layout_file"] == str(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("images: {keys: {cam: head}}\nstat: {}", "stat: unknown key"),
        ("images: {keys: {cam: head}, stack: {key: obs, views: [head]}}", "either keys"),
        ("state: {s: [{part: gripper, arm: left}]}", "needs range"),
        ("actions: {parts: [{part: rpy, arm: left}, {part: quat, arm: left}]}", "more than one rotation"),
        ("state: {s: [{part: xyz}]}", "needs arm"),
        ("state: {s: [{part: joints, index: [3, 3]}]}", "stop > start"),
        ("state: {s: [{part: quat, arm: left, scale: 2}]}", "scale applies"),
        ("state: {s: [{part: xyz, arm: left, range: [0, 1]}]}", "range belongs"),
        ("state: {prompt: [{part: xyz, arm: left}]}", "used twice"),
        ("state: {s: [{part: gripper, arm: left, range: [0, '1']}]}", "valid number"),
    ],
)
def test_bad_layout_files_are_refused_with_the_key(tmp_path, text, message):
    base = {
        "name": "name: bad",
        "description": "description: x",
        "source": "source: x",
        "images": "images: {keys: {cam: head}}",
        "state": "state: {s: [{part: xyz, arm: left}]}",
        "actions": "actions: {parts: [{part: xyz, arm: left}]}",
    }
    for line in text.split("\n"):
        key = line.split(":")[0]
        base.pop(key, None)
    path = tmp_path / "bad.yaml"
    path.write_text("\n".join([*base.values(), text]) + "\n")
    with pytest.raises(ConfigError, match=message) as error:
        load_layout(str(path))
    assert str(path) in str(error.value)


def test_unknown_layout_names_the_shipped_ones():
    with pytest.raises(ConfigError, match="shipped: aloha, droid, ge-act"):
        load_layout("pi0-franka")
    with pytest.raises(ConfigError, match="does not exist"):
        load_layout("missing/layout.yaml")


def test_decoded_angles_stay_continuous_with_the_current_pose():
    """A roll of pi (the sample's hands point down) read back from a quaternion stays pi, not -pi."""
    state = STATE.copy()
    state[3] = np.pi
    layout = load_layout("ge-act")
    sent = build_request(layout, FRAMES, state, None, "x", 0, layout.views)["state"].astype(np.float64)
    rows, _ = decode_actions(layout, [sent, sent], state, None, None, None)
    assert np.allclose(rows, state, atol=1e-5)
    eef14 = load_layout("ge-act-eef14")
    rows, _ = decode_actions(eef14, [state], state, None, None, None)
    assert np.array_equal(rows[0], state)  # 14-D euler travels unchanged
