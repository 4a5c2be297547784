"""Any bytes, or any JSON/YAML-shaped data, given to a loader gives a valid object or our own
error type (which the command line prints as one line), never another exception."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ewmbench.data.layout import Sidecar
from ewmbench.data.split import load_split
from ewmbench.data.trajectory import load_traj
from ewmbench.errors import EwmbenchError
from ewmbench.protocols import load_protocol

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=12)
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
loader_inputs = st.binary(max_size=400) | json_like.map(lambda v: json.dumps(v).encode())


def loads_or_refuses(load, path: Path) -> None:
    try:
        load(path)
    except EwmbenchError as exc:
        assert str(exc)  # a message, which the command line prints


@SETTINGS
@given(data=loader_inputs)
def test_sidecar_meta(tmp_path_factory, data):
    episode = tmp_path_factory.mktemp("episode")
    (episode / "ewmbench").mkdir()
    (episode / "ewmbench" / "meta.json").write_bytes(data)
    loads_or_refuses(Sidecar.load, episode)


@SETTINGS
@given(
    meta=st.dictionaries(
        st.sampled_from(["fps", "views", "substeps", "embodiment", "num_frames", "x"]), json_like, max_size=5
    )
)
def test_sidecar_meta_with_the_right_format_and_any_values(tmp_path_factory, meta):
    episode = tmp_path_factory.mktemp("episode")
    (episode / "ewmbench").mkdir()
    (episode / "ewmbench" / "meta.json").write_text(json.dumps({"format": "ewmbench-sidecar/1", **meta}))
    loads_or_refuses(Sidecar.load, episode)


@SETTINGS
@given(data=st.binary(max_size=600))
def test_sidecar_arrays(tmp_path_factory, data):
    episode = tmp_path_factory.mktemp("episode")
    (episode / "ewmbench").mkdir()
    (episode / "ewmbench" / "meta.json").write_text('{"format": "ewmbench-sidecar/1"}')
    (episode / "ewmbench" / "arrays.npz").write_bytes(data)
    loads_or_refuses(Sidecar.load, episode)


@SETTINGS
@given(
    shape=st.lists(st.integers(0, 5), max_size=4),
    dtype=st.sampled_from(["f4", "f8", "i2", "u1", "U3", "b1", "c8"]),
    name=st.sampled_from(
        ["eef_pose", "actions", "joint_positions", "intrinsics/head", "extrinsics/head", "other"]
    ),
)
def test_sidecar_arrays_of_any_shape_and_type(tmp_path_factory, shape, dtype, name):
    episode = tmp_path_factory.mktemp("episode")
    (episode / "ewmbench").mkdir()
    (episode / "ewmbench" / "meta.json").write_text('{"format": "ewmbench-sidecar/1"}')
    np.savez(episode / "ewmbench" / "arrays.npz", **{name: np.zeros(shape, dtype=dtype)})
    loads_or_refuses(Sidecar.load, episode)


@SETTINGS
@given(data=loader_inputs | json_like.map(lambda v: yaml.safe_dump(v).encode()))
def test_protocol_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("protocol") / "p.yaml"
    path.write_bytes(data)
    load_protocol.cache_clear()
    loads_or_refuses(load_protocol, path.as_posix())


@SETTINGS
@given(
    metrics=st.dictionaries(
        st.sampled_from(["psnr", "ssim", "trajectory_consistency", "mine"]),
        st.dictionaries(
            st.sampled_from(["data_range", "frame_matching", "win_size", "k1", "dyn", "cap"]),
            json_like,
            max_size=4,
        ),
        max_size=3,
    ),
    extra=st.dictionaries(
        st.sampled_from(["decimals", "aggregation", "description", "official_table"]), json_like, max_size=3
    ),
)
def test_protocol_of_the_right_shape_with_any_values(tmp_path_factory, metrics, extra):
    path = tmp_path_factory.mktemp("protocol") / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "version": 1, "metrics": metrics, **extra}))
    load_protocol.cache_clear()
    loads_or_refuses(load_protocol, path.as_posix())


@SETTINGS
@given(
    data=loader_inputs
    | json_like.map(lambda v: json.dumps({"format": "ewmbench-split/1", "tasks": v}).encode())
)
def test_split_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("split") / "split.json"
    path.write_bytes(data)
    loads_or_refuses(load_split, path)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_traj_npy_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("traj") / "traj.npy"
    path.write_bytes(data)
    loads_or_refuses(load_traj, path)


@SETTINGS
@given(
    shape=st.lists(st.integers(0, 4), max_size=4),
    dtype=st.sampled_from(["f4", "f8", "i4", "U2", "b1", "c16"]),
    fill=st.sampled_from([0.5, -1.0, np.nan, np.inf, 2.0]),
)
def test_traj_npy_of_any_shape(tmp_path_factory, shape, dtype, fill):
    buffer = io.BytesIO()
    with np.errstate(invalid="ignore"):  # NaN cast to an integer type is part of the input space
        array = np.full(shape, fill).astype(dtype) if dtype != "U2" else np.full(shape, "a", dtype=dtype)
    np.save(buffer, array)
    path = tmp_path_factory.mktemp("traj") / "traj.npy"
    path.write_bytes(buffer.getvalue())
    loads_or_refuses(load_traj, path)
