"""LocalMetricsSource against the router's metrics book, read through a fake client."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipelines.metrics.local import LocalMetricsSource
from pipelines.sandbox.metrics import MetricsBook


@dataclass
class FakeSandbox:
    """Serves a MetricsBook's readings as the daemon does."""

    book: MetricsBook

    def metrics_text(self, at: float | None = None) -> str:
        return self.book.exposition(at)


def _traffic(
    book: MetricsBook, version: str, requests: int, *, status: int = 200, latency: float = 20.0
) -> None:
    for _ in range(requests):
        answered = status < 500
        book.invocation("svc", version, status, latency if answered else None, [8] if answered else [])


def test_a_window_is_the_difference_between_two_readings() -> None:
    book = MetricsBook()
    book.set_service("svc", {"old": "baseline", "new": "canary"}, {"old": 0.9, "new": 0.1}, {})
    _traffic(book, "old", 50)
    book.snapshot(now=100.0)
    _traffic(book, "old", 30)
    _traffic(book, "new", 10)
    _traffic(book, "new", 2, status=502)
    book.label("svc", "new", correct=True)
    book.label("svc", "new", correct=False)
    book.snapshot(now=160.0)
    _traffic(book, "new", 1000)  # after the window: must not count

    window = LocalMetricsSource(FakeSandbox(book)).window("svc", 100.0, 160.0)

    assert window.baseline.version == "old" and window.baseline.invocations == 30
    assert window.canary is not None and window.canary.version == "new"
    assert (window.canary.invocations, window.canary.errors_5xx) == (12, 2)
    assert (window.canary.labelled, window.canary.correct) == (2, 1)
    assert window.canary.prediction_histogram[8] == 10
    assert window.canary.latency_p99_ms == pytest.approx(20.0, rel=0.1)


def test_outside_a_deployment_there_is_no_canary() -> None:
    book = MetricsBook()
    book.set_service("svc", {"only": "baseline"}, {"only": 1.0}, {})
    _traffic(book, "only", 5)
    book.snapshot(now=10.0)
    window = LocalMetricsSource(FakeSandbox(book)).window("svc", 0.0, 10.0)
    assert window.canary is None
    assert window.baseline.invocations == 5


def test_a_reading_before_the_first_snapshot_is_all_zeros() -> None:
    book = MetricsBook()
    book.set_service("svc", {"v": "baseline"}, {"v": 1.0}, {})
    _traffic(book, "v", 7)
    book.snapshot(now=50.0)
    window = LocalMetricsSource(FakeSandbox(book)).window("svc", 1.0, 50.0)
    assert window.baseline.invocations == 7
