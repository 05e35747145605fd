"""A damaged audit log is a finding that names the file and line, never a traceback.

Covered: a torn last line (what a crash during an append leaves), a line that is JSON but not an
object, a byte that is not UTF-8, a head file that is not a head record, and a bucket copy that
is damaged or unreadable. A torn last line, and only that, is moved aside by
``repair_torn_tail``; ``append`` never chains after damage.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import BadInputError
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.audit_scan import AuditLogDamagedError


class MemoryCopy:
    def __init__(self) -> None:
        self.text: bytes | None = None

    def upload(self, text: bytes) -> None:
        self.text = text

    def download(self) -> bytes | None:
        return self.text


class BrokenBucket(MemoryCopy):
    def download(self) -> bytes | None:
        raise ConnectionError("endpoint unreachable")


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path, "local", remote=MemoryCopy())
    for number in range(3):
        audit.append(
            "promote:promoted", actor="carol@example.com", service="adult-income", version=f"v{number}"
        )
    return audit


def _would_be_line(log: AuditLog) -> bytes:
    """The bytes the next append would write (a scratch log with the same entries does it)."""
    scratch = AuditLog(log.path.parent / "scratch", "local")
    scratch.path.write_bytes(log.path.read_bytes())
    scratch.head_path.write_bytes(log.head_path.read_bytes())
    scratch.append("approve", actor="alice@example.com", service="adult-income", version="v3")
    return scratch.path.read_bytes()[len(log.path.read_bytes()) :]


def _tear(log: AuditLog) -> bytes:
    """Leave what a crash in the middle of an append leaves: part of the line, no newline."""
    torn = _would_be_line(log)[:57]
    with log.path.open("ab") as handle:
        handle.write(torn)
    return torn


def _replace_line(number: int, text: bytes) -> Callable[[AuditLog], None]:
    def damage(log: AuditLog) -> None:
        lines = log.path.read_bytes().split(b"\n")
        lines[number - 1] = text
        log.path.write_bytes(b"\n".join(lines))

    return damage


def _corrupt_byte(log: AuditLog) -> None:
    raw = log.path.read_bytes()
    position = raw.index(b'"v1"') + 2
    log.path.write_bytes(raw[:position] + b"\xff" + raw[position + 1 :])


LINE_DAMAGE: dict[str, tuple[Callable[[AuditLog], Any], int, str]] = {
    "torn last line": (_tear, 4, "the last line is incomplete, 57 bytes without a newline that are not JSON"),
    "JSON array": (_replace_line(2, b"[1, 2]"), 2, "JSON but not an object (an array: '[1, 2]')"),
    "JSON string": (_replace_line(2, b'"hello"'), 2, "JSON but not an object (a string"),
    "JSON null": (_replace_line(3, b"null"), 3, "JSON but not an object (null"),
    "object without an action": (
        _replace_line(2, b'{"actor": "mallory", "seq": 1, "time": "now"}'),
        2,
        "an object whose 'action' is None, not text",
    ),
    "empty line": (_replace_line(2, b""), 2, "an empty line"),
    "unpaired surrogate escape": (
        _replace_line(2, b'{"action": "a", "actor": "b", "time": "t", "note": "\\ud800"}'),
        2,
        "an object holding an unpaired surrogate",
    ),
    "non-UTF-8 byte": (_corrupt_byte, 2, "not UTF-8 (byte 0xff at column"),
}


@pytest.mark.parametrize("case", list(LINE_DAMAGE))
def test_verify_names_the_file_the_line_and_what_is_wrong(log: AuditLog, case: str) -> None:
    damage, line, what = LINE_DAMAGE[case]
    damage(log)
    verdict = log.verify()
    assert not verdict.ok
    assert verdict.entries == line - 1, "the entries before the damage still verify"
    assert verdict.problems[0].startswith(f"{log.path}:{line}: {what}"), verdict.problems[0]


@pytest.mark.parametrize("case", list(LINE_DAMAGE))
def test_read_returns_the_entries_before_the_damage_and_the_problem(log: AuditLog, case: str) -> None:
    damage, line, _what = LINE_DAMAGE[case]
    damage(log)
    reading = log.read()
    assert [entry["version"] for entry in reading.entries] == [f"v{n}" for n in range(line - 1)]
    assert reading.to_json()["ok"] is False
    assert reading.problems[0].startswith(f"{log.path}:{line}: ")


@pytest.mark.parametrize("case", list(LINE_DAMAGE))
def test_entries_refuses_to_read_past_damage_with_a_typed_error(log: AuditLog, case: str) -> None:
    damage, line, _what = LINE_DAMAGE[case]
    damage(log)
    with pytest.raises(AuditLogDamagedError) as raised:
        list(log.entries())
    assert raised.value.message.startswith(f"{log.path}:{line}: ")


def test_a_torn_line_is_named_as_such_with_its_repair(log: AuditLog) -> None:
    _tear(log)
    (problem,) = log.verify().problems
    assert "an append was interrupted; `modelrail resume --stack local` moves it aside" in problem


def test_a_cut_line_in_the_middle_is_damage_not_a_torn_tail(log: AuditLog) -> None:
    lines = log.path.read_bytes().split(b"\n")
    lines[1] = lines[1][:30]
    log.path.write_bytes(b"\n".join(lines))
    (problem,) = log.verify().problems
    assert problem.startswith(f"{log.path}:2: not JSON (")
    assert "incomplete" not in problem and "resume" not in problem


HEAD_DAMAGE = {
    "not JSON": (b"{entries: 3", "not JSON (Expecting property name enclosed in double quotes"),
    "an array": (b"[3]", "JSON but not an object (an array: '[3]')"),
    "a number": (b"3", "JSON but not an object (a number: '3')"),
    "not UTF-8": (b'{"entries": 3, "head": "\xfe"}', "not UTF-8 (byte 0xfe at column 25"),
    "a bad count": (b'{"entries": "3", "head": "ab"}', "its 'entries' is '3', not a count"),
    "no head hash": (b'{"entries": 3}', "its 'head' is None, not a sha256"),
}


@pytest.mark.parametrize("case", list(HEAD_DAMAGE))
def test_a_head_file_that_is_not_a_head_record_is_a_problem(log: AuditLog, case: str) -> None:
    text, what = HEAD_DAMAGE[case]
    log.head_path.write_bytes(text)
    verdict = log.verify()
    assert not verdict.ok
    assert verdict.entries == 3
    assert verdict.problems[0].startswith(f"{log.head_path}: {what}"), verdict.problems[0]
    assert "the log has 3 entries" in verdict.problems[0]
    reading = log.read()
    assert len(reading.entries) == 3 and reading.problems == verdict.problems


# ---------------------------------------------------------------------------------- repair


def test_repair_moves_a_torn_line_aside_byte_for_byte(log: AuditLog) -> None:
    intact = log.path.read_bytes()
    torn = _tear(log)

    done = log.repair_torn_tail()

    assert done is not None
    (quarantine,) = log.path.parent.glob("local.jsonl.torn-*")
    assert done == (
        f"{log.path}:4: moved an incomplete last line (57 bytes, left by an interrupted append) to {quarantine}"
    )
    assert quarantine.read_bytes() == torn, "nothing of the torn line is lost"
    assert log.path.read_bytes() == intact
    assert log.verify().ok, "head file and bucket copy still describe the entries that remain"
    assert log.repair_torn_tail() is None, "a second repair finds nothing"


def test_repair_keeps_each_torn_line_it_moves(log: AuditLog) -> None:
    first = _tear(log)
    assert log.repair_torn_tail()
    second = _tear(log) + b"\xc3"  # and this one is cut inside a two-byte character
    with log.path.open("ab") as handle:
        handle.write(b"\xc3")
    assert log.repair_torn_tail()
    kept = sorted(path.read_bytes() for path in log.path.parent.glob("local.jsonl.torn-*"))
    assert kept == sorted([first, second])


def test_repair_moves_only_the_torn_tail_of_a_log_also_damaged_before_it(log: AuditLog) -> None:
    _tear(log)
    _replace_line(2, b"[1, 2]")(log)
    assert log.repair_torn_tail() is not None
    assert log.path.read_bytes().endswith(b"\n")
    assert log.verify().problems[0].startswith(f"{log.path}:2: JSON but not an object")


def _tampered_last_line(log: AuditLog) -> None:
    log.path.write_bytes(log.path.read_bytes().replace(b'"v2"', b'"v9"'))


def _unterminated_array(log: AuditLog) -> None:
    with log.path.open("ab") as handle:
        handle.write(b"[1, 2]")


def _cut_array(log: AuditLog) -> None:
    with log.path.open("ab") as handle:
        handle.write(b'[{"seq": 3')


def _complete_entry_without_newline(log: AuditLog) -> None:
    log.path.write_bytes(log.path.read_bytes()[:-1])


NOT_TORN: dict[str, Callable[[AuditLog], None]] = {
    "an intact log": lambda log: None,
    "a damaged middle line": _replace_line(2, b'{"seq": 1, "act'),
    "a complete but tampered last line": _tampered_last_line,
    "a complete last line that is not an object": _unterminated_array,
    "a cut last line that never was an entry": _cut_array,
    "a complete entry that lost its newline": _complete_entry_without_newline,
}


@pytest.mark.parametrize("case", list(NOT_TORN))
def test_repair_leaves_everything_but_a_torn_last_line_alone(log: AuditLog, case: str) -> None:
    NOT_TORN[case](log)
    before = log.path.read_bytes()
    assert log.repair_torn_tail() is None
    assert log.path.read_bytes() == before
    assert not list(log.path.parent.glob("local.jsonl.torn-*"))


def test_repair_of_a_log_that_does_not_exist_does_nothing(tmp_path: Path) -> None:
    assert AuditLog(tmp_path, "dev").repair_torn_tail() is None


# ---------------------------------------------------------------------------------- append


def test_append_refuses_after_a_torn_line_and_points_to_resume(log: AuditLog) -> None:
    _tear(log)
    before, mirrored = log.path.read_bytes(), log.remote.download()  # type: ignore[union-attr]
    with pytest.raises(AuditLogDamagedError) as raised:
        log.append("approve", actor="alice@example.com", service="adult-income", version="v3")
    assert raised.value.message.startswith(f"{log.path}:4: the last line is incomplete")
    assert "`modelrail resume --stack local` moves it aside" in raised.value.message
    assert "nothing was written" in raised.value.details[0]
    assert log.path.read_bytes() == before
    assert log.remote.download() == mirrored  # type: ignore[union-attr]


def test_after_the_repair_the_next_entry_chains_onto_the_last_whole_one(log: AuditLog) -> None:
    _tear(log)
    log.repair_torn_tail()
    entry = log.append("approve", actor="alice@example.com", service="adult-income", version="v3")
    assert entry["seq"] == 3
    verdict = log.verify()
    assert verdict.ok and verdict.entries == 4


@pytest.mark.parametrize(
    "damage",
    [_replace_line(2, b"[1, 2]"), _corrupt_byte, _tampered_last_line],
    ids=["not an object", "not UTF-8", "edited entry"],
)
def test_append_never_chains_after_damage_nor_overwrites_the_bucket_copy(
    log: AuditLog, damage: Callable[[AuditLog], None]
) -> None:
    damage(log)
    before, mirrored = log.path.read_bytes(), log.remote.download()  # type: ignore[union-attr]
    with pytest.raises(AuditLogDamagedError) as raised:
        log.append("approve", actor="alice@example.com", service="adult-income", version="v3")
    assert raised.value.message == log.verify().problems[0]
    assert raised.value.details == [
        "refused to append an entry after it (nothing was written)",
        "`modelrail audit verify --stack local` shows every problem",
    ]
    assert log.path.read_bytes() == before
    assert log.remote.download() == mirrored, "the evidence in the bucket survives"  # type: ignore[union-attr]


def test_ensure_appendable_raises_what_append_would_without_writing(log: AuditLog) -> None:
    log.ensure_appendable()
    _tear(log)
    before = log.path.read_bytes()
    with pytest.raises(AuditLogDamagedError) as checked:
        log.ensure_appendable()
    with pytest.raises(AuditLogDamagedError) as appended:
        log.append("approve", actor="alice@example.com", service="adult-income", version="v3")
    assert checked.value.to_json() == appended.value.to_json()
    assert log.path.read_bytes() == before


def test_append_refuses_a_log_whose_tail_was_cut_off(log: AuditLog) -> None:
    lines = log.path.read_bytes().split(b"\n")
    log.path.write_bytes(b"\n".join(lines[:2]) + b"\n")
    with pytest.raises(AuditLogDamagedError) as raised:
        log.append("approve", actor="alice@example.com", service="adult-income", version="v3")
    assert raised.value.message.startswith(f"{log.head_path}: records 3 entries")
    assert len(log.remote.download().splitlines()) == 3  # type: ignore[union-attr]


def test_append_refuses_text_that_cannot_be_hashed_as_bad_input(log: AuditLog) -> None:
    before = log.path.read_bytes()
    with pytest.raises(BadInputError, match=r"a field holds text that is not valid Unicode \('\\udcff'\)"):
        log.append("approve", actor="alice@example.com", comment="ok\udcff")  # argv bytes that are not UTF-8
    assert log.path.read_bytes() == before


def test_append_catches_up_a_head_left_one_entry_behind_by_a_crash(log: AuditLog) -> None:
    second_hash = json.loads(log.path.read_bytes().splitlines()[1])["hash"]
    log.head_path.write_text(json.dumps({"entries": 2, "head": second_hash}))
    log.append("approve", actor="alice@example.com", service="adult-income", version="v3")
    assert log.verify().ok


def test_append_ends_a_whole_last_entry_that_lost_its_newline(log: AuditLog) -> None:
    _complete_entry_without_newline(log)
    log.append("approve", actor="alice@example.com", service="adult-income", version="v3")
    verdict = log.verify()
    assert verdict.ok and verdict.entries == 4


def test_append_writes_the_line_and_its_newline_in_one_fsynced_write(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: dict[int, str] = {}
    calls: list[tuple[str, str, bytes]] = []
    real_open, real_write, real_fsync, real_replace = os.open, os.write, os.fsync, os.replace

    def spy_open(path: Any, flags: int, *args: Any) -> int:
        descriptor = real_open(path, flags, *args)
        opened[descriptor] = Path(path).name
        return descriptor

    def spy_write(descriptor: int, data: Any) -> int:
        calls.append(("write", opened.get(descriptor, "?"), bytes(data)))
        return real_write(descriptor, data)

    def spy_fsync(descriptor: int) -> None:
        calls.append(("fsync", opened.get(descriptor, "?"), b""))
        real_fsync(descriptor)

    def spy_replace(source: Any, target: Any) -> None:
        calls.append(("replace", f"{Path(source).name}->{Path(target).name}", b""))
        real_replace(source, target)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "write", spy_write)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)

    entry = log.append("approve", actor="alice@example.com", service="adult-income", version="v3")

    log_calls = [(kind, data) for kind, name, data in calls if name == "local.jsonl"]
    assert [kind for kind, _ in log_calls] == ["write", "fsync"]
    assert json.loads(log_calls[0][1]) == entry and log_calls[0][1].endswith(b"\n")
    sequence = [(kind, name) for kind, name, _ in calls if name.startswith("local.head")]
    assert sequence == [
        ("write", "local.head.tmp"),
        ("fsync", "local.head.tmp"),
        ("replace", "local.head.tmp->local.head"),
    ]
    assert calls.index(("fsync", "local.jsonl", b"")) < next(
        index for index, call in enumerate(calls) if call[0] == "replace"
    ), "the line is durable before the head moves past it"


def _append_many(directory: str, worker: int, count: int) -> None:
    log = AuditLog(Path(directory), "local")
    for number in range(count):
        log.append(
            "approve", actor=f"worker{worker}@example.com", service="adult-income", version=f"v{number}"
        )


def test_concurrent_appends_from_two_processes_keep_one_chain(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(tmp_path), worker, 25)) for worker in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    verdict = AuditLog(tmp_path, "local").verify()
    assert verdict.problems == ()
    assert verdict.entries == 50


# ---------------------------------------------------------------------------------- the bucket copy


@pytest.mark.parametrize(
    ("remote", "what"),
    [
        (b"\xff\xfe garbage\n", "the copy in the artifact bucket, line 1: not UTF-8 (byte 0xff at column 1"),
        (b"[]\n", "the copy in the artifact bucket, line 1: JSON but not an object (an array"),
        (b'{"seq": 0, "act', "the copy in the artifact bucket, line 1: not JSON (Unterminated string"),
    ],
    ids=["not UTF-8", "not an object", "cut short"],
)
def test_a_damaged_bucket_copy_is_a_problem_naming_its_line(log: AuditLog, remote: bytes, what: str) -> None:
    log.remote.text = remote  # type: ignore[union-attr]
    (problem,) = log.verify().problems
    assert problem.startswith(what), problem
    assert problem.endswith("it differs from the local log (3 entries) from line 1")


def test_a_bucket_copy_with_an_edited_entry_names_that_line(log: AuditLog) -> None:
    log.remote.text = log.path.read_bytes().replace(b'"v1"', b'"v7"')  # type: ignore[union-attr]
    (problem,) = log.verify().problems
    assert problem == (
        "the copy in the artifact bucket, line 2: content does not match its hash (the entry was edited); "
        "it differs from the local log (3 entries) from line 2"
    )


def test_an_unreadable_bucket_is_a_problem_not_an_exception(log: AuditLog) -> None:
    log.remote = BrokenBucket()
    (problem,) = log.verify().problems
    assert problem == "the copy in the artifact bucket cannot be read (ConnectionError: endpoint unreachable)"
