"""``status`` reports what the endpoint really runs, read through the endpoint inspector.

The audit log alone said "v1 serving, verified" after the sandbox daemon died and nothing served.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from infra.config import DeploymentPolicy
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.wiring import live_status
from pipelines.sandbox import SandboxClient

from .conftest import PINNED as V1
from .conftest import SERVICE, STANDIN

pytestmark = pytest.mark.integration


@pytest.fixture
def state(pinned_workspace: Path) -> Path:
    """The pinned workspace, whose audit log says the pinned version was promoted."""
    AuditLog(pinned_workspace / "audit", "local").append(
        "promote:promoted", actor="carol@example.com", service=SERVICE, version=V1, journal="j1"
    )
    return pinned_workspace


def _row() -> dict[str, object]:
    """The example service's row (the stack's other services pin nothing in this workspace)."""
    (row,) = [row for row in live_status("local") if row["service"] == SERVICE]
    return row


def test_status_says_what_the_endpoint_runs_and_nothing_once_the_daemon_died(
    state: Path, tmp_path: Path
) -> None:
    assert _row()["serving"] is None and _row()["verified"] is False, "no sandbox: nothing serves"
    client = SandboxClient.start(state, server_command=STANDIN)
    model = tmp_path / "v1"
    model.mkdir()
    (model / "behaviour.json").write_text(json.dumps({"probability": 0.2, "label": "<=50K"}))
    client.deploy(SERVICE, V1, model, DeploymentPolicy(strategy="all_at_once", termination_wait_seconds=0))
    client.wait(SERVICE, timeout=30)

    serving = _row()
    assert (serving["pinned"], serving["serving"], serving["verified"]) == (V1, V1, True)
    assert serving["endpoint"] == {
        "status": "InService",
        "configName": f"{SERVICE}-{V1[:12]}",
        "failureReason": "",
        "instanceCount": None,
    }

    os.kill(client.state.daemon.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while client.state.daemon.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    lost = _row()

    assert (lost["pinned"], lost["serving"], lost["verified"]) == (V1, None, False)
    assert isinstance(lost["endpoint"], dict) and lost["endpoint"]["status"] == "NotRunning"
    assert not psutil.pid_exists(client.state.daemon.pid) or not client.state.daemon.alive()
