"""CI builds with the distribution's Python exactly when ``requires-python`` admits it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

SCRIPT = REPO / ".ci" / "python_admitted.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("python_admitted", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("specifier", "version", "admitted"),
    [
        (">=3.11,<3.14", (3, 11, 2), True),
        (">=3.11,<3.14", (3, 13, 9), True),
        (">=3.11,<3.14", (3, 14, 0), False),
        (">=3.11,<3.14", (3, 10, 12), False),
        (">=3.11.4", (3, 11, 2), False),
        (">=3.11.4", (3, 11, 4), True),
        ("==3.11.*", (3, 11, 2), True),
        ("==3.11.*", (3, 12, 0), False),
        ("!=3.12.*, >=3.11", (3, 12, 1), False),
    ],
)
def test_the_specifier_is_read_as_pip_reads_it(
    specifier: str, version: tuple[int, int, int], admitted: bool
) -> None:
    assert _module().admits(specifier, version) is admitted


def test_an_unknown_clause_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match=r"~=3\.11"):
        _module().admits("~=3.11", (3, 11, 2))


def test_the_running_interpreter_is_admitted_by_the_project(tmp_path: Path) -> None:
    admitted = subprocess.run([sys.executable, str(SCRIPT), str(REPO / "pyproject.toml")], check=False)
    assert admitted.returncode == 0
    refusing = tmp_path / "pyproject.toml"
    refusing.write_text('[project]\nrequires-python = ">=9.0"\n', encoding="utf-8")
    refused = subprocess.run([sys.executable, str(SCRIPT), str(refusing)], check=False)
    assert refused.returncode == 1
