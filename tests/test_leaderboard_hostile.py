"""Bundles made to game or break the board: each is refused (or bounded) with a clear code."""

import gzip
import io
import json
import math
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from ewmbench.leaderboard.bundle import split_front_matter
from ewmbench.leaderboard.entries import ID_PATTERN, load_entries, model_key
from ewmbench.leaderboard.intake import IntakeError, Limits, admit, check_record, open_bundle, scan_headers
from ewmbench.leaderboard.rule import load_rule
from ewmbench.text import for_rich
from tests.test_leaderboard_intake import (
    KEYS,
    README,
    RULE,
    V1_SHA,
    make_record,
    rows_csv,
    standard_members,
    write_tar,
)


@pytest.fixture
def board(tmp_path):
    folder = tmp_path / "board"
    folder.mkdir()
    (folder / "rule.yaml").write_text(RULE)
    return folder


def _open(tmp_path, members, **kwargs):
    archive = write_tar(tmp_path / f"{uuid.uuid4().hex[:8]}.tar.gz", members)
    work = tmp_path / f"work-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    return open_bundle(archive, work, **kwargs)


def _code(call) -> str:
    with pytest.raises(IntakeError) as caught:
        call()
    return caught.value.code


def _record_members(record, rows_text=None):
    return [
        ("model_readme.md", README.encode()),
        ("ewmbench/record.json", record.to_json().encode()),
        ("ewmbench/rows.csv", (rows_text or rows_csv(record)).encode()),
    ] + [(f"videos/{t}__{e}__{r}.mp4", b"\x00\x00\x00\x18ftypmp42") for t, e, r in KEYS]


# ---------------------------------------------------------------- the record must follow from its rows


def test_an_overall_that_does_not_follow_from_the_rows_is_refused(tmp_path, board):
    record = make_record()
    record.overall = {"hsd": 0.99}  # the rows give 0.5
    bundle = _open(tmp_path, _record_members(record))
    with pytest.raises(IntakeError) as caught:
        admit(bundle, board)
    assert (
        caught.value.code == "record_invalid"
        and "does not follow from the record's rows" in caught.value.message
    )
    assert not (board / "entries").exists() or not list((board / "entries").iterdir())


def test_per_task_values_and_counts_must_follow_too(tmp_path, board):
    rule = load_rule(board)
    record = make_record()
    record.per_task = {"hsd": {"1": 0.9, "2": 0.9}}
    assert _code(lambda: check_record(record, rule)) == "record_invalid"
    record = make_record()
    record.counts = type(record.counts)(tasks=2, episodes=30, trials=3, rows_counted=3)
    with pytest.raises(IntakeError, match="episodes 30"):
        check_record(record, rule)


def test_nan_counts_are_a_clear_refusal_not_a_traceback(tmp_path):
    data = json.loads(make_record().to_json())
    data["counts"]["tasks"] = math.nan
    text = json.dumps(data)  # Python's json writes (and reads) the NaN token
    assert '"tasks": NaN' in text
    members = [m if m[0] != "ewmbench/record.json" else (m[0], text.encode()) for m in standard_members()]
    with pytest.raises(IntakeError, match="counts.tasks must be a whole number") as caught:
        _open(tmp_path, members)
    assert caught.value.code == "record_invalid"


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("hsd", (7.5, 7.5, 7.5), "outside the metric's range"),
        ("hsd", (-3.0, 0.1, 0.1), "outside"),
        ("psnr", (1e308, 20.0, 20.0), "outside"),
        ("hsd", (math.inf, 0.2, 0.2), "only a finite value"),
    ],
)
def test_values_must_be_finite_and_in_range(tmp_path, board, column, values, message):
    record = make_record(values=values)
    if column != "hsd":
        from ewmbench.results.record import Column

        record.columns = {column: Column(column, "fidelity", "fidelity", "trial", "higher")}
        for row in record.rows:
            row[column] = row.pop("hsd")
        record.overall = {column: sum(values) / 3}
        record.per_task = {column: {"1": sum(values[:2]) / 2, "2": values[2]}}
    with pytest.raises(IntakeError, match=message) as caught:
        check_record(record, load_rule(board))
    assert caught.value.code == "value_out_of_range"


def test_nan_overall_is_missing_and_inf_psnr_is_kept_as_inf(tmp_path, board):
    from ewmbench.results.record import Column

    record = make_record()
    record.columns["psnr"] = Column("psnr", "fidelity", "fidelity", "trial", "higher")
    for row in record.rows:
        row["psnr"] = math.inf  # identical frames under v1
    record.overall["psnr"] = math.inf
    record.per_task["psnr"] = {"1": math.inf, "2": math.inf}
    check_record(record, load_rule(board))  # admitted: psnr allows inf, and it follows from the rows


def test_the_protocol_is_matched_by_its_hash(tmp_path, board):
    record = make_record(protocol_sha="ee" * 32)  # ewmbench-v1 1.0 by name, another file
    with pytest.raises(IntakeError, match="sha256") as caught:
        check_record(record, load_rule(board))
    assert caught.value.code == "protocol_mismatch"
    assert make_record().protocol.sha256 == V1_SHA


# ---------------------------------------------------------------- names


def test_a_long_model_name_gives_a_bounded_id_and_later_adds_still_work(tmp_path, board):
    long = "A" * 150 + " Ω model"
    readme = README.replace("Test Model", long)
    members = [("model_readme.md", readme.encode())] + standard_members()[1:]
    entry = admit(_open(tmp_path, members), board)
    assert ID_PATTERN.match(entry.id) and len(entry.id) <= 100
    entry2 = admit(_open(tmp_path, standard_members(make_record(values=(0.3, 0.3, 0.3)))), board)
    assert {e.id for e in load_entries(board, load_rule(board))} == {entry.id, entry2.id}


def test_name_variants_count_as_one_model(tmp_path, board):
    variants = ["Test Model", "test model", "TEST  MODEL", "Test\u200bModel", "Ｔｅｓｔ Model"]
    assert len({model_key(v) for v in variants}) == 1
    assert model_key("Test-Model") != model_key("Test Model")
    for i, name in enumerate(variants[:3]):
        readme = README.replace("Test Model", name)
        record = make_record(values=(0.1 * (i + 1), 0.5, 0.5))
        admit(_open(tmp_path, [("model_readme.md", readme.encode())] + standard_members(record)[1:]), board)
    for name in variants[3:]:
        readme = README.replace("Test Model", name)
        record = make_record(values=(0.9, 0.9, 0.9))
        members = [("model_readme.md", readme.encode())] + standard_members(record)[1:]
        assert _code(lambda m=members: admit(_open(tmp_path, m), board)) == "too_many_submissions"


def test_terminal_and_markup_escapes_are_made_harmless():
    hostile = "\x1b[2J\x1b]0;pwned\x07[bold red]Model[/] \u202eevil"
    shown = for_rich(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\\[bold red]" in shown
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=False)
    console.print(shown)  # markup in the name is printed as text, not interpreted (no MarkupError)
    assert "[bold red]Model" in console.file.getvalue()
    assert len(for_rich("x" * 5000, limit=300)) <= 300


def test_a_refusal_quoting_a_hostile_name_is_escaped(tmp_path):
    members = standard_members()[1:] + [("videos/\x1b[31m[/]x.mp4", b"v")]
    members = [("model_readme.md", README.encode())] + members
    with pytest.raises(IntakeError) as caught:
        _open(tmp_path, members)
    assert "\x1b" not in caught.value.message and "\\[/]" in caught.value.message


# ---------------------------------------------------------------- headers bounded before they are read


def _raw_header(name: bytes, kind: bytes, size: int) -> bytes:
    block = bytearray(512)
    block[: len(name)] = name
    block[100:108] = b"0000644\0"
    block[124:136] = f"{size:011o}\0".encode()
    block[136:148] = b"00000000000\0"
    block[156:157] = kind
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    return bytes(block)


def _raw_archive(path: Path, body: bytes) -> Path:
    with gzip.open(path, "wb") as out:
        out.write(body + bytes(1024))
    return path


@pytest.mark.parametrize("kind", [b"x", b"L", b"g"])
def test_a_huge_pax_or_long_name_header_is_refused_before_it_is_read(tmp_path, kind):
    # declares 1 GiB of header data: the archive itself holds only a few blocks of it
    archive = _raw_archive(tmp_path / "h.tar.gz", _raw_header(b"././@PaxHeader", kind, 2**30) + bytes(4096))
    started = time.perf_counter()
    with pytest.raises(IntakeError) as caught:
        scan_headers(archive)
    assert caught.value.code == "header_too_large"
    assert time.perf_counter() - started < 30  # generous: it reads four blocks


def test_a_pax_header_of_many_digits_is_refused_by_size(tmp_path):
    record = b"99999" * 60000  # 300K digits of a record length (quadratic for the standard reader)
    archive = _raw_archive(
        tmp_path / "p.tar.gz",
        _raw_header(b"././@PaxHeader", b"x", len(record)) + record + bytes(-len(record) % 512),
    )
    assert _code(lambda: scan_headers(archive)) == "header_too_large"


def test_malformed_pax_records_are_refused(tmp_path):
    for bad in (b"12 path=x\n", b"abc path=x\n", b"5 pat"):
        data = bad + bytes(-len(bad) % 512)
        archive = _raw_archive(tmp_path / f"m{len(bad)}.tar.gz", _raw_header(b"pax", b"x", len(bad)) + data)
        assert _code(lambda a=archive: scan_headers(a)) == "header_too_large"


def test_a_normal_pax_archive_passes_the_scan(tmp_path):
    archive = tmp_path / "pax.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in standard_members():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = {"comment": "é" * 10}
            tar.addfile(info, io.BytesIO(data))
    scanned = scan_headers(archive)
    assert {n for n, _ in scanned.names} == {n for n, _ in standard_members()} and scanned.root == ""


# ---------------------------------------------------------------- the readme


def test_a_yaml_alias_bomb_is_refused_fast():
    bomb = (
        "---\na: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(9)
        )
        + "---\n"
    )
    assert len(bomb) < 600
    started = time.perf_counter()
    with pytest.raises(ValueError, match="aliases"):
        split_front_matter(bomb)
    assert time.perf_counter() - started < 30


def test_a_long_front_matter_or_readme_is_refused(tmp_path):
    with pytest.raises(ValueError, match="longer than"):
        split_front_matter("---\n" + "note: " + "x" * 20000 + "\n---\n")
    with pytest.raises(ValueError, match="longer than"):
        split_front_matter("---\n" + "x: 1\n" * 5000)  # never closed
    big = README + "x" * (2 * 2**20)
    members = [("model_readme.md", big.encode())] + standard_members()[1:]
    assert _code(lambda: _open(tmp_path, members)) == "file_too_large"
    members = [("model_readme.md", README.encode())] + standard_members()[1:]
    assert _code(lambda: _open(tmp_path, members, limits=Limits(max_record_bytes=100))) == "file_too_large"


# ---------------------------------------------------------------- one bundle, one entry


def test_rescore_upgrades_the_self_reported_entry_in_place(tmp_path, board):
    archive = write_tar(tmp_path / "one.tar.gz", standard_members())
    first = tmp_path / "w1"
    first.mkdir()
    self_reported = admit(open_bundle(archive, first), board)
    second = tmp_path / "w2"
    second.mkdir()
    verified = admit(open_bundle(archive, second), board, rescored=make_record(), command="c")
    entries = load_entries(board, load_rule(board))
    assert [e.id for e in entries] == [self_reported.id] == [verified.id]
    assert entries[0].kind == "verified" and self_reported.id in entries[0].provenance["replaces"]
    third = tmp_path / "w3"
    third.mkdir()
    with pytest.raises(IntakeError) as caught:
        admit(open_bundle(archive, third), board)
    assert caught.value.code == "duplicate_submission"


# ---------------------------------------------------------------- WorldArena's guideline


def _wa_members(prefix=""):
    readme = README.replace("paper_url: https://example.org/paper\n", "")
    return [
        (f"{prefix}model_readme.md", readme.encode()),
        (f"{prefix}videos/episode_000001.mp4", b"v1"),
        (f"{prefix}videos/episode_000002.mp4", b"v2"),
    ]


@pytest.mark.parametrize("prefix", ["", "./", "MyModel_eval/"])
def test_worldarena_target_accepts_what_its_guideline_allows(tmp_path, prefix):
    members = _wa_members(prefix)
    if prefix == "MyModel_eval/":
        dirs = [tarfile.TarInfo("MyModel_eval"), tarfile.TarInfo("MyModel_eval/videos")]
        for info in dirs:
            info.type = tarfile.DIRTYPE
        members = dirs + members
    folder = tmp_path / "repo"
    folder.mkdir()
    write_tar(folder / "submission.tgz", members)
    work = tmp_path / "w"
    work.mkdir()
    bundle = open_bundle(folder, work, target="worldarena")
    assert sorted(bundle.videos) == ["episode_000001.mp4", "episode_000002.mp4"]
    assert (work / "videos" / "episode_000001.mp4").read_bytes() == b"v1"
    # our own target still wants its names
    work2 = tmp_path / "w2"
    work2.mkdir()
    assert _code(lambda: open_bundle(folder, work2)) == "video_name_invalid"


def test_worldarena_target_keeps_refusing_what_is_unsafe(tmp_path):
    two = _wa_members() + [("videos/model_readme.md", README.encode())]
    assert _code(lambda: _open(tmp_path, two, target="worldarena")) == "unsafe_tar_path"
    escape = _wa_members() + [("../x.mp4", b"x")]
    assert _code(lambda: _open(tmp_path, escape, target="worldarena")) == "unsafe_tar_path"
    link = tarfile.TarInfo("videos/l.mp4")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    assert _code(lambda: _open(tmp_path, _wa_members() + [link], target="worldarena")) == "unsafe_tar_path"
    # files the guideline does not mention are not extracted, and said so
    bundle = _open(tmp_path, _wa_members() + [("notes.txt", b"hi")], target="worldarena")
    assert bundle.notes == ["ignored notes.txt (not part of a Track 1 submission)"]
    assert not (bundle.root / "notes.txt").exists()


def test_validate_prints_a_hostile_model_name_as_text(tmp_path):
    from typer.testing import CliRunner

    from ewmbench.cli import app

    readme = README.replace("model_name: Test Model", 'model_name: "\\e[2J\\e]0;x\\a[bold red]Evil[/] model"')
    members = [("model_readme.md", readme.encode())] + standard_members()[1:]
    archive = write_tar(tmp_path / "evil.tar.gz", members)
    result = CliRunner().invoke(
        app, ["leaderboard", "validate", str(archive), "--board", str(tmp_path / "none")]
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "[bold red]Evil[/] model" in result.output
