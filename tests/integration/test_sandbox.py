"""The sandbox with real processes on loopback: blue/green deployments, rollback, crash restarts, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from infra.config import DeploymentPolicy
from pipelines.metrics import exposition as expo
from pipelines.metrics.local import LocalMetricsSource
from pipelines.sandbox import (
    DeploymentPhase,
    EndpointNotFoundError,
    SandboxClient,
    sandbox_session,
    stop_sandbox,
)
from pipelines.sandbox.replay import load_rows, replay
from pipelines.sandbox.state import read_state, sandbox_dir

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STANDIN = [
    "{python}",
    str(Path(__file__).with_name("standin_server.py")),
    "--model-dir",
    "{model_dir}",
    "--port",
    "{port}",
]
V1, V2 = "1" * 64, "2" * 64
QUICK = DeploymentPolicy(strategy="canary", canary_percent=30, bake_seconds=2, termination_wait_seconds=0)


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll until ``check`` holds; fail with a clear message after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)


def gone(pid: int | None) -> bool:
    """The process has exited (a zombie awaiting its parent's wait counts as exited)."""
    assert pid is not None
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def model(tmp_path: Path, name: str, probability: float, label: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "behaviour.json").write_text(json.dumps({"probability": probability, "label": label}))
    return directory


def invoke(url: str, body: bytes = b"39, State-gov, 77516\n") -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "text/csv"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("X-Modelrail-Variant", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Modelrail-Variant", "")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxClient]:
    with sandbox_session(tmp_path / "state", server_command=STANDIN) as client:
        yield client


def serving(sandbox: SandboxClient, tmp_path: Path, policy: DeploymentPolicy = QUICK) -> None:
    sandbox.deploy("svc", V1, model(tmp_path, "v1", 0.2, "<=50K"), policy)
    assert sandbox.wait("svc", timeout=30).serving_version == V1


def test_a_first_deployment_serves_v1_in_service(sandbox: SandboxClient, tmp_path: Path) -> None:
    with pytest.raises(EndpointNotFoundError, match="no endpoint for service 'svc'"):
        sandbox.describe_endpoint("svc")
    serving(sandbox, tmp_path)
    described = sandbox.describe_endpoint("svc")
    assert (described.status, described.phase) == ("InService", DeploymentPhase.COMPLETED)
    assert described.config_name == f"svc-{V1[:12]}"
    assert described.endpoint_name == "local-svc"
    assert invoke(sandbox.endpoint_url("svc")) == (200, V1)


def test_a_canary_takes_its_share_then_all_traffic_and_the_old_fleet_stops(
    sandbox: SandboxClient, tmp_path: Path
) -> None:
    serving(sandbox, tmp_path)
    old_pid = sandbox.describe_endpoint("svc").fleets[0].pid
    sandbox.deploy(
        "svc", V2, model(tmp_path, "v2", 0.9, ">50K"), QUICK.model_copy(update={"bake_seconds": 6})
    )
    eventually(lambda: sandbox.describe_endpoint("svc").phase is DeploymentPhase.BAKING)
    baking = sandbox.describe_endpoint("svc")
    assert baking.status == "Updating" and baking.weights == {V1: 0.7, V2: 0.3}
    assert baking.config_name == f"svc-{V1[:12]}", (
        "the old config owns the endpoint until the deployment completes"
    )
    url = sandbox.endpoint_url("svc")
    counts = Counter(invoke(url)[1] for _ in range(300))
    assert 50 <= counts[V2] <= 130, counts  # 30% of 300 = 90; ±4.5 standard deviations

    done = sandbox.wait("svc", timeout=30)

    assert (done.status, done.phase, done.serving_version) == ("InService", DeploymentPhase.COMPLETED, V2)
    assert done.config_name == f"svc-{V2[:12]}" and done.weights == {V2: 1.0}
    assert gone(old_pid), "the old fleet stops before the deployment reports completion"
    assert {invoke(url)[1] for _ in range(20)} == {V2}


def test_an_alarm_mid_bake_rolls_back_to_v1_at_once(sandbox: SandboxClient, tmp_path: Path) -> None:
    serving(sandbox, tmp_path)
    sandbox.deploy(
        "svc", V2, model(tmp_path, "v2", 0.9, ">50K"), QUICK.model_copy(update={"bake_seconds": 120})
    )
    eventually(lambda: sandbox.describe_endpoint("svc").phase is DeploymentPhase.BAKING)
    canary_pid = next(f.pid for f in sandbox.describe_endpoint("svc").fleets if f.version == V2)

    sandbox.trip_alarm("svc", "p99-latency", "canary p99 412 ms > 250 ms")
    done = sandbox.wait("svc", timeout=15)

    assert (done.status, done.phase) == ("InService", DeploymentPhase.ROLLED_BACK)
    assert done.serving_version == V1 and done.config_name == f"svc-{V1[:12]}"
    assert done.failure_reason == "alarm modelrail-local-svc-p99-latency in ALARM: canary p99 412 ms > 250 ms"
    assert done.weights == {V1: 1.0} and [f.version for f in done.fleets] == [V1]
    assert gone(canary_pid), "the canary fleet stops before the rollback reports completion"
    assert {invoke(sandbox.endpoint_url("svc"))[1] for _ in range(20)} == {V1}


def test_a_killed_model_server_is_restarted_and_its_failures_count_as_5xx(
    sandbox: SandboxClient, tmp_path: Path
) -> None:
    serving(sandbox, tmp_path)
    pid = sandbox.describe_endpoint("svc").fleets[0].pid
    assert pid is not None
    url = sandbox.endpoint_url("svc")
    seen: Counter[int] = Counter()

    def answered() -> bool:
        status = invoke(url)[0]
        seen[status] += 1
        return status == 200

    os.kill(pid, signal.SIGKILL)
    for _ in range(5):
        answered()
    assert seen[502] >= 1, seen

    eventually(lambda: sandbox.describe_endpoint("svc").fleets[0].restarts == 1)
    eventually(answered)
    samples = expo.parse(sandbox.metrics_text())
    labels = {"service": "svc", "version": V1}
    five_xx = next(
        s.value for s in samples if s.name == expo.ERRORS and s.labels == {**labels, "code_class": "5xx"}
    )
    restarts = next(s.value for s in samples if s.name == expo.RESTARTS and s.labels == labels)
    assert five_xx == seen[502] and restarts == 1
    assert set(seen) <= {200, 502}


def test_delayed_labels_become_live_accuracy_per_version(sandbox: SandboxClient, tmp_path: Path) -> None:
    serving(sandbox, tmp_path)  # v1 always predicts "<=50K"
    data = tmp_path / "rows.csv"
    data.write_text("".join(f"{i}, x, {'<=50K' if i % 4 else '>50K.'}\n" for i in range(40)))
    start = time.time() - 1

    summary = replay(sandbox.endpoint_url("svc"), load_rows(data), rps=40, duration=1, labels_after=0.2)

    assert summary.sent == 40 and summary.ok == 40 and summary.by_version == {V1: 40}
    assert (summary.labels_sent, summary.labels_matched) == (40, 40)
    window = LocalMetricsSource(sandbox).window("svc", start, time.time() + 1)
    assert window.canary is None
    assert (window.baseline.labelled, window.baseline.correct) == (40, 30)
    assert window.baseline.prediction_histogram[2] == 40  # probability 0.2


def test_the_replay_command_reports_json(sandbox: SandboxClient, tmp_path: Path) -> None:
    serving(sandbox, tmp_path)
    env = dict(os.environ, MODELRAIL_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "replay", "--service", "svc", "--stack", "local",
         "--data", str(REPO / "data" / "adult" / "adult.data"), "--rps", "20", "--duration", "1", "--json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sent"] == 20 and report["status"] == {"2xx": 20, "4xx": 0, "5xx": 0}
    assert report["latency_p99_ms"] is not None


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    with sandbox_session(tmp_path / "state", server_command=STANDIN) as client:
        serving(client, tmp_path)
        state = read_state(sandbox_dir(tmp_path / "state"))
        assert state is not None and len(state.children) == 1
        records = [state.daemon, *state.children]
        assert all(record.alive() for record in records)
        report = stop_sandbox(tmp_path / "state")
        assert report.was_running and set(report.stopped_pids) == {record.pid for record in records}
    assert not any(record.alive() for record in records)
    assert read_state(sandbox_dir(tmp_path / "state")) is None


def test_a_killed_daemon_leaves_state_that_the_next_command_recovers(tmp_path: Path) -> None:
    client = SandboxClient.start(tmp_path / "state", server_command=STANDIN)
    try:
        serving(client, tmp_path)
        state = read_state(client.directory)
        assert state is not None
        orphan = state.children[0]
        os.kill(state.daemon.pid, signal.SIGKILL)
        eventually(lambda: not state.daemon.alive())
        assert orphan.alive()

        report = stop_sandbox(tmp_path / "state")

        assert report.stale and report.stopped_pids == (orphan.pid,)
        assert not orphan.alive()
        assert read_state(client.directory) is None
    finally:
        stop_sandbox(tmp_path / "state")
