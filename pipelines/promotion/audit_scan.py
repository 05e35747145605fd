"""Reading an audit log's bytes: canonical entry hashes, line parsing and the chain scan.

``pipelines.promotion.audit.AuditLog`` writes and guards the log; this module is what every
reader of its bytes shares (the local file, its head file and the bucket copy), so each kind of
damage is named the same way wherever it is found.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipelines.errors import ModelrailError

GENESIS = "0" * 64
TEXT_FIELDS = ("time", "action", "actor")
"""Fields every entry has as text; the views (status, history, changelog) read them."""
EXCERPT_BYTES = 40
REMOTE = "the copy in the artifact bucket"


class AuditLogDamagedError(ModelrailError):
    """The audit log cannot be read or extended as it is; the message names the file and line."""


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


@dataclass(frozen=True)
class Reading:
    """What ``AuditLog.read`` found: the entries before the first damaged line, and every problem."""

    path: Path
    entries: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": str(self.path),
            "entries": len(self.entries),
            "problems": list(self.problems),
        }


_JSON_KINDS: dict[type, str] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def _excerpt(raw: bytes, at: int = 0) -> str:
    """Bytes of a bad line around offset ``at``, quoted (an undecodable byte shows as U+FFFD)."""
    start = max(0, at - EXCERPT_BYTES // 2)
    text = raw[start : start + EXCERPT_BYTES].decode("utf-8", errors="replace")
    return repr(("..." if start else "") + text + ("..." if start + EXCERPT_BYTES < len(raw) else ""))


def _shown(value: Any) -> str:
    """A value from a bad line, as Python would write it, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= EXCERPT_BYTES else text[: EXCERPT_BYTES - 3] + "..."


def _split(raw: bytes) -> tuple[list[bytes], bool]:
    """The lines (without their newlines) and whether the last one lacks its newline."""
    lines = raw.split(b"\n")
    unterminated = lines[-1] != b""
    if not unterminated:
        lines.pop()
    return lines, unterminated


def _decode(raw: bytes) -> tuple[Any, str]:
    """The JSON value of a line, or ``None`` and why it is not one, with the bytes around it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, (
            f"not UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}, "
            f"in {_excerpt(raw, error.start)})"
        )
    try:
        return json.loads(text), ""
    except json.JSONDecodeError as error:
        at = len(text[: error.pos].encode())
        what = error.msg if error.msg.endswith(" at") else f"{error.msg} at"
        return None, f"not JSON ({what} column {error.colno}, in {_excerpt(raw, at)})"
    except (ValueError, RecursionError) as error:  # e.g. a number too long, nesting too deep
        return None, f"not JSON ({error}, in {_excerpt(raw)})"


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str, bool]:
    """An entry, or ``None``, what is wrong with the line, and whether it looks cut short.

    Cut short means what a crash during ``append`` leaves of an entry: it starts like one
    (``{``) but is not UTF-8 or not JSON.
    """
    if not raw.strip():
        return None, "an empty line", False
    value, wrong = _decode(raw)
    if wrong:
        return None, wrong, raw.startswith(b"{")
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        return None, f"JSON but not an object ({kind}: {_excerpt(raw)})", False
    for name in TEXT_FIELDS:
        if not isinstance(value.get(name), str):
            return (
                None,
                f"an object whose {name!r} is {_shown(value.get(name))}, not text ({_excerpt(raw)})",
                False,
            )
    try:
        _canonical(value)
    except UnicodeEncodeError as error:  # a "\ud800" escape: valid JSON, but no text to hash
        return (
            None,
            f"an object holding an unpaired surrogate {_shown(error.object[error.start : error.end])}",
            False,
        )
    return value, "", False


def _chain_problems(entry: dict[str, Any], count: int, previous: str) -> list[str]:
    problems = []
    if entry.get("seq") != count:
        problems.append(
            f"sequence {_shown(entry.get('seq'))} where {count} was expected (an entry was deleted or reordered)"
        )
    if entry.get("prev") != previous:
        problems.append("does not chain to the entry before it")
    if entry_hash(entry) != entry.get("hash"):
        problems.append("content does not match its hash (the entry was edited)")
    return problems


@dataclass
class _Scan:
    """One pass over a log's bytes: the entries up to the first damaged line, and what is wrong."""

    lines: list[bytes]
    unterminated: bool
    entries: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    torn: bool = False

    @property
    def head(self) -> str:
        return str(self.entries[-1]["hash"]) if self.entries else GENESIS


def _scan(raw: bytes, where: str, *, chain: bool, torn_hint: str | None) -> _Scan:
    """Read ``raw`` line by line; stop at the first line that is not a (chained) entry.

    ``where`` formats a line number into a location (``path:{}``); ``torn_hint`` says what to
    do about a torn last line, or is ``None`` where appends cannot tear (the bucket copy is
    written whole), so a cut line there is reported like any other damage.
    """
    lines, unterminated = _split(raw)
    scan = _Scan(lines, unterminated)
    for number, line in enumerate(lines, start=1):
        location = where.format(number)
        entry, wrong, cut = _parse(line)
        if entry is None:
            if torn_hint is not None and cut and unterminated and number == len(lines):
                scan.torn = True
                scan.problems.append(
                    f"{location}: the last line is incomplete, {len(line)} bytes without a newline "
                    f"that are {wrong}: an append was interrupted{torn_hint}"
                )
            else:
                scan.problems.append(f"{location}: {wrong}; the line was edited or corrupted")
            break
        if chain:
            problems = _chain_problems(entry, len(scan.entries), scan.head)
            if problems:
                scan.problems.extend(f"{location}: {problem}" for problem in problems)
                break
        scan.entries.append(entry)
    return scan


def _parse_head(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    value, wrong = _decode(raw)
    if wrong:
        return None, wrong
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        return None, f"JSON but not an object ({kind}: {_excerpt(raw)})"
    entries, head = value.get("entries"), value.get("head")
    if not isinstance(entries, int) or isinstance(entries, bool) or entries < 0:
        return None, f"its 'entries' is {_shown(entries)}, not a count"
    if not isinstance(head, str):
        return None, f"its 'head' is {_shown(head)}, not a sha256"
    return value, ""


def _write_all(descriptor: int, data: bytes) -> None:
    """One ``write`` of the whole buffer (a regular file takes it at once); finish a short write."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
    os.fsync(descriptor)


def _fsync_directory(directory: Path) -> None:
    """Make a created or renamed file's directory entry durable (where the platform allows it)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
