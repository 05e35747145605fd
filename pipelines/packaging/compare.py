"""Explain how two model directories or packages differ, file by file.

Used to check reproducibility: train the same manifest twice and compare. For every file
that differs it says why, as precisely as the format allows: the JSON key paths whose values
differ, the members of a skops zip that differ, or the first differing byte.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.packaging.tarball import extract_tarball

_MAX_REASONS = 10


@dataclass(frozen=True)
class FileDifference:
    """One file that is not byte-identical on both sides."""

    path: str
    sha256_a: str | None
    """``None`` when the file exists only on side B."""
    sha256_b: str | None
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256_a": self.sha256_a,
            "sha256_b": self.sha256_b,
            "reasons": list(self.reasons),
        }


def compare(a: Path, b: Path) -> list[FileDifference]:
    """Every file that differs between ``a`` and ``b`` (each a model directory or a package)."""
    with _as_dir(a) as dir_a, _as_dir(b) as dir_b:
        files_a, files_b = _files(dir_a), _files(dir_b)
        differences = []
        for name in sorted(set(files_a) | set(files_b)):
            data_a, data_b = files_a.get(name), files_b.get(name)
            if data_a == data_b:
                continue
            differences.append(
                FileDifference(
                    path=name,
                    sha256_a=_sha(data_a),
                    sha256_b=_sha(data_b),
                    reasons=tuple(_why(name, data_a, data_b)[:_MAX_REASONS]),
                )
            )
        return differences


def _why(name: str, a: bytes | None, b: bytes | None) -> list[str]:
    if a is None:
        return ["only in B"]
    if b is None:
        return ["only in A"]
    if name.endswith(".json"):
        try:
            return _json_differences(json.loads(a), json.loads(b), "") or [
                "same JSON value, different formatting"
            ]
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    if name.endswith(".skops") and zipfile.is_zipfile(io.BytesIO(a)) and zipfile.is_zipfile(io.BytesIO(b)):
        return _zip_differences(a, b)
    return [_byte_difference(a, b)]


def _zip_differences(a: bytes, b: bytes) -> list[str]:
    zip_a, zip_b = zipfile.ZipFile(io.BytesIO(a)), zipfile.ZipFile(io.BytesIO(b))
    members_a = {info.filename: info for info in zip_a.infolist()}
    members_b = {info.filename: info for info in zip_b.infolist()}
    reasons = []
    for member in sorted(set(members_a) | set(members_b)):
        if member not in members_b:
            reasons.append(f"member {member}: only in A")
        elif member not in members_a:
            reasons.append(f"member {member}: only in B")
        else:
            data_a, data_b = zip_a.read(member), zip_b.read(member)
            if data_a != data_b:
                if member.endswith(".json"):
                    reasons += [
                        f"member {member}: {r}"
                        for r in _json_differences(json.loads(data_a), json.loads(data_b), "")
                    ]
                else:
                    reasons.append(f"member {member}: {_byte_difference(data_a, data_b)}")
            elif members_a[member].date_time != members_b[member].date_time:
                when_a, when_b = members_a[member].date_time, members_b[member].date_time
                reasons.append(f"member {member}: timestamps {when_a} != {when_b}")
    return reasons or [_byte_difference(a, b) + " (zip metadata only)"]


def _json_differences(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        reasons = []
        for key in sorted(set(a) | set(b), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in b:
                reasons.append(f"{where}: only in A")
            elif key not in a:
                reasons.append(f"{where}: only in B")
            else:
                reasons += _json_differences(a[key], b[key], where)
        return reasons
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            r
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for r in _json_differences(x, y, f"{path}[{i}]")
        ]
    if a != b:
        return [f"{path or '<root>'}: {_short(a)} != {_short(b)}"]
    return []


def _byte_difference(a: bytes, b: bytes) -> str:
    offset = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"{len(a)} vs {len(b)} bytes; first difference at byte offset {offset}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def _as_dir(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="modelrail-compare-") as scratch:
        extract_tarball(path, Path(scratch))
        yield Path(scratch)
