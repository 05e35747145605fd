"""``modelrail verify --stack local`` against the sandbox: the pinned version serving is exit 0.

The sandbox runs the pinned version (a stand-in model server); verify reads it through the
sandbox's endpoint inspector, as the controller does. Once the daemon is gone nothing serves,
and verify says so with exit 5.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.config import DeploymentPolicy
from pipelines.cli import main
from pipelines.promotion.stackfile import write_pin
from pipelines.sandbox import SandboxClient, stop_sandbox

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STANDIN = ["{python}", str(Path(__file__).with_name("standin_server.py")), "--model-dir", "{model_dir}",
           "--port", "{port}"]  # fmt: skip
SERVICE, V1 = "adult-income", "1" * 64


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    project, state = tmp_path / "project", tmp_path / "state"
    shutil.copytree(REPO / "stacks", project / "stacks")
    write_pin(project / "stacks" / "Pulumi.local.yaml", SERVICE, V1)
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(project))
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(state))
    try:
        yield state
    finally:
        stop_sandbox(state)


def test_verify_passes_while_the_sandbox_serves_the_pinned_version_and_fails_once_it_is_gone(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = SandboxClient.start(state, server_command=STANDIN)
    model = tmp_path / "v1"
    model.mkdir()
    (model / "behaviour.json").write_text(json.dumps({"probability": 0.2, "label": "<=50K"}))
    client.deploy(SERVICE, V1, model, DeploymentPolicy(strategy="all_at_once", termination_wait_seconds=0))
    client.wait(SERVICE, timeout=30)

    assert main(["verify", "--stack", "local"]) == 0
    assert f"verified local-{SERVICE}: InService on {SERVICE}-{V1[:12]}" in capsys.readouterr().out
    assert main(["verify", "--stack", "local", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["services"]
    assert (row["pinned"], row["verified"], row["state"]["status"]) == (V1, True, "InService")

    os.kill(client.state.daemon.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while client.state.daemon.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert main(["verify", "--stack", "local", "--wait", "0"]) == 5
    assert f"local-{SERVICE} ({SERVICE}): the endpoint is NotRunning" in capsys.readouterr().err
