"""A KServe service on the ``local`` stack through the CLI, its canary judged from a real Prometheus.

The copy's ``adult-income`` runs on ``runtime: kserve``: the sandbox serves it as an
InferenceService of revisions, and a real ``prometheus`` server scrapes the sandbox router, which
the CLI processes query with PromQL (``MODELRAIL_PROMETHEUS_URL``). As ``modelrail`` processes:

* promote v1: the first revision takes all traffic at once (no baseline to canary against);
* promote v2 under replayed traffic: one stack update pins ``canaryTrafficPercent: 50``, the
  canary bakes under analysis from PromQL windows, the next update takes all traffic;
* rollback: v1 again, all traffic at once, through a stack update;
* promote v3, a slower version that predicts differently: the analysis breaches, the canary's
  share goes to 0 and the one revert path pins v1 again (exit 5).

About 60 s; skipped where Debian's ``prometheus`` package is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.config import load_stack_file
from pipelines.promotion.stackfile import round_trip_yaml, write_pin
from tests.integration.test_prometheus_source import PROMETHEUS, eventually, ready, start_prometheus

from .conftest import REPO, SERVICE, STANDIN

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("kserve_cli"),
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="no prometheus server binary (Debian: apt-get install prometheus; .ci/run installs it)",
    ),
]

STACK = "local"
REGISTRANT, APPROVER, OPERATOR = "rita@example.com", "alice@example.com", "ops@example.com"
BAKE_SECONDS = 8


@dataclass
class World:
    project: Path
    state: Path
    v1: str
    v2: str
    v3: str
    prometheus: str
    query_log: Path
    url: str

    @property
    def stack_path(self) -> Path:
        return self.project / "stacks" / f"Pulumi.{STACK}.yaml"


def _as_kserve(path: Path) -> None:
    """adult-income on KServe, canary 50 % baked for ``BAKE_SECONDS``; nothing deployed yet."""
    text = path.read_text(encoding="utf-8")
    yaml = round_trip_yaml(text)
    document = yaml.load(text)
    entry = document["config"]["modelrail:services"][SERVICE]
    entry["runtime"] = "kserve"
    entry["deployment"] = {
        "strategy": "canary",
        "canaryPercent": 50,
        "bakeSeconds": BAKE_SECONDS,
        "terminationWaitSeconds": 0,
        "maxExecutionSeconds": 600,
    }
    document["config"]["modelrail:platform"]["kubernetes"] = {"prometheusScrapeSeconds": 1}
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
    for name, service in load_stack_file(path).services.items():
        if service.model_version is not None:
            write_pin(path, name, None)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from pipelines.embedded.session import embedded_session
    from pipelines.packaging.build import build_package
    from pipelines.promotion.wiring import build_controller, register_version
    from pipelines.sandbox import sandbox_session
    from pipelines.training.trainer import train
    from tests.integration.conftest import small_manifest

    root = tmp_path_factory.mktemp("kserve-cli")
    project, state = root / "project", root / "state"
    project.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {"stacks", ".git", ".venv", ".modelrail"}:
            (project / entry.name).symlink_to(entry)
    shutil.copytree(REPO / "stacks", project / "stacks")
    _as_kserve(project / "stacks" / f"Pulumi.{STACK}.yaml")
    packages = [
        build_package(
            SERVICE,
            train(small_manifest(seed), root / f"v{seed}" / "model", root=REPO).out_dir,
            root / f"v{seed}" / "model.tar.gz",
        ).path
        for seed in (11, 12, 13)
    ]
    behaviours = root / "behaviours"  # what the stand-in model servers answer, by version
    behaviours.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STANDIN_BEHAVIOURS", str(behaviours))
        patch.setenv("MODELRAIL_PROJECT_DIR", str(project))
        patch.setenv("MODELRAIL_STATE_DIR", str(state))
        for name in ("MODELRAIL_AWS", "OPENLINEAGE_URL", "MODELRAIL_USER", "MODELRAIL_TRACEBACK"):
            patch.delenv(name, raising=False)
        with embedded_session(state, stack=STACK), sandbox_session(state, server_command=STANDIN) as sandbox:
            # Setup in this process: registering, the gates and the approval are not under test here.
            shas = [
                register_version(STACK, SERVICE, built, REGISTRANT)[0].version.package_sha
                for built in packages
            ]
            slow = {"probability": 0.9, "label": ">50K", "delay_ms": 150}
            (behaviours / f"{shas[2]}.json").write_text(json.dumps(slow))
            controller = build_controller(STACK)
            for sha in shas:
                for stage in ("candidate", "production"):
                    controller.record_gates(
                        SERVICE, sha, stage, passed=True, summary="set up by the test",
                        report={"checks": [], "stage": stage}, actor=APPROVER,
                    )  # fmt: skip
                controller.approve(SERVICE, sha, APPROVER, "set up by the test")
            query_log = root / "prometheus" / "queries.log"
            query_log.parent.mkdir()
            process, url = start_prometheus(query_log.parent, sandbox.url.removeprefix("http://").rstrip("/"))
            _log_queries(query_log.parent / "prometheus.yml", query_log)
            try:
                eventually(lambda: ready(url), f"Prometheus ready at {url}")
                process.send_signal(1)  # SIGHUP: reload with the query log on
                patch.setenv("MODELRAIL_PROMETHEUS_URL", url)
                yield World(project, state, shas[0], shas[1], shas[2], url, query_log, sandbox.url)
            finally:
                process.terminate()
                process.wait(timeout=10)


def _log_queries(config: Path, log: Path) -> None:
    document = json.loads(config.read_text())
    document["global"]["query_log_file"] = str(log)
    config.write_text(json.dumps(document))


def modelrail(*args: str, expect: int = 0) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args, "--json"],
        check=False, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=300,
    )  # fmt: skip
    assert result.returncode == expect, f"{args}: exit {result.returncode}\n{result.stderr}{result.stdout}"
    return json.loads(result.stdout) if result.stdout.strip() else None


def _document(world: World) -> dict[str, Any]:
    from pipelines.sandbox import SandboxClient

    return SandboxClient.connect(world.state).inference_service(SERVICE)


class Traffic:
    """Replayed rows with delayed labels, from a thread, while a promotion bakes."""

    def __init__(self, world: World, rows: Path) -> None:
        from pipelines.sandbox.replay import load_rows

        self.rows, self.world = load_rows(rows), world
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        from pipelines.sandbox import SandboxClient
        from pipelines.sandbox.replay import replay

        url = SandboxClient.connect(self.world.state).endpoint_url(SERVICE)
        self.thread = threading.Thread(
            target=lambda: replay(url, self.rows, rps=60, duration=120, labels_after=0.2, stop=self.stop),
            daemon=True,
        )
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rows") / "rows.csv"
    path.write_text("".join(f"{i}, x, {'<=50K' if i % 4 else '>50K.'}\n" for i in range(200)))
    return path


@pytest.fixture(scope="module")
def story(world: World, rows: Path) -> dict[str, Any]:
    """The promotions and the rollback, once, in order; the tests judge what each left."""
    on = ("--service", SERVICE, "--stack", STACK, "--as", OPERATOR)
    runs: dict[str, Any] = {}
    runs["first"] = modelrail("promote", *on, "--version", world.v1, "--yes")
    runs["first_document"] = _document(world)
    with Traffic(world, rows):
        runs["canary"] = modelrail("promote", *on, "--version", world.v2, "--yes")
    runs["canary_document"] = _document(world)
    logged = world.query_log.read_text().splitlines() if world.query_log.exists() else []
    runs["queries"] = [json.loads(line)["params"]["query"] for line in logged if line.strip()]
    runs["rollback"] = modelrail("rollback", *on)
    runs["rollback_document"] = _document(world)
    with Traffic(world, rows):
        runs["breach"] = modelrail("promote", *on, "--version", world.v3, "--yes", expect=5)
    runs["breach_document"] = _document(world)
    runs["breach_pin"] = load_stack_file(world.stack_path).services[SERVICE]
    runs["audit"] = modelrail("history", "--service", SERVICE, "--stack", STACK)
    return runs


def _traffic(document: dict[str, Any]) -> dict[str, int]:
    predictor = document["status"]["components"]["predictor"]
    return {entry["revisionName"]: entry["percent"] for entry in predictor["traffic"]}


def _serving(document: dict[str, Any]) -> str:
    return str(document["metadata"]["annotations"]["modelrail.io/model-version"])


def test_the_first_revision_takes_all_traffic_at_once(story: dict[str, Any], world: World) -> None:
    first = story["first"]
    assert (first["outcome"], first["version"]) == ("promoted", world.v1)
    assert first["analysis"] == [], "no baseline: nothing to canary against"
    assert _serving(story["first_document"]) == world.v1
    assert list(_traffic(story["first_document"]).values()) == [100]


def test_the_canary_bakes_under_promql_analysis_then_takes_all_traffic(
    story: dict[str, Any], world: World
) -> None:
    canary = story["canary"]
    assert (canary["outcome"], canary["version"], canary["previous"]) == ("promoted", world.v2, world.v1)
    verdicts = [decision["verdict"] for decision in canary["analysis"]]
    assert verdicts and verdicts[-1] == "promote", [decision["reason"] for decision in canary["analysis"]]
    document = story["canary_document"]
    assert _serving(document) == world.v2
    predictor = document["status"]["components"]["predictor"]
    assert predictor["latestRolledoutRevision"] == predictor["latestReadyRevision"]
    assert _traffic(document) == {predictor["latestReadyRevision"]: 100}
    assert "canaryTrafficPercent" not in document["spec"]["predictor"]
    # The windows came from the Prometheus server: its query log has the source's PromQL.
    queries = story["queries"]
    selector = f'{{service="{SERVICE}",variant!="shadow"}}'
    assert any(f"increase(modelrail_invocations_total{selector}" in q for q in queries), queries
    assert any(q.startswith("histogram_quantile(0.99") for q in queries), queries


def test_rollback_puts_the_last_stable_version_back_through_a_stack_update(
    story: dict[str, Any], world: World
) -> None:
    rolled = story["rollback"]
    assert (rolled["kind"], rolled["outcome"], rolled["version"]) == ("rollback", "rolled_back", world.v1)
    document = story["rollback_document"]
    assert _serving(document) == world.v1
    assert list(_traffic(document).values()) == [100]


def test_a_breach_while_the_canary_bakes_aborts_it_and_pins_the_stable_version_again(
    story: dict[str, Any], world: World
) -> None:
    breach = story["breach"]
    assert breach is None or breach.get("outcome") != "promoted"
    pin = story["breach_pin"]
    assert (pin.model_version, pin.canary_traffic_percent) == (world.v1, None)
    document = story["breach_document"]
    assert _serving(document) == world.v1
    assert list(_traffic(document).values()) == [100]
    actions = [entry["action"] for entry in story["audit"]["entries"]]
    assert actions[-1] == "promote:rolled_back", actions
    assert "canary analysis" in story["audit"]["entries"][-1]["reason"]
