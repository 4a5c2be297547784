"""Datasets that give nothing to score, or not what the user meant, for ``ewmbench evaluate``."""

from __future__ import annotations

import json
import shutil

import numpy as np

from tests.bad_input.cases import check, parametrize, registry
from tests.bad_input.tools import FRAMES, write_generated
from tests.helpers.datasets import moving_square_frames

CASES, case = registry()


@case(2, "no episodes found")
def empty_gt_folder(ws):
    shutil.rmtree(ws.gt)
    ws.gt.mkdir()
    return ws.evaluate()


@case(2, "--generated", "no trials found")
def empty_generated_folder(ws):
    shutil.rmtree(ws.gen)
    ws.gen.mkdir()
    return ws.evaluate()


@case(2, "--gt and --generated are the same folder")
def gt_and_generated_the_same_folder(ws):
    return [
        "evaluate",
        "--gt",
        str(ws.gt),
        "--generated",
        str(ws.gt),
        "--output",
        str(ws.out),
        "--metrics",
        "psnr",
    ]


@case(2, "no generated episode has ground truth", "1/77")
def no_episode_in_common(ws):
    shutil.rmtree(ws.gen)
    write_generated(ws.gen, "1", "77", "1", moving_square_frames(FRAMES))
    return ws.evaluate()


@case(2, "--metrics", "no metric named")
def metrics_option_names_nothing(ws):
    return ws.evaluate(metrics=",")


@case(2, "--metrics", "unknown metric 'ssmi'", "did you mean 'ssim'")
def misspelled_metric(ws):
    return ws.evaluate(metrics="psnr,ssmi")


@case(2, "p.yaml", "metrics.psnr: no settings")
def protocol_naming_a_metric_without_settings(ws):
    protocol = ws.root / "p.yaml"
    protocol.write_text("name: p\nversion: 1\nmetrics:\n  psnr: {}\n")
    return ws.evaluate("--protocol", str(protocol), metrics=None)


@case(2, "p.yaml", "unknown metric(s) psnrr")
def protocol_naming_an_unknown_metric(ws):
    protocol = ws.root / "p.yaml"
    protocol.write_text("name: p\nversion: 1\nmetrics:\n  psnrr: {}\n")
    return ws.evaluate("--protocol", str(protocol), metrics=None)


@case(2, "unknown protocol 'ewmbench-v9'")
def unknown_protocol_name(ws):
    return ws.evaluate("--protocol", "ewmbench-v9")


@case(2, "missing.yaml", "does not exist")
def protocol_file_missing(ws):
    return ws.evaluate("--protocol", str(ws.root / "missing.yaml"))


@case(2, "nowhere", "does not exist")
def gt_folder_missing(ws):
    return ["evaluate", "--gt", str(ws.root / "nowhere"), "--generated", str(ws.gen), "--output", str(ws.out)]


@case(2, "--generated: no such folder")
def generated_folder_missing(ws):
    return [
        "evaluate",
        "--gt",
        str(ws.gt),
        "--generated",
        str(ws.root / "nowhere_dataset"),
        "--output",
        str(ws.out),
    ]


@case(2, "--generated: is a file")
def generated_is_a_file(ws):
    path = ws.root / "file_dataset"
    path.write_text("x")
    return ["evaluate", "--gt", str(ws.gt), "--generated", str(path), "--output", str(ws.out)]


@case(2, "is a file, not a dataset folder")
def gt_is_a_file(ws):
    path = ws.root / "gt.txt"
    path.write_text("x")
    return ["evaluate", "--gt", str(path), "--generated", str(ws.gen), "--output", str(ws.out)]


@case(2, "looks like a run folder", "mine_dataset")
def generated_points_at_a_run_folder(ws):
    run_folder = ws.root / "myrun"
    run_folder.mkdir()
    shutil.move(str(ws.gen), run_folder / "mine_dataset")
    ws.gen = run_folder
    return ws.evaluate()


@case(2, "the ground-truth layout", "<task>/<episode>/<trial>/video/")
def flat_generated_layout(ws):
    shutil.rmtree(ws.gen)
    for episode in ("10", "11"):
        (ws.gen / "1" / episode).mkdir(parents=True)
        (ws.gen / "1" / episode / "video.mp4").write_bytes(b"\x00" * 64)
    return ws.evaluate()


@case(2, "no episodes found")
def gt_holding_only_files(ws):
    shutil.rmtree(ws.gt)
    ws.gt.mkdir()
    (ws.gt / "readme.txt").write_text("nothing here")
    return ws.evaluate()


@case(
    0,
    "scored 1 of 2 episodes",
    "gt/1/11: ground-truth episode has no generated trials",
    nothing_written=False,
)
def partial_evaluation_says_how_much(ws):
    shutil.rmtree(ws.gen / "1" / "11")
    return ws.evaluate()


@case(1, "nothing was scored", nothing_written=False)
def every_trial_unreadable(ws):
    for episode in ("10", "11"):
        ws.gen_frame(episode=episode).write_bytes(b"not an image")
    return ws.evaluate()


@case(1, "nothing was scored", "scene_consistency", nothing_written=False)
def only_metric_unavailable_here(ws):
    return ws.evaluate(metrics="scene_consistency")


@case(0, "differ from their ground truth in length or size", "2 frames of 64x48", nothing_written=False)
def shorter_generated_video(ws):
    for index in (2, 3):
        ws.gen_frame(index=index).unlink()
    return ws.evaluate()


@case(0, "differ from their ground truth in length or size", "of 32x24", nothing_written=False)
def smaller_generated_video(ws):
    shutil.rmtree(ws.gen / "1" / "10" / "1")
    write_generated(ws.gen, "1", "10", "1", moving_square_frames(FRAMES, height=24, width=32))
    return ws.evaluate()


@case(0, "trajectory_consistency", nothing_written=False)
def column_name_selects_its_metric(ws):
    return ws.evaluate("--dry-run", metrics="hsd,psnr")


@case(0, "all checks passed", "score 2 generated trial(s)", nothing_written=True)
def dry_run_writes_nothing(ws):
    return ws.evaluate("--dry-run")


@case(0, "o[/x]", "scored 2 of 2 episodes", nothing_written=False)
def paths_that_look_like_markup(ws):
    # "[" ending one folder and "x]" starting the next: every printed path holds "[/x]", which rich
    # would take for a closing tag.
    for name in ("gt", "mine_dataset"):
        target = ws.root / "in[" / f"x]{name}"
        target.parent.mkdir(exist_ok=True)
        shutil.move(str(ws.root / name), target)
    ws.gt, ws.gen, ws.out = (
        ws.root / "in[" / "x]gt",
        ws.root / "in[" / "x]mine_dataset",
        ws.root / "o[" / "x]",
    )
    return ws.evaluate()


@case(0, "[bold] task1", nothing_written=False)  # the id as it is, beside its sidecar name
def task_named_like_a_style_tag(ws):
    (ws.gt / "1").rename(ws.gt / "[bold]")
    (ws.gen / "1").rename(ws.gen / "[bold]")
    return ws.evaluate()


@case(0, "scored 2 of 2 episodes", nothing_written=False)
def trial_name_of_251_characters(ws):
    trial = ws.gen / "1" / "10" / "1"
    trial.rename(trial.with_name("t" * 251))
    return ws.evaluate()


@case(1, "is not UTF-8 text", nothing_written=False)
def trial_name_not_utf8(ws):
    import os

    trial = ws.gen / "1" / "10" / "1"
    os.rename(trial, os.path.join(os.fsencode(trial.parent), b"\xff\xfe"))
    return ws.evaluate()


@case(1, "is not UTF-8 text", nothing_written=False)
def episode_name_not_utf8(ws):
    import os

    for root in (ws.gt, ws.gen):
        os.rename(root / "1" / "11", os.path.join(os.fsencode(root / "1"), b"\xe9\xe9"))
    return ws.evaluate()


@case(0, "scored 2 of 2 episodes", nothing_written=False)
def names_with_spaces_and_unicode(ws):
    for root in (ws.gt, ws.gen):
        (root / "1").rename(root / "tâche une")
    return ws.evaluate()


@case(1, "traj.npy", "trajectory must have shape (T, 2, 2)", nothing_written=False)
def malformed_generated_trajectory(ws):
    for episode in ("10", "11"):
        traj = ws.gen / "1" / episode / "1" / "traj" / "traj.npy"
        traj.parent.mkdir()
        np.save(traj, np.zeros((FRAMES, 3)))
        gt_traj = ws.gt / "1" / episode / "traj" / "traj.npy"
        gt_traj.parent.mkdir()
        np.save(gt_traj, np.full((FRAMES, 2, 2), 0.5))
    return ws.evaluate(metrics="trajectory_consistency")


@case(1, "traj.npy", "not a readable .npy array", nothing_written=False)
def trajectory_not_an_array(ws):
    for episode in ("10", "11"):
        for root in (ws.gen / "1" / episode / "1", ws.gt / "1" / episode):
            (root / "traj").mkdir()
            (root / "traj" / "traj.npy").write_bytes(b"\x93NUMPY garbage")
    return ws.evaluate(metrics="trajectory_consistency")


@case(1, "missing video", nothing_written=False)
def one_trial_without_video(ws):
    shutil.rmtree(ws.gen / "1" / "10" / "1" / "video")
    (ws.gen / "1" / "10" / "1" / "notes.txt").write_text("no video")
    return ws.evaluate()


@case(0, "results in", nothing_written=False)
def resume_a_finished_evaluation(ws):
    from tests.bad_input.tools import run_cli

    first = run_cli(ws.evaluate(), ws.inputs())
    assert first.code == 0, first.output
    summary = json.loads((ws.out / "summary.json").read_text())
    assert summary["counts"]["trials_scored"] == 2 and summary["scored"].startswith("2 of 2 episodes")
    return ws.evaluate()


@parametrize(CASES)
def test_dataset_case(case, ws):
    check(case, ws)
