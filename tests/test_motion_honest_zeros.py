"""A generated video in which the detector finds no gripper scores 0, and the trial says why."""

from __future__ import annotations

import numpy as np
import pytest

from ewmbench.cli.common import print_result, undetected_gripper_notes
from ewmbench.metrics import GRIPPER_NOT_DETECTED, GripperNotDetectedWarning, trajectory_scores
from ewmbench.run import RunConfig, evaluate
from tests.bad_input.tools import write_generated
from tests.helpers.datasets import make_ground_truth, moving_square_frames


def _track(frames: int = 6) -> np.ndarray:
    line = np.stack([np.linspace(0.1, 0.9, frames), np.linspace(0.2, 0.6, frames)], axis=1)
    return np.stack([line, line[::-1] * 0.5], axis=1).astype(np.float32)  # (T, 2, 2)


@pytest.mark.parametrize("protocol", ["ewmbench-v1", "ewmbench-v2"])
def test_lost_gripper_scores_zero_with_a_warning(protocol):
    gt = _track()
    nothing = np.full_like(gt, -1.0)  # random frames: no detection at all
    with pytest.warns(GripperNotDetectedWarning, match="left gripper is missing in 6 of 6 frames"):
        scores = trajectory_scores(nothing, gt, protocol)
    assert scores == {"hsd": 0.0, "ndtw": 0.0, "dyn": 0.0}
    # 5 of 6 frames missing is 83% > 80%: still lost; 4 of 6 (67%) is filled and scored
    five = gt.copy()
    five[1:, 0] = -1.0
    with pytest.warns(GripperNotDetectedWarning, match="5 of 6 frames"):
        assert trajectory_scores(five, gt, protocol)["hsd"] == 0.0


def test_end_to_end_the_note_and_the_table_mark(tmp_path, capsys):
    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=6)
    generated = tmp_path / "mine_dataset"
    write_generated(generated, "1", "10", "1", moving_square_frames(6, seed=1))
    for folder, values in ((gt / "1" / "10", _track()), (generated / "1" / "10" / "1", -np.ones((6, 2, 2)))):
        (folder / "traj").mkdir()
        np.save(folder / "traj" / "traj.npy", values.astype(np.float32))
    result = evaluate(
        RunConfig(
            output=tmp_path / "out",
            gt=gt,
            generated=generated,
            metrics=["trajectory_consistency"],
            cache_dir=tmp_path / "cache",
        ),
        show_progress=False,
    )
    assert result.rows["hsd"].iloc[0] == 0.0
    notes = undetected_gripper_notes(result.summary)
    assert [(n["task_id"], n["episode_id"], n["trial_id"]) for n in notes] == [("1", "10", "1")]
    assert any(w.startswith(GRIPPER_NOT_DETECTED) for w in notes[0]["warnings"])
    print_result(result)
    out = capsys.readouterr().out
    assert "hsd †" in out and "1 trial(s) scored 0 because no gripper was detected" in out
