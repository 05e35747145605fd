"""PrometheusMetricsSource against a real Prometheus server scraping the real sandbox router.

One sandbox serves a canary (slower, predicting differently), one ``prometheus`` process
scrapes its ``/metrics`` every second, and the PromQL window of the canary's traffic must agree
with the sandbox's own window of the same interval (within ``increase``'s extrapolation, see
pipelines/metrics/promql.py), roles included, and lead the canary analysis to the same verdict.
About 15 s; skipped where Debian's ``prometheus`` package is not installed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.config import DeploymentPolicy, Guardrails
from pipelines.canary import AnalysisPolicy, CanaryAnalysis, Verdict
from pipelines.metrics.local import LocalMetricsSource
from pipelines.metrics.promql import PrometheusMetricsSource
from pipelines.metrics.stats import VariantStats
from pipelines.sandbox import DeploymentPhase, SandboxClient, sandbox_session
from pipelines.sandbox.replay import load_rows, replay

PROMETHEUS = shutil.which("prometheus") or (
    "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="no prometheus server binary (Debian: apt-get install prometheus; .ci/run installs it)",
    ),
]

STANDIN = [
    "{python}",
    str(Path(__file__).with_name("standin_server.py")),
    "--model-dir",
    "{model_dir}",
    "--port",
    "{port}",
]
V1, V2 = "1" * 64, "2" * 64
SCRAPE_SECONDS = 1.0
CANARY = DeploymentPolicy(strategy="canary", canary_percent=50, bake_seconds=300, termination_wait_seconds=0)


def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_prometheus(directory: Path, target: str) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus server on a free loopback port scraping ``target`` (host:port) every second."""
    assert PROMETHEUS is not None
    every = f"{SCRAPE_SECONDS:g}s"
    job = {"job_name": "sandbox", "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}
    config = {"global": {"scrape_interval": every, "scrape_timeout": every}, "scrape_configs": [job]}
    (directory / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    address = f"127.0.0.1:{free_port()}"
    with (directory / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://{address}"


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[tuple[SandboxClient, str]]:
    """The sandbox mid-canary (v2 at 50%, baking for minutes) and a Prometheus scraping it."""
    with sandbox_session(tmp_path / "state", server_command=STANDIN) as sandbox:
        fast, slow = tmp_path / "v1", tmp_path / "v2"
        fast.mkdir()
        slow.mkdir()
        (fast / "behaviour.json").write_text(json.dumps({"probability": 0.2, "label": "<=50K"}))
        (slow / "behaviour.json").write_text(
            json.dumps({"probability": 0.9, "label": ">50K", "delay_ms": 150})
        )
        sandbox.deploy("svc", V1, fast, CANARY)
        assert sandbox.wait("svc", timeout=30).serving_version == V1
        prometheus, url = start_prometheus(tmp_path, sandbox.url.removeprefix("http://").rstrip("/"))
        try:
            eventually(lambda: ready(url), f"Prometheus ready at {url} (log: {tmp_path / 'prometheus.log'})")
            sandbox.deploy("svc", V2, slow, CANARY)
            eventually(lambda: sandbox.describe_endpoint("svc").phase is DeploymentPhase.BAKING, "v2 baking")
            yield sandbox, url
        finally:
            prometheus.terminate()
            try:
                prometheus.wait(timeout=10)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait(timeout=10)


def assert_close(local: VariantStats, promql: VariantStats, window_seconds: float) -> None:
    """PromQL counts are the exact ones scaled by ``increase``'s extrapolation, then rounded.

    All traffic lies between the first and the last scrape inside the window, so the factor is
    at least 1 and at most window / (window - 2 scrapes); ``+ 1`` is the rounding.
    """
    most = window_seconds / (window_seconds - 2.5 * SCRAPE_SECONDS)
    pairs = {
        "invocations": (local.invocations, promql.invocations),
        "errors_5xx": (local.errors_5xx, promql.errors_5xx),
        "labelled": (local.labelled, promql.labelled),
        "correct": (local.correct, promql.correct),
        **{
            f"bin {i}": pair
            for i, pair in enumerate(
                zip(local.prediction_histogram, promql.prediction_histogram, strict=True)
            )
        },
    }
    for name, (exact, extrapolated) in pairs.items():
        assert exact <= extrapolated + 1 and extrapolated <= exact * most + 1, (name, exact, extrapolated)
    assert local.latency_p99_ms is not None and promql.latency_p99_ms is not None
    assert promql.latency_p99_ms == pytest.approx(local.latency_p99_ms, rel=0.05)


def test_promql_windows_agree_with_the_sandboxs_own_and_reach_the_same_verdict(
    canary: tuple[SandboxClient, str], tmp_path: Path
) -> None:
    sandbox, url = canary
    promql = PrometheusMetricsSource(url)

    def scraped_canary() -> bool:
        roles = promql.query('modelrail_variant_info{service="svc"}', time.time())
        return {labels["version"]: labels["role"] for labels, _ in roles}.get(V2) == "canary"

    eventually(scraped_canary, "Prometheus scraped the canary's zeroed counters")
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(f"{i}, x, {'<=50K' if i % 4 else '>50K.'}\n" for i in range(100)))
    start = time.time()
    time.sleep(1.5 * SCRAPE_SECONDS)  # a quiet scrape on each side of the traffic
    sent = replay(sandbox.endpoint_url("svc"), load_rows(rows), rps=100, duration=3, labels_after=0.2)
    time.sleep(1.5 * SCRAPE_SECONDS + 0.5)
    end = time.time()
    time.sleep(1.5 * SCRAPE_SECONDS)  # Prometheus has scraped past the end
    assert sent.ok == sent.sent == 300 and sent.by_version.get(V2, 0) >= 100, sent

    exact = LocalMetricsSource(sandbox).window("svc", start, end)
    extrapolated = promql.window("svc", start, end, rollout_start=start)

    assert (exact.baseline.version, extrapolated.baseline.version) == (V1, V1)
    assert exact.canary is not None and extrapolated.canary is not None
    assert (exact.canary.version, extrapolated.canary.version) == (V2, V2)
    assert exact.baseline.invocations + exact.canary.invocations == 300
    assert_close(exact.baseline, extrapolated.baseline, end - start)
    assert_close(exact.canary, extrapolated.canary, end - start)

    policy = AnalysisPolicy(interval_seconds=end - start, iterations=1, min_requests=50, min_labels=50)
    guardrails = Guardrails(p99_latency_ms=100)
    by_sandbox = CanaryAnalysis(policy, guardrails).step(exact)
    by_promql = CanaryAnalysis(policy, guardrails).step(extrapolated)
    assert by_sandbox.verdict is Verdict.ROLLBACK, by_sandbox.reason
    assert (by_promql.verdict, by_promql.alarm) == (by_sandbox.verdict, by_sandbox.alarm), by_promql.reason
    assert [(c.name, c.passed) for c in by_promql.checks] == [(c.name, c.passed) for c in by_sandbox.checks]
