"""``ge-sim-2``: GE-Sim 2.0 through its own package, ``gesim`` (AgibotTech/GE-Sim-V2).

Two ways to reach the model, the same episode protocol either way:

* in process: ``--model-option world_model=gesim_v2 --model-option config=CFG.yaml`` (the released
  checkpoint) or ``world_model=example`` (gesim's synthetic model, no torch, no weights): the class
  comes from ``gesim.models.get_world_model(name).from_config(dict)``;
* a running ``python -m gesim.server``: ``--model-option url=http://HOST:PORT``, spoken through
  ``gesim.client.WorldModelClient`` (JSON control endpoints, frames as JPEG quality 95).

One request is one gesim episode: ``reset``, ``set_camera_params(K (V, 3, 3), c2w of the first frame
(V, 4, 4))``, ``set_episode_data(first frame (3, V, H, W) in [0, 1])``, the trajectory band with
``set_episode_traj(band (3, V, T, H, W), c2w (V, T, 4, 4))``, then ``step`` over chunks of at most
``chunk_size`` (25) joint-space actions. When the band covers at least two chunks it is uploaded
once (gesim's replay path, as its ``WorldModelEnv`` does with ``conditioning="episode"``); a
shorter one is uploaded chunk by chunk (its closed-loop path), because gesim reads a band shorter
than two chunks as covering only the next chunk.

How our data maps onto gesim's conventions (each mapping is a function below, tested):

* views: ours ``head, hand_left, hand_right`` are gesim's ``head, left_wrist, right_wrist``, in
  that order (:data:`GESIM_VIEWS`);
* actions (gesim's 16-D joint layout ``[L7_arm, L_grip, R7_arm, R_grip]``): the 7 arm joints of
  each arm from the sidecar's ``joint_positions`` (by the names in meta ``joint_names``, or the
  first and last 7 of 14 columns), the gripper from the end-effector actions' openness, inverted:
  gesim's gripper is 0 open .. 1 closed (AgiBot's effector command), ours is openness 1 open .. 0
  closed (:func:`gesim_actions`);
* the band: drawn by gesim's own ``gesim.conditioning.band.render_traj`` from the end-effector
  actions (sidecar ``actions``, the commanded poses, like gesim's ``eef_poses_0.npy``), 14-D
  ``[xyz, rpy (extrinsic xyz), gripper]`` per arm with the gripper inverted as above
  (:func:`gesim_eef`); gesim's tool offset (``gripper_offset``, 0.15 m for G01 flange poses with
  OmniPicker) unless the option says otherwise;
* cameras: our extrinsics are camera-to-base with OpenCV axes, as gesim's ``c2w``; our intrinsics
  put pixel centres at integers, gesim's ray map puts them at +0.5, so K moves to the corner
  convention and is rescaled to the model's 384x512 (:func:`gesim_intrinsics`);
* time: gesim runs at 30 fps; poses, joints and cameras are resampled to it and the runner
  conforms the frames back to the dataset's rate.

The result keeps the model's predicted state per frame beside the frames: ``state["joint_state"]``
(T, 16) in gesim's layout (the pose expert's prediction for ``gesim_v2``; the example model echoes
the actions).
"""

from __future__ import annotations

import math
import re

import numpy as np

from ewmbench.errors import ConfigError, DataError, Unavailable
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import Capabilities
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.registry import Option

GESIM_VIEWS = {"head": "head", "hand_left": "left_wrist", "hand_right": "right_wrist"}
OUR_VIEWS = tuple(GESIM_VIEWS)
MODEL_SIZE = (384, 512)  # gesim's band canvas and gesim_v2's input crop (height, width)
MODEL_FPS = 30.0
CHUNK_SIZE = 25
STATE_LAYOUT = "[L7_arm, L_grip (0 open..1 closed), R7_arm, R_grip]"
INSTALL_FIX = (
    "git clone https://github.com/AgibotTech/GE-Sim-V2 && "
    'pip install "ewmbench[gesim]" && pip install --no-deps -e GE-Sim-V2'
)


# ---------------------------------------------------------------------------- our data -> gesim's


def arm_joint_columns(width: int, names: list[str] | None) -> tuple[list[int], list[int]]:
    """Columns of the left and right arms' 7 joints in ``joint_positions`` (T, width).

    With names (sidecar meta ``joint_names``): the columns named ``left...joint<i>`` and
    ``right...joint<i>`` (finger and gripper columns excluded), ordered by ``i``. Without names,
    14 columns are read as 7 left then 7 right (AgiBot World's ``state/joint/position``).
    """
    if names is not None:
        if len(names) != width:
            raise ConfigError(f"joint_names has {len(names)} names for {width} joint columns")
        columns = []
        for arm in ("left", "right"):
            found = []
            for index, name in enumerate(names):
                lowered = name.lower()
                match = re.search(r"joint_?(\d+)$", lowered)
                if lowered.startswith(arm) and match and "finger" not in lowered and "grip" not in lowered:
                    found.append((int(match.group(1)), index))
            if len(found) != 7:
                raise ConfigError(
                    f"joint_names name {len(found)} {arm} arm joints ({arm}...joint<i>); GE-Sim 2.0 takes 7 per arm"
                )
            columns.append([index for _, index in sorted(found)])
        return columns[0], columns[1]
    if width == 14:
        return list(range(7)), list(range(7, 14))
    raise ConfigError(
        f"joint_positions has {width} columns and no joint_names in the sidecar meta; "
        "GE-Sim 2.0 needs 7 arm joints per arm (14 columns, left then right, or named columns)"
    )


def gesim_actions(
    joint_positions: np.ndarray, joint_names: list[str] | None, eef14: np.ndarray
) -> np.ndarray:
    """(T, 16) gesim actions ``[L7_arm, L_grip, R7_arm, R_grip]``: arm joints from
    ``joint_positions``, grippers 1 - openness from the end-effector rows (T, 14)."""
    joints = np.asarray(joint_positions, dtype=np.float64)
    eef14 = np.asarray(eef14, dtype=np.float64)
    left, right = arm_joint_columns(joints.shape[1], joint_names)
    rows = min(len(joints), len(eef14))
    out = np.empty((rows, 16))
    out[:, 0:7] = joints[:rows, left]
    out[:, 7] = 1.0 - eef14[:rows, 6]
    out[:, 8:15] = joints[:rows, right]
    out[:, 15] = 1.0 - eef14[:rows, 13]
    return out


def gesim_eef(eef14: np.ndarray) -> np.ndarray:
    """Our (T, 14) end-effector rows as gesim's band input: the same pose, gripper 1 - openness."""
    out = np.array(eef14, dtype=np.float64, copy=True)
    out[:, 6] = 1.0 - out[:, 6]
    out[:, 13] = 1.0 - out[:, 13]
    return out


def gesim_intrinsics(intrinsics: np.ndarray, from_size: tuple[int, int]) -> np.ndarray:
    """Our K (pixel centres at integers, at ``from_size``) as gesim's: corner convention, at 384x512."""
    from ewmbench.models.conditioning import (
        rescale_intrinsics,
        to_corner_convention,
    )  # scipy: loaded when an adapter conditions on poses

    return rescale_intrinsics(to_corner_convention(intrinsics), from_size, MODEL_SIZE, pixel_centre=0.5)


def gesim_frame(frames_by_view: dict[str, np.ndarray]) -> np.ndarray:
    """Per-view (H, W, 3) uint8 frames -> gesim's (3, V, 384, 512) float32 in [0, 1]."""
    import cv2

    height, width = MODEL_SIZE
    views = [
        cv2.resize(np.ascontiguousarray(frames_by_view[v]), (width, height), interpolation=cv2.INTER_AREA)
        for v in OUR_VIEWS
    ]
    return (np.stack(views).astype(np.float32) / 255.0).transpose(3, 0, 1, 2)


def our_frames(frames: np.ndarray) -> dict[str, np.ndarray]:
    """gesim's (T, 3, V, H, W) in [0, 1] -> per view (T, H, W, 3) uint8 (rounded, as gesim's own)."""
    frames = np.clip(np.asarray(frames, dtype=np.float32), 0.0, 1.0)
    return {
        view: np.rint(frames[:, :, i].transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)
        for i, view in enumerate(OUR_VIEWS)
    }


def model_frame_count(num_frames: int, source_fps: float, model_fps: float) -> int:
    """Frames at ``model_fps`` spanning the same time as ``num_frames`` at ``source_fps``."""
    return int(math.ceil((num_frames - 1) * model_fps / source_fps - 1e-9)) + 1


# ---------------------------------------------------------------------------- the adapter


class GESim2Model(WorldModel):
    name = "ge-sim-2"
    description = (
        "GE-Sim 2.0 (Genie Envisioner world simulator) through its gesim package, in process "
        "(world_model=gesim_v2|example) or a running gesim server (url=): joint actions + band + calibration "
        "+ 3-view first frame -> 3-view video and predicted joint state."
    )
    options = (
        Option("world_model", str, None, "gesim world model to run in process: gesim_v2 or example"),
        Option(
            "config", str, None, "gesim YAML config of the world model (gesim_v2: the checkpoint folder, ...)"
        ),
        Option("url", str, None, "a running gesim server, http://HOST:PORT (python -m gesim.server)"),
        Option("fps", float, MODEL_FPS, "the model's frame rate (GE-Sim 2.0: 30)", 1.0, 240.0),
        Option(
            "gripper_offset",
            float,
            None,
            "metres along the tool z axis from the poses to where the band is drawn (default: gesim's, 0.15)",
            -1.0,
            1.0,
        ),
        Option("timeout", float, 300.0, "seconds per server request (url mode)", 1.0, 86_400.0),
    )
    capabilities = Capabilities(
        conditioning=frozenset({"image", "actions", "calibration", "joints"}),
        views=OUR_VIEWS,
        required_views=OUR_VIEWS,
        native_size=MODEL_SIZE,
        fps=MODEL_FPS,
        chunk_frames=CHUNK_SIZE,
        memory_frames=1,
        action_space="joint16-gesim",
    )
    needs_also = (
        "the gesim package from a GE-Sim-V2 checkout (pip install --no-deps -e DIR)",
        "world_model=gesim_v2: the agibot-world/Genie-Envisioner-Sim-v2.0 weights and a GPU",
    )
    status = (
        "run end to end with gesim's example model in process and through its server (CPU); gesim_v2 built "
        "from its own classes with tiny random weights ran one chunk through it on a CPU (its output was NaN, "
        "which the adapter refuses); not run with the released checkpoint"
    )

    def __init__(self, **options):
        super().__init__(**options)
        world_model, url = self.settings["world_model"], self.settings["url"]
        if (world_model is None) == (url is None):
            raise ConfigError(
                "model 'ge-sim-2' needs exactly one of --model-option world_model=NAME (in process: gesim_v2 "
                "with config=CFG.yaml, or example) and --model-option url=http://HOST:PORT (a running gesim server)"
            )
        if url is not None and not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"model 'ge-sim-2' option 'url' must be http(s)://HOST:PORT, got {url!r}")
        if world_model is not None and world_model != "example" and self.settings["config"] is None:
            raise ConfigError(
                f"model 'ge-sim-2' world_model={world_model} needs --model-option config=CFG.yaml "
                "(gesim's configs/gesim_v2.yaml, pointing at the checkpoint folder)"
            )
        # gesim's example model runs anywhere; gesim_v2 in process needs its checkpoint and a GPU
        self.needs_gpu = self.needs_weights = world_model not in (None, "example")
        self.world = None  # a gesim WorldModel (in process) or WorldModelClient (url)
        self.chunk_size = CHUNK_SIZE

    def check_available(self) -> None:
        import importlib.util
        from pathlib import Path

        if importlib.util.find_spec("gesim") is None:
            raise Unavailable("model 'ge-sim-2' needs the gesim package, which is not installed", INSTALL_FIX)
        config = self.settings["config"]
        if config is not None and not Path(config).expanduser().is_file():
            raise ConfigError(f"model 'ge-sim-2' option 'config': {config} is not a file")

    def load(self, device: str) -> None:
        self.device = device
        self.check_available()
        if self.settings["url"] is not None:
            from gesim.client.transport import WorldModelClient
            from gesim.exceptions import GesimError

            try:
                self.world = WorldModelClient(
                    self.settings["url"], user_name="ewmbench", timeout=self.settings["timeout"]
                )
            except GesimError as exc:
                raise ConfigError(
                    f"model 'ge-sim-2': gesim server at {self.settings['url']}: {exc}"
                ) from None
            return
        from gesim.models.base import get_world_model

        try:
            cls = get_world_model(self.settings["world_model"])
        except KeyError as exc:
            raise ConfigError(f"model 'ge-sim-2' option 'world_model': {exc.args[0]}") from None
        config = self.read_config()
        if self.settings["world_model"] != "example":
            config.setdefault("device", device)
        self.world = cls.from_config(config)
        self.chunk_size = int(getattr(self.world, "chunk_size", CHUNK_SIZE))

    def read_config(self) -> dict:
        from pathlib import Path

        import yaml

        if self.settings["config"] is None:
            return {}
        path = Path(self.settings["config"]).expanduser()
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"model 'ge-sim-2' option 'config': cannot read {path} ({exc})") from None
        if not isinstance(config, dict):
            raise ConfigError(f"model 'ge-sim-2' option 'config': {path} is not a YAML mapping")
        return config

    def close(self) -> None:
        if self.world is not None and hasattr(self.world, "close"):
            self.world.close()

    def config(self) -> dict:
        out = super().config()
        out.update(
            {"model_size": list(MODEL_SIZE), "chunk_size": self.chunk_size, "state_layout": STATE_LAYOUT}
        )
        return out

    # ------------------------------------------------------------------ one request, one gesim episode

    def gesim_inputs(self, request: GenerationRequest) -> dict:
        """Everything gesim receives for this request, at the model's size and frame rate."""
        from ewmbench.models.conditioning import (
            pose_matrix,
            propagate_extrinsics,
            resample_poses,
            resample_rows,
        )

        where = f"{request.task}/{request.episode}"
        missing = [
            v for v in OUR_VIEWS if v not in request.memory_frames or len(request.memory_frames[v]) == 0
        ]
        if missing:
            raise DataError(where, f"model 'ge-sim-2' needs the current frame of views {missing}")
        if request.actions is None or request.action_space != "eef14-euler":
            raise DataError(
                where,
                "model 'ge-sim-2' draws its band from end-effector actions (sidecar `actions`, eef14-euler); "
                f"the request has {'none' if request.actions is None else request.action_space}",
            )
        if request.joint_positions is None:
            raise DataError(
                where, "model 'ge-sim-2' takes joint-space actions; the request has no `joint_positions`"
            )
        for view in OUR_VIEWS:
            if view not in request.intrinsics or view not in request.extrinsics:
                raise DataError(
                    where,
                    f"model 'ge-sim-2' needs intrinsics and extrinsics of view {view!r} "
                    f"(sidecar `intrinsics/{view}`, `extrinsics/{view}`)",
                )
        source_fps = float(request.fps or self.settings["fps"])
        model_fps = float(self.settings["fps"])
        start = request.start_frame
        total = model_frame_count(request.num_frames, source_fps, model_fps)
        eef = np.asarray(request.actions, dtype=np.float64)[start:]
        try:
            actions = gesim_actions(
                np.asarray(request.joint_positions)[start:], request.extra.get("joint_names"), eef
            )
        except ConfigError as exc:
            raise DataError(where, f"model 'ge-sim-2': {exc}") from None
        c2w, intrinsics = [], []
        for view in OUR_VIEWS:
            extrinsics = np.asarray(request.extrinsics[view], dtype=np.float64)[start:]
            if len(extrinsics) == 0:
                extrinsics = np.asarray(request.extrinsics[view], dtype=np.float64)[-1:]
            if len(extrinsics) == 1 and len(eef) > 1 and view != "head":  # a wrist camera moves with its hand
                arm = 0 if view == "hand_left" else 1
                extrinsics = propagate_extrinsics(np.stack([pose_matrix(r, arm) for r in eef]), extrinsics[0])
            c2w.append(resample_poses(extrinsics, total, source_fps, model_fps))
            size = request.memory_frames[view][-1].shape[:2]
            intrinsics.append(gesim_intrinsics(request.intrinsics[view], size))
        return {
            "frame": gesim_frame({v: request.memory_frames[v][-1] for v in OUR_VIEWS}),
            "actions": resample_rows(actions, total, source_fps, model_fps).astype(np.float32),
            "eef": resample_rows(gesim_eef(eef), total, source_fps, model_fps).astype(np.float32),
            "c2w": np.stack(c2w).astype(np.float32),  # (V, T, 4, 4)
            "intrinsics": np.stack(intrinsics).astype(np.float32),  # (V, 3, 3)
            "fps": model_fps,
        }

    def band(self, eef: np.ndarray, c2w: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
        """gesim's own trajectory band, (3, V, T, 384, 512) float32 in [0, 1]."""
        from gesim.conditioning.band import render_traj

        kwargs = {"sample_size": MODEL_SIZE}
        if self.settings["gripper_offset"] is not None:
            kwargs["gripper_offset"] = float(self.settings["gripper_offset"])
        band = render_traj(eef, c2w, intrinsics, **kwargs)
        return np.asarray(band.numpy() if hasattr(band, "numpy") else band, dtype=np.float32)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.world is None:
            raise ConfigError("model 'ge-sim-2' is not loaded (the runner calls load(device) first)")
        cond = self.gesim_inputs(request)
        band = self.band(cond["eef"], cond["c2w"], cond["intrinsics"])
        total = len(cond["actions"])
        world = self.world
        world.reset()
        world.set_camera_params(cond["intrinsics"], cond["c2w"][:, 0])
        world.set_episode_data(cond["frame"])
        whole_band = total >= 2 * self.chunk_size  # gesim's replay path; shorter: per chunk
        if whole_band:
            world.set_episode_traj(band, cond["c2w"])
        frames, states = [], []
        for begin in range(0, total, self.chunk_size):
            end = min(begin + self.chunk_size, total)
            if not whole_band:
                world.set_episode_traj(
                    np.ascontiguousarray(band[:, :, begin:end]),
                    np.ascontiguousarray(cond["c2w"][:, begin:end]),
                )
            answer = world.step(cond["actions"][begin:end])
            chunk_frames, chunk_state = (answer.frames, answer.state) if hasattr(answer, "frames") else answer
            chunk_frames = np.asarray(chunk_frames)
            if (
                chunk_frames.ndim != 5
                or chunk_frames.shape[1] != 3
                or chunk_frames.shape[2] != len(OUR_VIEWS)
            ):
                raise ConfigError(
                    f"model 'ge-sim-2': gesim returned frames of shape {chunk_frames.shape}; expected (T, 3, 3, H, W)"
                )
            if len(chunk_frames) < end - begin:
                raise ConfigError(
                    f"model 'ge-sim-2': gesim returned {len(chunk_frames)} frames for {end - begin} actions"
                )
            frames.append(chunk_frames[: end - begin])
            if chunk_state is not None:
                states.append(np.asarray(chunk_state, dtype=np.float32)[: end - begin])
            for name, values in (("frames", frames[-1]), ("state", states[-1] if states else None)):
                if values is not None and not np.all(np.isfinite(values)):
                    raise ConfigError(
                        f"model 'ge-sim-2': gesim returned non-finite {name} (NaN or inf) for frames "
                        f"{begin}..{end - 1} of {request.task}/{request.episode}; check the checkpoint and config"
                    )
        state = {"joint_state": np.concatenate(states)} if len(states) == len(frames) else {}
        info = {
            "fps": cond["fps"],
            "height": MODEL_SIZE[0],
            "width": MODEL_SIZE[1],
            "chunks": len(frames),
            "chunk_frames": self.chunk_size,
            "band_upload": "episode" if whole_band else "per chunk",
            "mode": "server" if self.settings["url"] else "in process",
            "state_layout": STATE_LAYOUT,
        }
        return GenerationResult(our_frames(np.concatenate(frames)), state, info)
