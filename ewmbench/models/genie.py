"""``ge-base`` and ``ge-sim``: the Genie Envisioner world models, run on the user's own checkout.

The GE code is not a package and pins its own dependencies, so nothing of it ships here: the
adapter imports the entry script of a Genie-Envisioner checkout (``--model-option repo=DIR``) and
calls what GE's own scripts call, the way they call it:

* ``load_config(config_file)``, then ``prepare_model(args, dtype, device)`` ->
  ``(tokenizer, text_encoder, vae, diffusion_model, scheduler, pipe)``;
* GE-Base (``video_gen_examples/infer.py``): ``pipe.infer(image=, prompt=, ..., noise_seed=)``,
  whose ``["video"]`` holds the memory frames, then the chunk;
* GE-Sim (``gesim_video_gen_examples/infer_gesim.py``): the pose maps and ray maps drawn with the
  checkout's own ``utils/get_traj_maps.py`` (``get_traj_maps`` with ``simple_radius_gen_func``)
  and ``utils/get_ray_maps.py``, then ``pipe.infer(video=, cond_to_concat=, num_frames=,
  generator=, output_type="pt", postprocess_video=False, ...)``, whose ``["frames"]`` holds the
  new frames only (the memory frames are put in front here).

What the adapter adds around GE's code:

* GE's configs name model classes by paths relative to the working directory; they are resolved
  against the checkout (``<repo>/models/...py``), so a run works from any folder;
* the folders GE's configs point at are options (``pretrained``, ``tokenizer_pretrained``,
  ``checkpoint``), so nobody edits GE's yaml; each is checked before loading, and every failure
  (missing class file, folder or checkpoint, a checkpoint that does not match the config, an
  import error, NaN frames) becomes a ConfigError naming the file or option;
* seeded generation: ``torch.Generator`` seeded with the request's seed (GE-Base also gets
  ``noise_seed`` = seed + 1, since GE reads 0 as "unseeded"), so one seed gives the same pixels;
* GE's VAE decode with ``enable_slicing`` crashes when the VAE is timestep-conditioned (it zips
  the two chunk lists wrongly), so slicing is switched off for such a VAE (recorded in ``config()``).

Conventions followed (GE's, see docs/world-models.md): three views ``head, hand_left,
hand_right`` at the config's ``sample_size``, inputs resized with OpenCV and scaled to [-1, 1];
``n_previous`` (4) memory frames per view, a single observation filling every slot; later chunks
re-sample the memory evenly over what was generated; guidance 1.0; the frame rate of the config,
``30 // (action_chunk // chunk)`` (GE-Base fast: 5, slow and GE-Sim: 30).

GE-Base prompt: ``"<task>: <step 1>, <step 2>"`` as GE's training data write it (" the " dropped in
the step list only, each step keeping its period). GE-Sim: GE's quality prompt; 16-D actions
``[L xyz, L quat xyzw, L gripper, R ...]`` of the flange (GE's pose maps add 0.23 m along the tool
z axis themselves, so grasp-point poses are moved back by the embodiment's tool offset), the
gripper as AgiBot's raw effector position (high = closed); rows for the memory frames first;
per-view camera-to-base extrinsics for the same frames; intrinsics scaled to the model's size as
GE's ``load_cam_infos`` scales them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ewmbench.errors import ConfigError, DataError
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import ACTION_SPACES, Capabilities, FrameRule
from ewmbench.models.chunking import even_indices, generate_chunked
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.registry import Option

GE_VIEWS = ("head", "hand_left", "hand_right")
GE_CONFIGS = {
    "ge-base": "configs/ltx_model/video_model_infer_slow.yaml",
    "ge-sim": "configs/cosmos_model/acwm_cosmos.yaml",
}
ENTRY_FUNCTIONS = ("load_config", "prepare_model")
# The components prepare_model builds from a class named in the config (`<kind>_class` and
# `<kind>_class_path`): a path ending in .py is a file of the checkout.
CLASS_KINDS = ("tokenizer", "textenc", "vae", "diffusion_model", "diffusion_scheduler", "pipeline")
# GE's scripts put the checkout's root first on sys.path and import these top-level packages.
GE_PACKAGES = ("utils", "models", "data", "runner", "web_infer_utils")
GE_DEFAULT_FPS = 30  # the `default_fps` of GE's infer scripts
GE_SIM_PROMPT = "best quality, consistent and smooth motion, realistic, clear and distinct."
GE_TOOL_OFFSET_M = 0.23  # GE's pose maps move each end-effector pose this far along its tool z axis
# AgiBot's raw effector position, high = closed; GE's bundled GE-Sim samples hold 35.0-35.6 with
# the fingers open and 117-123 holding a handle.
GE_GRIPPER_CLOSED, GE_GRIPPER_OPEN = 120.0, 35.0


def ge_prompt(instruction: str, substeps: list[str]) -> str:
    """GE-Base's prompt as GE's training data write it: ``"<task>: <step 1>, <step 2>"``.

    The steps are joined with ", " as given (AgiBot's keep their trailing periods) and " the " is
    dropped in the step list only; the task keeps its words (a trailing period goes: AgiBot's task
    names have none). Without steps the prompt is the task alone, one of GE's three caption forms.
    """
    task = instruction.strip().rstrip(".")
    steps = [s.strip() for s in substeps if s.strip()]
    if not steps:
        return task
    return f"{task}: {', '.join(steps).replace(' the ', ' ')}"


def ge_fps(data_train: dict) -> int:
    """The frame rate of a GE config, as GE's infer scripts compute it: 30 // (action_chunk // chunk)."""
    if "action_chunk" not in data_train:
        return GE_DEFAULT_FPS
    return GE_DEFAULT_FPS // (int(data_train["action_chunk"]) // int(data_train["chunk"]))


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


def ge_intrinsics(intrinsics: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Intrinsics at the model's (H, W) as GE's ``load_cam_infos`` scales them: fx, cx by the width
    ratio, fy, cy by the height ratio (no pixel-centre shift)."""
    k = np.array(intrinsics, dtype=np.float64)
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    k[0, 0] *= sx
    k[0, 2] *= sx
    k[1, 1] *= sy
    k[1, 2] *= sy
    return k


def shift_along_tool_z(actions16: np.ndarray, metres: float) -> np.ndarray:
    """(T, 16) poses moved ``metres`` along each arm's tool z axis (a copy)."""
    from scipy.spatial.transform import Rotation

    out = np.array(actions16, dtype=np.float64)
    if metres == 0.0:
        return out
    for arm in range(2):
        pose = out[:, 8 * arm : 8 * arm + 8]
        pose[:, 0:3] += Rotation.from_quat(pose[:, 3:7]).as_matrix()[:, :, 2] * metres
    return out


# ---------------------------------------------------------------------------- the checkout


class GECheckout:
    """A Genie-Envisioner checkout, imported the way GE's scripts import it (root first on sys.path)."""

    def __init__(self, repo: Path, entry_script: str, model: str = "ge"):
        self.repo = Path(repo).resolve()
        self.model = model
        self.script = self.repo / entry_script
        if not self.repo.is_dir():
            raise ConfigError(
                f"model {model!r}: repo {repo} is not a folder (expected a Genie-Envisioner checkout)"
            )
        if not self.script.is_file():
            raise ConfigError(
                f"model {model!r}: {self.repo} is not a Genie-Envisioner checkout with {entry_script} (its inference entry point)"
            )
        self.entry = self.import_entry()

    def forget_other_checkouts(self) -> None:
        """Drop modules a different checkout imported under GE's top-level names (``utils``,
        ``models``, the class files' names), so this checkout's own files are the ones imported."""
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if not file or name.split(".")[0] not in GE_PACKAGES and not self.is_ge_class_module(name):
                continue
            if not Path(file).resolve().is_relative_to(self.repo):
                del sys.modules[name]

    @staticmethod
    def is_ge_class_module(name: str) -> bool:
        # GE's import_custom_class registers a class file under its bare file name.
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        return (
            "." not in name
            and spec is not None
            and spec.origin is not None
            and "models" in Path(spec.origin).parts
        )

    def import_entry(self):
        self.forget_other_checkouts()
        root = str(self.repo)
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
        name = f"ewmbench_ge_{self.script.stem}"
        spec = importlib.util.spec_from_file_location(name, self.script)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"model {self.model!r}: importing {self.script} failed ({type(exc).__name__}: {exc}); "
                'install `pip install "ewmbench[ge]"` (not GE\'s requirements.txt, which downgrades torch, '
                "diffusers and transformers); see docs/world-models.md"
            ) from None
        except Exception as exc:  # the checkout's own module-level code
            raise ConfigError(
                f"model {self.model!r}: importing {self.script} failed ({type(exc).__name__}: {exc})"
            ) from None
        missing = [f for f in ENTRY_FUNCTIONS if not callable(getattr(module, f, None))]
        if missing:
            raise ConfigError(
                f"model {self.model!r}: {self.script} has no {', '.join(missing)} (GE's entry points {', '.join(ENTRY_FUNCTIONS)} are expected)"
            )
        return module

    def import_module(self, name: str):
        """A module of the checkout (``utils.get_traj_maps``), or a ConfigError naming its file."""
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"model {self.model!r}: the checkout {self.repo} has no importable {name.replace('.', '/')}.py ({exc})"
            ) from None

    def load_config(self, path: Path):
        """GE's ``load_config``, then every class path resolved against the checkout."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"model {self.model!r}: config {path} does not exist (option config=FILE)")
        try:
            args = self.entry.load_config(str(path))
        except Exception as exc:  # yaml's errors
            raise ConfigError(
                f"model {self.model!r}: config {path} could not be read ({type(exc).__name__}: {exc})"
            ) from None
        for kind in CLASS_KINDS:
            key = f"{kind}_class_path"
            source = getattr(args, key, None)
            if not isinstance(source, str) or not source.endswith(".py") or os.path.isabs(source):
                continue
            file = self.repo / source
            if not file.is_file():
                raise ConfigError(
                    f"model {self.model!r}: config {path} sets {key}: {source}, and {file} does not exist"
                )
            setattr(args, key, str(file))
        return args

    def config_class(self, args, kind: str):
        """The class the config names for ``kind``, imported with GE's own ``import_custom_class``."""
        utils = self.import_module("utils")
        return utils.import_custom_class(
            getattr(args, f"{kind}_class"), getattr(args, f"{kind}_class_path", "transformers")
        )


def open_checkout(repo: Path | str, entry_script: str, model: str = "ge") -> GECheckout:
    return GECheckout(Path(repo), entry_script, model)


def checkpoint_tensors(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a safetensors file, or of a folder of shards with GE's index file."""
    from safetensors import safe_open

    files = [path]
    if path.is_dir():
        index = path / "diffusion_pytorch_model.safetensors.index.json"
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        files = [path / f for f in sorted(set(weight_map.values()))]
    shapes = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


def checkpoint_mismatch(model_shapes: dict, checkpoint_shapes: dict) -> list[str]:
    """What GE's non-strict loader would leave random or drop: the model's tensors the checkpoint
    lacks, and tensors whose shapes differ (checkpoint tensors the model does not use are allowed)."""
    problems = [f"{k} missing" for k in model_shapes if k not in checkpoint_shapes]
    problems += [
        f"{k} {list(checkpoint_shapes[k])} in the checkpoint, {list(shape)} in the model"
        for k, shape in model_shapes.items()
        if k in checkpoint_shapes and tuple(checkpoint_shapes[k]) != tuple(shape)
    ]
    return problems


# ---------------------------------------------------------------------------- the adapters


class GECheckoutModel(WorldModel):
    """What GE-Base and GE-Sim share: the checkout, its config and components, windows and chunks."""

    entry_script: str = ""
    needs_weights = True
    needs_gpu = True
    needs_also = (
        "your Genie-Envisioner checkout (repo=DIR)",
        "the ge extra (einops, tensorboard, sentencepiece)",
    )
    status = (
        "run end to end on the real GE code (AgibotTech/Genie-Envisioner 7e007c7) with tiny random weights "
        "built from GE's own classes, on CPU; not run with the released checkpoints"
    )

    @classmethod
    def shared_options(cls) -> tuple[Option, ...]:
        return (
            Option("repo", Path, None, "your Genie-Envisioner checkout (required)"),
            Option("config", Path, None, f"GE inference config (default: <repo>/{GE_CONFIGS[cls.name]})"),
            Option(
                "checkpoint",
                Path,
                None,
                "the GE weights (.safetensors); overrides the config's diffusion_model.model_path",
            ),
            Option(
                "pretrained",
                Path,
                None,
                "folder with the backbone's vae/ (and tokenizer/, text_encoder/); overrides the config's pretrained_model_name_or_path",
            ),
            Option(
                "tokenizer_pretrained",
                Path,
                None,
                "folder with tokenizer/ and text_encoder/; overrides the config's tokenizer_pretrained_model_name_or_path",
            ),
            Option("steps", int, None, "denoising steps (default: the config's num_inference_step)", 1, 1000),
            Option(
                "fps",
                float,
                None,
                "the model's frame rate (default: the config's, 30 // (action_chunk // chunk))",
                1.0,
                240.0,
            ),
            Option(
                "check_checkpoint",
                bool,
                True,
                "refuse a checkpoint that does not match the config (false: load non-strictly, as GE's scripts do)",
            ),
        )

    def __init__(self, **options):
        super().__init__(**options)
        if self.settings["repo"] is None:
            raise ConfigError(
                f"model {self.name!r} needs --model-option repo=DIR (your Genie-Envisioner checkout); see docs/world-models.md"
            )
        self.checkout: GECheckout | None = None
        self.pipe = None
        self.args = None
        self.notes: list[str] = []

    # ------------------------------------------------------------------ checkout and config

    @property
    def repo(self) -> Path:
        return Path(self.settings["repo"]).expanduser()

    @property
    def config_path(self) -> Path:
        return (
            Path(self.settings["config"]).expanduser()
            if self.settings["config"]
            else self.repo / GE_CONFIGS[self.name]
        )

    def check_available(self) -> None:
        if not self.repo.is_dir():
            raise ConfigError(
                f"model {self.name!r}: repo {self.repo} is not a folder (expected a Genie-Envisioner checkout)"
            )
        if not (self.repo / self.entry_script).is_file():
            raise ConfigError(
                f"model {self.name!r}: {self.repo} is not a Genie-Envisioner checkout with {self.entry_script} (its inference entry point)"
            )
        if not self.config_path.is_file():
            raise ConfigError(
                f"model {self.name!r}: config {self.config_path} does not exist (option config=FILE)"
            )
        for option in ("checkpoint", "pretrained", "tokenizer_pretrained"):
            value = self.settings[option]
            if value is not None and not Path(value).expanduser().exists():
                raise ConfigError(f"model {self.name!r}: option {option}={value}: {value} does not exist")

    def configure(self, args) -> None:
        """Apply the options to GE's config and check every path it names, before GE loads anything."""
        where = f"model {self.name!r}: config {self.config_path}"
        for option, key in (
            ("pretrained", "pretrained_model_name_or_path"),
            ("tokenizer_pretrained", "tokenizer_pretrained_model_name_or_path"),
        ):
            if self.settings[option] is not None:
                setattr(args, key, str(Path(self.settings[option]).expanduser().resolve()))
        if self.settings["checkpoint"] is not None:
            args.diffusion_model["model_path"] = str(Path(self.settings["checkpoint"]).expanduser().resolve())
        pretrained = getattr(args, "pretrained_model_name_or_path", None)
        text_root = getattr(args, "tokenizer_pretrained_model_name_or_path", pretrained)
        text_option = (
            "tokenizer_pretrained"
            if hasattr(args, "tokenizer_pretrained_model_name_or_path")
            else "pretrained"
        )
        needed = [(text_root, sub, text_option) for sub in ("tokenizer", "text_encoder")]
        if not getattr(args, "vae_path", None):
            needed.append((pretrained, "vae", "pretrained"))
        for root, sub, option in needed:
            if not root or not (Path(str(root)) / sub).is_dir():
                raise ConfigError(
                    f"{where}: {root}/{sub} is not a folder; pass --model-option {option}=DIR, the folder holding "
                    f"{sub}/ (see docs/world-models.md for which backbone files go there)"
                )
        checkpoint = Path(str(args.diffusion_model.get("model_path", "")))
        if not checkpoint.exists():
            raise ConfigError(
                f"{where}: the checkpoint {checkpoint} (diffusion_model.model_path) does not exist; "
                "pass --model-option checkpoint=FILE"
            )
        self.checkpoint = checkpoint

    def load(self, device: str) -> None:
        import torch

        self.check_available()
        self.device = device
        self.checkout = open_checkout(self.repo, self.entry_script, self.name)
        args = self.checkout.load_config(self.config_path)
        try:
            train = args.data["train"]
            self.n_prev = int(train["n_previous"])
            self.chunk = int(train["chunk"])
            self.size = (int(train["sample_size"][0]), int(train["sample_size"][1]))
            self.cameras = list(train.get("valid_cam", GE_VIEWS))
            self.fps = float(self.settings["fps"] or ge_fps(train))
            self.action_chunk = int(train.get("action_chunk", self.chunk))
        except (AttributeError, KeyError, TypeError, IndexError, ValueError, ZeroDivisionError) as exc:
            raise ConfigError(
                f"model {self.name!r}: {self.config_path} lacks data.train n_previous, chunk, action_chunk or sample_size ({type(exc).__name__}: {exc})"
            ) from None
        if tuple(self.cameras) != GE_VIEWS:
            raise ConfigError(
                f"model {self.name!r}: {self.config_path} names cameras {self.cameras}; this adapter feeds {list(GE_VIEWS)} in that order"
            )
        self.steps = int(self.settings["steps"] or getattr(args, "num_inference_step", 0) or 50)
        self.configure(args)
        self.args = args
        self.dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            loaded = self.checkout.entry.prepare_model(args, dtype=self.dtype, device=device)
        except Exception as exc:
            raise ConfigError(
                f"model {self.name!r}: GE's prepare_model failed on config {self.config_path} "
                f"(checkpoint {self.checkpoint}): {type(exc).__name__}: {exc}"
            ) from None
        _, _, self.vae, diffusion_model, _, self.pipe = loaded
        if self.settings["check_checkpoint"]:
            self.check_checkpoint(diffusion_model)
        if getattr(self.vae, "use_slicing", False) and getattr(
            self.vae.config, "timestep_conditioning", False
        ):
            # GE's sliced decode zips the latent and timestep chunks wrongly and crashes.
            self.vae.disable_slicing()
            self.notes.append("VAE slicing disabled (GE's sliced decode fails with timestep conditioning)")
        self.temporal_ratio = int(getattr(self.vae, "temporal_compression_ratio", 8))

    def check_checkpoint(self, diffusion_model) -> None:
        shapes = {k: tuple(v.shape) for k, v in diffusion_model.state_dict().items()}
        problems = checkpoint_mismatch(shapes, checkpoint_tensors(self.checkpoint))
        if problems:
            raise ConfigError(
                f"model {self.name!r}: checkpoint {self.checkpoint} does not match diffusion_model.config in "
                f"{self.config_path}: {len(problems)} of {len(shapes)} tensors ({'; '.join(problems[:3])}); "
                "is it the config for this checkpoint? (check_checkpoint=false loads it anyway, as GE does)"
            )

    def capabilities_now(self) -> Capabilities:
        if self.args is None:
            return self.capabilities
        return replace(self.capabilities, native_size=self.size, fps=self.fps, chunk_frames=self.chunk + 1)

    def config(self) -> dict:
        out = super().config()
        if self.args is not None:
            out.update(
                {
                    "n_previous": self.n_prev,
                    "chunk": self.chunk,
                    "action_chunk": self.action_chunk,
                    "fps": self.fps,
                    "steps": self.steps,
                    "sample_size": list(self.size),
                    "cameras": self.cameras,
                    "config_file": str(self.config_path),
                    "checkpoint_file": str(self.checkpoint),
                    "dtype": str(self.dtype).removeprefix("torch."),
                    "notes": list(self.notes),
                }
            )
        return out

    # ------------------------------------------------------------------ generation

    def timed(self, request: GenerationRequest) -> GenerationRequest:
        """The request at the model's frame rate (frames, memory indices, actions, extrinsics)."""
        fps, source = self.fps, request.fps or self.fps
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
            # GE makes whole chunks; the frames asked for are the first of them
            whole = self.window(replace(timed, num_frames=window))
            result = GenerationResult({v: f[: timed.num_frames] for v, f in whole.frames.items()})
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
            "steps": self.steps,
        }
        return GenerationResult(result.frames, info=info)

    def memory_input(self, request: GenerationRequest) -> np.ndarray:
        """(views, 3, n_previous, H, W) in [-1, 1]: the memory frames spread over the history."""
        height, width = self.size
        return np.stack(
            [
                to_model_input(
                    request.memory_frames[v][even_indices(len(request.memory_frames[v]), self.n_prev)],
                    height,
                    width,
                )
                for v in GE_VIEWS
            ]
        )

    def window(self, request: GenerationRequest) -> GenerationResult:
        """One call of GE's pipeline: memory frames of every view in, the current + new frames out."""
        import torch

        memory = self.memory_input(request)
        generator = torch.Generator(device=self.device).manual_seed(int(request.seed))
        with torch.inference_mode():
            new = self.infer(request, torch.from_numpy(memory).to(self.device, self.dtype), generator)
        new = new.detach().float().cpu().numpy() if hasattr(new, "detach") else np.asarray(new, np.float32)
        height, width = self.size
        expected = (len(GE_VIEWS), 3, self.chunk, height, width)
        if new.shape != expected:
            raise ConfigError(
                f"model {self.name!r}: GE's pipeline returned new frames of shape {new.shape}, expected {expected} "
                f"(views, 3, chunk, H, W) from config {self.config_path}"
            )
        if not np.isfinite(new).all():
            raise ConfigError(
                f"model {self.name!r}: GE's pipeline returned NaN or infinite frames for "
                f"{request.task}/{request.episode} (checkpoint {self.checkpoint}, config {self.config_path}); "
                "a checkpoint that does not fit the config, or an overflow in this dtype"
            )
        video = np.concatenate([memory[:, :, -1:], np.clip(new, -1.0, 1.0)], axis=2)
        return GenerationResult({view: from_model_output(video[i]) for i, view in enumerate(GE_VIEWS)})

    def infer(self, request: GenerationRequest, memory, generator):
        """GE's pipeline call; returns the new frames (views, 3, chunk, H, W)."""
        raise NotImplementedError


class GEBaseModel(GECheckoutModel):
    name = "ge-base"
    description = "GE-Base (Genie Envisioner, LTX-Video 2B backbone) from your checkout: instruction + 3-view memory -> 3-view video."
    entry_script = "video_gen_examples/infer.py"
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

    def infer(self, request: GenerationRequest, memory, generator):
        # GE's own call in video_gen_examples/infer.py, video only; `generator` also seeds the
        # decode noise of a timestep-conditioned VAE, which `noise_seed` does not reach.
        preds = self.pipe.infer(
            image=memory,
            prompt=[ge_prompt(request.instruction, request.substeps)],
            negative_prompt="",
            num_inference_steps=self.steps,
            decode_timestep=0.03,
            decode_noise_scale=0.025,
            height=self.size[0],
            width=self.size[1],
            n_view=len(GE_VIEWS),
            guidance_scale=1.0,
            return_action=False,
            n_prev=self.n_prev,
            chunk=(self.chunk - 1) // self.temporal_ratio + 1,
            return_video=True,
            noise_seed=int(request.seed) % (2**31 - 1) + 1,
            action_chunk=self.action_chunk,
            history_action_state=None,
            pixel_wise_timestep=getattr(self.args, "pixel_wise_timestep", False),
            n_chunk=1,
            generator=generator,
        )[0]
        return preds["video"][:, :, self.n_prev :]


GEBaseModel.options = GEBaseModel.shared_options()


class GESimModel(GECheckoutModel):
    name = "ge-sim"
    description = "GE-Sim (Genie Envisioner, Cosmos-Predict2 2B backbone) from your checkout: actions + calibration + 3-view memory -> 3-view video."
    entry_script = "gesim_video_gen_examples/infer_gesim.py"
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

    def __init__(self, **options):
        super().__init__(**options)
        if self.settings["gripper_closed"] == self.settings["gripper_open"]:
            raise ConfigError("model 'ge-sim': gripper_closed and gripper_open must differ")

    @property
    def gripper_range(self) -> tuple[float, float]:
        return (float(self.settings["gripper_closed"]), float(self.settings["gripper_open"]))

    def flange_shift(self, request: GenerationRequest) -> float:
        """Metres to move the request's poses along tool z so that GE's own 0.23 m lands on the
        embodiment's grasp point: (its tool offset) - 0.23."""
        from ewmbench.models.conditioning import (
            embodiment,
        )  # scipy: loaded when an adapter conditions on poses

        offset = self.settings["tool_offset"]
        if offset is None:
            offset = embodiment(request.embodiment).tool_offset_m
        return float(offset) - GE_TOOL_OFFSET_M

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

    def ge_actions(self, request: GenerationRequest, rows: list[int]) -> np.ndarray:
        """(len(rows), 16) GE-Sim actions: flange poses, quaternions xyzw, raw gripper values."""
        from ewmbench.models.conditioning import euler14_to_quat16

        picked = request.actions[np.minimum(rows, len(request.actions) - 1)]
        return shift_along_tool_z(euler14_to_quat16(picked, self.gripper_range), self.flange_shift(request))

    def conditioning_maps(self, request: GenerationRequest):
        """(views, 9, n_previous + chunk, H, W): the checkout's pose maps (3) and ray maps (6), for
        the memory frames' rows, then the chunk's new frames, drawn as ``infer_gesim.py`` draws them."""
        import torch

        traj_maps = self.checkout.import_module("utils.get_traj_maps")
        ray_maps = self.checkout.import_module("utils.get_ray_maps")
        picks = even_indices(len(request.memory_indices), self.n_prev)
        rows = [request.memory_indices[i] for i in picks] + list(
            range(request.start_frame + 1, request.start_frame + 1 + self.chunk)
        )
        actions = torch.FloatTensor(self.ge_actions(request, rows))
        c2w = torch.FloatTensor(
            np.stack(
                [request.extrinsics[v][np.minimum(rows, len(request.extrinsics[v]) - 1)] for v in GE_VIEWS]
            )
        )
        height, width = self.size
        intrinsics = torch.FloatTensor(
            np.stack(
                [
                    ge_intrinsics(request.intrinsics[v], request.memory_frames[v][-1].shape[:2], self.size)
                    for v in GE_VIEWS
                ]
            )
        )
        sample_size = [height, width]
        trajs = traj_maps.get_traj_maps(
            actions,
            torch.linalg.inv(c2w),
            c2w,
            intrinsics,
            sample_size,
            radius_gen_func=traj_maps.simple_radius_gen_func,
        )  # (3, views, T, H, W) in [0, 1]
        trajs = trajs * 2 - 1
        views, frames = c2w.shape[:2]
        rays_o, rays_d = ray_maps.get_ray_maps(
            intrinsics.unsqueeze(dim=1).repeat(1, frames, 1, 1).reshape(-1, 3, 3),
            c2w.reshape(-1, 4, 4),
            height,
            width,
        )
        rays = torch.cat((rays_o, rays_d), dim=-1).reshape(views, frames, height, width, -1)
        rays = rays.permute(4, 0, 1, 2, 3)  # (6, views, T, H, W)
        return torch.cat((trajs, rays), dim=0).permute(1, 0, 2, 3, 4).contiguous()

    def infer(self, request: GenerationRequest, memory, generator):
        # GE's own call in gesim_video_gen_examples/infer_gesim.py. At guidance 1.0 the negative
        # prompt is never encoded.
        cond = self.conditioning_maps(request).to(self.device, self.dtype)
        return self.pipe.infer(
            video=memory.permute(0, 2, 1, 3, 4),  # (views, frames, 3, H, W)
            cond_to_concat=cond,
            prompt=[self.settings["prompt"] or GE_SIM_PROMPT],
            negative_prompt="",
            height=self.size[0],
            width=self.size[1],
            n_view=len(GE_VIEWS),
            num_frames=self.chunk,
            num_inference_steps=self.steps,
            n_prev=self.n_prev,
            guidance_scale=1.0,
            merge_view_into_width=False,
            output_type="pt",
            postprocess_video=False,
            generator=generator,
        )["frames"]

    def config(self) -> dict:
        out = super().config()
        out["prompt_used"] = self.settings["prompt"] or GE_SIM_PROMPT
        return out


GESimModel.options = GESimModel.shared_options() + (
    Option("prompt", str, None, f"the fixed prompt (default: GE's {GE_SIM_PROMPT!r})"),
    Option(
        "gripper_closed",
        float,
        GE_GRIPPER_CLOSED,
        "GE-Sim gripper value of a closed gripper (AgiBot raw effector position, high = closed)",
    ),
    Option(
        "gripper_open",
        float,
        GE_GRIPPER_OPEN,
        "GE-Sim gripper value of an open gripper (GE's samples: about 35)",
    ),
    Option(
        "tool_offset",
        float,
        None,
        "metres from the recorded pose to the grasp point along tool z (default: the embodiment's; "
        "GE adds 0.23 itself, so the poses are moved by tool_offset - 0.23)",
        -1.0,
        1.0,
    ),
)
