"""Sidecar (``meta.json``, ``arrays.npz``) and protocol files of the wrong shape: each problem is
reported with its file and key, at load."""

from __future__ import annotations

import json

import numpy as np
import yaml

from tests.bad_input.cases import check, parametrize, registry

SIDECAR, sidecar_case = registry()
PROTOCOL, protocol_case = registry()
V2 = "ewmbench/protocols/ewmbench-v2.yaml"


def info(ws) -> list[str]:
    return ["data", "info", str(ws.gt)]


def edit_meta(ws, **changes):
    meta = json.loads(ws.meta().read_text())
    meta.update(changes)
    ws.meta().write_text(json.dumps(meta))


# ---------------------------------------------------------------- sidecars (data info: exit 1)


@sidecar_case(1, "meta.json", "must be a JSON object", "got a list")
def meta_is_a_list(ws):
    ws.meta().write_text("[1, 2, 3]")
    return info(ws)


@sidecar_case(1, "meta.json", "fps", "valid number")
def fps_is_a_string(ws):
    edit_meta(ws, fps="ten")
    return info(ws)


@sidecar_case(1, "meta.json", "fps", "greater than 0")
def fps_negative(ws):
    edit_meta(ws, fps=-10)
    return info(ws)


@sidecar_case(1, "meta.json", "fps", "finite number")
def fps_nan(ws):
    ws.meta().write_text(ws.meta().read_text().replace('"fps": 10', '"fps": NaN'))
    return info(ws)


@sidecar_case(1, "meta.json", "views", "valid list")
def views_a_number(ws):
    edit_meta(ws, views=3)
    return info(ws)


@sidecar_case(1, "meta.json", "views.1", "should match pattern")
def view_name_with_a_slash(ws):
    edit_meta(ws, views=["head", "../../etc"])
    return info(ws)


@sidecar_case(1, "meta.json", "substeps", "valid list")
def substeps_a_string(ws):
    edit_meta(ws, substeps="reach then push")
    return info(ws)


@sidecar_case(1, "meta.json", "substeps.0", "valid string")
def substep_a_number(ws):
    edit_meta(ws, substeps=[1, 2])
    return info(ws)


@sidecar_case(1, "meta.json", "not UTF-8")
def meta_not_utf8(ws):
    ws.meta().write_bytes(b'{"format": "ewmbench-sidecar/1", "note": "\xff\xfe"}')
    return info(ws)


@sidecar_case(1, "meta.json", "not valid JSON")
def meta_not_json(ws):
    ws.meta().write_text("{format: sidecar")
    return info(ws)


@sidecar_case(1, "meta.json", "not valid JSON")
def meta_nested_too_deep(ws):
    ws.meta().write_text("[" * 100_000 + "]" * 100_000)
    return info(ws)


@sidecar_case(1, "meta.json", "unknown sidecar format None")
def meta_without_format(ws):
    meta = json.loads(ws.meta().read_text())
    del meta["format"]
    ws.meta().write_text(json.dumps(meta))
    return info(ws)


@sidecar_case(1, "meta.json", "unknown sidecar format 'ewmbench-sidecar/9'")
def meta_of_a_future_format(ws):
    edit_meta(ws, format="ewmbench-sidecar/9")
    return info(ws)


@sidecar_case(1, "meta.json", "dangling link")
def meta_a_dangling_link(ws):
    ws.meta().unlink()
    ws.meta().symlink_to(ws.root / "nowhere.json")
    return info(ws)


@sidecar_case(1, "meta.json", "num_frames", "greater than or equal to 1")
def num_frames_zero(ws):
    edit_meta(ws, num_frames=0)
    return info(ws)


@sidecar_case(1, "arrays.npz", "unreadable sidecar arrays")
def arrays_not_a_zip(ws):
    ws.arrays().write_bytes(b"PK\x03\x04 not really a zip")
    return info(ws)


@sidecar_case(1, "arrays.npz", "not a single array")
def arrays_a_single_npy(ws):
    with open(ws.arrays(), "wb") as fh:
        np.save(fh, np.zeros((4, 14)))
    return info(ws)


@sidecar_case(1, "arrays.npz", "eef_pose: must be (T, 14)", "(4, 7)")
def eef_pose_wrong_shape(ws):
    np.savez(ws.arrays(), eef_pose=np.zeros((4, 7)))
    return info(ws)


@sidecar_case(1, "arrays.npz", "eef_pose: contains NaN or inf")
def eef_pose_with_nan(ws):
    pose = np.zeros((4, 14))
    pose[2, 3] = np.nan
    np.savez(ws.arrays(), eef_pose=pose)
    return info(ws)


@sidecar_case(1, "arrays.npz", "eef_poses: unknown array")
def misspelled_array_name(ws):
    np.savez(ws.arrays(), eef_poses=np.zeros((4, 14)))
    return info(ws)


@sidecar_case(1, "arrays.npz", "intrinsics/head: must be (3, 3)")
def intrinsics_wrong_shape(ws):
    np.savez(ws.arrays(), **{"intrinsics/head": np.eye(4)})
    return info(ws)


@sidecar_case(1, "arrays.npz", "extrinsics/head: must be (T, 4, 4)")
def extrinsics_wrong_shape(ws):
    np.savez(ws.arrays(), **{"extrinsics/head": np.eye(4)})
    return info(ws)


@sidecar_case(1, "arrays.npz", "eef_pose: must be numeric", "<U")
def eef_pose_of_strings(ws):
    np.savez(ws.arrays(), eef_pose=np.array([["a"] * 14] * 4))
    return info(ws)


@sidecar_case(1, "arrays.npz", "actions: must be (T, 14) with T >= 1", "(0, 14)")
def actions_empty(ws):
    np.savez(ws.arrays(), actions=np.zeros((0, 14)))
    return info(ws)


@sidecar_case(1, "arrays.npz", "unreadable sidecar arrays")
def arrays_holding_an_object_array(ws):
    np.savez(ws.arrays(), eef_pose=np.array([{"a": 1}] * 4, dtype=object))
    return info(ws)


@sidecar_case(1, "meta.json", "fps", nothing_written=False)
def evaluate_reports_a_bad_sidecar_and_scores_the_rest(ws):
    edit_meta(ws, fps="ten")
    return ws.evaluate()


@parametrize(SIDECAR)
def test_sidecar_case(case, ws):
    check(case, ws)


# ---------------------------------------------------------------- protocols (dry run: exit 2)


def with_protocol(ws, text: str | bytes, name: str = "p.yaml") -> list[str]:
    path = ws.root / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return ws.evaluate("--protocol", str(path), "--dry-run", metrics=None)


def v2_edited(ws, edit) -> list[str]:
    from pathlib import Path

    import ewmbench

    data = yaml.safe_load((Path(ewmbench.__file__).parent.parent / V2).read_text())
    edit(data)
    return with_protocol(ws, yaml.safe_dump(data))


@protocol_case(2, "p.yaml", "must be a mapping", "int 42")
def protocol_a_bare_number(ws):
    return with_protocol(ws, "42\n")


@protocol_case(2, "p.yaml", "not a text file")
def protocol_of_random_bytes(ws):
    return with_protocol(ws, bytes(range(256)) * 4)


@protocol_case(2, "p.yaml", "not valid YAML")
def protocol_not_yaml(ws):
    return with_protocol(ws, "name: [unclosed\nversion: {\n")


@protocol_case(2, "p.yaml", "must be a mapping", "empty file")
def protocol_empty(ws):
    return with_protocol(ws, "")


@protocol_case(2, "p.yaml", "decimals.hsd", "valid integer", "'three'")
def decimals_three(ws):
    return v2_edited(ws, lambda d: d.update(decimals={"hsd": "three"}))


@protocol_case(2, "p.yaml", "decimals", "valid dictionary", "3")
def decimals_one_number_for_all(ws):
    return v2_edited(ws, lambda d: d.update(decimals=3))


@protocol_case(2, "p.yaml", "output_format", "'official' or 'ewmbench'")
def unknown_output_format(ws):
    return v2_edited(ws, lambda d: d.update(output_format="csv"))


@protocol_case(2, "p.yaml", "metrics.trajectory_consistency.cap", "finite number")
def nan_constant(ws):
    return v2_edited(ws, lambda d: d["metrics"]["trajectory_consistency"].update(cap=float("nan")))


@protocol_case(2, "p.yaml", "metrics.trajectory_consistency.hsd_epsilon", "greater than or equal to 0")
def negative_constant(ws):
    return v2_edited(ws, lambda d: d["metrics"]["trajectory_consistency"].update(hsd_epsilon=-1.0))


@protocol_case(2, "p.yaml", "aggregation.trial_selection", "'all' or 'best_of_n'")
def unknown_trial_selection(ws):
    return v2_edited(ws, lambda d: d["aggregation"].update(trial_selection="best"))


@protocol_case(2, "p.yaml", "metrics:", "valid dictionary")
def metrics_not_a_mapping(ws):
    return with_protocol(ws, "name: p\nversion: 1\nmetrics: [psnr, ssim]\n")


@protocol_case(2, "p.yaml", "metrics.psnr.max_dbb", "unknown key")
def misspelled_max_db(ws):
    return v2_edited(ws, lambda d: d["metrics"]["psnr"].update(max_dbb=100))


@protocol_case(2, "p.yaml", "decimal:", "unknown key")
def misspelled_top_level_key(ws):
    return v2_edited(ws, lambda d: d.update(decimal=3))


@protocol_case(2, "p.yaml", "name: required key is missing")
def protocol_without_name(ws):
    return v2_edited(ws, lambda d: d.pop("name"))


@protocol_case(2, "p.yaml", "selection_column: required when trial_selection is best_of_n")
def best_of_n_without_column(ws):
    return v2_edited(ws, lambda d: d["aggregation"].pop("selection_column"))


@protocol_case(2, "p.yaml", "metrics.psnr.data_range", "valid number", "'255'")
def data_range_as_text(ws):
    return v2_edited(ws, lambda d: d["metrics"]["psnr"].update(data_range="255"))


@protocol_case(2, "p.yaml", "metrics.ssim.win_size", "greater than or equal to 3")
def window_too_small(ws):
    return v2_edited(ws, lambda d: d["metrics"]["ssim"].update(win_size=2))


@protocol_case(2, "p.yaml", "metrics.trajectory_consistency.tracking.conf", "less than or equal to 1")
def tracking_confidence_above_one(ws):
    return v2_edited(ws, lambda d: d["metrics"]["trajectory_consistency"]["tracking"].update(conf=1.5))


@protocol_case(2, "p.yaml", "metrics.psnr.resize", "'bicubic'")
def resize_the_code_does_not_do(ws):
    return v2_edited(ws, lambda d: d["metrics"]["psnr"].update(resize="bilinear"))


@protocol_case(2, "p.yaml", "metrics.semantics.frame_size", "at least 2 items")
def frame_size_of_one_number(ws):
    return v2_edited(ws, lambda d: d["metrics"]["semantics"].update(frame_size=[480]))


@protocol_case(2, "3 problems", "decimals", "max_dbb", "win_size")
def every_problem_reported_at_once(ws):
    def edit(d):
        d.update(decimals=-1)
        d["metrics"]["psnr"]["max_dbb"] = 1
        d["metrics"]["ssim"]["win_size"] = "seven"

    return v2_edited(ws, edit)


@protocol_case(2, "is not a file")
def protocol_path_a_folder(ws):
    folder = ws.root / "folder.yaml"
    folder.mkdir()
    return ws.evaluate("--protocol", str(folder), "--dry-run")


@protocol_case(2, "metrics.fvd.clips", "'all' or 'first'")
def unknown_clip_rule(ws):
    return v2_edited(ws, lambda d: d["metrics"]["fvd"].update(clips="some"))


@protocol_case(2, "metrics.scene_consistency.gpu_dtype", "float16")
def unknown_dtype(ws):
    return v2_edited(ws, lambda d: d["metrics"]["scene_consistency"].update(gpu_dtype="float8"))


@protocol_case(2, "metrics.diversity.mean", "at most 3 items")
def normalisation_mean_of_four(ws):
    return v2_edited(ws, lambda d: d["metrics"]["diversity"].update(mean=[0.5, 0.5, 0.5, 0.5]))


@protocol_case(2, "aggregation.overall", "mean_of_rows")
def unknown_overall_rule(ws):
    return v2_edited(ws, lambda d: d["aggregation"].update(overall="median"))


@protocol_case(0, "all checks passed", nothing_written=True)
def the_shipped_v2_file_copied_is_valid(ws):
    return v2_edited(ws, lambda d: None)


@parametrize(PROTOCOL)
def test_protocol_case(case, ws):
    check(case, ws)
