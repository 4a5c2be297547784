"""Small datasets in the source formats the converters read, written from their documentation.

LeRobot v2.1 / v3.0 (meta/info.json, episode parquet, per-camera mp4) and AgiBot World
(task_info JSON, per-camera mp4, proprio_stats.h5, camera parameter JSON). Videos are lossless
(libx264rgb at qp 0), so the frames a converter decodes can be compared exactly with the frames
written here. Every value is a function of (episode, frame, column), so tests can hand-check it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 32, 24


def frame_pixels(
    episode: int, frame: int, camera: int, width: int = WIDTH, height: int = HEIGHT
) -> np.ndarray:
    """A frame whose pixels encode its episode, frame and camera (and vary across the image)."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 0] = (episode * 40 + camera * 7) % 256
    image[..., 1] = (frame * 9) % 256
    image[..., 2] = (np.arange(width)[None, :] * 5 + np.arange(height)[:, None] * 3 + camera * 50) % 256
    return image


def write_lossless_mp4(frames, path: Path, fps: float) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(
        path,
        fps=fps,
        codec="libx264rgb",
        format="FFMPEG",
        macro_block_size=1,
        output_params=["-qp", "0"],
        pixelformat="rgb24",
        ffmpeg_log_level="error",
    ) as writer:
        for frame in frames:
            writer.append_data(frame)


def action_value(episode: int, frame: int, column: int) -> float:
    return episode * 100 + frame + column / 100


def state_value(episode: int, frame: int, column: int) -> float:
    return -(episode * 100 + frame) - column / 1000


def intrinsics_row() -> list[float]:
    return [20.0, 0.0, 15.5, 0.0, 21.0, 11.5, 0.0, 0.0, 1.0]


def extrinsics_row(frame: int) -> list[float]:
    matrix = np.eye(4)
    matrix[:3, 3] = [0.1 * frame, 0.2, 1.5]
    return matrix.reshape(-1).tolist()


LEROBOT_CAMERAS = ("observation.images.top", "observation.images.wrist_left")
LEROBOT_TASKS = ["pick up the cube", "open the drawer"]


def lerobot_episode_columns(episode: int, length: int, task_index: int, start_index: int) -> dict[str, list]:
    return {
        "action": [[action_value(episode, f, c) for c in range(14)] for f in range(length)],
        "observation.state": [[state_value(episode, f, c) for c in range(16)] for f in range(length)],
        "observation.intrinsics.top": [intrinsics_row() for _ in range(length)],
        "observation.extrinsics.top": [extrinsics_row(f) for f in range(length)],
        "timestamp": [f / 10.0 for f in range(length)],
        "frame_index": list(range(length)),
        "episode_index": [episode] * length,
        "index": [start_index + f for f in range(length)],
        "task_index": [task_index] * length,
    }


def _features(fps: float, cameras=LEROBOT_CAMERAS) -> dict:
    features = {
        camera: {
            "dtype": "video",
            "shape": [HEIGHT, WIDTH, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.fps": fps, "video.height": HEIGHT, "video.width": WIDTH, "video.codec": "h264"},
        }
        for camera in cameras
    }
    features.update(
        {
            "action": {"dtype": "float32", "shape": [14], "names": None},
            "observation.state": {"dtype": "float32", "shape": [16], "names": None},
            "observation.intrinsics.top": {"dtype": "float64", "shape": [9], "names": None},
            "observation.extrinsics.top": {"dtype": "float64", "shape": [16], "names": None},
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "frame_index": {"dtype": "int64", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
            "index": {"dtype": "int64", "shape": [1], "names": None},
            "task_index": {"dtype": "int64", "shape": [1], "names": None},
        }
    )
    return features


def _table(columns: dict[str, list]):
    import pyarrow as pa

    types = {
        "action": pa.list_(pa.float32(), 14),
        "observation.state": pa.list_(pa.float32(), 16),
        "observation.intrinsics.top": pa.list_(pa.float64(), 9),
        "observation.extrinsics.top": pa.list_(pa.float64(), 16),
        "timestamp": pa.float32(),
    }
    return pa.table(
        {name: pa.array(values, type=types.get(name, pa.int64())) for name, values in columns.items()}
    )


def write_lerobot(
    root: Path,
    version: str,
    lengths: list[int],
    fps: float = 10.0,
    tasks_of: list[int] | None = None,
    cameras=LEROBOT_CAMERAS,
) -> Path:
    """A LeRobot dataset of ``len(lengths)`` episodes in layout ``version`` ("v2.1" or "v3.0")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    tasks_of = tasks_of or [i % len(LEROBOT_TASKS) for i in range(len(lengths))]
    (root / "meta").mkdir(parents=True, exist_ok=True)
    info = {
        "codebase_version": version,
        "robot_type": "test_bimanual",
        "fps": fps,
        "chunks_size": 1000,
        "total_episodes": len(lengths),
        "total_frames": sum(lengths),
        "total_tasks": len(LEROBOT_TASKS),
        "splits": {"train": f"0:{len(lengths)}"},
        "features": _features(fps, cameras),
    }
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    if version in ("v2.0", "v2.1"):
        info["data_path"] = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
        info["video_path"] = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
        episodes_lines, tasks_lines = [], []
        for episode, length in enumerate(lengths):
            columns = lerobot_episode_columns(episode, length, tasks_of[episode], int(starts[episode]))
            path = root / f"data/chunk-000/episode_{episode:06d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(_table(columns), path)
            for c, camera in enumerate(cameras):
                write_lossless_mp4(
                    [frame_pixels(episode, f, c) for f in range(length)],
                    root / f"videos/chunk-000/{camera}/episode_{episode:06d}.mp4",
                    fps,
                )
            episodes_lines.append(
                json.dumps(
                    {"episode_index": episode, "tasks": [LEROBOT_TASKS[tasks_of[episode]]], "length": length}
                )
            )
        for index, task in enumerate(LEROBOT_TASKS):
            tasks_lines.append(json.dumps({"task_index": index, "task": task}))
        (root / "meta/episodes.jsonl").write_text("\n".join(episodes_lines) + "\n")
        (root / "meta/tasks.jsonl").write_text("\n".join(tasks_lines) + "\n")
    else:
        import pandas as pd

        info["data_path"] = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
        info["video_path"] = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
        # Two data/video files, episodes split between them, as LeRobot does when a file fills up.
        split = max(1, len(lengths) // 2)
        groups = [list(range(split)), list(range(split, len(lengths)))]
        rows = []
        for file_index, group in enumerate(g for g in groups if g):
            tables = [
                _table(lerobot_episode_columns(e, lengths[e], tasks_of[e], int(starts[e]))) for e in group
            ]
            path = root / f"data/chunk-000/file-{file_index:03d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.concat_tables(tables), path, row_group_size=7)
            for c, camera in enumerate(cameras):
                frames = [frame_pixels(e, f, c) for e in group for f in range(lengths[e])]
                write_lossless_mp4(frames, root / f"videos/{camera}/chunk-000/file-{file_index:03d}.mp4", fps)
            offset = 0
            for e in group:
                row = {
                    "episode_index": e,
                    "tasks": [LEROBOT_TASKS[tasks_of[e]]],
                    "length": lengths[e],
                    "data/chunk_index": 0,
                    "data/file_index": file_index,
                    "dataset_from_index": int(starts[e]),
                    "dataset_to_index": int(starts[e] + lengths[e]),
                    "meta/episodes/chunk_index": 0,
                    "meta/episodes/file_index": 0,
                }
                for camera in cameras:
                    row[f"videos/{camera}/chunk_index"] = 0
                    row[f"videos/{camera}/file_index"] = file_index
                    row[f"videos/{camera}/from_timestamp"] = offset / fps
                    row[f"videos/{camera}/to_timestamp"] = (offset + lengths[e]) / fps
                row["stats/action/mean"] = [0.0] * 14
                rows.append(row)
                offset += lengths[e]
        path = root / "meta/episodes/chunk-000/file-000.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), path)
        tasks = pd.DataFrame(
            {"task_index": range(len(LEROBOT_TASKS))}, index=pd.Index(LEROBOT_TASKS, name="task")
        )
        tasks.to_parquet(root / "meta/tasks.parquet")
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return root


# ---------------------------------------------------------------------------- AgiBot World

AGIBOT_CAMERAS = ("head_color", "hand_left_color", "hand_right_color")


def agibot_quaternions(frame: int) -> np.ndarray:
    """(2, 4) xyzw quaternions: rotations about z by 0.1 * frame (left) and about x by 0.05 * frame (right)."""
    a, b = 0.1 * frame, 0.05 * frame
    return np.array([[0, 0, np.sin(a / 2), np.cos(a / 2)], [np.sin(b / 2), 0, 0, np.cos(b / 2)]])


def write_agibot_world(
    root: Path, task_id: int, episode_ids: list[int], length: int, fps: float = 30.0
) -> Path:
    """An AgiBot World dataset (task_info, observations, parameters, proprio_stats) of one task."""
    import h5py

    root = Path(root)
    entries = []
    for number, episode in enumerate(episode_ids):
        for c, camera in enumerate(AGIBOT_CAMERAS):
            write_lossless_mp4(
                [frame_pixels(number, f, c) for f in range(length)],
                root / f"observations/{task_id}/{episode}/videos/{camera}.mp4",
                fps,
            )
        h5_path = root / f"proprio_stats/{task_id}/{episode}/proprio_stats.h5"
        h5_path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(h5_path, "w") as h5:
            h5["timestamp"] = np.arange(length, dtype=np.int64) * int(1e9 / fps)
            h5["state/end/position"] = np.array(
                [[[0.3 + 0.01 * f, 0.2, 0.1 * number], [0.3, -0.2 - 0.01 * f, 0.5]] for f in range(length)]
            )
            h5["state/end/orientation"] = np.stack([agibot_quaternions(f) for f in range(length)])
            h5["state/effector/position"] = np.array(
                [[12.0 * (f % 10), 120.0 - 6.0 * (f % 20)] for f in range(length)]
            )
            h5["state/joint/position"] = np.array([[0.01 * f + j for j in range(14)] for f in range(length)])
            h5["action/end/position"] = np.array(
                [[[0.31 + 0.01 * f, 0.2, 0.0], [0.31, -0.2, 0.5]] for f in range(length)]
            )
            h5["action/end/orientation"] = np.stack([agibot_quaternions(f + 1) for f in range(length)])
            h5["action/effector/position"] = np.array(
                [[0.0, 1.0] if f % 2 else [0.25, 0.75] for f in range(length)]
            )
            h5["action/end/index"] = np.arange(0, length, 2, dtype=np.int64)
            h5["state/joint/effort"] = np.zeros((0,), dtype=np.float32)
        camera_dir = root / f"parameters/{task_id}/{episode}/camera"
        camera_dir.mkdir(parents=True, exist_ok=True)
        for c, name in enumerate(("head", "hand_left", "hand_right")):
            (camera_dir / f"{name}_intrinsic_params.json").write_text(
                json.dumps(
                    {
                        "intrinsic": {
                            "fx": 20.0 + c,
                            "fy": 21.0 + c,
                            "ppx": 15.5,
                            "ppy": 11.5,
                            "width": WIDTH,
                            "height": HEIGHT,
                        }
                    }
                )
            )
            extrinsics = [
                {
                    "extrinsic": {
                        "rotation_matrix": np.eye(3).tolist(),
                        "translation_vector": [0.1 * f, 0.2 + c, 1.5],
                    }
                }
                for f in range(length)
            ]
            (camera_dir / f"{name}_extrinsic_params_aligned.json").write_text(json.dumps(extrinsics))
        entries.append(
            {
                "episode_id": episode,
                "task_name": "Pick up the cup",
                "init_scene_text": "The robot stands in front of a table with a cup.",
                "label_info": {
                    "action_config": [
                        {
                            "start_frame": 0,
                            "end_frame": length // 2,
                            "action_text": "Grasp the cup.",
                            "skill": "Pick",
                        },
                        {
                            "start_frame": length // 2,
                            "end_frame": length,
                            "action_text": "Lift the cup.",
                            "skill": "Lift",
                        },
                    ]
                },
            }
        )
    (root / "task_info").mkdir(parents=True, exist_ok=True)
    (root / f"task_info/task_{task_id}.json").write_text(json.dumps(entries, indent=2))
    return root


def tree_digest(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under ``root``: equal before and after means untouched."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


def doubled_first_14(joints: np.ndarray) -> np.ndarray:
    """A stand-in for forward kinematics (``--fk source_formats:doubled_first_14``)."""
    return 2.0 * np.asarray(joints)[:, :14]


def add_image_camera(root: Path, key: str = "observation.image", camera: int = 2) -> Path:
    """Add a camera stored as PNG images inside the parquet rows (LeRobot's ``"image"`` dtype:
    a struct of the encoded bytes and a path), showing ``frame_pixels(episode, frame, camera)``."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    def png(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return buffer.getvalue()

    for path in sorted(Path(root).glob("data/chunk-*/*.parquet")):
        table = pq.read_table(path)
        episodes, frames = table.column("episode_index").to_pylist(), table.column("frame_index").to_pylist()
        images = [{"bytes": png(frame_pixels(e, f, camera)), "path": None} for e, f in zip(episodes, frames)]
        column = pa.array(images, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
        pq.write_table(table.append_column(key, column), path, row_group_size=7)
    info_path = Path(root) / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["features"][key] = {
        "dtype": "image",
        "shape": [HEIGHT, WIDTH, 3],
        "names": ["height", "width", "channel"],
    }
    info_path.write_text(json.dumps(info, indent=4))
    return Path(root)
