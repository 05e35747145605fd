"""Output helpers shared by every command: rich for people, sorted JSON for machines."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

console = Console(highlight=False)
"""Human output goes to stdout so it can be piped; errors go to ``err_console``."""

err_console = Console(stderr=True, highlight=False)


def dumps(obj: Any) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def emit_json(obj: Any) -> None:
    """Print ``obj`` as deterministic JSON on stdout, bypassing rich's markup and wrapping."""
    sys.stdout.write(dumps(obj))
    sys.stdout.flush()
