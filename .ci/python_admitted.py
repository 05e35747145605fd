"""Exit 0 when the running interpreter satisfies the project's ``requires-python``, 1 otherwise.

Runs on a bare distribution Python before any dependency is installed, so it reads the
specifier with the standard library alone. It understands the comparison operators a
``requires-python`` uses (``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``, with ``.*`` on the
equality forms); anything else is an error, so a new form is noticed rather than misread.
"""

from __future__ import annotations

import operator
import re
import sys
import tomllib
from collections.abc import Callable

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)(\.\*)?\s*$")
_OPERATORS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def admits(specifier: str, version: tuple[int, ...]) -> bool:
    """Whether ``version`` (major, minor, micro) satisfies every clause of ``specifier``."""
    for clause in specifier.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ValueError(f"requires-python clause {clause.strip()!r} is not understood")
        symbol, number, wildcard = match.groups()
        wanted = tuple(int(part) for part in number.split("."))
        if wildcard and symbol in ("==", "!="):
            same = version[: len(wanted)] == wanted
            if same != (symbol == "=="):
                return False
            continue
        width = max(len(wanted), 3)
        padded = wanted + (0,) * (width - len(wanted))
        if not _OPERATORS[symbol](version[:width], padded):
            return False
    return True


def main(path: str) -> int:
    with open(path, "rb") as handle:
        specifier = tomllib.load(handle)["project"]["requires-python"]
    return 0 if admits(specifier, tuple(sys.version_info[:3])) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
