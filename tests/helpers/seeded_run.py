"""A run with a seeded model, in a process of its own (``python -m tests.helpers.seeded_run``).

The ``seeded-noise`` model draws every frame from ``request.seed``, so its output shows whether
trial seeds are the same from one process to the next. Prints JSON: the sha256 of every written
trial frame and the rows table.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from ewmbench.models.adapter import WorldModel
from ewmbench.models.registry import register_model
from ewmbench.models.request import GenerationRequest, GenerationResult
from ewmbench.runner import RunConfig, run


@register_model
class SeededNoise(WorldModel):
    name = "seeded-noise"
    description = "Frames of uniform noise drawn from the request's seed (tests only)."

    def generate(self, request: GenerationRequest) -> GenerationResult:
        rng = np.random.default_rng(request.seed)
        shape = (request.num_frames, request.height, request.width, 3)
        return GenerationResult({view: rng.integers(0, 256, shape, dtype=np.uint8) for view in request.views})


def main(gt: str, output: str, seed: int) -> None:
    result = run(
        RunConfig(
            output=Path(output),
            dataset=gt,
            model="seeded-noise",
            trials=2,
            seed=seed,
            metrics=["psnr"],
            cache_dir=Path(output) / "cache",
        ),
        show_progress=False,
    )
    frames = sorted((Path(output) / "seeded-noise_dataset").rglob("*.png"))
    print(
        json.dumps(
            {
                "frames": {
                    str(f.relative_to(output)): hashlib.sha256(f.read_bytes()).hexdigest() for f in frames
                },
                "rows": result.rows.to_csv(index=False),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
