"""A stand-in for a user's forward kinematics (``fk=tests.openpi_toy_kinematics:fk``) in the openpi tests.

Not a robot: left hand xyz = HOME + 0.01 x joints 0-2, right hand xyz = HOME + 0.01 x joints
9-11 (where the vector has them), orientations held at HOME. Enough to check that joint-space
replies reach the loop as poses, through a function the user names.
"""

from __future__ import annotations

import numpy as np

HOME = np.array([0.47, 0.3, 0.36, np.pi, 0.0, 0.0, 1.0, 0.47, -0.3, 0.36, np.pi, 0.0, 0.0, 1.0])


def fk(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    poses = np.tile(HOME, (len(joints), 1))
    poses[:, 0:3] += 0.01 * joints[:, 0:3]
    if joints.shape[1] >= 12:
        poses[:, 7:10] += 0.01 * joints[:, 9:12]
    return poses
