"""An append-only audit log whose entries are hash-chained, so no edit goes unnoticed.

Each JSON line carries the sha256 of the previous line's entry and its own sequence number, so
an edited, deleted or reordered entry breaks the chain. A chain alone cannot see its own tail
cut off, so the count and the last hash are also kept in a head file next to the log and, when
a remote copy is configured, in the artifact bucket; ``verify`` compares all three.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

GENESIS = "0" * 64


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """The sha256 of an entry without its own ``hash`` field."""
    return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


class RemoteCopy(Protocol):
    """Where the log is mirrored (the artifact bucket): the whole text, read back for verification."""

    def upload(self, text: bytes) -> None: ...

    def download(self) -> bytes | None: ...


@dataclass(frozen=True)
class Verdict:
    """The outcome of ``AuditLog.verify``: ok, or the first problem found, with where it is."""

    ok: bool
    entries: int
    head: str
    problems: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head": self.head, "problems": list(self.problems)}


class AuditLog:
    """One stack's audit log: ``<dir>/<stack>.jsonl`` plus ``<stack>.head``."""

    def __init__(self, directory: Path, stack: str, remote: RemoteCopy | None = None) -> None:
        self.path = directory / f"{stack}.jsonl"
        self.head_path = directory / f"{stack}.head"
        self.remote = remote
        directory.mkdir(parents=True, exist_ok=True)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, in order (without checking the chain; ``verify`` does that)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def append(self, action: str, *, actor: str, **fields: Any) -> dict[str, Any]:
        """Add one entry after the current head; fsync'd, then mirrored."""
        last = self._last()
        entry: dict[str, Any] = {
            "seq": 0 if last is None else int(last["seq"]) + 1,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "action": action,
            "actor": actor,
            "prev": GENESIS if last is None else last["hash"],
            **fields,
        }
        entry["hash"] = entry_hash(entry)
        with self.path.open("ab") as handle:
            handle.write(_canonical(entry) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._write_head(entry["seq"] + 1, entry["hash"])
        if self.remote is not None:
            self.remote.upload(self.path.read_bytes())
        return entry

    def verify(self) -> Verdict:
        """Check the chain, the head file and the remote copy; report every problem found."""
        problems: list[str] = []
        previous, count = GENESIS, 0
        raw_lines = self.path.read_bytes().splitlines() if self.path.exists() else []
        for number, raw in enumerate(raw_lines, start=1):
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                problems.append(f"{self.path}:{number}: not JSON (the line was edited or truncated)")
                break
            if entry.get("seq") != count:
                problems.append(
                    f"{self.path}:{number}: sequence {entry.get('seq')} where {count} was expected "
                    "(an entry was deleted or reordered)"
                )
            if entry.get("prev") != previous:
                problems.append(f"{self.path}:{number}: does not chain to the entry before it")
            if entry_hash(entry) != entry.get("hash"):
                problems.append(
                    f"{self.path}:{number}: content does not match its hash (the entry was edited)"
                )
            if problems:
                break
            previous, count = entry["hash"], count + 1
        if not problems:
            problems.extend(self._check_head(count, previous))
            problems.extend(self._check_remote(raw_lines))
        return Verdict(ok=not problems, entries=count, head=previous, problems=tuple(problems))

    def _last(self) -> dict[str, Any] | None:
        last = None
        for last in self.entries():  # noqa: B007 - the loop keeps the final entry
            pass
        return last

    def _write_head(self, count: int, head: str) -> None:
        temporary = self.head_path.with_suffix(".head.tmp")
        temporary.write_text(json.dumps({"entries": count, "head": head}) + "\n", encoding="utf-8")
        os.replace(temporary, self.head_path)

    def _check_head(self, count: int, head: str) -> list[str]:
        if not self.head_path.exists():
            return [] if count == 0 else [f"{self.head_path}: missing (the log cannot prove its length)"]
        recorded = json.loads(self.head_path.read_text(encoding="utf-8"))
        if recorded.get("entries") != count or recorded.get("head") != head:
            return [
                f"{self.head_path}: records {recorded.get('entries')} entries "
                f"ending {str(recorded.get('head'))[:12]}, "
                f"the log has {count} ending {head[:12]} (entries were removed or added outside modelrail)"
            ]
        return []

    def _check_remote(self, raw_lines: list[bytes]) -> list[str]:
        if self.remote is None:
            return []
        remote = self.remote.download()
        if remote is None:
            return [] if not raw_lines else ["the artifact bucket holds no copy of this log"]
        remote_lines = remote.splitlines()
        if remote_lines != raw_lines:
            return [
                f"the local log ({len(raw_lines)} entries) differs from the copy in the artifact bucket "
                f"({len(remote_lines)} entries)"
            ]
        return []
