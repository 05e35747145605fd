"""The regression example's whole governed path through the CLI on the embedded default.

train → package → register → qualify candidate → qualify production → approve → promote →
status, each as its own ``modelrail`` process, in a project whose ``stacks/`` is a copy (the
rest of the repository is linked). The diabetes service is written against the service contract
only: if any step still knew a service by name, or assumed a classifier, this path would break.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.embedded.session import stop as stop_embedded
from pipelines.promotion.stackfile import write_pin
from pipelines.sandbox import stop_sandbox

from .conftest import REPO

pytestmark = pytest.mark.integration

SERVICE = "diabetes"
DATA = REPO / "data" / "diabetes" / "diabetes.csv"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The repository with its own ``stacks/`` (no service deployed yet) and a state directory."""
    project, state = tmp_path / "project", tmp_path / "state"
    project.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {"stacks", ".git", ".venv", ".modelrail"}:
            (project / entry.name).symlink_to(entry)
    shutil.copytree(REPO / "stacks", project / "stacks")
    for service in (SERVICE, "adult-income"):  # a fresh stack: nothing deployed, nothing registered
        write_pin(project / "stacks" / "Pulumi.local.yaml", service, None)
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(project))
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(state))
    monkeypatch.delenv("MODELRAIL_AWS", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    try:
        yield project
    finally:
        stop_sandbox(state)
        stop_embedded(state)


def modelrail(*args: str, expect: int = 0) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args, "--json"],
        check=False, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=600,
    )  # fmt: skip
    assert result.returncode == expect, f"{args}: exit {result.returncode}\n{result.stderr}{result.stdout}"
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_the_regression_service_goes_from_training_to_serving(project: Path, tmp_path: Path) -> None:
    model_dir, tarball = tmp_path / "model", tmp_path / "model.tar.gz"
    trained = modelrail("train", "--service", SERVICE, "--out", str(model_dir))
    assert set(trained["metrics"]) == {"rmse", "mae", "r2"}
    assert trained["manifest"]["data_sha256"] == load_sha()
    sha = modelrail("package", "--service", SERVICE, "--model-dir", str(model_dir), "--out", str(tarball))[
        "package_id"
    ]
    modelrail("register", "--service", SERVICE, "--package", str(tarball), "--stack", "local",
              "--as", "rita@example.com")  # fmt: skip
    for stage in ("candidate", "production"):
        verdict = modelrail("qualify", "--service", SERVICE, "--version", sha, "--stack", "local",
                            "--stage", stage, "--reference", str(DATA), "--data", str(DATA),
                            "--policy", str(quick_policy(stage, tmp_path)),
                            "--as", "ci@example.com")  # fmt: skip
        assert verdict["passed"], verdict
    refused = modelrail("promote", "--service", SERVICE, "--version", sha, "--stack", "local", "--yes",
                        expect=1)  # fmt: skip
    assert refused is None or "approv" in json.dumps(refused).lower()
    modelrail("approve", "--service", SERVICE, "--version", sha, "--stack", "local",
              "--as", "alice@example.com", "--comment", "regression gates reviewed")  # fmt: skip
    modelrail("promote", "--service", SERVICE, "--version", sha, "--stack", "local", "--yes",
              "--as", "alice@example.com")  # fmt: skip
    status = modelrail("status", "--stack", "local")
    [entry] = [row for row in status["services"] if row["service"] == SERVICE]
    assert entry["pinned"] == sha and entry["serving"] == sha, entry
    endpoint = modelrail("sandbox", "status")["endpoints"][SERVICE]
    rows = [{"age": 50, "sex": "2", "bmi": 32.1, "bp": 101, "s1": 157, "s2": 93.2, "s3": 38, "s4": 4,
             "s5": 4.86, "s6": 87}]  # fmt: skip
    [answer] = invoke(endpoint["url"] + "/invocations", rows)["predictions"]
    assert set(answer) == {"prediction"} and 25 <= answer["prediction"] <= 346, answer


def quick_policy(stage: str, directory: Path) -> Path:
    """The shipped policy of ``stage`` with a shorter latency run (every gate still runs)."""
    from pipelines.gates.policy import default_policy_path

    text = default_policy_path(stage).read_text(encoding="utf-8")
    text = text.replace("requests: 400", "requests: 60").replace("warmupRequests: 20", "warmupRequests: 5")
    path = directory / f"{stage}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_sha() -> str:
    import hashlib

    return hashlib.sha256(DATA.read_bytes()).hexdigest()


def invoke(url: str, rows: list[dict[str, Any]]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(rows).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
