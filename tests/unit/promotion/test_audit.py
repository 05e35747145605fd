"""The audit log notices any edit, deletion or reordering, including a cut-off tail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.promotion.audit import AuditLog


class MemoryCopy:
    def __init__(self) -> None:
        self.text: bytes | None = None

    def upload(self, text: bytes) -> None:
        self.text = text

    def download(self) -> bytes | None:
        return self.text


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path, "local", remote=MemoryCopy())
    for number in range(4):
        audit.append(
            "promote:promoted", actor="carol@example.com", service="adult-income", version=f"v{number}"
        )
    return audit


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines()


def _write(log: AuditLog, lines: list[str]) -> None:
    log.path.write_text("\n".join(lines) + "\n")


def test_an_untouched_log_verifies(log: AuditLog) -> None:
    verdict = log.verify()
    assert verdict.ok
    assert verdict.entries == 4
    assert verdict.head == json.loads(_lines(log)[-1])["hash"]


def test_changing_one_byte_is_detected(log: AuditLog) -> None:
    raw = bytearray(log.path.read_bytes())
    position = raw.index(b"v2")
    raw[position + 1] = ord("9")
    log.path.write_bytes(bytes(raw))
    verdict = log.verify()
    assert not verdict.ok
    assert "local.jsonl:3: content does not match its hash" in verdict.problems[0]


def test_deleting_an_entry_is_detected(log: AuditLog) -> None:
    lines = _lines(log)
    _write(log, lines[:1] + lines[2:])
    assert "sequence 2 where 1 was expected" in log.verify().problems[0]


def test_reordering_entries_is_detected(log: AuditLog) -> None:
    lines = _lines(log)
    _write(log, [lines[1], lines[0], *lines[2:]])
    assert "sequence 1 where 0 was expected" in log.verify().problems[0]


def test_cutting_off_the_tail_is_detected_by_the_head_file(log: AuditLog) -> None:
    _write(log, _lines(log)[:2])
    problems = log.verify().problems
    assert any("records 4 entries" in problem for problem in problems)


def test_rewriting_log_and_head_together_is_caught_by_the_remote_copy(log: AuditLog) -> None:
    lines = _lines(log)[:2]
    _write(log, lines)
    last = json.loads(lines[-1])
    log.head_path.write_text(json.dumps({"entries": 2, "head": last["hash"]}))
    problems = log.verify().problems
    assert list(problems) == [
        "the local log (2 entries) differs from the copy in the artifact bucket (4 entries)"
    ]


def test_a_garbled_line_is_reported_not_raised(log: AuditLog) -> None:
    lines = _lines(log)
    lines[1] = lines[1][:20]
    _write(log, lines)
    assert "local.jsonl:2: not JSON" in log.verify().problems[0]


def test_an_empty_log_verifies(tmp_path: Path) -> None:
    assert AuditLog(tmp_path, "dev").verify().ok
