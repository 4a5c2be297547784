"""Safe intake of submission bundles: check and unpack into a private folder, or refuse with a code.

Nothing is extracted with ``tarfile.extractall``. The archive is read as a stream, each member's
header is checked before any byte is written, and only regular files with expected names are
written, into the caller's temporary folder, created exclusively. A refusal is an
:class:`IntakeError` carrying WorldArena 2.0's error code where it has one, and ours otherwise:

=====================  ====================================================================
code                   refused because
=====================  ====================================================================
missing_tar_gz         no ``.tar.gz``/``.tgz`` file at the path (or none in the folder given)
multiple_tar_gz_found  the folder given holds more than one ``.tar.gz``/``.tgz``
extract_failed         not a readable gzip-compressed tar archive
unsafe_tar_path        absolute path, ``..``, backslash, symbolic or hard link, device, FIFO,
                       sparse file, a duplicate name, or two ``model_readme.md``
header_too_large       a pax or GNU long-name header longer than the limit, or malformed (ours):
                       headers are read from the raw 512-byte blocks and bounded *before* the
                       standard ``tarfile`` reads them whole
too_many_entries       more members than the limit (ours)
archive_too_large      more bytes after decompression than the limit, or a compression ratio
                       above the limit: a decompression bomb (ours)
unexpected_file        a file outside the bundle format (ours)
missing_model_readme   no ``model_readme.md`` at the root
metadata_invalid       the front matter is missing, not a mapping, or misses or mistypes a field
missing_videos         no ``videos/`` folder
empty_video_dir        ``videos/`` holds no ``.mp4``
video_name_invalid     a video not named ``<task>__<episode>__<trial>.mp4`` (ours; the
                       ``worldarena`` target takes any ``videos/*.mp4``)
file_too_large         model_readme.md, the record or the rows larger than their limits (ours)
missing_record         no ``ewmbench/record.json`` where the entry is taken from it (ours)
record_invalid         the record or rows do not parse, do not match the videos, or the record's
                       overall, per-task values or counts do not follow from its own rows (ours)
value_out_of_range     a value not finite or outside its metric's range (ours)
protocol_mismatch      scored under another protocol, or a protocol file whose sha256 differs
=====================  ====================================================================

The archive may hold its files at its root or inside one parent folder (as WorldArena's
guideline allows); ``./`` prefixes (``tar -C dir .``) are accepted. Every text taken from a
bundle is printed through :func:`ewmbench.text.for_rich`.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ewmbench.errors import DataError, EwmbenchError
from ewmbench.files import sha256_file
from ewmbench.leaderboard.bundle import (
    README,
    RECORD,
    ROWS,
    VIDEOS,
    parse_video_name,
    split_front_matter,
)
from ewmbench.leaderboard.entries import (
    Entry,
    MetadataError,
    check_metadata,
    entry_from_record,
    load_entries,
    model_key,
    protocol_problem,
    replace_entry,
    slug,
)
from ewmbench.leaderboard.rule import load_rule
from ewmbench.results import aggregate
from ewmbench.results.record import RunRecord
from ewmbench.text import for_rich

CHUNK = 1 << 20
BLOCK = 512
TARGETS = ("ewmbench", "worldarena")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


class IntakeError(EwmbenchError):
    """A bundle refused: ``code`` (WorldArena's where it has one) and a sentence. The sentence is
    escaped for the terminal and for rich markup (it quotes names from the bundle)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = for_rich(message, limit=600)
        super().__init__(f"[{code}] {self.message}")


@dataclass(frozen=True)
class Limits:
    max_entries: int = 20_000
    max_bytes: int = 20 * 2**30  # after decompression
    max_file_bytes: int = 2 * 2**30
    max_ratio: float = 200.0  # decompressed / compressed bytes
    ratio_floor: int = (
        64 * 2**20
    )  # the ratio is judged once this many bytes are declared (tar padding compresses well)
    max_header_bytes: int = 8 * 1024  # one pax extended header (its records)
    max_name_bytes: int = 1024  # one member name, GNU long names included
    max_readme_bytes: int = 1 * 2**20
    max_record_bytes: int = 64 * 2**20  # ewmbench/record.json and ewmbench/rows.csv, each


DEFAULT_LIMITS = Limits()


@dataclass
class Bundle:
    archive: Path
    root: Path  # the private folder the bundle was unpacked into
    metadata: dict
    readme: str
    videos: dict  # (task, episode, trial) -> Path; for the worldarena target: file name -> Path
    record: object | None = None  # RunRecord when the bundle carries one
    sha256: str = ""
    notes: list[str] = field(default_factory=list)


def find_archive(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        archives = sorted(p for p in path.iterdir() if p.name.endswith(ARCHIVE_SUFFIXES) and p.is_file())
        if not archives:
            raise IntakeError("missing_tar_gz", f"{path} holds no .tar.gz or .tgz bundle")
        if len(archives) > 1:
            raise IntakeError(
                "multiple_tar_gz_found",
                f"{path} holds {len(archives)} .tar.gz/.tgz files; a submission has exactly one",
            )
        return archives[0]
    if not path.is_file() or not path.name.endswith(ARCHIVE_SUFFIXES):
        raise IntakeError("missing_tar_gz", f"{path} is not a .tar.gz or .tgz file")
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


# ---------------------------------------------------------------- raw headers, bounded


@dataclass
class Scanned:
    names: list[tuple[str, bool]]  # (raw member name, is a folder), in archive order
    root: str  # "" or the one parent folder that holds the bundle


def _number(field: bytes, what: str) -> int:
    """A tar header number: octal text, or base-256 when the first byte has its top bit set."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return -value if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    if not re.fullmatch(rb"[0-7]{1,12}", text):
        raise IntakeError("extract_failed", f"a tar header's {what} is not a number")
    return int(text, 8)


def _pax_records(data: bytes) -> dict[str, str]:
    """Parse a pax header's ``"<len> <key>=<value>\\n"`` records, refusing malformed ones (the
    standard reader's parsing of these is quadratic in Python 3.11, so only bounded data gets here)."""
    records, position = {}, 0
    while position < len(data):
        if data[position:].strip(b"\0") == b"":
            break
        space = data.find(b" ", position, position + 8)
        if space < 0 or not data[position:space].isdigit():
            raise IntakeError("header_too_large", "a pax header has a malformed record length")
        length = int(data[position:space])
        record = data[position : position + length]
        if length <= space - position + 1 or len(record) != length or not record.endswith(b"\n"):
            raise IntakeError("header_too_large", "a pax header has a record that does not fit it")
        key, equals, value = record[space - position + 1 : -1].partition(b"=")
        if not equals:
            raise IntakeError("header_too_large", "a pax header has a record without '='")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        position += length
    return records


def scan_headers(archive: Path, limits: Limits = DEFAULT_LIMITS) -> Scanned:
    """Walk the archive's raw 512-byte headers in the decompressed stream before ``tarfile`` reads
    anything: pax and GNU long-name headers are bounded in size and parsed here, member counts,
    declared sizes and the compression ratio are bounded, and the member names are collected. The
    data of each member is skipped, never held; memory stays at one header."""
    compressed = max(archive.stat().st_size, 1)
    names: list[tuple[str, bool]] = []
    headers = 0
    declared = 0
    pending: dict[str, str] = {}
    try:
        with open(archive, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            while True:
                block = stream.read(BLOCK)
                if len(block) < BLOCK:
                    if block.strip(b"\0"):
                        raise IntakeError("extract_failed", f"{archive.name} ends inside a tar header")
                    break
                if not block.strip(b"\0"):
                    break  # end of archive
                headers += 1
                if headers > 3 * limits.max_entries:
                    raise IntakeError(
                        "too_many_entries", f"the bundle has more than {limits.max_entries} members"
                    )
                checksum = _number(block[148:156], "checksum")
                if checksum not in (
                    sum(block[:148]) + 256 + sum(block[156:]),
                    sum(b - 256 if b > 127 else b for b in block[:148])
                    + 256
                    + sum(b - 256 if b > 127 else b for b in block[156:]),
                ):
                    raise IntakeError("extract_failed", f"{archive.name}: a tar header's checksum is wrong")
                kind = block[156:157]
                size = _number(block[124:136], "size")
                if size < 0:
                    raise IntakeError("extract_failed", "a tar header declares a negative size")
                if kind in (b"x", b"g", b"L", b"K"):
                    bound = limits.max_header_bytes if kind in (b"x", b"g") else limits.max_name_bytes
                    if size > bound:
                        raise IntakeError(
                            "header_too_large",
                            f"a {'pax' if kind in (b'x', b'g') else 'GNU long-name'} header of {size} bytes "
                            f"(at most {bound} accepted); refused before reading it",
                        )
                    data = stream.read(size)
                    stream.read(-size % BLOCK)
                    if len(data) != size:
                        raise IntakeError("extract_failed", f"{archive.name} ends inside a header")
                    if kind == b"x":
                        pending.update(_pax_records(data))
                    elif kind == b"g":
                        _pax_records(data)
                    elif kind == b"L":
                        pending["path"] = data.split(b"\0", 1)[0].decode("utf-8", "replace")
                    else:
                        pending["linkpath"] = data.split(b"\0", 1)[0].decode("utf-8", "replace")
                    continue
                if kind == b"S":
                    raise IntakeError("unsafe_tar_path", "the bundle holds a sparse file")
                if "size" in pending:
                    if not pending["size"].isdigit() or len(pending["size"]) > 15:
                        raise IntakeError("header_too_large", "a pax header's size is not a number")
                    size = int(pending["size"])
                name = pending.get("path")
                if name is None:
                    prefix = block[345:500].split(b"\0", 1)[0] if block[257:262] == b"ustar" else b""
                    base = block[:100].split(b"\0", 1)[0]
                    name = ((prefix + b"/" + base) if prefix else base).decode("utf-8", "replace")
                if len(name.encode("utf-8")) > limits.max_name_bytes:
                    raise IntakeError(
                        "header_too_large", f"a member name longer than {limits.max_name_bytes} bytes"
                    )
                pending = {}
                names.append((name, kind == b"5" or name.endswith("/")))
                if len(names) > limits.max_entries:
                    raise IntakeError(
                        "too_many_entries", f"the bundle has more than {limits.max_entries} members"
                    )
                if kind in (b"0", b"\0", b"7"):
                    declared += size
                    if size > limits.max_file_bytes or declared > limits.max_bytes:
                        raise IntakeError(
                            "archive_too_large",
                            f"the bundle unpacks to more than {limits.max_bytes} bytes (or a file over "
                            f"{limits.max_file_bytes}); refused before writing it",
                        )
                    if declared >= limits.ratio_floor and declared / compressed > limits.max_ratio:
                        raise IntakeError(
                            "archive_too_large",
                            f"compression ratio above {limits.max_ratio:g} (a decompression bomb); refused before writing it",
                        )
                    skip = size + (-size % BLOCK)
                    while skip > 0:
                        got = len(stream.read(min(skip, CHUNK)))
                        if got == 0:
                            raise IntakeError("extract_failed", f"{archive.name} ends inside a member")
                        skip -= got
    except IntakeError:
        raise
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IntakeError(
            "extract_failed", f"{archive.name} is not a readable .tar.gz ({type(exc).__name__}: {exc})"
        ) from None
    return Scanned(names=names, root=_bundle_root(names))


def _bundle_root(names: list[tuple[str, bool]]) -> str:
    """ "" when model_readme.md sits at the root; the parent folder's name when every member sits
    inside one folder (WorldArena's guideline allows one); "" otherwise (checks then name what is
    missing)."""
    parts = []
    for name, _ in names:
        try:
            clean = _safe_name(name)
        except IntakeError:
            return ""  # refused, with the member named, by the unpacking pass
        if clean:
            parts.append(clean.split("/"))
    if any(p == [README] for p in parts):
        return ""
    tops = {p[0] for p in parts}
    if len(tops) == 1 and any(len(p) > 1 for p in parts):
        return tops.pop()
    return ""


# ---------------------------------------------------------------- unpacking


def _expected(name: str, is_dir: bool, target: str) -> bool | None:
    """True: part of a bundle; False: refused; None: ignored (not extracted; the worldarena target
    ignores files its guideline does not mention)."""
    if is_dir:
        return name in ("", VIDEOS, "ewmbench") or None
    if name == README:
        return True
    folder, _, base = name.rpartition("/")
    if folder == VIDEOS and base.endswith(".mp4") and "/" not in base:
        return True
    if target == "ewmbench":
        return name in (RECORD, ROWS)
    return None


def _file_limit(name: str, limits: Limits) -> int:
    if name == README:
        return limits.max_readme_bytes
    if name in (RECORD, ROWS):
        return limits.max_record_bytes
    return limits.max_file_bytes


def unpack(
    archive: Path, workdir: Path, limits: Limits = DEFAULT_LIMITS, target: str = "ewmbench"
) -> tuple[list[str], list[str]]:
    """Check and unpack ``archive`` into ``workdir`` (which must be empty); returns the file names
    written (relative to the bundle's root) and the names ignored."""
    workdir = Path(workdir).resolve()
    if not workdir.is_dir() or any(workdir.iterdir()):
        raise ValueError(f"{workdir}: unpack needs an existing, empty private folder")
    scanned = scan_headers(archive, limits)
    root = scanned.root
    seen: set[str] = set()
    files: list[str] = []
    ignored: list[str] = []
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
                if root:
                    if name == root and member.isdir():
                        continue
                    if not name.startswith(root + "/"):
                        raise IntakeError(
                            "unexpected_file", f"{name!r} lies outside the bundle's folder {root!r}"
                        )
                    name = name[len(root) + 1 :]
                if name.rpartition("/")[2] == README and name != README:
                    raise IntakeError(
                        "unsafe_tar_path", f"{name!r}: a second model_readme.md (one, at the bundle's root)"
                    )
                wanted = _expected(name, member.isdir(), target)
                if wanted is False:
                    raise IntakeError(
                        "unexpected_file",
                        f"{name!r} is not part of a bundle (model_readme.md, videos/*.mp4, ewmbench/record.json, ewmbench/rows.csv)",
                    )
                if wanted is None:
                    if not member.isdir():
                        ignored.append(name)
                    continue
                if member.isdir():
                    if name:
                        (workdir / name).mkdir(parents=True, exist_ok=True)
                    continue
                limit = _file_limit(name, limits)
                if member.size > limit:
                    raise IntakeError(
                        "file_too_large" if limit < limits.max_file_bytes else "archive_too_large",
                        f"{name} is {member.size} bytes; at most {limit} accepted",
                    )
                target_path = (workdir / name).resolve()
                if workdir not in target_path.parents:
                    raise IntakeError(
                        "unsafe_tar_path", f"member {name!r} resolves outside the bundle folder"
                    )
                target_path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with open(target_path, "xb") as out:  # exclusive: never follows or replaces anything
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
    return files, ignored


def read_front_matter(text: str) -> dict:
    """The checked metadata of a model readme's front matter, or a metadata_invalid refusal."""

    try:
        front, _ = split_front_matter(text)
        return check_metadata(front)
    except (ValueError, MetadataError) as exc:
        raise IntakeError("metadata_invalid", f"model_readme.md: {exc}") from None


def open_bundle(
    path: Path | str,
    workdir: Path | str,
    limits: Limits = DEFAULT_LIMITS,
    need_record: bool = False,
    target: str = "ewmbench",
) -> Bundle:
    """Find, unpack and check a bundle into ``workdir`` (a private temporary folder).

    ``target``: ``ewmbench`` (our bundles: videos named by task, episode and trial, with the run
    record) or ``worldarena`` (WorldArena 2.0's Track 1 guideline: any ``videos/*.mp4``)."""

    if target not in TARGETS:
        raise IntakeError("unknown_target", f"target {target!r} is not one of {', '.join(TARGETS)}")
    archive = find_archive(Path(path))
    workdir = Path(workdir)
    files, ignored = unpack(archive, workdir, limits, target)
    if README not in files:
        raise IntakeError("missing_model_readme", "the bundle has no model_readme.md at its root")
    readme = (workdir / README).read_bytes().decode("utf-8", errors="replace")
    metadata = read_front_matter(readme)
    if not (workdir / VIDEOS).is_dir():
        raise IntakeError("missing_videos", "the bundle has no videos/ folder")
    names = sorted(f for f in files if f.startswith(VIDEOS + "/"))
    if not names:
        raise IntakeError("empty_video_dir", "videos/ holds no .mp4")
    videos = {}
    for name in names:
        base = name.rsplit("/", 1)[1]
        if target == "worldarena":
            videos[base] = workdir / name
            continue
        ids = parse_video_name(base)
        if ids is None:
            raise IntakeError(
                "video_name_invalid", f"{name}: videos are named <task>__<episode>__<trial>.mp4"
            )
        videos[ids] = workdir / name
    record = None
    if target == "ewmbench" and RECORD in files:
        import json

        try:
            record = RunRecord.from_dict(
                json.loads((workdir / RECORD).read_text(encoding="utf-8")), source=RECORD
            )
        except (EwmbenchError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise IntakeError("record_invalid", f"{RECORD}: {exc}") from None
        _check_counts(record)
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
        notes=[f"ignored {name} (not part of a Track 1 submission)" for name in ignored],
    )


def _check_counts(record) -> None:
    for name in ("tasks", "episodes", "trials", "rows_counted"):
        value = getattr(record.counts, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise IntakeError(
                "record_invalid", f"{RECORD}: counts.{name} must be a whole number, got {value!r}"
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


# ---------------------------------------------------------------- the board's checks


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_record(record, rule) -> None:
    """A record a board can trust: its protocol is the board's (by name, version and the file's
    sha256); every value of a rule column is finite (or an allowed infinity) and inside its
    metric's range, in the overall, per-task and row values; and the overall and per-task values
    and the counts follow from the record's own rows under that protocol. Dataset-level columns
    (FID, FVD: one value per run, no rows) are range-checked only."""

    problem = protocol_problem(record, rule)
    if problem:
        raise IntakeError("protocol_mismatch", problem)
    problems = rule.value_problems(record.overall, "overall")
    for column, per in record.per_task.items():
        problems += rule.series_problems(column, per.values(), f"per_task {column}")
    for index, row in enumerate(record.rows):
        values = {
            c: (None if isinstance(v, float) and math.isnan(v) else v)
            for c, v in row.items()
            if c in rule.columns
        }
        problems += rule.value_problems(
            values, f"row {index} ({row['task_id']}/{row['episode_id']}/{row['trial_id']})"
        )
        if len(problems) > 3:
            break
    if problems:
        raise IntakeError("value_out_of_range", "; ".join(problems[:3]))
    try:
        protocol = record.protocol_used()  # the embedded text, whose sha256 is the rule's (checked above)
    except DataError as exc:
        raise IntakeError("protocol_mismatch", str(exc)) from None
    if protocol.sha256 != rule.protocol_sha256:  # a record without the text: the installed file
        raise IntakeError(
            "protocol_mismatch",
            f"this installation's {rule.protocol} is not the one the board names (sha256 {protocol.sha256[:12]}...)",
        )
    frame = record.rows_frame()
    aggregated = aggregate(frame, protocol, lambda column: record.columns[column].direction == "higher")
    row_columns = set(frame.columns)
    for column, value in record.overall.items():
        if column not in row_columns:
            if record.columns[column].level != "dataset":
                raise IntakeError("record_invalid", f"overall {column} has no rows to follow from")
            continue
        if not _same(value, aggregated["overall"].get(column)):
            raise IntakeError(
                "record_invalid",
                f"overall {column} = {value!r} does not follow from the record's rows "
                f"({aggregated['overall'].get(column)!r} under {protocol.name})",
            )
        recomputed = aggregated["per_task"].get(column, {})
        given = record.per_task.get(column, {})
        if set(given) != set(recomputed) or not all(_same(given[t], recomputed[t]) for t in given):
            raise IntakeError("record_invalid", f"per-task {column} does not follow from the record's rows")
    tasks = {r["task_id"] for r in record.rows}
    episodes = {(r["task_id"], r["episode_id"]) for r in record.rows}
    expected = {
        "tasks": len(tasks),
        "episodes": len(episodes),
        "trials": len(record.rows),
        "rows_counted": aggregated["rows_counted"],
    }
    wrong = {k: (getattr(record.counts, k), v) for k, v in expected.items() if getattr(record.counts, k) != v}
    if wrong:
        shown = ", ".join(f"{k} {given!r} (rows give {v})" for k, (given, v) in wrong.items())
        raise IntakeError("record_invalid", f"counts do not follow from the record's rows: {shown}")


def entry_id_for(metadata: dict, sha256: str) -> str:
    """The id of a bundle's entry: model and version slugs (bounded) and the bundle's hash; one
    bundle is one entry whatever its kind."""

    return f"{slug(metadata['model_name'])}-{slug(metadata['version'], 24)}-{sha256[:12]}"


def check_admissible(bundle: Bundle, board: Path | str, kind: str) -> tuple[str, object | None]:
    """Refusals that need no scoring (run before re-scoring): too_many_submissions,
    duplicate_submission. Returns the id the entry will get and the entry it replaces (a
    self-reported entry of the same bundle that ``--rescore`` upgrades to verified), if any."""

    rule = load_rule(board)
    existing = load_entries(board, rule)
    entry_id = entry_id_for(bundle.metadata, bundle.sha256)
    same_bundle = [
        e for e in existing if e.id == entry_id or e.provenance.get("bundle_sha256") == bundle.sha256
    ]
    upgraded = None
    for twin in same_bundle:
        if kind == "verified" and twin.kind == "self-reported":
            upgraded = twin
            continue
        raise IntakeError(
            "duplicate_submission", f"this bundle is already on the board as {twin.id} ({twin.kind})"
        )
    name = model_key(bundle.metadata["model_name"])
    same_model = [
        e
        for e in existing
        if model_key(e.model["model_name"]) == name and e.kind != "reported" and e is not upgraded
    ]
    if len(same_model) >= rule.max_submissions_per_model:
        raise IntakeError(
            "too_many_submissions",
            f"{bundle.metadata['model_name']!r} already has {len(same_model)} submissions "
            f"({', '.join(e.id for e in same_model)}); a model may have at most {rule.max_submissions_per_model} "
            "(names are compared ignoring case, spaces and invisible characters)",
        )
    if kind == "self-reported" and bundle.record is not None:
        record_sha = bundle.record.sha256()
        twin = next(
            (e for e in existing if e.kind == kind and e.provenance.get("record_sha256") == record_sha), None
        )
        if twin is not None:
            raise IntakeError("duplicate_submission", f"this run record is already on the board as {twin.id}")
    return entry_id, upgraded


def admit(
    bundle: Bundle,
    board: Path | str,
    rescored: RunRecord | None = None,
    command: str | None = None,
    published_at: str | None = None,
) -> Entry:
    """Turn a checked bundle into a board entry and write it.

    ``rescored``: the run record of the board's own scoring of the bundle's videos (verified);
    without it, the bundle's own record makes a self-reported entry, after :func:`check_record`.
    A verified entry replaces the self-reported entry of the same bundle (one bundle, one entry).
    """

    board = Path(board)
    rule = load_rule(board)
    record = rescored if rescored is not None else bundle.record
    if record is None:
        raise IntakeError(
            "missing_record", f"the bundle has no {RECORD}; score its videos with --rescore --gt GT"
        )
    kind = "verified" if rescored is not None else "self-reported"
    entry_id, upgraded = check_admissible(bundle, board, kind)
    check_record(record, rule)
    if rule.benchmark_for_dataset(record.dataset.sha256) is None:
        raise IntakeError(
            "unknown_benchmark",
            f"dataset {record.dataset.name!r} (sha256 {str(record.dataset.sha256)[:12]}) "
            f"is not one of this board's benchmarks ({', '.join(rule.benchmarks)})",
        )
    provenance = {"bundle_sha256": bundle.sha256}
    if published_at:
        provenance["bundle_url"] = published_at
    if kind == "verified":
        provenance["command"] = command or ""
        if upgraded is not None:
            provenance["replaces"] = (
                f"{upgraded.id} (self-reported; its record sha256 {upgraded.provenance.get('record_sha256')})"
            )
    try:
        entry = entry_from_record(record, rule, bundle.metadata, kind, entry_id, provenance)
    except DataError as exc:
        raise IntakeError("record_invalid", str(exc)) from None
    replace_entry(board, entry, upgraded)
    return entry
