"""`ewmbench data convert ...`: real robot datasets into the benchmark's layout."""

from __future__ import annotations

from pathlib import Path

import typer

from ewmbench.cli.common import console, escape, parse_size
from ewmbench.cli.data import data_app

convert_app = typer.Typer(
    help="Convert robot datasets (LeRobot, AgiBot World) into the EWMBench ground-truth layout.",
    no_args_is_help=True,
)
data_app.add_typer(convert_app, name="convert")

ViewsOption = typer.Option(
    None,
    "--views",
    help="VIEW=CAMERA,... e.g. head=observation.images.top,hand_left=observation.images.wrist_left (head is the scored view).",
)
EpisodesOption = typer.Option(
    None, "--episodes", help="Source episode indices to convert, e.g. 0,3,10-19 (default: all)."
)
FpsOption = typer.Option(
    None, "--fps", help="Resample to this frame rate (nearest source frame); default: the source's rate."
)
SizeOption = typer.Option(
    None,
    "--size",
    help="Resize frames to WIDTHxHEIGHT (intrinsics scaled to match); default: the source's size.",
)
ImageFormatOption = typer.Option(
    "png", "--image-format", help="png (lossless, default) or jpg (smaller; the official GT uses jpg)."
)
OutputOption = typer.Option(
    ...,
    "--output",
    "-o",
    help="Ground-truth root to write: OUTPUT/<task>/<episode>/ (resumable: rerun the same command).",
)


@convert_app.command("lerobot")
def convert_lerobot_command(
    source: str = typer.Option(
        ...,
        "--source",
        help="A LeRobot dataset folder (v2.1 or v3.0), or a hub repo id (owner/name) already fetched or fetchable.",
    ),
    output: Path = OutputOption,
    views: str | None = ViewsOption,
    episodes: str | None = EpisodesOption,
    fps: float | None = FpsOption,
    size: str | None = SizeOption,
    image_format: str = ImageFormatOption,
    eef_pose: str | None = typer.Option(
        None,
        "--eef-pose",
        help="14-D end-effector poses from FEATURE or FEATURE[a:b] or FEATURE[i,j,...] (already in the sidecar's layout).",
    ),
    actions: str | None = typer.Option(
        None,
        "--actions",
        help="14-D actions from FEATURE or FEATURE[a:b] or FEATURE[i,j,...] (already in the sidecar's layout).",
    ),
    joints: str | None = typer.Option(
        None, "--joints", help="Feature holding joint positions (sidecar joint_positions; the input of --fk)."
    ),
    fk: str | None = typer.Option(
        None,
        "--fk",
        help="module:function mapping joints (T, J) to 14-D poses (T, 14), for datasets with joints only.",
    ),
    intrinsics: str | None = typer.Option(
        None,
        "--intrinsics",
        help="VIEW=FEATURE,...: features with 9 values per frame (row-major 3x3, pixels).",
    ),
    extrinsics: str | None = typer.Option(
        None,
        "--extrinsics",
        help="VIEW=FEATURE,...: features with 16 values per frame (row-major 4x4, camera-to-base).",
    ),
    revision: str | None = typer.Option(None, "--revision", help="Hub revision when --source is a repo id."),
) -> None:
    """Convert a LeRobot dataset into the EWMBench GT layout plus sidecar (source untouched)."""
    from ewmbench.data.converters.common import (
        ConvertSettings,
        parse_id_list,
        parse_views,
    )
    from ewmbench.data.converters.lerobot import (
        LeRobotMapping,
        convert_lerobot,
        resolve_source,
    )
    from ewmbench.data.converters.mapping import (
        load_forward_kinematics,
        parse_selection,
    )

    mapping = LeRobotMapping(
        views=parse_views(views),
        eef_pose=parse_selection(eef_pose, "--eef-pose"),
        actions=parse_selection(actions, "--actions"),
        joints=joints,
        fk=load_forward_kinematics(fk),
        fk_name=fk,
        intrinsics=_pairs(intrinsics, "--intrinsics"),
        extrinsics=_pairs(extrinsics, "--extrinsics"),
    )
    if fk and eef_pose:
        raise typer.BadParameter("give either --eef-pose or --fk, not both")
    settings = ConvertSettings(fps=fps, size=parse_size(size), image_format=image_format)
    report = convert_lerobot(
        resolve_source(source, revision), output, mapping, parse_id_list(episodes), settings
    )
    _print_report(report)


@convert_app.command("agibot-world")
def convert_agibot_command(
    source: Path = typer.Option(
        ...,
        "--source",
        help="An AgiBot World folder (task_info/, observations/, parameters/, proprio_stats/).",
    ),
    output: Path = OutputOption,
    views: str | None = typer.Option(
        None,
        "--views",
        help="VIEW=CAMERA,... (default head=head_color,hand_left=hand_left_color,hand_right=hand_right_color).",
    ),
    tasks: str | None = typer.Option(
        None, "--tasks", help="Task ids to convert, e.g. 327,352 (default: all)."
    ),
    episodes: str | None = typer.Option(
        None, "--episodes", help="Episode ids to convert, e.g. 648642,648649 (default: all)."
    ),
    fps: float | None = FpsOption,
    size: str | None = SizeOption,
    image_format: str = ImageFormatOption,
    gripper_max_mm: float = typer.Option(
        120.0,
        "--gripper-max-mm",
        help="Raw gripper position that counts as fully closed (AgiBot: high = closed); openness = 1 - value / this.",
    ),
) -> None:
    """Convert AgiBot World episodes (videos, proprioception, calibration) into the EWMBench GT layout."""
    from ewmbench.data.converters.agibot_world import convert_agibot_world
    from ewmbench.data.converters.common import (
        ConvertSettings,
        parse_id_list,
        parse_views,
    )

    settings = ConvertSettings(fps=fps, size=parse_size(size), image_format=image_format)
    report = convert_agibot_world(
        source,
        output,
        parse_views(views),
        parse_id_list(tasks, "--tasks"),
        parse_id_list(episodes),
        settings,
        gripper_max_mm,
    )
    _print_report(report)


def _pairs(text: str | None, option: str) -> dict[str, str] | None:
    if not text:
        return None
    pairs = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" not in item:
            raise typer.BadParameter(f"expected VIEW=FEATURE, got {item!r}", param_hint=option)
        view, feature = (p.strip() for p in item.split("=", 1))
        pairs[view] = feature
    return pairs


def _print_report(report) -> None:
    console.print(
        f"[green]converted[/] {len(report.written)} episode(s), {report.frames} frames"
        + (f"; {len(report.skipped)} already done (resumed)" if report.skipped else "")
        + f" -> {report.output}"
    )
    console.print(f"check it with: ewmbench data info {escape(report.output)}")
