"""``cosmos-predict2``: NVIDIA Cosmos-Predict2 Video2World through diffusers (a generic baseline).

Loads ``Cosmos2VideoToWorldPipeline`` (``nvidia/Cosmos-Predict2-2B-Video2World``) from
``pretrained`` or the weights manager. Published defaults: 35 steps, guidance 7.0, 93-frame
windows (4n+1), fps 16, sizes multiples of 16; by default it generates at the benchmark's size
and the dataset's frame rate. The conditioning is the memory frames as a video (one frame at the
start; later chunks get the frames re-sampled over what was generated).

The guardrail. diffusers builds NVIDIA's safety checker (the separate ``cosmos_guardrail``
package, which downloads its own models on first use) and refuses to run without one, and the
NVIDIA Open Model License forbids disabling it for NVIDIA's models. So:

* ``guardrail=true`` (default): the pipeline runs with ``cosmos_guardrail``'s checker. Without
  the package, or offline before its models were fetched once, the model is unavailable with
  that fix; nothing is generated.
* ``guardrail=false``: accepted only with a local ``pretrained`` folder (a pipeline that is not
  NVIDIA's release, such as the tiny random pipelines of the tests). A pass-through checker is
  used, and every trial's sidecar and the run's provenance record ``guardrail: false``. Whether
  that is allowed for a given checkpoint is the user's responsibility under its licence.
"""

from __future__ import annotations

from ewmbench.errors import ConfigError, Unavailable
from ewmbench.models.capabilities import Capabilities, FrameRule
from ewmbench.models.diffusers_common import SHARED_OPTIONS, DiffusersVideoModel
from ewmbench.registry import Option

COSMOS_NEGATIVE_PROMPT = (
    "The video captures a series of frames showing ugly scenes, static with no motion, motion blur, over-saturation, shaky footage, "
    "low resolution, grainy texture, pixelated images, poorly lit areas, underexposed and overexposed scenes, poor color balance, "
    "washed out colors, choppy sequences, jerky movements, low frame rate, artifacting, color banding, unnatural transitions, "
    "outdated special effects, fake elements, unconvincing visuals, poorly edited content, jump cuts, visual noise, and flickering. "
    "Overall, the video is of poor quality."
)


class PassThroughChecker:
    """Stands in for the guardrail when ``guardrail=false``: lets every prompt and video through."""

    def to(self, *args, **kwargs):
        return self

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, video):
        return video


class CosmosPredict2Model(DiffusersVideoModel):
    name = "cosmos-predict2"
    description = "Cosmos-Predict2 Video2World (diffusers): memory frames + instruction -> head-view video. A generic baseline, not robot-trained."
    pipeline_classes = ("Cosmos2VideoToWorldPipeline",)
    weight_id = "cosmos-predict2-2b-video2world"
    size_multiple = 16
    frame_rule = FrameRule(4, 1)
    # as listed (default options); capabilities_now() reflects the options chosen
    capabilities = Capabilities(
        conditioning=frozenset({"image", "text"}),
        views=("head",),
        frame_rule=FrameRule(4, 1),
        chunk_frames=93,
        memory_frames=1,
    )
    memory_frames = 1
    defaults = {"steps": 35, "guidance": 7.0, "max_frames": 93, "negative_prompt": COSMOS_NEGATIVE_PROMPT}
    published_fps = 16.0
    options = SHARED_OPTIONS + (
        Option(
            "guardrail",
            bool,
            True,
            "run NVIDIA's cosmos_guardrail checker; false only for a local non-NVIDIA pipeline folder",
        ),
    )
    needs_also = ("diffusers", "cosmos_guardrail (unless guardrail=false with a local pipeline)")
    status = "tiny random-weight pipeline on CPU only (guardrail=false); not run with real weights or the guardrail"

    def __init__(self, **options):
        super().__init__(**options)
        if not self.settings["guardrail"] and self.settings["pretrained"] is None:
            raise ConfigError(
                "model 'cosmos-predict2': guardrail=false is accepted only with a local pretrained=DIR folder; "
                "NVIDIA's licence forbids disabling the guardrail for its models"
            )

    def check_available(self) -> None:
        super().check_available()
        if self.settings["guardrail"]:
            try:
                import cosmos_guardrail  # noqa: F401
            except ImportError:
                raise Unavailable(
                    "cosmos-predict2 runs with NVIDIA's guardrail, and the cosmos_guardrail package is not installed",
                    "pip install cosmos_guardrail (it fetches its own models on first use: run once online before working offline)",
                ) from None

    def load_kwargs(self) -> dict:
        if not self.settings["guardrail"]:
            return {"safety_checker": PassThroughChecker()}
        try:
            from cosmos_guardrail import CosmosSafetyChecker

            return {"safety_checker": CosmosSafetyChecker()}
        except Exception as exc:  # its model downloads fail in many ways offline
            raise Unavailable(
                f"the Cosmos guardrail could not be set up ({type(exc).__name__}: {exc})",
                "run once with network access so cosmos_guardrail can fetch its models",
            ) from None

    def config(self) -> dict:
        return {**super().config(), "guardrail": self.settings["guardrail"]}

    def _result(self, video, fps, height, width, frames):
        result = super()._result(video, fps, height, width, frames)
        result.info["guardrail"] = self.settings["guardrail"]
        return result

    def call_kwargs(self, images, prompts, height, width, fps, frames) -> dict:
        kwargs = {
            "prompt": prompts,
            "negative_prompt": [self.settings["negative_prompt"]] * len(prompts),
            "height": height,
            "width": width,
            "num_frames": frames,
            "fps": int(round(fps)),
        }
        if all(len(frames_of) == 1 for frames_of in images):
            kwargs["image"] = [frames_of[0] for frames_of in images]
        else:
            kwargs["video"] = images
        return kwargs
