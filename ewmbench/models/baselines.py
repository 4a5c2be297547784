"""Weight-free baselines that bracket every metric: ground truth (upper) and static (lower)."""

from __future__ import annotations

import numpy as np

from ewmbench.data.video import read_video
from ewmbench.errors import DataError
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import Capabilities
from ewmbench.models.request import GenerationRequest, GenerationResult, fit_length


class GroundTruthModel(WorldModel):
    name = "ground-truth"
    description = "Returns the ground-truth video itself: the upper bound of every metric (an oracle)."
    capabilities = Capabilities(conditioning=frozenset())
    oracle = True
    status = "exact; tested on CPU"

    def generate_oracle(self, request: GenerationRequest, episode) -> GenerationResult:
        frames = {
            view: fit_length(read_video(episode.video_path(view)), request.num_frames)
            for view in request.views
        }
        return GenerationResult(frames)


class StaticModel(WorldModel):
    name = "static"
    description = "Repeats the initial frame: the lower bound (no motion at all)."
    capabilities = Capabilities(conditioning=frozenset({"image"}))
    status = "exact; tested on CPU"

    def generate(self, request: GenerationRequest) -> GenerationResult:
        frames = {}
        for view in request.views:
            memory = request.memory_frames.get(view)
            if memory is None or len(memory) == 0:
                raise DataError(f"{request.task}/{request.episode}", f"no initial frame for view {view!r}")
            frames[view] = np.repeat(memory[-1:], request.num_frames, axis=0)
        return GenerationResult(frames)
