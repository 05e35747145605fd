"""A sandbox endpoint's shadow variant with real (stand-in) model servers: how an update starts,
replaces, re-shares and removes it beside an untouched production fleet, and how the router
mirrors production's requests to it without the client ever waiting for it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from infra.config import DeploymentPolicy, ShadowPhase
from pipelines.metrics.local import LocalMetricsSource
from pipelines.sandbox.description import DeploymentPhase, EndpointDescription
from pipelines.sandbox.endpoint import UpdateRefusedError
from pipelines.sandbox.fleet import ModelServerProcess
from pipelines.sandbox.metrics import MetricsBook
from pipelines.sandbox.outputs import ServedOutput
from pipelines.sandbox.runtime import Sandbox
from pipelines.sandbox.shadow import Mirror, ShadowSpec

REPO = Path(__file__).resolve().parents[3]
STANDIN = ["{python}", str(REPO / "tests" / "integration" / "standin_server.py"), "--model-dir", "{model_dir}",
           "--port", "{port}"]  # fmt: skip
"""Stand-in model servers (``tests/integration/standin_server.py``): a fleet starts in well under a second."""
V1, V2, V3 = "1" * 64, "2" * 64, "3" * 64
POLICY = DeploymentPolicy(
    strategy="all_at_once",
    bake_seconds=0,
    termination_wait_seconds=0,
    progression=("shadow", "full"),
    shadow=ShadowPhase(percent=100),
)
ROW = b"39, State-gov, 77516\n"


def model(tmp_path: Path, name: str, *, label: str = "<=50K", delay_ms: int = 0) -> Path:
    """A stand-in model directory that answers ``label`` to every row after ``delay_ms``."""
    directory = tmp_path / name
    directory.mkdir()
    behaviour = {"probability": 0.9 if label == ">50K" else 0.2, "label": label, "delay_ms": delay_ms}
    (directory / "behaviour.json").write_text(json.dumps(behaviour))
    return directory


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.02)


def gone(pid: int | None) -> bool:
    assert pid is not None
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def settled(sandbox: Sandbox) -> EndpointDescription:
    """The endpoint's description once its update has finished."""
    eventually(lambda: sandbox.describe("svc").phase.finished)
    return sandbox.describe("svc")


def pid_of(described: EndpointDescription, version: str) -> int | None:
    return next(fleet.pid for fleet in described.fleets if fleet.version == version)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """An in-process sandbox whose ``svc`` endpoint serves V1 (answering ``<=50K``)."""
    (tmp_path / "logs").mkdir()
    sandbox = Sandbox("http://sandbox", STANDIN, tmp_path / "logs", on_processes=lambda: None)
    try:
        sandbox.deploy("svc", V1, model(tmp_path, "v1"), POLICY)
        assert settled(sandbox).serving_version == V1
        yield sandbox
    finally:
        sandbox.shutdown()


def with_shadow(
    sandbox: Sandbox, shadow: ShadowSpec, policy: DeploymentPolicy = POLICY
) -> EndpointDescription:
    assert sandbox.deploy("svc", V1, sandbox.endpoint("svc").fleets[V1].model_dir, policy, shadow)
    return settled(sandbox)


@dataclass
class BookSandbox:
    """Serves a MetricsBook's readings as the daemon's ``/metrics?at=`` does."""

    book: MetricsBook

    def metrics_text(self, at: float | None = None) -> str:
        return self.book.exposition(at)


def counters(sandbox: Sandbox, version: str, *, shadow: bool = False) -> tuple[int, int, int, int]:
    """(invocations, agreed, disagreed, mirrors dropped) of ``version`` in the router's book: the
    requests routed to it, or (``shadow``) its answers to mirrored copies."""
    c = sandbox.book.reading().counters[("svc", version)]
    return (c.shadow if shadow else c).invocations, c.agreed, c.disagreed, c.mirrors_dropped


def quiet(sandbox: Sandbox, version: str, seconds: float = 0.5) -> tuple[int, int, int, int]:
    """The shadow's ``counters`` once they stay the same for ``seconds``: every copy in flight has come back."""
    deadline = time.monotonic() + 15
    last = counters(sandbox, version, shadow=True)
    while True:
        time.sleep(seconds)
        now = counters(sandbox, version, shadow=True)
        if now == last:
            return now
        assert time.monotonic() < deadline, "the shadow's counters never settled"
        last = now


# ---- updates ----


def test_a_shadow_alone_starts_beside_production_without_a_blue_green(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    production = pid_of(sandbox.describe("svc"), V1)

    assert sandbox.deploy("svc", V1, tmp_path / "v1", POLICY, ShadowSpec(V2, model(tmp_path, "v2")))
    starting = sandbox.describe("svc")
    done = settled(sandbox)

    assert (starting.status, starting.phase, starting.shadow_version) == (
        "Updating", DeploymentPhase.PROVISIONING, None,
    )  # fmt: skip
    assert starting.weights == {V1: 1.0} and starting.serving_version == V1
    assert (done.status, done.phase, done.failure_reason) == ("InService", DeploymentPhase.COMPLETED, None)
    assert (done.shadow_version, done.shadow_percent) == (V2, 100)
    assert done.serving_version == V1 and done.config_name == f"svc-{V1[:12]}" and done.weights == {V1: 1.0}
    assert pid_of(done, V1) == production, "production's fleet is the one that served before"
    assert sandbox.endpoint("svc").roles() == {V1: "baseline", V2: "shadow"}
    assert sandbox.book.reading().roles["svc"] == {V1: "baseline", V2: "shadow"}
    assert sandbox.status()["svc"]["shadow_version"] == V2
    assert not sandbox.deploy("svc", V1, tmp_path / "v1", POLICY, ShadowSpec(V2, tmp_path / "v2")), (
        "the same update again changes nothing"
    )


def test_another_share_of_the_same_shadow_is_applied_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    shadow = ShadowSpec(V2, model(tmp_path, "v2"))
    pid = pid_of(with_shadow(sandbox, shadow), V2)
    half = POLICY.model_copy(update={"shadow": ShadowPhase(percent=50)})

    assert sandbox.deploy("svc", V1, tmp_path / "v1", half, shadow)
    described = sandbox.describe("svc")

    assert (described.phase, described.shadow_version, described.shadow_percent) == (
        DeploymentPhase.COMPLETED, V2, 50,
    )  # fmt: skip
    assert pid_of(described, V2) == pid


def test_a_new_shadow_takes_the_old_ones_place_once_it_has_started(sandbox: Sandbox, tmp_path: Path) -> None:
    old = pid_of(with_shadow(sandbox, ShadowSpec(V2, model(tmp_path, "v2"))), V2)

    assert sandbox.deploy("svc", V1, tmp_path / "v1", POLICY, ShadowSpec(V3, model(tmp_path, "v3")))
    assert sandbox.describe("svc").shadow_version == V2, "the old shadow mirrors while the new one starts"
    done = settled(sandbox)

    assert done.shadow_version == V3 and sorted(fleet.version for fleet in done.fleets) == [V1, V3]
    assert gone(old)


def test_removing_the_shadow_stops_its_fleet_and_production_serves_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    described = with_shadow(sandbox, ShadowSpec(V2, model(tmp_path, "v2")))
    shadow, production = pid_of(described, V2), pid_of(described, V1)

    assert sandbox.deploy("svc", V1, tmp_path / "v1", POLICY)
    removed = sandbox.describe("svc")

    assert (removed.status, removed.phase, removed.shadow_version, removed.shadow_percent) == (
        "InService", DeploymentPhase.COMPLETED, None, None,
    )  # fmt: skip
    assert [fleet.version for fleet in removed.fleets] == [V1] and pid_of(removed, V1) == production
    assert gone(shadow)
    assert sandbox.endpoint("svc").roles() == {V1: "baseline"}
    assert sandbox.invoke("svc", ROW, {"Content-Type": "text/csv"}).status == 200
    assert counters(sandbox, V2, shadow=True)[0] == 0, "nothing is mirrored once the shadow is gone"


def test_a_shadow_that_does_not_start_leaves_production_serving(sandbox: Sandbox, tmp_path: Path) -> None:
    broken = tmp_path / "v2"
    broken.mkdir()
    (broken / "behaviour.json").write_text("not json")  # the stand-in exits at once

    done = with_shadow(sandbox, ShadowSpec(V2, broken))

    assert (done.status, done.phase, done.serving_version) == ("InService", DeploymentPhase.ROLLED_BACK, V1)
    assert done.failure_reason is not None
    assert done.failure_reason.startswith(
        f"the shadow fleet did not start: model server for {V2[:12]} exited"
    )
    assert (done.shadow_version, [fleet.version for fleet in done.fleets]) == (None, [V1])
    answer = sandbox.invoke("svc", ROW, {"Content-Type": "text/csv"})
    assert (answer.status, answer.headers["X-Modelrail-Variant"]) == (200, V1)


def test_a_new_production_version_with_a_shadow_is_refused_and_changes_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with pytest.raises(UpdateRefusedError, match=r"a new production version \(111111111111 -> 333333333333\) "
                       r"and a shadow \(222222222222\) in one update; change one at a time"):  # fmt: skip
        sandbox.deploy("svc", V3, model(tmp_path, "v3"), POLICY, ShadowSpec(V2, model(tmp_path, "v2")))
    with pytest.raises(UpdateRefusedError, match="is the version production serves"):
        sandbox.deploy("svc", V1, tmp_path / "v1", POLICY, ShadowSpec(V1, tmp_path / "v1"))
    described = sandbox.describe("svc")
    assert (described.phase, described.shadow_version, described.serving_version) == (
        DeploymentPhase.COMPLETED, None, V1,
    )  # fmt: skip


def test_a_new_production_version_stops_the_shadow_before_its_blue_green(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shadow = pid_of(with_shadow(sandbox, ShadowSpec(V2, model(tmp_path, "v2"))), V2)

    assert sandbox.deploy("svc", V2, tmp_path / "v2", POLICY)  # the promotion after a passed shadow phase
    assert sandbox.describe("svc").shadow_version is None and gone(shadow)
    done = settled(sandbox)

    assert (done.phase, done.serving_version, done.shadow_version) == (DeploymentPhase.COMPLETED, V2, None)
    assert sandbox.endpoint("svc").roles() == {V2: "baseline"}


# ---- the router ----


def test_the_client_gets_production_answers_at_production_speed_while_a_slow_shadow_is_mirrored(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with_shadow(sandbox, ShadowSpec(V2, model(tmp_path, "v2", label=">50K", delay_ms=500)))
    answers, latencies = [], []
    for _ in range(10):
        started = time.perf_counter()
        answer = sandbox.invoke("svc", ROW, {"Content-Type": "text/csv"})
        latencies.append(time.perf_counter() - started)
        answers.append((answer.status, answer.headers["X-Modelrail-Variant"], json.loads(answer.body)))

    assert answers == [(200, V1, {"predictions": [{"probability": 0.2, "label": "<=50K"}]})] * 10
    assert max(latencies) < 0.4, f"the client waited for the 500 ms shadow: {latencies}"
    eventually(lambda: counters(sandbox, V2, shadow=True)[0] == 10)
    assert counters(sandbox, V2, shadow=True) == (10, 0, 10, 0), "every copy answered, and disagreed"
    assert counters(sandbox, V1)[0] == 10
    shadow = sandbox.book.reading().counters[("svc", V2)]
    assert shadow.shadow.latency_sum_ms >= 10 * 500 and shadow.shadow.predictions[9] == 10  # its own answers
    assert (shadow.invocations, shadow.latency_sum_ms, sum(shadow.predictions)) == (0, 0.0, 0), (
        "the copies are the shadow variant's, never requests routed to its version"
    )


def test_an_agreeing_shadow_agrees_on_every_copy_and_its_share_is_mirrored(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with_shadow(
        sandbox,
        ShadowSpec(V2, model(tmp_path, "v2")),
        POLICY.model_copy(update={"shadow": ShadowPhase(percent=25)}),
    )
    for _ in range(200):
        assert sandbox.invoke("svc", ROW, {"Content-Type": "text/csv"}).status == 200

    invocations, agreed, disagreed, dropped = quiet(sandbox, V2)
    assert 20 <= invocations <= 80, invocations  # 25% of 200 = 50; ±4.9 standard deviations
    assert (agreed, disagreed, dropped) == (invocations, 0, 0)


def test_copies_a_full_queue_has_no_room_for_are_dropped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    fleet = ModelServerProcess("svc", V2, model(tmp_path, "v2", delay_ms=500), STANDIN, tmp_path / "logs")
    fleet.start()
    book = MetricsBook()
    mirror = Mirror("svc", fleet, 100, book, workers=1, queue_size=1)
    try:
        offered = [
            mirror.offer(ROW, {"Content-Type": "text/csv"}, ["<=50K"], ServedOutput()) for _ in range(6)
        ]
        accepted = sum(offered)
        counted = book.reading().counters[("svc", V2)]
        assert 1 <= accepted <= 2, offered  # one in flight, at most one waiting
        assert counted.mirrors_dropped == 6 - accepted
        eventually(lambda: book.reading().counters[("svc", V2)].shadow.invocations == accepted)
        assert book.reading().counters[("svc", V2)].agreed == accepted
    finally:
        mirror.close()
        fleet.stop()
    assert not mirror.offer(ROW, {}, [], ServedOutput()), "a closed mirror takes no copy"


def test_a_shadow_promoted_to_canary_is_judged_on_its_canary_requests_not_its_copies(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """``[shadow, canary, full]`` through the router: V2's slow answers to copies as the shadow stay
    out of its canary window, which starts at a snapshot taken while it was still the shadow."""
    shadow_dir = model(tmp_path, "v2", delay_ms=300)
    with_shadow(sandbox, ShadowSpec(V2, shadow_dir))
    sandbox.book.snapshot(now=time.time())  # the daemon's last snapshot before the canary window starts
    start = time.time() + 0.5
    for _ in range(10):
        assert sandbox.invoke("svc", ROW, {"Content-Type": "text/csv"}).status == 200
    eventually(lambda: counters(sandbox, V2, shadow=True)[0] == 10)

    canary = POLICY.model_copy(
        update={"strategy": "canary", "canary_percent": 50, "bake_seconds": 60, "progression": None}
    )
    assert sandbox.deploy("svc", V2, model(tmp_path, "v2-canary"), canary)
    eventually(lambda: sandbox.describe("svc").weights.get(V2) == 0.5)
    routed = [sandbox.invoke("svc", ROW, {"Content-Type": "text/csv"}) for _ in range(30)]
    to_canary = sum(answer.headers["X-Modelrail-Variant"] == V2 for answer in routed)
    assert 0 < to_canary < 30, to_canary

    window = LocalMetricsSource(BookSandbox(sandbox.book)).window("svc", start, time.time() + 1)

    assert window.canary is not None and window.canary.version == V2
    assert window.canary.invocations == to_canary, "the 10 copies as the shadow are not canary requests"
    assert window.canary.latency_p99_ms is not None and window.canary.latency_p99_ms < 300, (
        f"p99 {window.canary.latency_p99_ms} ms: the shadow's 300 ms answers leaked into the canary's"
    )
    assert window.baseline.version == V1 and window.baseline.invocations == 10 + 30 - to_canary


# ---- agreement ----


@pytest.mark.parametrize(
    ("output", "production", "shadow", "agreed"),
    [
        (ServedOutput(classes=("<=50K", ">50K")), ["<=50K", ">50K"], ["<=50K", "<=50K"], 1),
        (ServedOutput(task="multiclass", classes=("a", "b", "c")), ["a", "b"], ["a"], 1),  # a row missing
        (
            ServedOutput(task="regression", bins=tuple(range(9)), tolerance=5.0),
            [100.0, 100.0],
            [104.9, 94.0],
            1,
        ),
        (ServedOutput(task="regression", bins=tuple(range(9)), tolerance=5.0), [100.0], ["100"], 0),
        (ServedOutput(), ["<=50K"], [], 0),
    ],
)
def test_answers_agree_by_productions_output(
    output: ServedOutput, production: list[str | float], shadow: list[str | float], agreed: int
) -> None:
    assert output.agreed(production, shadow) == agreed
