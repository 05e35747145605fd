"""The registry is reached through its port, and ``Stage`` is defined once (an AST scan of pipelines/).

Only the wiring (which binds the ports), the registry package itself and ``modelrail register``
/ ``versions`` (which write and list registry entries) may build a registry with
``registry_for_stack``; the gates, ``qualify`` and lineage get theirs from their caller.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIPELINES = REPO / "pipelines"
MAY_BUILD_A_REGISTRY = (
    "pipelines/promotion/wiring.py",
    "pipelines/registry/",
    "pipelines/commands/register.py",
)


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(REPO).as_posix(), ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in sorted(PIPELINES.rglob("*.py"))
    ]


def _registry_for_stack_uses(tree: ast.Module) -> list[int]:
    """Lines that call or import ``registry_for_stack`` (by name or as an attribute)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(
            alias.name == "registry_for_stack" for alias in node.names
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name == "registry_for_stack":
                lines.append(node.lineno)
    return lines


def _stage_definitions(tree: ast.Module) -> list[int]:
    """Lines defining a class, alias or name ``Stage`` at any level."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Stage":
            lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == "Stage" for target in targets):
                lines.append(node.lineno)
    return lines


def test_the_scan_sees_the_modules_allowed_to_build_a_registry() -> None:
    """Guard against a scan that finds nothing: the wiring does call ``registry_for_stack``."""
    found = {path for path, tree in _modules() if _registry_for_stack_uses(tree)}
    assert "pipelines/promotion/wiring.py" in found


def test_only_the_wiring_the_registry_and_register_build_a_registry() -> None:
    offenders = [
        f"{path}:{line}"
        for path, tree in _modules()
        if not path.startswith(MAY_BUILD_A_REGISTRY)
        for line in _registry_for_stack_uses(tree)
    ]
    assert offenders == [], "take the registry port from the caller (the controller, or wiring.registry_port)"


def test_stage_is_defined_once() -> None:
    definitions = [f"{path}:{line}" for path, tree in _modules() for line in _stage_definitions(tree)]
    assert len(definitions) == 1 and definitions[0].startswith("pipelines/registry/stages.py:"), definitions
