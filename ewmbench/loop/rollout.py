"""The closed loop: policy -> action chunk -> world model -> frames and state -> policy, then a judge.

``evaluate_policy`` runs one policy in one world model over a dataset's episodes and writes::

    OUTPUT/config.json                          the settings the folder is bound to (resuming with others is refused)
    OUTPUT/rollouts_dataset/<task>/<episode>/1/ the rollout in the generated layout: head view in video/,
                                                other views in ewmbench/views/, the trial sidecar in
                                                ewmbench/ (meta.json: policy, world model, state source,
                                                holds; arrays.npz: actions, eef_pose, object_pose/<name>,
                                                joint_positions for a joint-conditioned world model)
    OUTPUT/states/<task>/<episode>/1/ewmbench/  the same sidecar when nothing was rendered (views=())
    OUTPUT/verdicts/<task>/<episode>.json       status (ok / failed with the reason), verdict and its evidence
    OUTPUT/summary.json                         per-episode results, counts, success rate

A rollout whose verdict file says ``ok`` is kept when the command runs again; missing and failed
ones are run (a failure may have been a server that was down).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ewmbench.data.datasets import resolve_dataset
from ewmbench.data.layout import (
    HEAD_VIEW,
    SIDECAR_DIR,
    TRIAL_SIDECAR_FORMAT,
    Episode,
    GroundTruth,
    read_trial_meta,
    write_trial,
)
from ewmbench.data.video import video_size
from ewmbench.errors import ConfigError, DataError, EwmbenchError
from ewmbench.files import atomic_path, write_json
from ewmbench.loop.judges import Judge, JudgeError, Rollout, Verdict, make_judge
from ewmbench.loop.policies import (
    ActionChunk,
    Observation,
    Policy,
    PolicyError,
    PolicySpec,
    check_chunk,
    make_policy,
)
from ewmbench.loop.world import WorldModelError, build_step_request, step_world
from ewmbench.models.adapter import WorldModel
from ewmbench.models.checks import check_request_fits
from ewmbench.models.invoke import load_model, open_model
from ewmbench.text import for_rich

ROLLOUTS = "rollouts_dataset"
STATES = "states"
TRIAL = "1"
ROLLOUT_FORMAT = "ewmbench-rollout/1"


@dataclass
class LoopConfig:
    policy: PolicySpec
    world_model: str
    output: Path
    dataset: str = "sample"
    world_model_options: dict = field(default_factory=dict)
    judge: str | None = None  # None: state where the world model returns state, else vlm
    judge_options: dict = field(default_factory=dict)
    episodes: int | None = None  # None: every episode, taken round-robin over tasks
    horizon: int | None = None  # frames per rollout, the initial one included; None: the episode's length
    # None: the episode's views; () renders nothing (for policies that act from state alone, judged
    # by state: the reference simulator's exact outcome needs no pictures)
    views: tuple[str, ...] | None = None
    height: int | None = None  # None: the dataset's size
    width: int | None = None
    seed: int = 0
    device: str | None = (
        None  # where the world model loads (default: cuda when available); not part of the identity
    )

    def identity(self) -> dict:
        return {
            "policy": self.policy.text(),
            "world_model": self.world_model,
            "world_model_options": self.world_model_options,
            "judge": self.judge,
            "judge_options": self.judge_options,
            "dataset": str(self.dataset),
            "episodes": self.episodes,
            "horizon": self.horizon,
            "views": list(self.views) if self.views is not None else None,
            "height": self.height,
            "width": self.width,
            "seed": self.seed,
        }


def episode_seed(base_seed: int, episode: Episode) -> int:
    return (base_seed * 1_000_003 + zlib.crc32(f"{episode.task}/{episode.episode}".encode())) % (2**31)


def select_episodes(gt: GroundTruth, count: int | None) -> list[Episode]:
    """The first ``count`` episodes taken round-robin over tasks (one per task first), or all."""
    by_task: dict[str, list[Episode]] = {}
    for episode in gt.episodes:
        by_task.setdefault(episode.task, []).append(episode)
    ordered = [
        v[i]
        for i in range(max((len(v) for v in by_task.values()), default=0))
        for v in by_task.values()
        if i < len(v)
    ]
    if count is not None:
        if count < 1:
            raise ConfigError(f"--episodes must be at least 1, got {count}")
        ordered = ordered[:count]
    return ordered


def prepare_output(config: LoopConfig) -> None:
    output = Path(config.output)
    path = output / "config.json"
    identity = json.loads(json.dumps(config.identity()))
    if path.is_file():
        stored = json.loads(path.read_text()).get("identity", {})
        if stored != identity:
            changed = sorted(k for k in identity if stored.get(k) != identity[k])
            raise ConfigError(
                f"{output} holds a policy evaluation with other settings ({', '.join(changed)} differ); use a new --output folder, or the same settings to resume"
            )
    elif output.exists() and any(output.iterdir()):
        raise ConfigError(
            f"{output} exists, is not empty and is not a policy-evaluation folder; choose a new --output folder"
        )
    output.mkdir(parents=True, exist_ok=True)
    write_json(path, {"format": ROLLOUT_FORMAT, "identity": identity})


def make_world_model(name: str, options: dict, device: str | None = None) -> WorldModel:
    """The adapter with validated options, checked to take actions, loaded on ``device``."""
    model = open_model(name, options, flag="--world-model")
    conditioning = model.capabilities_now().conditioning
    if "actions" not in conditioning:
        raise ConfigError(
            f"world model {name!r} is not action-conditioned (conditioned on {sorted(conditioning)}); a policy cannot act in it"
        )
    load_model(model, device)
    return model


def check_episodes(model: WorldModel, episodes: list[Episode]) -> None:
    """Refuse, before any rollout, episodes lacking what the world model is conditioned on
    (the actions come from the policy, so only the rest is checked)."""
    for episode in episodes:
        sidecar = episode.sidecar
        present = {
            "actions": True,
            "instruction": bool(episode.instruction),
            "scene": bool(sidecar and "scene" in sidecar.meta),
        }
        if sidecar is not None:
            # the initial joint positions; later ones are the policy's commands
            present["joint_positions"] = sidecar.joint_positions is not None
            present.update({f"intrinsics/{v}": True for v in sidecar.intrinsics})
            present.update({f"extrinsics/{v}": True for v in sidecar.extrinsics})
        check_request_fits(model, episode.views, present, episode.path)


def check_joint_commands(model: WorldModel, policy: Policy, spec: PolicySpec) -> None:
    """Refuse a joint-conditioned world model with a policy that gives no joint commands: the loop
    has no inverse kinematics, so end-effector actions alone cannot drive it."""
    caps = model.capabilities_now()
    if "joints" in caps.conditioning and not policy.commands_joints():
        raise ConfigError(
            f"world model {model.name!r} takes joint-space actions ({caps.action_space}) and policy "
            f"{spec.text()!r} gives end-effector actions only (there is no inverse kinematics for its robot); "
            "use a policy that commands joints, e.g. openpi:layout=gesim-pi05,fk=module:function (docs/gesim.md)"
        )


def default_judge(model: WorldModel) -> str:
    """``state`` for world models that return object state (the simulator), else ``vlm``."""
    return "state" if model.name == "sim" else "vlm"


def evaluate_policy(config: LoopConfig, progress: bool = True, label: str | None = None) -> dict:
    """Run ``config.policy`` in ``config.world_model`` over the episodes; returns the summary.

    ``label`` names the run in progress lines (default: the policy in the world model).
    """
    gt = GroundTruth(resolve_dataset(config.dataset))
    episodes = select_episodes(gt, config.episodes)
    if config.horizon is not None and config.horizon < 2:
        raise ConfigError(
            f"--horizon must be at least 2 frames (the initial one and one action), got {config.horizon}"
        )
    model = make_world_model(config.world_model, config.world_model_options, config.device)
    check_episodes(model, episodes)
    judge = make_judge(config.judge or default_judge(model), config.judge_options)
    policy = make_policy(config.policy)  # options checked before anything is written
    if config.views == () and policy.needs_frames:
        policy.close()
        raise ConfigError(
            f"policy {config.policy.text()!r} acts on camera frames; it cannot run without rendered views"
        )
    try:
        check_joint_commands(model, policy, config.policy)
    except ConfigError:
        policy.close()
        raise
    try:
        policy.start()  # an unreachable server stops the run here, before anything is written
        prepare_output(config)
    except EwmbenchError:
        policy.close()
        raise
    output = Path(config.output)
    records = []
    try:
        for index, episode in enumerate(episodes):
            verdict_path = output / "verdicts" / episode.task / f"{episode.episode}.json"
            stored = _read_record(verdict_path)
            if stored is not None and stored.get("status") == "ok":
                records.append(stored)
                continue
            record = run_episode(config, episode, policy, model, judge, output)
            write_json(verdict_path, record)
            records.append(record)
            if progress:
                _print_progress(
                    label or f"{config.policy.label} in {config.world_model}",
                    index + 1,
                    len(episodes),
                    record,
                )
    finally:
        policy.close()
        if hasattr(model, "close"):
            model.close()
    summary = summarise(config, records, judge.name)
    write_json(output / "summary.json", summary)
    return summary


def _print_progress(label: str, done: int, total: int, record: dict) -> None:
    from rich.console import Console

    outcome = (
        f"failed: {record['reason']}"
        if record["status"] != "ok"
        else ("success" if record["verdict"]["success"] else "no success")
    )
    Console(stderr=True).print(
        for_rich(f"{label} [{done}/{total}] task {record['task']} episode {record['episode']}: {outcome}"),
        soft_wrap=True,
    )


def _read_record(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged record is simply redone


def summarise(config: LoopConfig, records: list[dict], judge: str) -> dict:
    ok = [r for r in records if r["status"] == "ok"]
    succeeded = [r for r in ok if r["verdict"]["success"]]
    failed = [r for r in records if r["status"] != "ok"]
    return {
        "format": ROLLOUT_FORMAT,
        "policy": config.policy.text(),
        "policy_label": config.policy.label,
        "world_model": config.world_model,
        "world_model_options": config.world_model_options,
        "judge": judge,
        "output": str(config.output),
        "counts": {
            "episodes": len(records),
            "judged": len(ok),
            "failed": len(failed),
            "succeeded": len(succeeded),
        },
        "success_rate": len(succeeded) / len(ok) if ok else None,
        "failures": [{"task": r["task"], "episode": r["episode"], "reason": r["reason"]} for r in failed],
        "episodes": records,
    }


def _initial_observation(
    episode: Episode, views: tuple[str, ...], height: int, width: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The dataset's initial frames (at the rollout's size), state and first action row."""
    frames = {}
    for view in views:
        frame = episode.initial_frame(view)
        if frame.shape[:2] != (height, width):
            from PIL import Image

            frame = np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))
        frames[view] = frame
    sidecar = episode.sidecar
    state = sidecar.eef_pose[0] if sidecar is not None and sidecar.eef_pose is not None else None
    first = sidecar.actions[0] if sidecar is not None and sidecar.actions is not None else state
    if state is None:
        if first is None:
            raise DataError(
                episode.path,
                "no initial end-effector state (sidecar eef_pose or actions); a policy needs proprioception",
            )
        state = first
    return frames, np.asarray(state, dtype=np.float64), np.asarray(first, dtype=np.float64)


def run_episode(
    config: LoopConfig, episode: Episode, policy: Policy, model: WorldModel, judge: Judge, output: Path
) -> dict:
    """One rollout, written and judged; any failure is returned as a record with its reason."""

    started = time.perf_counter()
    base = {"task": episode.task, "episode": episode.episode, "trial": TRIAL, "policy": config.policy.text()}
    try:
        sidecar = episode.sidecar
        length, gt_height, gt_width = video_size(episode.video_path())
        horizon = config.horizon or length
        height, width = config.height or gt_height, config.width or gt_width
        views = (
            tuple(config.views)
            if config.views is not None
            else tuple(sidecar.views if sidecar else (HEAD_VIEW,))
        )
        if views and HEAD_VIEW not in views:
            raise ConfigError(f"views must include {HEAD_VIEW!r} (the scored view), got {list(views)}")
        fps = sidecar.fps if sidecar else None
        meta = dict(sidecar.meta) if sidecar else {}
        substeps = list(sidecar.substeps) if sidecar else []
        instruction = episode.instruction
        seed = episode_seed(config.seed, episode)
        frames0, state0, first = _initial_observation(episode, views, height, width)
    except EwmbenchError as exc:
        return {
            **base,
            "status": "failed",
            "reason": f"episode cannot be set up: {exc}",
            "seconds": time.perf_counter() - started,
        }

    actions = first[None].copy()
    states = state0[None].copy()
    frames = {v: f[None] for v, f in frames0.items()}
    world_state: dict = {}
    state_source = "world-model"
    joints0 = (
        sidecar.joint_positions[0] if sidecar is not None and sidecar.joint_positions is not None else None
    )
    observation = Observation(frames0, state0, 0, instruction, meta, fps, joints0)
    # joint positions per action row, for a joint-conditioned model: the episode's, then the commands
    feeds_joints = "joints" in model.capabilities_now().conditioning
    joints = None if joints0 is None or not feeds_joints else np.asarray(joints0, dtype=np.float64)[None]
    calls = 0
    stopped_early = False
    try:
        policy.reset(instruction, observation)
        while len(actions) < horizon:
            answer = check_chunk(policy.act(observation))
            chunk = answer.actions[: horizon - len(actions)]
            calls += 1
            actions = np.concatenate([actions, chunk])
            if joints is not None:
                joints = np.concatenate([joints, _joint_commands(answer, joints.shape[1])[: len(chunk)]])
            request = build_step_request(
                model,
                episode,
                TRIAL,
                seed,
                actions,
                frames,
                len(chunk),
                fps=fps,
                height=height,
                width=width,
                instruction=instruction,
                substeps=substeps,
                joints=joints,
            )
            step = step_world(model, episode, request)
            frames = {v: np.concatenate([frames[v], step.frames[v]]) for v in views}
            states = np.concatenate([states, step.state])
            world_state = _extend_world_state(world_state, step.world_state, first=calls == 1)
            if step.state_source != "world-model":
                state_source = step.state_source
            observation = Observation(
                {v: f[-1] for v, f in frames.items()}, states[-1], len(actions) - 1, instruction, meta, fps
            )
            if len(actions) < horizon and judge.should_stop(
                Rollout(instruction, substeps, frames, states, actions, world_state, meta, fps)
            ):
                stopped_early = True
                break
        rollout = Rollout(instruction, substeps, frames, states, actions, world_state, meta, fps)
        verdict = judge.judge(rollout)
    except (PolicyError, WorldModelError, JudgeError) as exc:
        return {
            **base,
            "status": "failed",
            "reason": str(exc),
            "steps": int(len(actions)),
            "seconds": time.perf_counter() - started,
        }
    except EwmbenchError as exc:
        return {
            **base,
            "status": "failed",
            "reason": f"{type(exc).__name__}: {exc}",
            "steps": int(len(actions)),
            "seconds": time.perf_counter() - started,
        }
    except Exception as exc:  # a policy's or adapter's own bug must not end the whole evaluation
        return {
            **base,
            "status": "failed",
            "reason": f"{type(exc).__name__} in the loop: {exc}",
            "steps": int(len(actions)),
            "seconds": time.perf_counter() - started,
        }
    # The trial sidecar (format ewmbench-trial/1, as `ewmbench run` writes it): who acted in which
    # world model, and the per-frame arrays: actions, the state the policy saw, object poses.
    arrays = {"actions": actions, "eef_pose": states}
    if joints is not None:
        arrays["joint_positions"] = joints
    arrays.update({f"object_pose/{name}": rows for name, rows in world_state.get("object_poses", {}).items()})
    meta_out = {
        "rollout": ROLLOUT_FORMAT,
        "model": model.name,
        "oracle": model.oracle,
        "model_config": model.config(),
        "seed": seed,
        "policy": config.policy.text(),
        "policy_config": policy.config(),
        "judge": judge.name,
        "state_source": state_source,
        "embodiment": meta.get("embodiment") or meta.get("generator"),
        "views": list(views),
        "fps": fps,
        "horizon": horizon,
        "held": world_state.get("held"),
        "state": sorted(arrays),
    }
    if views:
        trial_path = write_trial(
            output / ROLLOUTS,
            episode.task,
            episode.episode,
            TRIAL,
            frames[HEAD_VIEW],
            extra_views={v: f for v, f in frames.items() if v != HEAD_VIEW},
            meta=meta_out,
            arrays=arrays,
        ).path
    else:  # nothing rendered: the same sidecar, outside the generated layout
        trial_path = output / STATES / episode.task / episode.episode / TRIAL
        write_state_only(trial_path, meta_out, arrays)
    return {
        **base,
        "status": "ok",
        "reason": "",
        "verdict": verdict.to_json(),
        "state_source": state_source,
        "steps": int(len(actions)),
        "policy_calls": calls,
        "stopped_early": stopped_early,
        "seconds": time.perf_counter() - started,
        "rollout": str(trial_path.relative_to(output)),
    }


def write_state_only(trial_path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """A trial sidecar without frames: ``<trial>/ewmbench/meta.json`` and ``arrays.npz``."""

    folder = trial_path / SIDECAR_DIR
    with atomic_path(folder / "arrays.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})
    write_json(folder / "meta.json", {"format": TRIAL_SIDECAR_FORMAT, **meta}, sort_keys=True)


def read_rollout(trial_path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """A stored rollout's sidecar: its meta and its arrays (actions, eef_pose, object poses)."""

    meta = read_trial_meta(trial_path)
    if meta is None or meta.get("rollout") != ROLLOUT_FORMAT:
        raise DataError(Path(trial_path) / SIDECAR_DIR / "meta.json", "not a rollout's sidecar")
    with np.load(Path(trial_path) / SIDECAR_DIR / "arrays.npz", allow_pickle=False) as data:
        return meta, {key: data[key] for key in data.files}


def _joint_commands(answer: ActionChunk, width: int) -> np.ndarray:
    """The chunk's joint commands, which a joint-conditioned world model needs, in the episode's
    joint layout (``width`` columns, sidecar ``joint_positions``); a :class:`PolicyError` if not."""
    if answer.joints is None:
        raise PolicyError(
            "the world model takes joint-space actions and the policy answered without joint commands"
        )
    if answer.joints.shape[1] != width:
        raise PolicyError(
            f"the policy commanded {answer.joints.shape[1]} joints; the world model takes the episode's "
            f"{width} (sidecar joint_positions)"
        )
    return answer.joints


def _extend_world_state(so_far: dict, chunk: dict, first: bool) -> dict:
    """Append a chunk's world state (its row 0 is the current frame, already held unless first)."""
    skip = 0 if first else 1
    out = dict(so_far)
    if "object_poses" in chunk:
        old = so_far.get("object_poses", {})
        out["object_poses"] = {
            name: np.concatenate([old[name], rows[skip:]]) if name in old else np.asarray(rows[skip:])
            for name, rows in chunk["object_poses"].items()
        }
    if "held" in chunk:
        out["held"] = list(so_far.get("held", [])) + list(chunk["held"][skip:])
    return out


def load_summary(output: Path) -> dict:
    path = Path(output) / "summary.json"
    if not path.is_file():
        raise DataError(path, "no policy-evaluation summary here")
    return json.loads(path.read_text())


__all__ = [
    "LoopConfig",
    "Verdict",
    "evaluate_policy",
    "run_episode",
    "select_episodes",
    "summarise",
    "load_summary",
]
