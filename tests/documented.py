"""Which members of an enum carry their own docstring (the string right after the assignment).

Every state and outcome the controller can be in is documented where it is defined; the tests of
``Stage``, ``Phase`` and ``Result`` hold each enum to that with this one reading of its source.
"""

from __future__ import annotations

import ast
import inspect
import itertools
from enum import Enum


def documented_members(enum: type[Enum]) -> set[str]:
    """The names of ``enum``'s members followed by a docstring in its class body."""
    body = ast.parse(inspect.getsource(enum)).body[0].body  # type: ignore[attr-defined]
    return {
        target.id
        for node, following in itertools.pairwise(body)
        if isinstance(node, ast.Assign) and isinstance(following, ast.Expr)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
