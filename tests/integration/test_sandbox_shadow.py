"""A shadow variant in a real sandbox, set by ``up`` on the local stack: production answers every
client at its own speed while a slow shadow takes a copy of each request, the shadow phase's
window reads the shadow's numbers and its agreement, and the shadow goes when the stack drops it.

The servers are the stand-in (``standin_server.py``); the daemon, the router, the metrics and the
control API are the real ones, driven by the local stack runner from a stack file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.naming import version_config_name
from pipelines.errors import RefusedError
from pipelines.metrics import exposition as expo
from pipelines.metrics.local import LocalMetricsSource
from pipelines.runners.local_runner import LocalStackRunner, SandboxEndpoints
from pipelines.sandbox import DeploymentPhase, SandboxClient, sandbox_session
from pipelines.sandbox.replay import load_rows, replay
from tests.integration.conftest import STANDIN
from tests.integration.test_sandbox import REPO, eventually, gone, invoke

pytestmark = pytest.mark.integration

V1, V2, V3 = "1" * 64, "2" * 64, "3" * 64
SHADOW_DELAY_MS = 500
"""The shadow's time per request: eight copies in flight at most serve 16 a second, fewer than the
replay's 50, so copies queue and then are dropped."""


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LocalStackRunner, SandboxClient]]:
    """The local stack runner over a real sandbox; V1 answers at once, V2 the same label slowly,
    V3's server never starts."""
    models = tmp_path / "models"
    behaviours = {
        V1: {"probability": 0.2, "label": "<=50K", "delay_ms": 0},
        V2: {"probability": 0.3, "label": "<=50K", "delay_ms": SHADOW_DELAY_MS},
    }
    for version in (V1, V2, V3):
        (models / version[:4]).mkdir(parents=True)
        text = json.dumps(behaviours[version]) if version in behaviours else "not json"
        (models / version[:4] / "behaviour.json").write_text(text)
    (tmp_path / "stacks").mkdir()
    with sandbox_session(tmp_path / "state", server_command=STANDIN) as client:
        runner = LocalStackRunner(
            "local",
            tmp_path,
            tmp_path / "runner",
            client,
            model_dir_for=lambda _, version: models / version[:4],
        )
        monkeypatch.setattr(runner, "_desired", lambda: {"steps": []})  # the plan is not what this is about
        yield runner, client


def up(runner: LocalStackRunner, version: str, shadow: str | None = None) -> None:
    pinned = "" if shadow is None else f'\n      shadowVersion: "{shadow}"'
    (runner.project_dir / "stacks" / "Pulumi.local.yaml").write_text(f"""config:
  modelrail:platform:
    environment: local
    region: us-east-1
  modelrail:services:
    svc:
      modelVersion: "{version}"{pinned}
      deployment:
        strategy: all_at_once
        bakeSeconds: 0
        terminationWaitSeconds: 0
        progression: [shadow, full]
        shadow:
          percent: 100
""")
    runner.up("update")


def shadow_counts(client: SandboxClient) -> tuple[float, float]:
    """(copies the shadow answered or failed, copies dropped)."""
    samples = expo.parse(client.metrics_text())
    labels = {"service": "svc", "version": V2}
    mirrored = {**labels, expo.VARIANT_LABEL: expo.SHADOW_VARIANT}
    answered = sum(s.value for s in samples if s.name == expo.INVOCATIONS and s.labels == mirrored)
    dropped = sum(s.value for s in samples if s.name == expo.SHADOW_MIRRORS_DROPPED and s.labels == labels)
    return answered, dropped


def routed_to(client: SandboxClient, version: str) -> float:
    """Requests the router sent ``version`` (not copies mirrored to it)."""
    labels = {"service": "svc", "version": version}
    return sum(
        s.value
        for s in expo.parse(client.metrics_text())
        if s.name == expo.INVOCATIONS and s.labels == labels
    )


def test_the_shadow_phase_in_the_sandbox_from_up_to_removal(
    world: tuple[LocalStackRunner, SandboxClient], tmp_path: Path
) -> None:
    runner, client = world
    up(runner, V1)
    production = client.describe_endpoint("svc").fleets[0].pid

    up(runner, V1, shadow=V2)
    described = client.describe_endpoint("svc")
    assert (described.status, described.phase, described.serving_version) == (
        "InService", DeploymentPhase.COMPLETED, V1,
    )  # fmt: skip
    assert (described.shadow_version, described.shadow_percent, described.weights) == (V2, 100, {V1: 1.0})
    assert {fleet.version: fleet.pid for fleet in described.fleets}[V1] == production
    assert SandboxEndpoints(client).shadow("svc", version_config_name("svc", V1)) == V2

    start = time.time()
    rows = load_rows(REPO / "data" / "adult" / "adult.data")
    summary = replay(client.endpoint_url("svc"), rows, rps=50, duration=2)
    assert summary.ok == summary.sent == 100 and summary.by_version == {V1: 100}
    p99 = summary.quantile(0.99)
    assert p99 is not None and p99 < SHADOW_DELAY_MS, f"the client waited for the shadow: p99 {p99} ms"
    assert invoke(client.endpoint_url("svc")) == (200, V1)
    eventually(lambda: sum(shadow_counts(client)) == 101)  # every production request, copied or dropped
    answered, dropped = shadow_counts(client)
    assert dropped > 0 and answered > 0
    assert routed_to(client, V2) == 0, "the copies are the shadow variant's, not requests routed to V2"

    shadowed = LocalMetricsSource(client).window(
        "svc", start, time.time() + 1, rollout_start=start, shadow=True
    )

    assert shadowed.baseline.version == V1 and shadowed.baseline.invocations == 101
    assert shadowed.baseline.prediction_histogram[2] == 101
    assert shadowed.canary is not None and shadowed.canary.version == V2
    assert shadowed.canary.invocations == answered and shadowed.canary.prediction_histogram[3] == answered
    assert shadowed.canary.latency_p99_ms is not None and shadowed.canary.latency_p99_ms >= SHADOW_DELAY_MS
    assert shadowed.agreement is not None
    assert (shadowed.agreement.paired, shadowed.agreement.agreed) == (answered, answered)
    plain = LocalMetricsSource(client).window("svc", start, time.time() + 1)
    assert (plain.baseline.invocations, plain.canary) == (101, None), "a shadow's traffic is not a canary's"

    env = dict(os.environ, MODELRAIL_STATE_DIR=str(tmp_path / "state"), COLUMNS="200")
    shown = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sandbox", "status"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0 and f"{V2[:8]} 100% mirrored" in shown.stdout, shown.stdout + shown.stderr

    shadow_pid = {fleet.version: fleet.pid for fleet in described.fleets}[V2]
    up(runner, V1)
    removed = client.describe_endpoint("svc")
    assert (removed.shadow_version, [fleet.version for fleet in removed.fleets]) == (None, [V1])
    assert removed.fleets[0].pid == production and gone(shadow_pid)
    assert client.status()["endpoints"]["svc"]["shadow_version"] is None
    assert invoke(client.endpoint_url("svc")) == (200, V1)
    assert shadow_counts(client) == (answered, dropped), "nothing is copied once the shadow is gone"


def test_a_shadow_that_does_not_start_leaves_production_serving_and_both_at_once_is_refused(
    world: tuple[LocalStackRunner, SandboxClient],
) -> None:
    runner, client = world
    up(runner, V1)

    up(runner, V1, shadow=V3)

    described = client.describe_endpoint("svc")
    assert (described.status, described.phase, described.serving_version, described.shadow_version) == (
        "InService", DeploymentPhase.ROLLED_BACK, V1, None,
    )  # fmt: skip
    assert (described.failure_reason or "").startswith(
        f"the shadow fleet did not start: model server for {V3[:12]} exited"
    )
    assert [fleet.version for fleet in described.fleets] == [V1]
    assert invoke(client.endpoint_url("svc")) == (200, V1)
    with pytest.raises(RefusedError, match=r"a new production version .* and a shadow .* in one update"):
        up(runner, V2, shadow=V3)
    assert client.describe_endpoint("svc").serving_version == V1
