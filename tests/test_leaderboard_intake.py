"""Safe intake: a bundle built in the test for every refusal, a valid one, and the filesystem checked."""

import gzip
import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from ewmbench.leaderboard.entries import load_entries
from ewmbench.leaderboard.intake import IntakeError, Limits, admit, open_bundle
from ewmbench.leaderboard.rule import load_rule
from ewmbench.protocols import resolve_protocol
from ewmbench.results.record import (
    SCHEMA,
    Column,
    Counts,
    DatasetRef,
    ModelRef,
    ProtocolRef,
    Provenance,
    RunRecord,
)

README = """---
model_name: Test Model
version: "0.1"
organization: Lab
release_year: 2025
source_type: open_source
control_type: action_driven
paper_url: https://example.org/paper
---
A test model.
"""
DATASET_SHA = "ab" * 32
V1_SHA = resolve_protocol("ewmbench-v1").sha256
V2_SHA = resolve_protocol("ewmbench-v2").sha256
RULE = f"""
format: ewmbench-rule/2
name: t
version: "1"
score: {{method: normalised_mean, label: Score}}
protocol: {{name: ewmbench-v1, version: "1.0", sha256: {V1_SHA}}}
max_submissions_per_model: 3
groups: {{motion: {{label: Motion}}}}
columns:
  hsd: {{group: motion, direction: higher, range: [0, 1]}}
  ndtw: {{group: motion, direction: higher, range: [0, 1]}}
shown:
  psnr: {{direction: higher, range: [0, 200], allow_infinite: true}}
benchmarks:
  b: {{title: B, dataset_sha256: {DATASET_SHA}}}
"""
KEYS = [("1", "10", "1"), ("1", "11", "1"), ("2", "20", "1")]


def make_record(
    protocol=("ewmbench-v1", "1.0"), dataset_sha=DATASET_SHA, values=(0.2, 0.4, 0.9), protocol_sha=None
) -> RunRecord:
    rows = [{"task_id": t, "episode_id": e, "trial_id": r, "hsd": v} for (t, e, r), v in zip(KEYS, values)]
    sha = protocol_sha or {"ewmbench-v1": V1_SHA, "ewmbench-v2": V2_SHA}.get(protocol[0], "cd" * 32)
    return RunRecord(
        protocol=ProtocolRef(*protocol, source="ewmbench/protocols/x.yaml", sha256=sha),
        dataset=DatasetRef(name="t", path=None, sha256=dataset_sha, tasks=2, episodes=3),
        model=ModelRef(name="test", options={}, config={"steps": 4}),
        columns={"hsd": Column("hsd", "trajectory_consistency", "motion", "trial", "higher")},
        overall={"hsd": sum(values) / 3},
        per_task={"hsd": {"1": (values[0] + values[1]) / 2, "2": values[2]}},
        counts=Counts(tasks=2, episodes=3, trials=3, rows_counted=3),
        skipped={},
        provenance=Provenance(ewmbench_version="0.1.0"),
        rows=rows,
    )


def rows_csv(record):
    return "task_id,episode_id,trial_id,hsd\n" + "".join(
        f"{r['task_id']},{r['episode_id']},{r['trial_id']},{r['hsd']}\n" for r in record.rows
    )


def standard_members(record=None, readme=README):
    record = record or make_record()
    members = [
        ("model_readme.md", readme.encode()),
        ("ewmbench/record.json", record.to_json().encode()),
        ("ewmbench/rows.csv", rows_csv(record).encode()),
    ]
    members += [(f"videos/{t}__{e}__{r}.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64)) for t, e, r in KEYS]
    return members


def write_tar(path: Path, members, level: int = 6) -> Path:
    """members: (name, bytes) for files, or a TarInfo (with optional bytes) for anything else."""
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
                continue
            if isinstance(member[0], tarfile.TarInfo):
                tar.addfile(member[0], io.BytesIO(member[1]))
                continue
            info = tarfile.TarInfo(member[0])
            info.size = len(member[1])
            tar.addfile(info, io.BytesIO(member[1]))
    return path


def special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def board(tmp_path):
    folder = tmp_path / "board"
    folder.mkdir()
    (folder / "rule.yaml").write_text(RULE)
    return folder


def refused(tmp_path, archive, code, limits=None, need_record=False):
    """Assert the refusal code, and that nothing was written outside the private folder."""
    work = tmp_path / f"work-{uuid.uuid4().hex[:8]}"
    before = tree(tmp_path)
    work.mkdir()
    with pytest.raises(IntakeError) as caught:
        open_bundle(archive, work, limits or Limits(), need_record=need_record)
    assert caught.value.code == code, caught.value
    assert caught.value.message
    assert tree(tmp_path) - {work.name} - {f"{work.name}/{p}" for p in tree(work)} == before
    return caught.value


def test_a_valid_bundle_is_unpacked_into_the_private_folder_only(tmp_path):
    archive = write_tar(tmp_path / "ok.tar.gz", standard_members())
    work = tmp_path / "work"
    work.mkdir()
    bundle = open_bundle(archive, work)
    assert bundle.metadata["model_name"] == "Test Model" and bundle.metadata["release_year"] == 2025
    assert sorted(bundle.videos) == sorted(KEYS) and all(
        p.parent == work / "videos" for p in bundle.videos.values()
    )
    assert bundle.record.model.config == {"steps": 4} and len(bundle.sha256) == 64
    assert tree(tmp_path) == {"ok.tar.gz", "work"} | {f"work/{p}" for p in tree(work)}
    # a folder holding exactly one bundle is accepted (WorldArena's repository shape)
    folder = tmp_path / "repo"
    folder.mkdir()
    write_tar(folder / "sub.tar.gz", standard_members())
    other = tmp_path / "work2"
    other.mkdir()
    assert open_bundle(folder, other).metadata["version"] == "0.1"


def test_missing_and_multiple_archives(tmp_path):
    refused(tmp_path, tmp_path / "nothing.tar.gz", "missing_tar_gz")
    (tmp_path / "empty").mkdir()
    refused(tmp_path, tmp_path / "empty", "missing_tar_gz")
    (tmp_path / "two").mkdir()
    write_tar(tmp_path / "two" / "a.tar.gz", standard_members())
    write_tar(tmp_path / "two" / "b.tar.gz", standard_members())
    refused(tmp_path, tmp_path / "two", "multiple_tar_gz_found")


def test_unreadable_archives(tmp_path):
    (tmp_path / "junk.tar.gz").write_bytes(os.urandom(2000))
    refused(tmp_path, tmp_path / "junk.tar.gz", "extract_failed")
    whole = write_tar(tmp_path / "whole.tar.gz", standard_members()).read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(whole[: len(whole) // 2])
    refused(tmp_path, tmp_path / "cut.tar.gz", "extract_failed")


@pytest.mark.parametrize(
    "member",
    [
        ("/tmp/ewmbench-escape-{id}", b"x"),
        ("../ewmbench-escape-{id}", b"x"),
        ("videos/../../ewmbench-escape-{id}", b"x"),
        ("videos\\..\\escape.mp4", b"x"),
        "symlink",
        "hardlink",
        "chardev",
        "blockdev",
        "fifo",
        "duplicate",
    ],
)
def test_unsafe_members_are_refused_and_nothing_escapes(tmp_path, member):
    tag = uuid.uuid4().hex
    if member == "symlink":
        extra = [special("videos/link.mp4", tarfile.SYMTYPE, "/etc/passwd")]
    elif member == "hardlink":
        extra = [special("videos/hard.mp4", tarfile.LNKTYPE, "model_readme.md")]
    elif member in ("chardev", "blockdev", "fifo"):
        extra = [
            special(
                "videos/dev.mp4",
                {"chardev": tarfile.CHRTYPE, "blockdev": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[member],
            )
        ]
    elif member == "duplicate":
        extra = [("model_readme.md", README.encode())]
    else:
        extra = [(member[0].format(id=tag), member[1])]
    archive = write_tar(tmp_path / "bad.tar.gz", standard_members() + extra)
    refused(tmp_path, archive, "unsafe_tar_path")
    assert (
        not Path(f"/tmp/ewmbench-escape-{tag}").exists()
        and not (tmp_path.parent / f"ewmbench-escape-{tag}").exists()
    )


def test_too_many_entries(tmp_path):
    members = standard_members() + [(f"videos/9__{i}__1.mp4", b"v") for i in range(30)]
    refused(
        tmp_path, write_tar(tmp_path / "many.tar.gz", members), "too_many_entries", Limits(max_entries=20)
    )


def test_a_decompression_bomb_is_stopped_before_it_is_written(tmp_path):
    bomb = ("videos/1__10__1.mp4", bytes(64 * 2**20))  # 64 MiB of zeros: about 64 KiB compressed
    members = [m for m in standard_members() if m[0] != bomb[0]] + [bomb]
    archive = write_tar(tmp_path / "bomb.tar.gz", members, level=9)
    assert archive.stat().st_size < 2**20
    before = set(tmp_path.iterdir())
    refused(tmp_path, archive, "archive_too_large", Limits(max_bytes=8 * 2**20))
    (work,) = set(tmp_path.iterdir()) - before
    written = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
    assert written < 2**20  # the bomb's bytes never reached the disk
    # the compression ratio alone stops it too, under a generous size limit
    refused(tmp_path, archive, "archive_too_large", Limits(ratio_floor=2**20, max_ratio=100))


def test_unexpected_files(tmp_path):
    archive = write_tar(tmp_path / "x.tar.gz", standard_members() + [("run.sh", b"rm -rf /")])
    refused(tmp_path, archive, "unexpected_file")


def test_readme_and_metadata_refusals(tmp_path):
    without = [m for m in standard_members() if m[0] != "model_readme.md"]
    refused(tmp_path, write_tar(tmp_path / "a.tar.gz", without), "missing_model_readme")
    for i, readme in enumerate(
        [
            "no front matter\n",
            "---\n- a list\n- not a mapping\n---\n",
            README.replace("organization: Lab\n", ""),
            README.replace("release_year: 2025", "release_year: soon"),
            README.replace("control_type: action_driven", "control_type: telepathy"),
            README.replace("paper_url: https://example.org/paper", "paper_url: javascript:alert(1)"),
            "---\nmodel_name: [unclosed\n---\n",
        ]
    ):
        members = [("model_readme.md", readme.encode())] + without
        error = refused(tmp_path, write_tar(tmp_path / f"m{i}.tar.gz", members), "metadata_invalid")
        assert "model_readme.md" in error.message


def test_video_refusals(tmp_path):
    no_videos = [m for m in standard_members() if not m[0].startswith("videos/")]
    refused(tmp_path, write_tar(tmp_path / "a.tar.gz", no_videos), "missing_videos")
    empty_dir = special("videos", tarfile.DIRTYPE)
    refused(tmp_path, write_tar(tmp_path / "b.tar.gz", no_videos + [empty_dir]), "empty_video_dir")
    refused(
        tmp_path,
        write_tar(tmp_path / "c.tar.gz", no_videos + [("videos/clip.mp4", b"v")]),
        "video_name_invalid",
    )


def test_record_refusals(tmp_path):
    no_record = [m for m in standard_members() if not m[0].startswith("ewmbench/")]
    refused(tmp_path, write_tar(tmp_path / "a.tar.gz", no_record), "missing_record", need_record=True)
    broken = [m if m[0] != "ewmbench/record.json" else (m[0], b"{not json") for m in standard_members()]
    refused(tmp_path, write_tar(tmp_path / "b.tar.gz", broken), "record_invalid")
    one_video_less = [m for m in standard_members() if m[0] != "videos/2__20__1.mp4"]
    refused(tmp_path, write_tar(tmp_path / "c.tar.gz", one_video_less), "record_invalid")


def open_ok(tmp_path, name, record=None, readme=README):
    archive = write_tar(tmp_path / f"{name}.tar.gz", standard_members(record, readme))
    work = tmp_path / f"work-{name}"
    work.mkdir()
    return open_bundle(archive, work)


def test_admit_writes_a_self_reported_entry(tmp_path, board):
    entry = admit(open_ok(tmp_path, "a"), board)
    assert entry.kind == "self-reported" and entry.benchmark == "b" and not entry.ci
    assert entry.overall == {"hsd": pytest.approx(0.5)} and entry.provenance["record_sha256"]
    stored = json.loads((board / "entries" / f"{entry.id}.json").read_text())
    assert stored["model"]["model_name"] == "Test Model" and stored["provenance"]["kind"] == "self-reported"
    with pytest.raises(IntakeError) as caught:
        admit(open_ok(tmp_path, "a2"), board)  # the same run record in a new archive
    assert caught.value.code == "duplicate_submission"


def test_admit_verified_carries_bootstrap_intervals(tmp_path, board):
    entry = admit(
        open_ok(tmp_path, "v"),
        board,
        rescored=make_record(values=(0.2, 0.2, 0.2)),
        command="ewmbench leaderboard add ...",
    )
    assert entry.kind == "verified" and entry.ci == {"hsd": [pytest.approx(0.2), pytest.approx(0.2)]}
    assert entry.provenance["bootstrap"]["resamples"] == 2000 and entry.provenance["command"]
    assert load_entries(board, load_rule(board))[0].ci["hsd"][0] == pytest.approx(0.2)


def test_at_most_three_submissions_per_model(tmp_path, board):
    for i in range(3):
        admit(open_ok(tmp_path, f"s{i}", make_record(values=(0.1 * i, 0.5, 0.5))), board)
    with pytest.raises(IntakeError) as caught:
        admit(open_ok(tmp_path, "s3", make_record(values=(0.9, 0.5, 0.5))), board)
    assert caught.value.code == "too_many_submissions"
    other = admit(open_ok(tmp_path, "o", readme=README.replace("Test Model", "Other Model")), board)
    assert other.model["model_name"] == "Other Model"


def test_wrong_protocol_or_data_is_refused(tmp_path, board):
    with pytest.raises(IntakeError) as caught:
        admit(open_ok(tmp_path, "p", make_record(protocol=("ewmbench-v2", "2.0"))), board)
    assert caught.value.code == "protocol_mismatch"
    with pytest.raises(IntakeError) as caught:
        admit(open_ok(tmp_path, "d", make_record(dataset_sha="ef" * 32)), board)
    assert caught.value.code == "unknown_benchmark"
    assert not (board / "entries").exists() or not list((board / "entries").iterdir())


def test_record_schema_is_in_the_bundle(tmp_path):
    assert json.loads(make_record().to_json())["schema"] == SCHEMA


def test_verified_intervals_count_the_rows_the_protocol_counts(tmp_path):
    # ewmbench-v2 keeps the best trial per episode by hsd: episodes (0.2, 0.8) and (0.6, 0.4)
    # count as 0.8 and 0.6, so the overall is 0.7 and the interval is [0.6, 0.8]; over every trial
    # both episode means would be 0.5 and the interval [0.5, 0.5].
    from ewmbench.leaderboard.entries import entry_from_record

    (tmp_path / "rule.yaml").write_text(
        RULE.replace(
            f'{{name: ewmbench-v1, version: "1.0", sha256: {V1_SHA}}}',
            f'{{name: ewmbench-v2, version: "2.0", sha256: {V2_SHA}}}',
        )
    )
    rule = load_rule(tmp_path)
    record = make_record(protocol=("ewmbench-v2", "2.0"))
    record.rows = [
        {"task_id": "1", "episode_id": e, "trial_id": t, "hsd": v}
        for e, t, v in [("10", "1", 0.2), ("10", "2", 0.8), ("11", "1", 0.6), ("11", "2", 0.4)]
    ]
    record.overall = {"hsd": 0.7}
    entry = entry_from_record(
        record,
        rule,
        {
            "model_name": "m",
            "version": "1",
            "organization": "o",
            "release_year": 2025,
            "source_type": "open_source",
            "control_type": "hybrid",
        },
        "verified",
        "m-1",
        {},
    )
    assert entry.overall == {"hsd": 0.7}
    assert entry.ci["hsd"] == [pytest.approx(0.6), pytest.approx(0.8)]
