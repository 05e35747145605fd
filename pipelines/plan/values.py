"""Turn the engine's wire format (protobuf ``Struct``) into the plan's plain JSON values.

The mock monitor sees inputs exactly as the engine would: camelCase keys, numbers as floats,
secrets and unknowns as signature-tagged objects. This module maps them to what
``pulumi preview --json`` shows: whole numbers as ints, secrets as ``"[secret]"``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

SECRET_TEXT = "[secret]"
UNKNOWN_TEXT = "[unknown]"


def struct_to_plain(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A registration's serialized inputs as plain, printable JSON values."""
    raw = json_format.MessageToDict(struct)
    plain = plain_value(raw)
    assert isinstance(plain, dict)
    return plain


def plain_value(value: Any) -> Any:
    """Map one wire value to its printable form (recursively)."""
    if isinstance(value, dict):
        signature = value.get(SIG_KEY)
        if signature == SECRET_SIG:
            return SECRET_TEXT
        if signature == OUTPUT_SIG:
            if value.get("secret"):
                return SECRET_TEXT
            return plain_value(value["value"]) if "value" in value else UNKNOWN_TEXT
        if signature == RESOURCE_SIG:
            return value.get("urn")
        if signature in (ASSET_SIG, ARCHIVE_SIG):
            return {k: plain_value(v) for k, v in sorted(value.items()) if k != SIG_KEY}
        return {key: plain_value(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == UNKNOWN:
        return UNKNOWN_TEXT
    return value
