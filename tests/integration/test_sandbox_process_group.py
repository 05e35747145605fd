"""``sandbox stop`` ends every process the sandbox started, recorded or not.

A model server is only recorded in ``daemon.json`` once it answers ``/ping``; one that is still
starting when the daemon dies (or stops) used to be orphaned. The daemon leads a process group
that its model servers inherit, and stopping the sandbox ends the group.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from infra.config import DeploymentPolicy
from pipelines.sandbox import SandboxClient, stop_sandbox
from pipelines.sandbox.state import read_state

pytestmark = pytest.mark.integration

NEVER_READY = ["{python}", "-c", "import sys, time; time.sleep(120)", "{model_dir}", "{port}"]
"""A model server that never answers /ping: the daemon waits for it and has not recorded it."""
POLICY = DeploymentPolicy(strategy="all_at_once", bake_seconds=0, termination_wait_seconds=0)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[SandboxClient, psutil.Process]]:
    """A sandbox whose first deployment is starting a model server that never gets ready."""
    client = SandboxClient.start(tmp_path / "state", server_command=NEVER_READY)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    server: psutil.Process | None = None
    try:
        client.deploy("svc", "1" * 64, model_dir, POLICY)
        deadline = time.monotonic() + 15
        while server is None:
            assert time.monotonic() < deadline, "the daemon never started the model server"
            children = psutil.Process(client.state.daemon.pid).children()
            server = children[0] if children else None
            time.sleep(0.05)
        state = read_state(client.directory)
        assert state is not None and server.pid not in {child.pid for child in state.children}
        assert os.getpgid(server.pid) == client.state.daemon.pid, "the server is in the daemon's group"
        yield client, server
    finally:
        stop_sandbox(tmp_path / "state")
        if server is not None and server.is_running():
            server.kill()  # never leave it behind, whatever the test found


def _gone(process: psutil.Process, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_stop_after_the_daemon_was_killed_ends_its_unrecorded_model_server(
    started: tuple[SandboxClient, psutil.Process], tmp_path: Path
) -> None:
    client, server = started
    os.kill(client.state.daemon.pid, signal.SIGKILL)
    assert _gone(psutil.Process(client.state.daemon.pid)) and server.is_running(), "orphaned"

    report = stop_sandbox(tmp_path / "state")

    assert report.stale and server.pid in report.stopped_pids
    assert _gone(server)


def test_stop_of_a_running_sandbox_ends_a_model_server_still_starting(
    started: tuple[SandboxClient, psutil.Process], tmp_path: Path
) -> None:
    _, server = started
    report = stop_sandbox(tmp_path / "state")
    assert report.was_running
    assert _gone(server), "ended by the daemon on its way out, or with its process group"
