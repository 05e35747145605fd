"""Output helpers shared by every command: rich for people, sorted JSON for machines.

rich costs more to import than the whole rest of ``modelrail --help``, and every command
module imports this one. So the consoles are built, and rich imported, on their first use:
loading a command to show its help or to print JSON never pays for rich.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console


class _ConsoleOnFirstUse:
    """Stands in for a ``rich.console.Console`` and builds the real one on first attribute use.

    Attribute reads and writes go to the real console, and so do ``with`` blocks (rich's
    ``Live`` enters its console), so it can be passed wherever rich expects one, as in
    ``Progress(console=...)``. The real console reads the terminal and the environment when it
    is built, as one created at import time would have, only later.
    """

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def _real(self) -> Console:
        real: Console | None = object.__getattribute__(self, "_console")
        if real is None:
            from rich.console import Console

            real = Console(**object.__getattribute__(self, "_options"))
            object.__setattr__(self, "_console", real)
        return real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._real(), name, value)

    def __enter__(self) -> Console:
        return self._real().__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        self._real().__exit__(*exc_info)


console = cast("Console", _ConsoleOnFirstUse(highlight=False))
"""Human output goes to stdout so it can be piped; errors go to ``err_console``."""

err_console = cast("Console", _ConsoleOnFirstUse(stderr=True, highlight=False))


def escape(markup: str) -> str:
    """``rich.markup.escape``, importing rich only when a message is actually printed."""
    from rich.markup import escape as rich_escape

    return rich_escape(markup)


def dumps(obj: Any) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def emit_json(obj: Any) -> None:
    """Print ``obj`` as deterministic JSON on stdout, bypassing rich's markup and wrapping."""
    sys.stdout.write(dumps(obj))
    sys.stdout.flush()
