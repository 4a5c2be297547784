"""Safe intake of submission bundles: check and unpack into a private folder, or refuse with a code.

Nothing is extracted with ``tarfile.extractall``. The archive is read as a stream, each member's
header is checked before any byte is written, and only regular files with expected names are
written, into the caller's temporary folder, created exclusively. A refusal is an
:class:`IntakeError` carrying WorldArena 2.0's error code where it has one, and ours otherwise:

=====================  ====================================================================
code                   refused because
=====================  ====================================================================
missing_tar_gz         no ``.tar.gz`` file at the path (or none in the folder given)
multiple_tar_gz_found  the folder given holds more than one ``.tar.gz``
extract_failed         not a readable gzip-compressed tar archive
unsafe_tar_path        absolute path, ``..``, backslash, symbolic or hard link, device, FIFO,
                       sparse file, or a duplicate name
too_many_entries       more members than the limit (ours)
archive_too_large      more bytes after decompression than the limit, or a compression ratio
                       above the limit: a decompression bomb (ours)
unexpected_file        a file outside the bundle format (ours)
missing_model_readme   no ``model_readme.md`` at the root
metadata_invalid       the front matter is missing, not a mapping, or misses or mistypes a field
missing_videos         no ``videos/`` folder
empty_video_dir        ``videos/`` holds no ``.mp4``
video_name_invalid     a video not named ``<task>__<episode>__<trial>.mp4`` (ours)
missing_record         no ``ewmbench/record.json`` where the entry is taken from it (ours)
record_invalid         the record or rows do not parse, or do not match the videos (ours)
=====================  ====================================================================
"""

from __future__ import annotations

import csv
import io
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ewmbench.errors import EwmbenchError
from ewmbench.leaderboard.bundle import (
    README,
    RECORD,
    ROWS,
    VIDEOS,
    parse_video_name,
    split_front_matter,
)
from ewmbench.leaderboard.entries import Entry
from ewmbench.record import RunRecord

CHUNK = 1 << 20


class IntakeError(EwmbenchError):
    """A bundle refused: ``code`` (WorldArena's where it has one) and a sentence."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"[{code}] {message}")


@dataclass(frozen=True)
class Limits:
    max_entries: int = 20_000
    max_bytes: int = 20 * 2**30  # after decompression
    max_file_bytes: int = 2 * 2**30
    max_ratio: float = 200.0  # decompressed / compressed bytes
    ratio_floor: int = (
        64 * 2**20
    )  # the ratio is judged once this many bytes are declared (tar padding compresses well)


DEFAULT_LIMITS = Limits()


@dataclass
class Bundle:
    archive: Path
    root: Path  # the private folder the bundle was unpacked into
    metadata: dict
    readme: str
    videos: dict[tuple[str, str, str], Path]
    record: object | None = None  # RunRecord when the bundle carries one
    sha256: str = ""
    notes: list[str] = field(default_factory=list)


def find_archive(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        archives = sorted(p for p in path.iterdir() if p.name.endswith(".tar.gz") and p.is_file())
        if not archives:
            raise IntakeError("missing_tar_gz", f"{path} holds no .tar.gz bundle")
        if len(archives) > 1:
            raise IntakeError(
                "multiple_tar_gz_found",
                f"{path} holds {len(archives)} .tar.gz files; a submission has exactly one",
            )
        return archives[0]
    if not path.is_file() or not path.name.endswith((".tar.gz", ".tgz")):
        raise IntakeError("missing_tar_gz", f"{path} is not a .tar.gz file")
    return path


def _safe_name(name: str) -> str:
    """The member's normalised relative name, or an unsafe_tar_path refusal."""
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or name.startswith("/")
        or (len(name) > 1 and name[1] == ":")
    ):
        raise IntakeError("unsafe_tar_path", f"member {name!r} has an absolute or malformed path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise IntakeError("unsafe_tar_path", f"member {name!r} points outside the bundle ('..')")
    if not parts:
        return ""
    return posixpath.join(*parts)


def _expected(name: str, is_dir: bool) -> bool:
    if is_dir:
        return name in ("", VIDEOS, "ewmbench")
    if name in (README, RECORD, ROWS):
        return True
    folder, _, base = name.rpartition("/")
    return folder == VIDEOS and base.endswith(".mp4") and "/" not in base


def unpack(archive: Path, workdir: Path, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """Check and unpack ``archive`` into ``workdir`` (which must be empty); returns the file names."""
    workdir = Path(workdir).resolve()
    if not workdir.is_dir() or any(workdir.iterdir()):
        raise ValueError(f"{workdir}: unpack needs an existing, empty private folder")
    compressed = max(archive.stat().st_size, 1)
    seen: set[str] = set()
    files: list[str] = []
    declared = 0
    written = 0
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for count, member in enumerate(tar, start=1):
                if count > limits.max_entries:
                    raise IntakeError(
                        "too_many_entries", f"the bundle has more than {limits.max_entries} members"
                    )
                name = _safe_name(member.name)
                if member.issym() or member.islnk():
                    raise IntakeError(
                        "unsafe_tar_path", f"member {member.name!r} is a link; links are not accepted"
                    )
                if (
                    member.ischr()
                    or member.isblk()
                    or member.isfifo()
                    or member.issparse()
                    or not (member.isfile() or member.isdir())
                ):
                    raise IntakeError(
                        "unsafe_tar_path", f"member {member.name!r} is a device, FIFO or other special file"
                    )
                if name in seen:
                    raise IntakeError("unsafe_tar_path", f"member {name!r} appears twice")
                seen.add(name)
                if not _expected(name, member.isdir()):
                    raise IntakeError(
                        "unexpected_file",
                        f"{name!r} is not part of a bundle (model_readme.md, videos/*.mp4, ewmbench/record.json, ewmbench/rows.csv)",
                    )
                if member.isdir():
                    if name:
                        (workdir / name).mkdir(
                            parents=True, exist_ok=True
                        )  # an expected name: videos/ or ewmbench/
                    continue
                declared += member.size
                if member.size > limits.max_file_bytes or declared > limits.max_bytes:
                    raise IntakeError(
                        "archive_too_large",
                        f"the bundle unpacks to more than {limits.max_bytes} bytes (or a file over {limits.max_file_bytes}); refused before writing it",
                    )
                if declared >= limits.ratio_floor and declared / compressed > limits.max_ratio:
                    raise IntakeError(
                        "archive_too_large",
                        f"compression ratio above {limits.max_ratio:g} (a decompression bomb); refused before writing it",
                    )
                target = (workdir / name).resolve()
                if workdir not in target.parents:
                    raise IntakeError(
                        "unsafe_tar_path", f"member {name!r} resolves outside the bundle folder"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with open(target, "xb") as out:  # exclusive: never follows or replaces anything
                    while block := source.read(CHUNK):
                        written += len(block)
                        if written > limits.max_bytes:
                            raise IntakeError(
                                "archive_too_large",
                                f"the bundle unpacks to more than {limits.max_bytes} bytes",
                            )
                        out.write(block)
                files.append(name)
    except IntakeError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise IntakeError(
            "extract_failed", f"{archive.name} is not a readable .tar.gz ({type(exc).__name__}: {exc})"
        ) from None
    return files


def open_bundle(
    path: Path | str, workdir: Path | str, limits: Limits = DEFAULT_LIMITS, need_record: bool = False
) -> Bundle:
    """Find, unpack and check a bundle into ``workdir`` (a private temporary folder)."""
    from ewmbench.leaderboard.entries import MetadataError, check_metadata
    from ewmbench.record import RunRecord, sha256_file

    archive = find_archive(Path(path))
    workdir = Path(workdir)
    files = unpack(archive, workdir, limits)
    if README not in files:
        raise IntakeError("missing_model_readme", "the bundle has no model_readme.md at its root")
    readme = (workdir / README).read_bytes().decode("utf-8", errors="replace")
    try:
        front, _ = split_front_matter(readme)
        metadata = check_metadata(front)
    except (ValueError, MetadataError) as exc:
        raise IntakeError("metadata_invalid", f"model_readme.md: {exc}") from None
    if not (workdir / VIDEOS).is_dir():
        raise IntakeError("missing_videos", "the bundle has no videos/ folder")
    names = sorted(f for f in files if f.startswith(VIDEOS + "/"))
    if not names:
        raise IntakeError("empty_video_dir", "videos/ holds no .mp4 file")
    videos = {}
    for name in names:
        ids = parse_video_name(name.rsplit("/", 1)[1])
        if ids is None:
            raise IntakeError(
                "video_name_invalid", f"{name}: videos are named <task>__<episode>__<trial>.mp4"
            )
        videos[ids] = workdir / name
    record = None
    if RECORD in files:
        import json

        try:
            record = RunRecord.from_dict(
                json.loads((workdir / RECORD).read_text(encoding="utf-8")), source=RECORD
            )
        except (EwmbenchError, ValueError, UnicodeDecodeError) as exc:
            raise IntakeError("record_invalid", f"{RECORD}: {exc}") from None
        _check_rows(workdir, files, record, videos)
    elif need_record:
        raise IntakeError(
            "missing_record",
            f"the bundle has no {RECORD}; add it with `ewmbench submit`, or score the videos with --rescore",
        )
    return Bundle(
        archive=archive,
        root=workdir,
        metadata=metadata,
        readme=readme,
        videos=videos,
        record=record,
        sha256=sha256_file(archive),
    )


def _check_rows(workdir: Path, files: list[str], record, videos: dict) -> None:
    if ROWS not in files:
        raise IntakeError("record_invalid", f"the bundle has {RECORD} but no {ROWS}")
    try:
        table = list(csv.DictReader(io.StringIO((workdir / ROWS).read_text(encoding="utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise IntakeError("record_invalid", f"{ROWS}: {exc}") from None
    row_keys = {(r["task_id"], r["episode_id"], r["trial_id"]) for r in record.rows}
    if (
        len(table) != len(record.rows)
        or {(r.get("task_id"), r.get("episode_id"), r.get("trial_id")) for r in table} != row_keys
    ):
        raise IntakeError("record_invalid", f"{ROWS} does not hold the record's rows")
    if set(videos) != row_keys:
        missing, extra = sorted(row_keys - set(videos)), sorted(set(videos) - row_keys)
        raise IntakeError(
            "record_invalid",
            f"videos and record rows differ (rows without a video: {missing[:3]}, videos without a row: {extra[:3]})",
        )


def check_admissible(bundle: Bundle, board: Path | str, kind: str) -> str:
    """Refusals that need no scoring (run before re-scoring): too_many_submissions,
    duplicate_submission. Returns the id the entry will get."""
    from ewmbench.leaderboard.entries import load_entries, slug
    from ewmbench.leaderboard.rule import load_rule

    rule = load_rule(board)
    existing = load_entries(board, rule)
    name = bundle.metadata["model_name"].casefold()
    same_model = [e for e in existing if e.model["model_name"].casefold() == name and e.kind != "reported"]
    if len(same_model) >= rule.max_submissions_per_model:
        raise IntakeError(
            "too_many_submissions",
            f"{bundle.metadata['model_name']!r} already has {len(same_model)} submissions; "
            f"a model may have at most {rule.max_submissions_per_model}",
        )
    suffix = "-verified" if kind == "verified" else ""
    entry_id = f"{slug(bundle.metadata['model_name'])}-{slug(bundle.metadata['version'])}-{bundle.sha256[:10]}{suffix}"
    if any(e.id == entry_id for e in existing):
        raise IntakeError("duplicate_submission", f"this bundle is already on the board as {entry_id}")
    if kind == "self-reported" and bundle.record is not None:
        record_sha = bundle.record.sha256()
        twin = next(
            (e for e in existing if e.kind == kind and e.provenance.get("record_sha256") == record_sha), None
        )
        if twin is not None:
            raise IntakeError("duplicate_submission", f"this run record is already on the board as {twin.id}")
    return entry_id


def admit(
    bundle: Bundle, board: Path | str, rescored: RunRecord | None = None, command: str | None = None
) -> Entry:
    """Turn a checked bundle into a board entry and write it.

    ``rescored``: the run record of the board's own scoring of the bundle's videos (verified);
    without it, the bundle's own record makes a self-reported entry. Refusals: missing_record,
    too_many_submissions, duplicate_submission, protocol_mismatch, unknown_benchmark.
    """
    from ewmbench.errors import DataError
    from ewmbench.leaderboard.entries import entry_from_record, write_entry
    from ewmbench.leaderboard.rule import load_rule

    board = Path(board)
    rule = load_rule(board)
    record = rescored if rescored is not None else bundle.record
    if record is None:
        raise IntakeError(
            "missing_record", f"the bundle has no {RECORD}; score its videos with --rescore --gt GT"
        )
    kind = "verified" if rescored is not None else "self-reported"
    entry_id = check_admissible(bundle, board, kind)
    if (record.protocol.name, record.protocol.version) != (rule.protocol, rule.protocol_version):
        raise IntakeError(
            "protocol_mismatch",
            f"scored under {record.protocol.name} {record.protocol.version}; "
            f"this board takes {rule.protocol} {rule.protocol_version}",
        )
    if rule.benchmark_for_dataset(record.dataset.sha256) is None:
        raise IntakeError(
            "unknown_benchmark",
            f"dataset {record.dataset.name!r} (sha256 {str(record.dataset.sha256)[:12]}) "
            f"is not one of this board's benchmarks ({', '.join(rule.benchmarks)})",
        )
    provenance = {"bundle_sha256": bundle.sha256}
    if kind == "verified":
        provenance["command"] = command or ""
    try:
        entry = entry_from_record(record, rule, bundle.metadata, kind, entry_id, provenance)
    except DataError as exc:
        raise IntakeError("record_invalid", str(exc)) from None
    write_entry(board, entry)
    return entry
