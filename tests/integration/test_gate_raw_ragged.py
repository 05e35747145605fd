"""``gate model`` and ``gate latency`` refuse a raw Adult file cut mid-row: exit 2, naming the line.

The Adult reader pads a short row with NaN and then drops it for its missing label, so a truncated
evaluation file used to be scored without a word (README, Quality gates).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.embedded.session import stop
from pipelines.packaging.build import PackageResult

from .conftest import REPO, SERVICE

pytestmark = pytest.mark.integration


@pytest.fixture
def candidate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: PackageResult) -> Iterator[str]:
    """The small package registered on the ``local`` stack of a fresh state directory."""
    from pipelines.registry.factory import registry_for_stack

    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(state))
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(REPO))
    monkeypatch.delenv("MODELRAIL_AWS", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    try:
        registry_for_stack("local", SERVICE).register(SERVICE, package.path, "alice@example.com")
        yield package.package_id
    finally:
        stop(state)


@pytest.mark.parametrize("gate", ["model", "latency"])
def test_a_raw_evaluation_file_cut_mid_row_exits_2_naming_the_line(
    gate: str, candidate: str, tmp_path: Path
) -> None:
    with (REPO / "data" / "adult" / "adult.data").open(encoding="utf-8") as handle:
        lines = [next(handle).rstrip("\n") for _ in range(300)]
    cut = tmp_path / "holdout.data"
    cut.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "gate", gate, "--service", SERVICE, "--candidate", candidate,
         "--data", str(cut), "--stack", "local", "--json"],
        check=False, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=600,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr + result.stdout
    error = json.loads(result.stdout)
    assert error["error"] == "BadInputError"
    assert f"data file {cut}: line 300 has" in error["message"]
    assert "the adult-income format (age, ..., income) has 15 columns" in error["message"]
