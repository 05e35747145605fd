"""`audit verify`, `status` and `history` on a damaged audit log: defined results, no traceback.

`audit verify` exits 1 naming the file and line; `status` and `history` warn, report
``"audit": {"ok": false, ...}`` under ``--json`` and still show the entries before the damage.
The commands run through ``pipelines.cli.main``, which returns an exit code for every error it
knows; anything else would escape it as an exception and fail the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.promotion import wiring
from pipelines.promotion.audit import AuditLog
from tests.unit.promotion.test_audit_damage import MemoryCopy

SERVICE = "adult-income"


@pytest.fixture
def log(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    """The local stack's audit log in a state dir of its own, mirrored to an in-memory bucket."""
    state = tmp_path / "state"
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(state))
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(repo))
    monkeypatch.delenv("MODELRAIL_AWS", raising=False)
    audit = AuditLog(state / "audit", "local", remote=MemoryCopy())
    for number in range(3):
        audit.append("promote:promoted", actor="carol@example.com", service=SERVICE, version=f"{number}" * 64)
    remote = audit.remote
    monkeypatch.setattr(
        wiring.StackRecords,
        "audit_with_remote",
        lambda self: AuditLog(state / "audit", self.stack, remote=remote),
    )
    return audit


def _tear(log: AuditLog) -> None:
    with log.path.open("ab") as handle:
        handle.write(b'{"action":"approve","actor":"alice@exa')


def _array_line(log: AuditLog) -> None:
    lines = log.path.read_bytes().splitlines()
    log.path.write_bytes(b"\n".join([lines[0], lines[1], b"[1, 2]", *lines[3:]]) + b"\n")


def _non_utf8(log: AuditLog) -> None:
    raw = log.path.read_bytes()
    position = raw.index(b"1" * 64)
    log.path.write_bytes(raw[:position] + b"\xff" + raw[position + 1 :])


def _head_not_object(log: AuditLog) -> None:
    log.head_path.write_text('["entries", 3]\n')


# case: (damage, where the problem is, what it says, entries before the damage)
CASES: dict[str, tuple[Callable[[AuditLog], None], str, str, int]] = {
    "torn last line": (_tear, "local.jsonl:4", "the last line is incomplete", 3),
    "JSON but not an object": (_array_line, "local.jsonl:3", "JSON but not an object (an array", 2),
    "non-UTF-8 byte": (_non_utf8, "local.jsonl:2", "not UTF-8 (byte 0xff", 1),
    "head file not an object": (_head_not_object, "local.head", "JSON but not an object (an array", 3),
}


def _where(log: AuditLog, short: str) -> str:
    return str(log.path.parent / short)


@pytest.mark.parametrize("case", list(CASES))
def test_audit_verify_exits_1_naming_the_line(
    log: AuditLog, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, where, what, before = CASES[case]
    damage(log)

    assert main(["audit", "verify", "--stack", "local"]) == 1
    err = capsys.readouterr().err
    assert f"broken: {_where(log, where)}: {what}" in err
    assert f"entries before the first problem: {before}" in err

    assert main(["audit", "verify", "--stack", "local", "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["ok"] is False and verdict["entries"] == before
    assert verdict["problems"][0].startswith(f"{_where(log, where)}: {what}")


@pytest.mark.parametrize("case", list(CASES))
def test_status_warns_and_shows_what_it_can(
    log: AuditLog, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, where, what, before = CASES[case]
    damage(log)

    assert main(["status", "--stack", "local", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["audit"]["ok"] is False
    assert report["audit"]["path"] == str(log.path)
    assert report["audit"]["entries"] == before
    assert report["audit"]["problems"][0].startswith(f"{_where(log, where)}: {what}")
    (row,) = [row for row in report["services"] if row["service"] == SERVICE]
    assert row["service"] == SERVICE
    assert row["previous_stable"] == f"{before - 1}" * 64, "drawn from the entries before the damage"

    assert main(["status", "--stack", "local"]) == 0
    output = capsys.readouterr()
    assert "adult-income" in output.out
    assert "does not verify" in output.err
    assert f"{_where(log, where)}: {what}" in output.err
    assert "modelrail audit verify --stack local" in output.err


@pytest.mark.parametrize("case", list(CASES))
def test_history_warns_and_lists_the_entries_before_the_damage(
    log: AuditLog, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, where, what, before = CASES[case]
    damage(log)

    assert main(["history", "--service", SERVICE, "--stack", "local", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [entry["version"] for entry in report["entries"]] == [f"{n}" * 64 for n in range(before)]
    assert report["audit"]["ok"] is False
    assert report["audit"]["problems"][0].startswith(f"{_where(log, where)}: {what}")

    assert main(["history", "--service", SERVICE, "--stack", "local"]) == 0
    output = capsys.readouterr()
    assert "promote:promoted" in output.out
    assert f"{_where(log, where)}: {what}" in output.err


def test_a_sound_log_reports_ok_in_status_and_history(
    log: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--stack", "local", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["audit"] == {
        "ok": True,
        "path": str(log.path),
        "entries": 3,
        "problems": [],
    }
    assert main(["history", "--service", SERVICE, "--stack", "local"]) == 0
    assert "does not verify" not in capsys.readouterr().err
    assert main(["audit", "verify", "--stack", "local"]) == 0


def test_a_problem_that_looks_like_markup_is_printed_as_it_is(
    log: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = log.path.read_bytes().splitlines()
    log.path.write_bytes(b"\n".join([lines[0], b"[true]", *lines[2:]]) + b"\n")
    assert main(["audit", "verify", "--stack", "local"]) == 1
    assert "(an array: '[true]')" in capsys.readouterr().err
