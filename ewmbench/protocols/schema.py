"""The shape of a protocol file, checked once at load.

Every key a protocol may hold is declared here with its type and range; a misspelled key
(``max_dbb: 100``) is refused rather than ignored, because an ignored key silently turns a
setting off. Metrics the package does not define (a user's own, registered in code) keep free-form
settings; whether such a name is a metric at all is checked where the metric registry is known.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ewmbench.errors import ConfigError

# YAML gives ints where floats are meant (``data_range: 255``); strict mode still refuses text.
Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Dtype = Literal["float16", "bfloat16", "float32"]
# An image encoder's GPU precision: a dtype for the weights, or float32 weights under bfloat16 autocast.
EncoderDtype = Literal["float16", "bfloat16", "float32", "bfloat16-autocast"]
FrameMatching = Literal["zip_divide_by_gt", "mean_over_matched"]
OUTPUT_FORMATS = ("official", "ewmbench")  # the files a run writes: the official tool's, or ours
LOGIC_FLAGS = (
    "official_writer",
    "per_trial",
)  # where the official table puts logic flags (ewmbench/results/official.py)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class _Weighted(_Strict):
    # A model config for a random-weight encoder (tests and benchmarks build those, not users).
    random_init: dict[str, Any] | None = None


class PSNRSettings(_Strict):
    data_range: Positive
    max_db: Positive | None = None
    frame_matching: FrameMatching
    resize: Literal["bicubic"] = "bicubic"  # the only resize the code does; another value would be ignored


class SSIMSettings(_Strict):
    data_range: Positive
    frame_matching: FrameMatching
    resize: Literal["bicubic"] = "bicubic"  # the only resize the code does; another value would be ignored
    win_size: Annotated[int, Field(ge=3)]
    k1: Positive
    k2: Positive


class EncoderSettings(_Weighted):
    weights: str
    image_size: Count
    interpolation: Literal["bilinear", "bicubic"]
    mean: Annotated[list[Finite], Field(min_length=3, max_length=3)]
    std: Annotated[list[Positive], Field(min_length=3, max_length=3)]
    cosine_eps: NonNegative
    gpu_dtype: EncoderDtype
    batch_size: Count
    # Frames of several videos share a forward pass (speed only; values equal within float
    # round-off, not to the bit, so off in the built-in protocols).
    batch_across_videos: bool = False


class SceneSettings(EncoderSettings):
    cosine_axis: Literal["patch", "token"]
    clamp_min: Finite | None = None


class DiversitySettings(EncoderSettings):
    architecture: str
    quick_gelu: bool


class SamplingSettings(_Strict):
    assumed_fps: Positive
    fps: Positive
    min_frames: Count
    max_frames: Count
    frame_factor: Count
    pixel_factor: Count
    min_pixels: Count
    max_pixels: Count
    total_pixels: Count


class SemanticsSettings(_Strict):
    captioner: str
    captioner_dtype: Dtype
    prompt: str
    system_message: str
    frame_size: Annotated[list[Count], Field(min_length=2, max_length=2)] | None = None
    max_new_tokens: Count
    batch_size: Count
    sampling: SamplingSettings | None = None
    field: str
    logic_field: str
    bleu_max_n: Count
    text_encoder: str
    clip_max_tokens: Count
    clip_truncation: Literal["cut", "keep_end"]
    clip_scale: Positive
    on_error: Literal["zero", "nan"] = "zero"
    events_score: bool = False
    events_field: str = "Events"
    logic_violation: bool = False
    constraints_field: str = "Logical_Constraints"


class LPIPSSettings(_Weighted):
    weights: str
    frame_matching: FrameMatching
    batch_size: Count


class FIDSettings(_Weighted):
    weights: str
    frame_stride: Count
    batch_size: Count


class FVDSettings(_Weighted):
    weights: str
    clip_frames: Count
    clips: Literal["all", "first"]
    resolution: Count
    batch_size: Count


class TrackingSettings(_Strict):
    tracker: str
    conf: Fraction
    imgsz: Count | None = None
    frame_width: Count
    frame_height: Count
    left_class: Annotated[int, Field(ge=0)]
    right_class: Annotated[int, Field(ge=0)]
    channel_order: Literal["swapped", "correct"]
    require_track_ids: bool


class DynSettings(_Strict):
    range_epsilon: NonNegative
    wasserstein_epsilon: NonNegative
    speed_weight: NonNegative
    acceleration_weight: NonNegative


class NormalisationBounds(_Strict):
    hsd: Positive
    ndtw: Positive
    dyn: Positive


class TrajectorySettings(_Strict):
    tracking: TrackingSettings | None = None
    invalid_missing_fraction: Fraction
    spread: Literal["official_hull_edges", "hull_diameter"]
    gripper_choice: Literal["official_position", "gripper_index"]
    dtw: Literal["fastdtw", "exact", "time_aware"]
    dtw_radius: Count
    hsd_epsilon: NonNegative
    ndtw_epsilon: NonNegative
    # ewmbench-v2.1 on: distances below the detector's jitter count as 0 (DTW point distances, the
    # DYN Wasserstein distances); each non-diagonal step of the time-aware DTW costs this much.
    jitter_floor: NonNegative = 0.0
    ndtw_step_penalty: NonNegative = 0.0
    dyn: DynSettings
    normalisation: NormalisationBounds
    cap: Positive
    no_valid_gt_gripper: Literal["zero", "nan"]
    official_crash_cases: bool


METRIC_SETTINGS: dict[str, type[_Strict]] = {
    "psnr": PSNRSettings,
    "ssim": SSIMSettings,
    "scene_consistency": SceneSettings,
    "diversity": DiversitySettings,
    "semantics": SemanticsSettings,
    "lpips": LPIPSSettings,
    "fid": FIDSettings,
    "fvd": FVDSettings,
    "trajectory_consistency": TrajectorySettings,
}


class Aggregation(_Strict):
    trial_selection: Literal["all", "best_of_n"] = "all"
    selection_column: str | None = None
    overall: Literal["mean_of_rows", "mean_of_task_means"] = "mean_of_rows"


class OfficialTable(_Strict):
    """The layout of ``ewmbm_final_table.csv``: its metric columns, and those shown on trial 1 only."""

    columns: list[Annotated[str, Field(min_length=1)]] = []
    first_trial_only: list[str] = []
    logic_flags: Literal[LOGIC_FLAGS] = "per_trial"


class ProtocolFile(_Strict):
    name: Annotated[str, Field(min_length=1)]
    version: str | int | float
    description: str = ""
    # Stored precision per column ({hsd: 3}); columns not named keep full precision.
    decimals: dict[str, Annotated[int, Field(ge=0, le=12)]] | None = None
    output_format: Literal[OUTPUT_FORMATS] = "ewmbench"
    aggregation: Aggregation = Aggregation()
    official_table: OfficialTable | None = None
    metrics: dict[str, dict[str, Any] | None]


def validate_protocol(data: object, source: str) -> dict:
    """The parsed YAML of a protocol file, checked; every problem is reported with its key.

    Returns plain data (dicts), as the metrics receive it; raises :class:`ConfigError` listing
    each problem as ``<source>: <key.path>: <problem>``.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a protocol file must be a mapping of keys (name, version, metrics, ...), got {_kind(data)}"
        )
    problems: list[str] = []
    try:
        ProtocolFile.model_validate(data)
    except ValidationError as exc:
        problems += _problems(exc, ())
    metrics = data.get("metrics")
    if isinstance(metrics, dict):
        for name, settings in metrics.items():
            schema = METRIC_SETTINGS.get(str(name))
            if schema is None or not settings:
                continue  # an empty block: checked where the metric registry is known (pre-flight)
            if not isinstance(settings, dict):
                continue  # reported above
            try:
                schema.model_validate(settings)
            except ValidationError as exc:
                problems += _problems(exc, ("metrics", str(name)))
    aggregation = data.get("aggregation")
    if (
        isinstance(aggregation, dict)
        and aggregation.get("trial_selection") == "best_of_n"
        and not aggregation.get("selection_column")
    ):
        problems.append("aggregation.selection_column: required when trial_selection is best_of_n")
    if problems:
        listed = "\n  ".join(f"{source}: {p}" for p in problems)
        raise ConfigError(
            f"invalid protocol file ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  {listed}"
        )
    return data


def _problems(exc: ValidationError, prefix: tuple[str, ...]) -> list[str]:
    out = []
    for error in exc.errors():
        key = ".".join(str(p) for p in (*prefix, *error["loc"]))
        if error["type"] == "extra_forbidden":
            message = "unknown key (misspelled?)"
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            message = f"{error['msg']} (got {_shown(error.get('input'))})"
        out.append(f"{key}: {message}")
    return out


def _shown(value: object) -> str:
    text = repr(value)
    if isinstance(value, float) and math.isnan(value):
        text = "nan"
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: object) -> str:
    return "nothing (empty file)" if value is None else f"{type(value).__name__} {_shown(value)}"
