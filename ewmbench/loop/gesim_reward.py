"""Our judges as GE-Sim 2.0's reward client: ``JudgeReward`` satisfies ``gesim.rewards.base.RewardClient``.

gesim's ``WorldModelEnv(reward=...)`` calls ``evaluate(head_frames, task)`` after every step with
that step's head-camera frames, ``(T, H, W, 3)`` uint8, and expects per-frame scores,
``RewardResult(success (T,), progress (T,))`` float32. No reward model ships with gesim; this one
asks one of our judges (by default ``vlm``: any OpenAI-compatible server or a transformers VLM):

* the frames are judged at ``checkpoints`` prefixes, the k-th (from 1) ending at frame
  ``ceil(k * T / checkpoints) - 1``, so the last ends at the last frame (``checkpoints >= T`` judges
  every frame);
* frame ``t`` takes the verdict of the latest prefix ending at or before it: ``success`` is 1.0
  when that verdict says the task succeeded, else 0.0, and ``progress`` is the verdict's score in
  [0, 1] (the judge's reward); frames before the first checkpoint have not been judged yet and
  score 0.

Each call is judged on its own frames, as ``WorldModelEnv`` documents ("the reward model scores
this step's frames as one independent window"). Every verdict's evidence is kept in
``history`` (call index, frame index, success, score, evidence).

Example (with ``python -m gesim.server --model example`` on port 9000 and an OpenAI-compatible
VLM server)::

    from gesim import WorldModelEnv
    from ewmbench.loop.gesim_reward import JudgeReward

    reward = JudgeReward.from_judge("vlm", backend="openai", url="http://localhost:8000/v1", model="qwen2.5-vl-7b-instruct")
    with WorldModelEnv("http://127.0.0.1:9000", reward=reward) as env:
        env.reset("assets/demo_000", conditioning="episode")
        obs, success, state, info = env.step(actions)  # success (T,), info.progress (T,)
"""

from __future__ import annotations

import math

import numpy as np

from ewmbench.errors import ConfigError, Unavailable
from ewmbench.loop.judges import Judge, Rollout, make_judge


class JudgeReward:
    """A gesim ``RewardClient`` backed by one of our judges (see the module docstring)."""

    def __init__(
        self, judge: Judge, checkpoints: int = 4, substeps: list[str] | None = None, fps: float = 30.0
    ):
        if not isinstance(judge, Judge):
            raise ConfigError(f"JudgeReward needs an ewmbench judge, got {type(judge).__name__}")
        if judge.needs_world_state:
            raise ConfigError(
                f"judge {judge.name!r} reads object state, which a reward client does not get (only frames); use vlm"
            )
        if isinstance(checkpoints, bool) or not isinstance(checkpoints, int) or checkpoints < 1:
            raise ConfigError(f"JudgeReward checkpoints must be an integer >= 1, got {checkpoints!r}")
        self.judge = judge
        self.checkpoints = checkpoints
        self.substeps = list(substeps or [])
        self.fps = float(fps)
        self.history: list[dict] = []
        self._calls = 0

    @classmethod
    def from_judge(
        cls, name: str = "vlm", checkpoints: int = 4, substeps: list[str] | None = None, **options
    ):
        """A reward client over the judge registered as ``name`` with its options."""
        return cls(make_judge(name, options), checkpoints=checkpoints, substeps=substeps)

    def checkpoint_frames(self, count: int) -> list[int]:
        """The last frame of each judged prefix: evenly spaced over ``0 .. count - 1``, the last included."""
        parts = min(self.checkpoints, count)
        return sorted({math.ceil((k + 1) * count / parts) - 1 for k in range(parts)})

    def evaluate(self, head_frames: np.ndarray, task: str):
        """Score ``(T, H, W, 3)`` uint8 head-camera frames against ``task``: ``RewardResult``."""
        try:
            from gesim.rewards.base import RewardResult
        except ImportError:
            raise Unavailable(
                "JudgeReward answers with gesim's RewardResult; the gesim package is not installed",
                "pip install --no-deps -e <your GE-Sim-V2 checkout> (docs/gesim.md)",
            ) from None
        frames = np.asarray(head_frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ConfigError(
                f"JudgeReward.evaluate takes (T >= 1, H, W, 3) uint8 head frames, got {frames.shape} {frames.dtype}"
            )
        count = len(frames)
        success = np.zeros(count, dtype=np.float32)
        progress = np.zeros(count, dtype=np.float32)
        for end in self.checkpoint_frames(count):
            prefix = frames[: end + 1]
            rollout = Rollout(
                instruction=str(task),
                substeps=self.substeps,
                frames={"head": prefix},
                state=np.zeros((len(prefix), 14)),
                actions=np.zeros((len(prefix), 14)),
                fps=self.fps,
            )
            verdict = self.judge.judge(rollout)
            success[end:] = 1.0 if verdict.success else 0.0
            progress[end:] = float(np.clip(verdict.score, 0.0, 1.0))
            self.history.append(
                {
                    "call": self._calls,
                    "frame": end,
                    "success": bool(verdict.success),
                    "score": float(verdict.score),
                    "evidence": verdict.evidence,
                }
            )
        self._calls += 1
        return RewardResult(success=success, progress=progress)
