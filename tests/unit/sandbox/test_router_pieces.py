"""The sandbox's pure parts: traffic steps per policy and the metrics history."""

from __future__ import annotations

import pytest

from infra.config import DeploymentPolicy
from pipelines.metrics import exposition as expo
from pipelines.sandbox.endpoint import traffic_steps
from pipelines.sandbox.metrics import MetricsBook


@pytest.mark.parametrize(
    ("policy", "steps"),
    [
        (DeploymentPolicy(strategy="canary", canary_percent=10), [0.1, 1.0]),
        (DeploymentPolicy(strategy="linear", linear_step_percent=20), [0.2, 0.4, 0.6, 0.8, 1.0]),
        (DeploymentPolicy(strategy="linear", linear_step_percent=30), [0.3, 0.6, 0.9, 1.0]),
        (DeploymentPolicy(strategy="all_at_once"), [1.0]),
    ],
)
def test_each_strategy_shifts_traffic_in_its_steps(policy: DeploymentPolicy, steps: list[float]) -> None:
    assert traffic_steps(policy) == pytest.approx(steps)


def _invocations(text: str) -> float:
    return next(s.value for s in expo.parse(text) if s.name == expo.INVOCATIONS)


def test_an_earlier_reading_is_the_last_snapshot_at_or_before_it() -> None:
    book = MetricsBook()
    book.invocation("svc", "v", 200, 5.0, [5])
    book.snapshot(now=100.0)
    book.invocation("svc", "v", 200, 5.0, [5])
    book.snapshot(now=101.0)
    book.invocation("svc", "v", 200, 5.0, [5])
    assert _invocations(book.exposition(at=100.5)) == 1
    assert _invocations(book.exposition(at=101.0)) == 2
    assert _invocations(book.exposition()) == 3
    assert "modelrail_invocations_total" not in book.exposition(at=50.0)


def test_failed_requests_count_as_5xx_without_latency() -> None:
    book = MetricsBook()
    book.invocation("svc", "v", 502, None, [])
    samples = expo.parse(book.exposition())
    by_name = {(s.name, s.labels.get("code_class")): s.value for s in samples}
    assert by_name[(expo.ERRORS, "5xx")] == 1
    assert by_name[(f"{expo.LATENCY}_count", None)] == 0
