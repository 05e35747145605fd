"""A new service's name and task as given, and where its files go in the project."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.contract.load import SERVICES_DIR
from pipelines.contract.model import NAME_PATTERN, slug
from pipelines.contract.tasks import Task
from pipelines.errors import RefusedError

PLACEHOLDER = "FILL-IN"
"""Marks what a contract written without data still needs; where the schema allows, it is a
value the loader refuses, so the contract cannot be used until it is filled in."""

MODEL_FILE = "model.py"
TESTS_DIR = Path("tests") / "services"


def service_test_path(name: str) -> Path:
    """Where the service's test goes, relative to the project root."""
    return TESTS_DIR / f"test_{slug(name)}.py"


def check_name(name: str) -> None:
    """Refuse a name the contract (and the stack schema) would refuse."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise RefusedError(
            f"service name {name!r} is invalid",
            details=[
                "service names are DNS-safe: lowercase letters, digits and '-', starting with a letter, "
                "ending with a letter or digit, at most 32 characters"
            ],
        )


def parse_task(text: str) -> Task:
    """The task a ``--task`` names; refused with the allowed ones otherwise."""
    try:
        return Task(text)
    except ValueError:
        allowed = ", ".join(task.value for task in Task)
        raise RefusedError(f"--task {text!r}: unknown task; allowed: {allowed}") from None


def existing_files(name: str, root: Path) -> list[Path]:
    """What of the service's files the project already has (any one means the name is taken)."""
    return [path for path in (root / SERVICES_DIR / name, root / service_test_path(name)) if path.exists()]


def placeholder_snapshot(name: str) -> str:
    """The snapshot path a contract written without data names, until it is filled in."""
    return f"data/{name}/{PLACEHOLDER}.csv"
