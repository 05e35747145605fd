"""A ``runtime: kserve`` service in a real sandbox: revisions, a canary split, abort, promotion, failure.

The servers are the stand-in (``standin_server.py``), so each revision starts in well under a
second; the router, the metrics and the control API are the real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.config import DeploymentPolicy
from pipelines.errors import BadInputError
from pipelines.metrics import exposition as prom
from pipelines.sandbox import EndpointNotFoundError, SandboxClient, sandbox_session
from pipelines.sandbox.replay import load_rows, replay
from pipelines.sandbox.state import read_state
from tests.integration.conftest import STANDIN
from tests.integration.test_sandbox import QUICK, REPO, eventually, gone, invoke, model

pytestmark = pytest.mark.integration

V1, V2, V3 = "1" * 64, "2" * 64, "3" * 64
NAMESPACE = "modelrail-local"
"""The local stack's default namespace (``StackConfig.namespace_of``)."""
R1, R2, R3 = (f"local-svc-predictor-0000{n}" for n in (1, 2, 3))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxClient]:
    with sandbox_session(tmp_path / "state", server_command=STANDIN) as client:
        yield client


def traffic(document: dict[str, Any]) -> dict[str, int]:
    targets = document["status"]["components"]["predictor"]["traffic"]
    return {target["revisionName"]: target["percent"] for target in targets}


def ready(document: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in document["status"]["conditions"] if c["type"] == "Ready")


def roles(sandbox: SandboxClient) -> dict[str, str]:
    samples = prom.parse(sandbox.metrics_text())
    return {
        s.labels["version"]: s.labels["role"]
        for s in samples
        if s.name == prom.VARIANT_INFO and s.labels["service"] == "svc"
    }


def versions(url: str, requests: int) -> Counter[str]:
    return Counter(invoke(url)[1] for _ in range(requests))


def server_pid(sandbox: SandboxClient, version: str) -> int:
    state = read_state(sandbox.directory)
    assert state is not None
    return next(child.pid for child in state.children if child.version == version)


def test_a_canary_revision_splits_aborts_and_rolls_out(sandbox: SandboxClient, tmp_path: Path) -> None:
    first = sandbox.apply_revision("svc", V1, model(tmp_path, "v1", 0.2, "<=50K"), None, namespace=NAMESPACE)
    assert ready(first)["status"] == "True" and traffic(first) == {R1: 100}
    assert first["metadata"]["annotations"]["modelrail.io/model-version"] == V1
    url = sandbox.endpoint_url("svc")
    assert url == first["status"]["url"]
    assert invoke(url) == (200, V1)

    v2_dir = model(tmp_path, "v2", 0.9, ">50K")
    canary = sandbox.apply_revision("svc", V2, v2_dir, 50, namespace=NAMESPACE)
    assert traffic(canary) == {R2: 50, R1: 50}
    assert canary["metadata"]["generation"] == canary["status"]["observedGeneration"] == 2
    assert roles(sandbox) == {V1: "baseline", V2: "canary"}
    counts = versions(url, 200)
    assert 65 <= counts[V2] <= 135, counts  # 50% of 200 = 100; ±5 standard deviations
    assert counts[V1] + counts[V2] == 200

    sandbox.abort_canary("svc", "canary 5xx rate 0.2 > 0.01")
    aborted = sandbox.inference_service("svc")
    assert traffic(aborted) == {R2: 0, R1: 100}
    assert aborted["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert set(versions(url, 30)) == {V1}

    v1_pid = server_pid(sandbox, V1)
    promoted = sandbox.apply_revision("svc", V2, v2_dir, None, namespace=NAMESPACE)
    assert traffic(promoted) == {R2: 100}, "the same version: no new revision, all traffic on it"
    predictor = promoted["status"]["components"]["predictor"]
    assert (predictor["latestRolledoutRevision"], predictor["previousRolledoutRevision"]) == (R2, R1)
    assert set(versions(url, 30)) == {V2}
    assert roles(sandbox) == {V2: "baseline"}
    eventually(lambda: gone(v1_pid), timeout=10)


def test_a_revision_that_never_gets_ready_leaves_traffic_and_the_service_not_ready(
    sandbox: SandboxClient, tmp_path: Path
) -> None:
    sandbox.apply_revision("svc", V1, model(tmp_path, "v1", 0.2, "<=50K"), None, namespace=NAMESPACE)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "behaviour.json").write_text("not json")  # the stand-in exits at once

    failed = sandbox.apply_revision("svc", V3, broken, 20, namespace=NAMESPACE)

    assert traffic(failed) == {R1: 100}
    assert (ready(failed)["status"], ready(failed)["reason"]) == ("False", "RevisionFailed")
    predictor = failed["status"]["components"]["predictor"]
    assert (predictor["latestCreatedRevision"], predictor["latestReadyRevision"]) == (R2, R1)
    assert set(versions(sandbox.endpoint_url("svc"), 20)) == {V1}
    recovered = sandbox.apply_revision("svc", V1, tmp_path / "v1", None, namespace=NAMESPACE)
    assert ready(recovered)["status"] == "True" and traffic(recovered) == {R3: 100}


def test_a_kserve_service_is_no_sagemaker_endpoint_but_replays_alike(
    sandbox: SandboxClient, tmp_path: Path
) -> None:
    with pytest.raises(EndpointNotFoundError, match="no InferenceService for service 'svc'"):
        sandbox.inference_service("svc")
    sandbox.apply_revision("svc", V1, model(tmp_path, "v1", 0.2, "<=50K"), None, namespace=NAMESPACE)
    with pytest.raises(EndpointNotFoundError, match="served as KServe InferenceService local-svc"):
        sandbox.describe_endpoint("svc")
    with pytest.raises(BadInputError, match="apply a revision to it instead"):
        sandbox.deploy("svc", V2, tmp_path / "v1", DeploymentPolicy())
    with urllib.request.urlopen(f"{sandbox.endpoint_url('svc')}/ping", timeout=5) as response:
        assert response.status == 200
    data = tmp_path / "rows.csv"
    data.write_text("".join(f"{i}, x, <=50K\n" for i in range(20)))
    start = time.time()

    summary = replay(sandbox.endpoint_url("svc"), load_rows(data), rps=40, duration=0.5, labels_after=0.1)

    assert summary.ok == summary.sent > 0 and summary.by_version == {V1: summary.sent}
    assert summary.labels_matched == summary.sent
    assert time.time() - start < 10
    assert json.loads(json.dumps(sandbox.inference_service("svc")))["kind"] == "InferenceService"


def sandbox_status(tmp_path: Path, *flags: str) -> str:
    env = dict(os.environ, MODELRAIL_STATE_DIR=str(tmp_path / "state"), COLUMNS="250")
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sandbox", "status", *flags],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_sandbox_status_shows_inference_services_beside_endpoints(
    sandbox: SandboxClient, tmp_path: Path
) -> None:
    sandbox.deploy("web", V1, model(tmp_path, "web", 0.2, "<=50K"), QUICK)
    assert sandbox.wait("web", timeout=30).serving_version == V1
    sandbox.apply_revision("svc", V1, model(tmp_path, "v1", 0.2, "<=50K"), None, namespace=NAMESPACE)
    sandbox.apply_revision("svc", V2, model(tmp_path, "v2", 0.9, ">50K"), 30, namespace=NAMESPACE)

    report = json.loads(sandbox_status(tmp_path, "--json"))

    assert set(report["endpoints"]) == {"web"} and report["endpoints"]["web"]["serving_version"] == V1
    isvc = report["inference_services"]["svc"]
    assert (isvc["name"], isvc["namespace"], isvc["url"]) == (
        "local-svc",
        NAMESPACE,
        sandbox.endpoint_url("svc"),
    )
    assert (isvc["ready"], isvc["traffic"], isvc["rolled_out"]) == ("True", {R2: 30, R1: 70}, R1)
    assert [(r["name"], r["version"], r["phase"]) for r in isvc["revisions"]] == [
        (R1, V1, "ready"),
        (R2, V2, "ready"),
    ]
    assert sorted(fleet["version"] for fleet in isvc["fleets"]) == [V1, V2]
    human = sandbox_status(tmp_path)
    assert f"{NAMESPACE}/local-svc" in human and "00001 70%, 00002 30%" in human
    assert "00001 11111111 ready, 00002 22222222 ready" in human
    assert "web" in human and "completed" in human, "the endpoint table is still there"
