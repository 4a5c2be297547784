"""``ltx-video``: LTX-Video image+text-to-video through diffusers (a generic single-view baseline).

Loads ``LTXImageToVideoPipeline`` (``Lightricks/LTX-Video``) or ``LTXConditionPipeline``
(0.9.5 and later) from ``pretrained`` or the weights manager. Published defaults: 50 steps,
guidance 3.0, 161-frame windows (8n+1), frame rate 25, sizes multiples of 32; decode timestep
0.05, decode noise 0.025 and image-conditioning noise 0.025 as advised from 0.9.1 on. By default
it generates at the benchmark's size (640x480 is a multiple of 32) and the dataset's frame rate,
so the runner's conforming only has to cut the window to the GT's frame count.
"""

from __future__ import annotations

from ewmbench.models.capabilities import Capabilities, FrameRule
from ewmbench.models.diffusers_common import SHARED_OPTIONS, DiffusersVideoModel
from ewmbench.registry import Option

LTX_NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"


class LTXVideoModel(DiffusersVideoModel):
    name = "ltx-video"
    description = "LTX-Video (diffusers): initial head frame + instruction -> head-view video. A generic baseline, not robot-trained."
    pipeline_classes = ("LTXImageToVideoPipeline", "LTXConditionPipeline")
    weight_id = "ltx-video"
    size_multiple = 32
    frame_rule = FrameRule(8, 1)
    # as listed (default options); capabilities_now() reflects the options chosen
    capabilities = Capabilities(
        conditioning=frozenset({"image", "text"}),
        views=("head",),
        frame_rule=FrameRule(8, 1),
        chunk_frames=161,
        memory_frames=1,
    )
    defaults = {"steps": 50, "guidance": 3.0, "max_frames": 161, "negative_prompt": LTX_NEGATIVE_PROMPT}
    published_fps = 25.0
    options = SHARED_OPTIONS + (
        Option("decode_timestep", float, 0.05, "VAE decode timestep (0.9.1 and later)", 0.0, 1.0),
        Option(
            "decode_noise_scale", float, 0.025, "noise added before VAE decoding (0.9.1 and later)", 0.0, 1.0
        ),
        Option(
            "image_cond_noise_scale",
            float,
            0.025,
            "noise on the conditioning image (LTXConditionPipeline)",
            0.0,
            1.0,
        ),
    )
    status = "tiny random-weight pipelines on CPU only (both pipeline classes); not run with real weights"

    def call_kwargs(self, images, prompts, height, width, fps, frames) -> dict:
        kwargs = {
            "prompt": prompts,
            "negative_prompt": [self.settings["negative_prompt"]] * len(prompts),
            "height": height,
            "width": width,
            "num_frames": frames,
            "frame_rate": int(round(fps)),
            "decode_timestep": self.settings["decode_timestep"],
            "decode_noise_scale": self.settings["decode_noise_scale"],
        }
        last = [frames_of[-1] for frames_of in images]  # image-to-video: the current frame
        if self.pipeline_class == "LTXConditionPipeline":
            kwargs.update(image=last, image_cond_noise_scale=self.settings["image_cond_noise_scale"])
        else:
            kwargs.update(image=last)
        return kwargs
