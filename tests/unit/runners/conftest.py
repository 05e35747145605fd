"""A project copy with the stand-in ``pulumi`` on PATH, for the tests of the real adapters together."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipelines.promotion.stackfile import write_pin
from tests.unit.promotion.fakes import V1
from tests.unit.runners.sagemaker_world import CONFIG_NEW, SERVICE

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def project(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path/project``: the stack files with V1 pinned on dev; the stand-in logs to ``calls.jsonl``
    and answers ``stack output`` from ``outputs.json`` (naming ``CONFIG_NEW``)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(repo / "Pulumi.yaml", project)
    shutil.copytree(repo / "stacks", project / "stacks")
    write_pin(project / "stacks" / "Pulumi.dev.yaml", SERVICE, V1)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FIXTURES / "pulumi", bin_dir / "pulumi")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"services": {SERVICE: {"endpointConfigName": CONFIG_NEW}}}))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", str(outputs))
    monkeypatch.setenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", "true")
    return project
