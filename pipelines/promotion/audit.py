"""An append-only audit log whose entries are hash-chained, so no edit goes unnoticed.

Each JSON line carries the sha256 of the previous line's entry and its own sequence number, so
an edited, deleted or reordered entry breaks the chain. A chain alone cannot see its own tail
cut off, so the count and the last hash are also kept in a head file next to the log and, when
a remote copy is configured, in the artifact bucket; ``verify`` compares all three.

Damage is a finding, never a traceback. ``verify`` and ``read`` name the file, the line and what
is wrong with it (not UTF-8, not JSON, JSON but not an object, a broken chain, a head file that
is not a head record, a bucket copy that differs); ``read`` also returns the entries before the
first damaged line, so views can show what is still trustworthy. ``entries`` and ``append``
refuse a damaged log with ``AuditLogDamagedError`` instead of reading or chaining past it.

A crash during ``append`` can leave a torn last line: an entry and its newline are written in one
``write``, so a torn line has no newline and does not parse. That one case is recoverable:
``repair_torn_tail`` (called by ``modelrail resume``) moves the torn bytes to a quarantine file
next to the log. It never touches a complete line or any line before the last.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.errors import BadInputError, ModelrailError
from pipelines.promotion.audit_scan import (
    GENESIS,
    REMOTE,
    AuditLogDamagedError,
    Reading,
    RemoteCopy,
    Verdict,
    _canonical,
    _fsync_directory,
    _parse,
    _parse_head,
    _Scan,
    _scan,
    _shown,
    _split,
    _write_all,
    entry_hash,
)


class AuditLog:
    """One stack's audit log: ``<dir>/<stack>.jsonl`` plus ``<stack>.head``.

    Writers (``append``, ``repair_torn_tail``) hold an exclusive ``flock`` on
    ``<stack>.jsonl.lock``, so two processes never chain onto the same entry and a repair never
    mistakes an append in progress for a torn line.
    """

    def __init__(self, directory: Path, stack: str, remote: RemoteCopy | None = None) -> None:
        self.stack = stack
        self.path = directory / f"{stack}.jsonl"
        self.head_path = directory / f"{stack}.head"
        self.lock_path = directory / f"{stack}.jsonl.lock"
        self.remote = remote
        directory.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, in order (without checking the chain; ``verify`` does that).

        Raises ``AuditLogDamagedError`` naming the first line that is not an entry, rather than
        silently ending early; ``read`` returns the entries before it instead.
        """
        scan = self._scan_local(chain=False)
        if scan.problems:
            raise self._damaged(scan, "the log cannot be read past this line")
        yield from scan.entries

    def read(self) -> Reading:
        """The entries that verify (up to the first damaged line) and every local problem.

        Checks the chain and the head file, not the bucket copy, so it needs no cloud access.
        """
        scan = self._scan_local(chain=True)
        problems = list(scan.problems)
        if not problems:
            problems.extend(self._check_head(scan.entries))
        return Reading(self.path, tuple(scan.entries), tuple(problems))

    def verify(self) -> Verdict:
        """Check the chain, the head file and the remote copy; report every problem found."""
        scan = self._scan_local(chain=True)
        problems = list(scan.problems)
        if not problems:
            problems.extend(self._check_head(scan.entries))
            problems.extend(self._check_remote(scan.lines))
        return Verdict(ok=not problems, entries=len(scan.entries), head=scan.head, problems=tuple(problems))

    # ------------------------------------------------------------------ writing

    def append(self, action: str, *, actor: str, **fields: Any) -> dict[str, Any]:
        """Add one entry after the current head; fsync'd, then mirrored.

        Refuses (``AuditLogDamagedError``) when the log does not verify locally: a torn last
        line (``modelrail resume`` moves it aside), a damaged or re-chained line, or a head file
        that disagrees with the log. Chaining past any of them would vouch for it, and the
        mirror upload would overwrite the bucket copy, the evidence of what was there. A head one
        entry behind is accepted: that is a crash between writing an entry and its head.
        """
        with self._locked():
            scan = self._appendable()
            entry: dict[str, Any] = {
                "seq": len(scan.entries),
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "action": action,
                "actor": actor,
                "prev": scan.head,
                **fields,
            }
            try:
                entry["hash"] = entry_hash(entry)
            except UnicodeEncodeError as error:  # e.g. an argument with bytes that are not UTF-8
                bad = _shown(error.object[error.start : error.end])
                raise BadInputError(
                    f"cannot record {action!r} in {self.path}: a field holds text that is not valid "
                    f"Unicode ({bad}); nothing was written"
                ) from error
            line = _canonical(entry) + b"\n"
            if scan.unterminated:  # a complete, chained last entry that lost its newline: end it first
                line = b"\n" + line
            self._append_line(line)
            self._write_head(len(scan.entries) + 1, entry["hash"])
            if self.remote is not None:
                self.remote.upload(self.path.read_bytes())
        return entry

    def ensure_appendable(self) -> None:
        """Raise the ``AuditLogDamagedError`` that ``append`` would raise now, writing nothing.

        For callers that act first and record after (a registry approval, a stack update): check
        before acting, so a damaged log stops the action instead of leaving it unrecorded.
        """
        self._appendable()

    def repair_torn_tail(self) -> str | None:
        """Move a torn last line to a quarantine file; say what was done, or ``None`` if nothing was.

        Torn means exactly what a crash during ``append`` leaves: the log does not end with a
        newline, and the bytes after its last newline start like an entry (``{``) but are not
        UTF-8 or not JSON. Anything else is left alone for ``verify`` to report: a complete last
        line (even an edited one, even one without its newline), and every line before the last.
        The bytes are kept in ``<stack>.jsonl.torn-<UTC time>`` next to the log (written and
        fsync'd before the log is cut back to its last newline, so a crash in between loses
        nothing). The head file and the bucket copy are not touched: ``append`` writes them
        only after the line, so they still describe the entries that remain.
        """
        with self._locked():
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return None
            except OSError as error:
                raise AuditLogDamagedError(f"{self.path}: cannot be read ({error.strerror})") from error
            cut = raw.rfind(b"\n") + 1
            tail = raw[cut:]
            entry, _wrong, torn = _parse(tail)
            if not tail or entry is not None or not torn:
                return None
            number = raw.count(b"\n", 0, cut) + 1
            quarantine = self._quarantine(tail)
            with self.path.open("r+b") as handle:
                handle.truncate(cut)
                handle.flush()
                os.fsync(handle.fileno())
        return (
            f"{self.path}:{number}: moved an incomplete last line ({len(tail)} bytes, left by an "
            f"interrupted append) to {quarantine}"
        )

    # ------------------------------------------------------------------ internals

    def _scan_local(self, *, chain: bool) -> _Scan:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as error:
            return _Scan([], False, problems=[f"{self.path}: cannot be read ({error.strerror})"])
        hint = f"; `modelrail resume --stack {self.stack}` moves it aside"
        return _scan(raw, f"{self.path}:{{}}", chain=chain, torn_hint=hint)

    def _appendable(self) -> _Scan:
        """The log's scan, if a new entry may chain onto it; else ``AuditLogDamagedError``."""
        scan = self._scan_local(chain=True)
        if scan.problems:
            raise self._damaged(scan, "refused to append an entry after it (nothing was written)")
        head_problems = self._check_head(scan.entries, allow_lag=True)
        if head_problems:
            raise AuditLogDamagedError(
                head_problems[0],
                details=[
                    f"refused to append an entry to {self.path} (nothing was written)",
                    f"`modelrail audit verify --stack {self.stack}` shows every problem",
                ],
            )
        return scan

    def _damaged(self, scan: _Scan, consequence: str) -> AuditLogDamagedError:
        details = [consequence]
        if not scan.torn:
            details.append(f"`modelrail audit verify --stack {self.stack}` shows every problem")
        return AuditLogDamagedError(scan.problems[0], details=details)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self.lock_path.open("ab") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _append_line(self, line: bytes) -> None:
        created = not self.path.exists()
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _write_all(descriptor, line)
            finally:
                os.close(descriptor)
        except OSError as error:
            raise ModelrailError(
                f"{self.path}: cannot append the entry ({error.strerror}); if that left an "
                f"incomplete line, `modelrail resume --stack {self.stack}` moves it aside"
            ) from error
        if created:
            _fsync_directory(self.path.parent)

    def _write_head(self, count: int, head: str) -> None:
        temporary = self.head_path.with_suffix(".head.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(descriptor, (json.dumps({"entries": count, "head": head}) + "\n").encode())
        finally:
            os.close(descriptor)
        os.replace(temporary, self.head_path)
        _fsync_directory(self.head_path.parent)

    def _quarantine(self, data: bytes) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for attempt in range(1000):
            suffix = "" if attempt == 0 else f"-{attempt}"
            target = self.path.with_name(f"{self.path.name}.torn-{stamp}{suffix}")
            try:
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            try:
                _write_all(descriptor, data)
            finally:
                os.close(descriptor)
            _fsync_directory(target.parent)
            return target
        raise ModelrailError(f"{self.path}: no free quarantine file name for {stamp}")

    def _check_head(self, entries: list[dict[str, Any]], *, allow_lag: bool = False) -> list[str]:
        count = len(entries)
        head = str(entries[-1]["hash"]) if entries else GENESIS
        try:
            raw = self.head_path.read_bytes()
        except FileNotFoundError:
            if count == 0 or (allow_lag and count == 1):
                return []
            return [f"{self.head_path}: missing (the log cannot prove its length)"]
        except OSError as error:
            return [f"{self.head_path}: cannot be read ({error.strerror})"]
        recorded, wrong = _parse_head(raw)
        if recorded is None:
            return [
                f'{self.head_path}: {wrong}, not a head record {{"entries": N, "head": "<sha256>"}} '
                f"(the log has {count} entries ending {head[:12]})"
            ]
        if (recorded["entries"], recorded["head"]) == (count, head):
            return []
        if allow_lag and count >= 1:
            before = str(entries[-2]["hash"]) if count >= 2 else GENESIS
            if (recorded["entries"], recorded["head"]) == (count - 1, before):
                return []
        return [
            f"{self.head_path}: records {recorded['entries']} entries "
            f"ending {recorded['head'][:12]}, "
            f"the log has {count} ending {head[:12]} (entries were removed or added outside modelrail)"
        ]

    def _check_remote(self, lines: list[bytes]) -> list[str]:
        if self.remote is None:
            return []
        try:
            remote = self.remote.download()
        except ModelrailError as error:
            return [f"{REMOTE} cannot be read: {error.message}"]
        except Exception as error:  # whatever the bucket does, it is a finding, not a traceback
            return [f"{REMOTE} cannot be read ({type(error).__name__}: {error})"]
        if remote is None:
            return [] if not lines else ["the artifact bucket holds no copy of this log"]
        remote_lines, _ = _split(remote)
        if remote_lines == lines:
            return []
        damage = _scan(remote, f"{REMOTE}, line {{}}", chain=True, torn_hint=None)
        if damage.problems:
            first = next(
                (n for n, pair in enumerate(zip(lines, remote_lines, strict=False), 1) if pair[0] != pair[1]),
                min(len(lines), len(remote_lines)) + 1,
            )
            return [
                f"{damage.problems[0]}; it differs from the local log ({len(lines)} entries) from line {first}"
            ]
        return [f"the local log ({len(lines)} entries) differs from {REMOTE} ({len(remote_lines)} entries)"]
