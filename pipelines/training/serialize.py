"""skops serialisation with reproducible bytes.

skops names each array file inside its zip, and tags each node of ``schema.json``, with the
object's memory address (``id(obj)``), and stamps every zip entry with the current time. The
model is the same from run to run, but those bytes are not. ``dumps_deterministic`` renumbers
the addresses in document order and fixes the timestamps, so the same fitted model always
gives the same file; skops' loader only uses the numbers to match references, so it loads the
result unchanged.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ARRAY_FILE = re.compile(r"^(\d+)\.npy$")
_SCHEMA = "schema.json"


def dumps_deterministic(obj: Any) -> bytes:
    """``skops.io.dumps(obj)`` with addresses renumbered and zip metadata fixed."""
    from pipelines.serving.model import import_skops

    sio = import_skops()
    original = zipfile.ZipFile(io.BytesIO(sio.dumps(obj)))
    schema = json.loads(original.read(_SCHEMA))
    numbers: dict[int, int] = {}
    schema = _renumber(schema, numbers)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for info in original.infolist():
            if info.filename == _SCHEMA:
                continue
            match = _ARRAY_FILE.match(info.filename)
            name = f"{_number(int(match.group(1)), numbers)}.npy" if match else info.filename
            archive.writestr(_entry(name), original.read(info))
        archive.writestr(_entry(_SCHEMA), json.dumps(schema, indent=2))
    return out.getvalue()


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def _number(address: int, numbers: dict[int, int]) -> int:
    return numbers.setdefault(address, len(numbers) + 1)


def _renumber(node: Any, numbers: dict[int, int]) -> Any:
    if isinstance(node, dict):
        renumbered: dict[str, Any] = {}
        for key, value in node.items():
            if key == "__id__" and isinstance(value, int):
                renumbered[key] = _number(value, numbers)
            elif key == "file" and isinstance(value, str) and (match := _ARRAY_FILE.match(value)):
                renumbered[key] = f"{_number(int(match.group(1)), numbers)}.npy"
            else:
                renumbered[key] = _renumber(value, numbers)
        return renumbered
    if isinstance(node, list):
        return [_renumber(item, numbers) for item in node]
    return node
