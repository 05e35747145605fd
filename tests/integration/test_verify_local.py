"""``modelrail verify --stack local`` against the sandbox: the pinned version serving is exit 0.

The sandbox runs the pinned version (a stand-in model server); verify reads it through the
sandbox's endpoint inspector, as the controller does. Once the daemon is gone nothing serves,
and verify says so with exit 5.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from infra.config import DeploymentPolicy
from pipelines.cli import main
from pipelines.sandbox import SandboxClient

from .conftest import PINNED as V1
from .conftest import SERVICE, STANDIN

pytestmark = pytest.mark.integration


def test_verify_passes_while_the_sandbox_serves_the_pinned_version_and_fails_once_it_is_gone(
    pinned_workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = pinned_workspace
    client = SandboxClient.start(state, server_command=STANDIN)
    model = tmp_path / "v1"
    model.mkdir()
    (model / "behaviour.json").write_text(json.dumps({"probability": 0.2, "label": "<=50K"}))
    client.deploy(SERVICE, V1, model, DeploymentPolicy(strategy="all_at_once", termination_wait_seconds=0))
    client.wait(SERVICE, timeout=30)

    assert main(["verify", "--stack", "local"]) == 0
    assert f"verified local-{SERVICE}: InService on {SERVICE}-{V1[:12]}" in capsys.readouterr().out
    assert main(["verify", "--stack", "local", "--json"]) == 0
    rows = {row["service"]: row for row in json.loads(capsys.readouterr().out)["services"]}
    row = rows[SERVICE]
    assert all(other["pinned"] is None for name, other in rows.items() if name != SERVICE)
    assert (row["pinned"], row["verified"], row["state"]["status"]) == (V1, True, "InService")

    os.kill(client.state.daemon.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while client.state.daemon.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert main(["verify", "--stack", "local", "--wait", "0"]) == 5
    assert f"local-{SERVICE} ({SERVICE}): the endpoint is NotRunning" in capsys.readouterr().err
