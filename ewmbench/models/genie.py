"""``ge-base`` and ``ge-sim``: the Genie Envisioner world models, run from the user's own checkout.

The GE code is not a package and pins its own dependencies, so nothing of it ships here: the
adapter imports the entry script of a Genie-Envisioner checkout (``--model-option repo=DIR``) and
calls its documented entry points (``load_config(config_file)``, ``prepare_model(args, dtype,
device)`` -> ``(tokenizer, text_encoder, vae, diffusion_model, scheduler, pipe)``, then
``pipe.infer(...)``), with the checkout's config (``config=``) and checkpoint (``checkpoint=``,
overriding the config's ``diffusion_model.model_path``).

Conventions followed (GE's, see docs/world-models.md):

* three views ``head, hand_left, hand_right`` at the config's ``sample_size`` (GE-Base 192x256,
  GE-Sim 384x512), inputs scaled to [-1, 1], layout (views, 3, frames, H, W);
* ``n_previous`` (4) memory frames per view; a single observation fills every slot; later chunks
  re-sample them evenly over what was generated (:func:`~ewmbench.models.base.generate_chunked`);
* guidance 1.0; ``noise_seed`` is never 0 (GE treats 0 as unseeded): seed s is passed as s + 1;
* the output holds the memory frames first, then ``chunk`` new frames; we keep the last memory
  frame (the current frame) and the new ones;
* the model runs at its own frame rate (``fps``: 30 for GE-Base slow and GE-Sim, 5 for GE-Base
  fast): actions and extrinsics are resampled to it, and the runner conforms the result back.

GE-Base: prompt ``"<instruction>: <step 1>, <step 2>, ..."`` with " the " dropped as in GE's
samples. GE-Sim: the prompt is the config's fixed ``prompt`` string (option ``prompt``); actions
16-D ``[L xyz, L quat xyzw, L gripper, R ...]`` with the gripper mapped onto (``gripper_closed``,
``gripper_open``); rows for the memory frames first; per-view camera-to-base extrinsics for the
same frames (a wrist view with only its first extrinsic is propagated with the hand pose:
``c2b_t = pose_t @ inv(pose_0) @ c2b_0``); intrinsics per view moved to the corner pixel
convention and rescaled to the model's size. The GE-Sim ``infer`` keyword names are our reading
of GE's description (``actions``, ``extrinsics``, ``intrinsics``); they were not checked against
GE's GE-Sim script, which we did not have.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ewmbench.errors import ConfigError, DataError
from ewmbench.models.base import (
    ACTION_SPACES,
    Capabilities,
    FrameRule,
    GenerationRequest,
    GenerationResult,
    Option,
    WorldModel,
    even_indices,
    generate_chunked,
)

GE_VIEWS = ("head", "hand_left", "hand_right")
ENTRY_FUNCTIONS = ("load_config", "prepare_model")


def ge_prompt(instruction: str, substeps: list[str]) -> str:
    """GE-Base's prompt: ``"Task: step 1, step 2"``, with " the " dropped as in GE's samples."""
    text = instruction.strip().rstrip(".")
    if substeps:
        text = f"{text}: {', '.join(s.strip().rstrip('.') for s in substeps)}"
    return text.replace(" the ", " ").replace("The ", "")


def to_model_input(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(M, h, w, 3) uint8 -> (3, M, height, width) float32 in [-1, 1], resized as GE's own
    ``load_images`` does (OpenCV's default bilinear)."""
    import cv2

    resized = np.stack([cv2.resize(np.ascontiguousarray(f), (width, height)) for f in frames])
    return (resized.astype(np.float32) / 255.0 * 2.0 - 1.0).transpose(3, 0, 1, 2)


def from_model_output(video: np.ndarray) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8."""
    return np.clip(
        np.rint((np.asarray(video, dtype=np.float32).transpose(1, 2, 3, 0) + 1.0) * 127.5), 0, 255
    ).astype(np.uint8)


class GECheckoutModel(WorldModel):
    """What GE-Base and GE-Sim share: importing the checkout, its config, windows and chunks."""

    entry_script: str = ""
    default_config: str = ""
    default_fps: float = 30.0
    default_steps: int = 50
    needs_weights = True
    needs_gpu = True
    needs_also = ("your Genie-Envisioner checkout (repo=DIR) with its requirements",)

    @classmethod
    def shared_options(cls) -> tuple[Option, ...]:
        return (
            Option("repo", Path, None, "your Genie-Envisioner checkout (required)"),
            Option("config", Path, None, f"inference config (default: <repo>/{cls.default_config})"),
            Option(
                "checkpoint",
                Path,
                None,
                "diffusion-model weights; overrides the config's diffusion_model.model_path",
            ),
            Option("steps", int, cls.default_steps, "denoising steps", 1, 1000),
            Option("fps", float, cls.default_fps, "the model's frame rate (GE-Base fast: 5)", 1.0, 240.0),
        )

    def __init__(self, **options):
        super().__init__(**options)
        if self.settings["repo"] is None:
            raise ConfigError(
                f"model {self.name!r} needs --model-option repo=DIR (your Genie-Envisioner checkout); see docs/world-models.md"
            )
        self.module = None
        self.pipe = None
        self.args = None

    # ------------------------------------------------------------------ checkout and config

    @property
    def repo(self) -> Path:
        return Path(self.settings["repo"])

    @property
    def config_path(self) -> Path:
        return Path(self.settings["config"]) if self.settings["config"] else self.repo / self.default_config

    def check_available(self) -> None:
        if not self.repo.is_dir():
            raise ConfigError(
                f"model {self.name!r}: repo {self.repo} is not a folder (expected a Genie-Envisioner checkout)"
            )
        script = self.repo / self.entry_script
        if not script.is_file():
            raise ConfigError(
                f"model {self.name!r}: {self.repo} is not a Genie-Envisioner checkout with {self.entry_script} (its inference entry point)"
            )
        if not self.config_path.is_file():
            raise ConfigError(
                f"model {self.name!r}: config {self.config_path} does not exist (option config=FILE)"
            )
        if self.settings["checkpoint"] is not None and not Path(self.settings["checkpoint"]).exists():
            raise ConfigError(f"model {self.name!r}: checkpoint {self.settings['checkpoint']} does not exist")

    def import_entry(self):
        """Import the checkout's entry script as a module (the checkout's root on sys.path, as GE's scripts expect)."""
        self.check_available()
        script = self.repo / self.entry_script
        root = str(self.repo.resolve())
        if root not in sys.path:
            sys.path.insert(0, root)
        name = f"ewmbench_ge_entry_{self.name.replace('-', '_')}"
        spec = importlib.util.spec_from_file_location(name, script)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the checkout's own imports (its pinned dependencies) fail in many ways
            raise ConfigError(
                f"model {self.name!r}: importing {script} failed ({type(exc).__name__}: {exc}); "
                "install the checkout's requirements.txt in this environment, or serve GE behind `ewmbench serve`"
            ) from None
        missing = [f for f in ENTRY_FUNCTIONS if not callable(getattr(module, f, None))]
        if missing:
            raise ConfigError(
                f"model {self.name!r}: {script} has no {', '.join(missing)} (GE's entry points {', '.join(ENTRY_FUNCTIONS)} are expected)"
            )
        return module

    def load(self, device: str) -> None:
        import torch

        self.device = device
        self.module = self.import_entry()
        args = self.module.load_config(str(self.config_path))
        try:
            train = args.data["train"]
            self.n_prev = int(train["n_previous"])
            self.chunk = int(train["chunk"])
            self.size = (int(train["sample_size"][0]), int(train["sample_size"][1]))
            self.cameras = list(train.get("valid_cam", GE_VIEWS))
        except (AttributeError, KeyError, TypeError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"model {self.name!r}: {self.config_path} lacks data.train n_previous, chunk or sample_size ({type(exc).__name__}: {exc})"
            ) from None
        if len(self.cameras) != len(GE_VIEWS):
            raise ConfigError(
                f"model {self.name!r}: {self.config_path} names cameras {self.cameras}; this adapter feeds {list(GE_VIEWS)} in that order"
            )
        if self.settings["checkpoint"] is not None:
            args.diffusion_model["model_path"] = str(self.settings["checkpoint"])
        self.args = args
        self.dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        loaded = self.module.prepare_model(args, dtype=self.dtype, device=device)
        self.vae, self.pipe = loaded[2], loaded[-1]
        self.temporal_ratio = int(getattr(self.vae, "temporal_compression_ratio", 8))

    def config(self) -> dict:
        out = super().config()
        if self.args is not None:
            out.update(
                {
                    "n_previous": self.n_prev,
                    "chunk": self.chunk,
                    "sample_size": list(self.size),
                    "cameras": self.cameras,
                    "config_file": str(self.config_path),
                    "dtype": str(self.dtype).removeprefix("torch."),
                }
            )
        return out

    # ------------------------------------------------------------------ generation

    def timed(self, request: GenerationRequest) -> GenerationRequest:
        """The request at the model's frame rate (frames, memory indices, actions, extrinsics)."""
        fps, source = float(self.settings["fps"]), request.fps or float(self.settings["fps"])
        scale = fps / source
        total = int(math.ceil((request.start_frame + request.num_frames - 1) * scale)) + 1
        start = int(round(request.start_frame * scale))
        return replace(
            request,
            fps=fps,
            start_frame=start,
            num_frames=total - start,
            memory_indices=[int(round(i * scale)) for i in request.memory_indices],
            **self.timed_conditioning(request, total, source, fps),
        )

    def timed_conditioning(self, request: GenerationRequest, total: int, source: float, fps: float) -> dict:
        return {}

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.pipe is None:
            raise ConfigError(f"model {self.name!r} is not loaded (the runner calls load(device) first)")
        missing = [
            v for v in GE_VIEWS if v not in request.memory_frames or len(request.memory_frames[v]) == 0
        ]
        if missing:
            raise DataError(
                f"{request.task}/{request.episode}",
                f"model {self.name!r} needs memory frames for views {missing}",
            )
        timed = self.timed(request)
        window = self.chunk + 1  # the current frame and `chunk` new ones
        if timed.num_frames <= window:
            result = self.window(replace(timed, num_frames=window))
            chunks = 1
        else:
            result = generate_chunked(self.window, timed, window, self.n_prev)
            chunks = len(result.info["chunks"])
        info = {
            "fps": timed.fps,
            "height": self.size[0],
            "width": self.size[1],
            "chunks": chunks,
            "chunk_frames": window,
            "memory_frames": self.n_prev,
            "steps": self.settings["steps"],
        }
        return GenerationResult(result.frames, info=info)

    def window(self, request: GenerationRequest) -> GenerationResult:
        """One call of GE's pipeline: memory frames of every view in, the current + new frames out."""
        import torch

        height, width = self.size
        memory = np.stack(
            [
                to_model_input(
                    request.memory_frames[v][even_indices(len(request.memory_frames[v]), self.n_prev)],
                    height,
                    width,
                )
                for v in GE_VIEWS
            ]
        )
        kwargs = {
            "image": torch.from_numpy(memory).to(
                self.device, self.dtype
            ),  # (views, 3, n_previous, H, W) in [-1, 1]
            "prompt": [self.prompt(request)],
            "negative_prompt": "",
            "num_inference_steps": self.settings["steps"],
            "guidance_scale": 1.0,
            "height": height,
            "width": width,
            "n_view": len(GE_VIEWS),
            "n_prev": self.n_prev,
            "chunk": (self.chunk - 1) // self.temporal_ratio + 1,
            "noise_seed": int(request.seed) % (2**31 - 1) + 1,
            "return_video": True,
            "return_action": False,
            "n_chunk": 1,
            **self.window_conditioning(request),
        }
        with torch.inference_mode():
            preds = self.pipe.infer(**kwargs)[0]
        video = preds["video"] if isinstance(preds, dict) else preds
        video = (
            video.detach().float().cpu().numpy()
            if hasattr(video, "detach")
            else np.asarray(video, dtype=np.float32)
        )
        expected = (len(GE_VIEWS), 3, self.n_prev + self.chunk, height, width)
        if video.shape != expected:
            raise ConfigError(
                f"model {self.name!r}: GE's pipeline returned video of shape {video.shape}, expected {expected} (views, 3, memory + chunk, H, W)"
            )
        frames = {view: from_model_output(video[i, :, self.n_prev - 1 :]) for i, view in enumerate(GE_VIEWS)}
        return GenerationResult(frames)

    def prompt(self, request: GenerationRequest) -> str:
        return ge_prompt(request.instruction, request.substeps)

    def window_conditioning(self, request: GenerationRequest) -> dict:
        return {}


class GEBaseModel(GECheckoutModel):
    name = "ge-base"
    description = "GE-Base (Genie Envisioner, LTX-Video 2B backbone) from your checkout: instruction + 3-view memory -> 3-view video."
    entry_script = "video_gen_examples/infer.py"
    default_config = "configs/ltx_model/video_model_infer_slow.yaml"
    default_fps = 30.0
    default_steps = 50
    capabilities = Capabilities(
        conditioning=frozenset({"image", "text"}),
        views=GE_VIEWS,
        required_views=GE_VIEWS,
        native_size=(192, 256),
        fps=30.0,
        frame_rule=FrameRule(8, 1),
        chunk_frames=58,
        memory_frames=4,
    )
    status = (
        "contract-tested against a stand-in of GE's entry points on CPU; not run with GE's code or weights"
    )

    def window_conditioning(self, request: GenerationRequest) -> dict:
        # the remaining arguments of GE's own call in video_gen_examples/infer.py (video only, no state)
        train = self.args.data["train"]
        return {
            "decode_timestep": 0.03,
            "decode_noise_scale": 0.025,
            "action_chunk": train.get("action_chunk"),
            "history_action_state": None,
            "pixel_wise_timestep": getattr(self.args, "pixel_wise_timestep", False),
        }


GEBaseModel.options = GEBaseModel.shared_options()


class GESimModel(GECheckoutModel):
    name = "ge-sim"
    description = "GE-Sim (Genie Envisioner, Cosmos-Predict2 2B backbone) from your checkout: actions + calibration + 3-view memory -> 3-view video."
    entry_script = "gesim_video_gen_examples/infer_gesim.py"
    default_config = "configs/cosmos_model/acwm_cosmos.yaml"
    default_fps = 30.0
    default_steps = 15
    capabilities = Capabilities(
        conditioning=frozenset({"image", "actions", "calibration"}),
        views=GE_VIEWS,
        required_views=GE_VIEWS,
        native_size=(384, 512),
        fps=30.0,
        frame_rule=FrameRule(4, 1),
        chunk_frames=26,
        memory_frames=4,
        action_space="eef16-quat",
    )
    status = (
        "contract-tested against a stand-in of GE's entry points on CPU; not run with GE's code or weights"
    )

    def __init__(self, **options):
        super().__init__(**options)
        if self.settings["gripper_closed"] == self.settings["gripper_open"]:
            raise ConfigError("model 'ge-sim': gripper_closed and gripper_open must differ")

    def prompt(self, request: GenerationRequest) -> str:
        if self.settings["prompt"] is not None:
            return self.settings["prompt"]
        return str(getattr(self.args, "prompt", "") or "")

    def timed_conditioning(self, request: GenerationRequest, total: int, source: float, fps: float) -> dict:
        from ewmbench.models.conditioning import (
            pose_matrix,
            propagate_extrinsics,
            quat16_to_euler14,
            resample_poses,
            resample_rows,
        )

        where = f"{request.task}/{request.episode}"
        if request.actions is None:
            raise DataError(
                where, "model 'ge-sim' is conditioned on actions and the request has none (sidecar `actions`)"
            )
        if request.action_space not in ACTION_SPACES:
            raise ConfigError(
                f"unknown action space {request.action_space!r}; known: {', '.join(ACTION_SPACES)}"
            )
        width, layout = ACTION_SPACES[request.action_space]
        actions = np.asarray(request.actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != width:
            raise DataError(
                where,
                f"actions in {request.action_space} must be (T, {width}) {layout}; got shape {actions.shape}",
            )
        if request.action_space == "eef16-quat":
            actions = quat16_to_euler14(actions, self.gripper_range)
        extrinsics = {}
        for view in GE_VIEWS:
            if view not in request.extrinsics or view not in request.intrinsics:
                raise DataError(
                    where,
                    f"model 'ge-sim' needs intrinsics and extrinsics for view {view!r} (sidecar `intrinsics/{view}`, `extrinsics/{view}`)",
                )
            e = np.asarray(request.extrinsics[view], dtype=np.float64)
            if e.ndim != 3 or e.shape[1:] != (4, 4):
                raise DataError(where, f"extrinsics of view {view!r} must be (T, 4, 4), got {e.shape}")
            if len(e) == 1 and len(actions) > 1 and view in ("hand_left", "hand_right"):
                arm = 0 if view == "hand_left" else 1
                hands = np.stack([pose_matrix(row, arm) for row in actions])
                e = propagate_extrinsics(hands, e[0])
            extrinsics[view] = resample_poses(e, total, source, fps)
        return {
            "actions": resample_rows(actions, total, source, fps),
            "action_space": "eef14-euler",
            "extrinsics": extrinsics,
        }

    @property
    def gripper_range(self) -> tuple[float, float]:
        return (float(self.settings["gripper_closed"]), float(self.settings["gripper_open"]))

    def window_conditioning(self, request: GenerationRequest) -> dict:
        import torch

        from ewmbench.models.conditioning import euler14_to_quat16, rescale_intrinsics, to_corner_convention

        # the rows of the memory frames (as window() picks them), then the chunk's new frames
        picks = even_indices(len(request.memory_indices), self.n_prev)
        rows = [request.memory_indices[i] for i in picks] + list(
            range(request.start_frame + 1, request.start_frame + request.num_frames)
        )
        actions = euler14_to_quat16(
            request.actions[np.minimum(rows, len(request.actions) - 1)], self.gripper_range
        )
        extrinsics = np.stack(
            [request.extrinsics[v][np.minimum(rows, len(request.extrinsics[v]) - 1)] for v in GE_VIEWS]
        )
        height, width = self.size
        intrinsics = []
        for view in GE_VIEWS:
            frame = request.memory_frames[view][-1]
            intrinsics.append(
                rescale_intrinsics(
                    to_corner_convention(request.intrinsics[view]),
                    frame.shape[:2],
                    (height, width),
                    pixel_centre=0.5,
                )
            )
        return {
            "actions": torch.from_numpy(actions[None]).to(
                self.device, self.dtype
            ),  # (1, n_previous + chunk, 16)
            "extrinsics": torch.from_numpy(extrinsics).to(
                self.device, self.dtype
            ),  # (views, n_previous + chunk, 4, 4) camera-to-base
            "intrinsics": torch.from_numpy(np.stack(intrinsics)).to(
                self.device, self.dtype
            ),  # (views, 3, 3) at the model's size
        }


GESimModel.options = GESimModel.shared_options() + (
    Option("prompt", str, None, "the fixed prompt GE-Sim was trained with (default: the config's `prompt`)"),
    Option(
        "gripper_closed",
        float,
        0.0,
        "16-D action gripper value when closed (GE-Sim: 0..120; check your checkpoint)",
    ),
    Option("gripper_open", float, 120.0, "16-D action gripper value when open"),
)
