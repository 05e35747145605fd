"""Change the version pinned in a stack file (and its instance-count floor), and nothing else.

A ruamel.yaml round trip keeps comments, key order and quoting, so the diff of a promotion is
the pin's line, and the ``instanceCountFloor`` line beside it when autoscaling runs more
instances than ``instanceCount`` (``Controller.capacity_floor``). The edited document is
validated with the same schema as everything else before it replaces the file (atomically), so a
promotion can never leave an invalid stack file.
"""

from __future__ import annotations

import difflib
import io
import os
from pathlib import Path
from typing import Any

from infra.config import (
    SERVICES_KEY,
    StackConfigError,
    load_stack_file,
    parse_stack_text,
)
from pipelines.errors import RefusedError


def round_trip_yaml(text: str) -> Any:
    """A round-trip YAML that writes back in the file's own style (indents, ``null``, quotes).

    Its loads are bounded like every other stack-file read (``infra.yamlio``): an alias bomb is
    refused with ``YamlLimitError``, a ruamel ``YAMLError``.
    """
    from ruamel.yaml.util import load_yaml_guess_indent

    from infra.yamlio import bounded_yaml

    _, indent, block_sequence_indent = load_yaml_guess_indent(text, yaml=bounded_yaml("rt"))
    yaml = bounded_yaml("rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping = _mapping_indent(text)
    if block_sequence_indent is None:  # no block sequences to learn from: dashes under the parent key
        yaml.indent(mapping=mapping, sequence=mapping + 2, offset=mapping)
    else:
        yaml.indent(mapping=mapping, sequence=indent, offset=block_sequence_indent)
    yaml.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _mapping_indent(text: str) -> int:
    """The smallest indent of a nested mapping key in the file (2 when there is none)."""
    indents = [
        len(line) - len(line.lstrip(" "))
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    ]
    return min((indent for indent in indents if indent > 0), default=2)


def pinned_version(path: Path, service: str) -> str | None:
    """The version a stack file pins for a service (validated); None before the first promotion."""
    try:
        return load_stack_file(path).service(service).model_version
    except KeyError as error:
        raise RefusedError(f"{path}: {error.args[0]}") from None


FLOOR_KEY = "instanceCountFloor"
CANARY_KEY = "canaryTrafficPercent"
SHADOW_KEY = "shadowVersion"


def render_pin(
    path: Path,
    service: str,
    version: str | None,
    floor: int | None = None,
    canary: int | None = None,
    shadow: str | None = None,
) -> str:
    """The stack file's text with ``service``'s modelVersion set to ``version``, its
    instanceCountFloor to ``floor``, its canaryTrafficPercent to ``canary`` and its shadowVersion
    to ``shadow`` (each written just after the pin; None removes the key); everything else kept."""
    from ruamel.yaml.error import YAMLError

    from infra.config import StackFileUnreadableError
    from infra.yamlio import describe_yaml_error

    text = path.read_text(encoding="utf-8")
    try:
        yaml = round_trip_yaml(text)
        document = yaml.load(text)
    except YAMLError as error:
        raise StackFileUnreadableError(f"{path}: {describe_yaml_error(error)}") from None
    try:
        entry = document["config"][SERVICES_KEY][service]
    except (KeyError, TypeError):
        raise RefusedError(f"{path}: no service {service!r} under config.{SERVICES_KEY}") from None
    entry["modelVersion"] = version
    for key, value in ((SHADOW_KEY, shadow), (CANARY_KEY, canary), (FLOOR_KEY, floor)):
        if value is not None and key in entry:
            entry[key] = value
        elif value is not None:
            entry.insert(list(entry).index("modelVersion") + 1, key, value)
        elif key in entry:
            del entry[key]
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


def write_pin(
    path: Path,
    service: str,
    version: str | None,
    floor: int | None = None,
    canary: int | None = None,
    shadow: str | None = None,
) -> str:
    """Pin ``version`` (and ``floor``, ``canary`` and ``shadow``, see ``render_pin``) for
    ``service``; validate first, then replace the file atomically.

    Returns the previous text, which is what a revert writes back.
    """
    previous = path.read_text(encoding="utf-8")
    updated = render_pin(path, service, version, floor, canary, shadow)
    check_valid(updated, path, f"pinning {(version or 'null')[:12]}")
    restore(path, updated)
    return previous


def check_valid(text: str, path: Path, change: str) -> None:
    """Refuse an edit whose result the schema rejects, before anything is written."""
    try:
        parse_stack_text(text, path)
    except StackConfigError as error:
        raise RefusedError(
            f"{path}: {change} would make the stack config invalid; nothing written",
            details=[str(issue) for issue in error.issues],
        ) from None


def restore(path: Path, text: str) -> None:
    """Write back a previous text of the stack file, atomically."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def git_patch(path: Path, relative_to: Path, service: str, version: str, floor: int | None = None) -> str:
    """The pin change as a patch that ``git apply`` takes (the GitOps path: review, then merge).

    All traffic at once: a stepped canary needs the controller between its updates.
    """
    before = path.read_text(encoding="utf-8").splitlines(keepends=True)
    after = render_pin(path, service, version, floor).splitlines(keepends=True)
    name = path.resolve().relative_to(relative_to.resolve()).as_posix()
    body = "".join(difflib.unified_diff(before, after, fromfile=f"a/{name}", tofile=f"b/{name}"))
    return f"diff --git a/{name} b/{name}\n{body}"
