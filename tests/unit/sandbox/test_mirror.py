"""``Mirror`` against a fake shadow fleet whose answers the test holds back: what is counted as the
shadow's, and that nothing is counted once ``close()`` has returned, even an answer in flight."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import pytest

from pipelines.metrics.local import LocalMetricsSource
from pipelines.sandbox.fleet import ModelServerProcess
from pipelines.sandbox.metrics import MetricsBook, VersionCounters
from pipelines.sandbox.outputs import ServedOutput
from pipelines.sandbox.shadow import Mirror

PROD, SHADOW = "a" * 64, "b" * 64
ROW = b"39, State-gov, 77516\n"
ANSWER = json.dumps({"predictions": [{"probability": 0.9, "label": ">50K"}]}).encode()
WAIT = 10.0
"""Longest a test waits for a thread to get somewhere; reached only when the code under test is wrong."""


class FakeFleet:
    """A shadow server that answers ``>50K`` to every copy; with ``hold`` it answers only once released."""

    version = SHADOW
    output = ServedOutput()

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.arrived = threading.Semaphore(0)
        """Released once per copy the fleet was sent."""
        self.release = threading.Event()

    def invoke(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]]:
        self.arrived.release()
        if self.hold:
            assert self.release.wait(WAIT), "the test never released the answer"
        return 200, ANSWER, {"Content-Type": "application/json"}


class SlowBook(MetricsBook):
    """A book whose first shadow answer takes until the test says so to be counted: it holds a
    worker between its check of the mirror's state and its count, where ``close`` must not slip in."""

    def __init__(self) -> None:
        super().__init__()
        self.counting = threading.Event()
        self.go = threading.Event()

    def invocation(
        self,
        service: str,
        version: str,
        status: int,
        latency_ms: float | None,
        bins: list[int],
        *,
        shadow: bool = False,
    ) -> None:
        if shadow and not self.counting.is_set():
            self.counting.set()
            assert self.go.wait(WAIT), "the test never let the count finish"
        super().invocation(service, version, status, latency_ms, bins, shadow=shadow)


@dataclass
class BookSandbox:
    """Serves a MetricsBook's readings as the daemon's ``/metrics?at=`` does."""

    book: MetricsBook

    def metrics_text(self, at: float | None = None) -> str:
        return self.book.exposition(at)


def mirror_of(fleet: FakeFleet, book: MetricsBook, workers: int = 2) -> Mirror:
    return Mirror("svc", cast(ModelServerProcess, fleet), 100, book, workers=workers, queue_size=8)


def offer(mirror: Mirror) -> bool:
    return mirror.offer(ROW, {"Content-Type": "text/csv"}, ["<=50K"], ServedOutput())


def counted(book: MetricsBook) -> VersionCounters:
    return book.reading().counters.get(("svc", SHADOW), VersionCounters())


def finished(mirror: Mirror) -> None:
    """Wait until every worker has returned (after ``close``), so whatever it would count is counted."""
    for worker in mirror._workers:
        worker.join(WAIT)
        assert not worker.is_alive(), "a worker did not stop after close()"


@pytest.fixture
def book() -> MetricsBook:
    book = MetricsBook()
    book.set_service("svc", {PROD: "baseline", SHADOW: "shadow"}, {PROD: 1.0}, {})
    return book


def test_the_answers_are_counted_as_the_shadow_variants_and_compared(book: MetricsBook) -> None:
    fleet = FakeFleet()
    mirror = mirror_of(fleet, book)
    assert all(offer(mirror) for _ in range(3))
    for _ in range(3):
        assert fleet.arrived.acquire(timeout=WAIT)
    mirror.close()
    finished(mirror)

    c = counted(book)
    assert (c.shadow.invocations, c.shadow.predictions[9], c.agreed, c.disagreed) == (3, 3, 0, 3)
    assert (c.invocations, sum(c.predictions), c.latency_sum_ms) == (0, 0, 0.0), (
        "no copy counts as a request routed to the version"
    )
    book.set_service("svc", {PROD: "baseline", SHADOW: "canary"}, {PROD: 0.9, SHADOW: 0.1}, {})
    book.snapshot(now=10.0)
    window = LocalMetricsSource(BookSandbox(book)).window("svc", 0.0, 10.0)
    assert window.canary is not None and window.canary.invocations == 0, "the copies are not canary traffic"


def test_an_answer_arriving_after_close_is_not_counted(book: MetricsBook) -> None:
    fleet = FakeFleet(hold=True)
    mirror = mirror_of(fleet, book)
    assert offer(mirror) and offer(mirror)
    for _ in range(2):
        assert fleet.arrived.acquire(timeout=WAIT), "the copies were not sent"

    mirror.close()
    fleet.release.set()
    finished(mirror)

    c = counted(book)
    assert (c.shadow.invocations, c.shadow.errors_5xx, c.agreed, c.disagreed) == (0, 0, 0, 0)
    assert not offer(mirror) and counted(book).mirrors_dropped == 0, "a closed mirror takes and drops nothing"


def test_nothing_is_counted_once_close_has_returned_even_a_count_already_under_way() -> None:
    """``close`` between a worker's check that the mirror is open and its count: either the count is
    made before ``close`` returns, or not at all; never after."""
    book = SlowBook()
    fleet = FakeFleet()
    mirror = mirror_of(fleet, book, workers=1)
    assert offer(mirror)
    assert book.counting.wait(WAIT), "the answer never got to its count"
    at_close: list[tuple[int, int]] = []

    def close() -> None:
        mirror.close()
        c = counted(book)
        at_close.append((c.shadow.invocations, c.disagreed))

    closing = threading.Thread(target=close)
    closing.start()
    closing.join(0.3)  # a close() that does not wait for the count has returned by now
    book.go.set()
    closing.join(WAIT)
    assert not closing.is_alive(), "close() never returned"
    finished(mirror)

    c = counted(book)
    assert at_close == [(c.shadow.invocations, c.disagreed)], "counted after close() had returned"
    assert (c.shadow.invocations, c.disagreed) == (1, 1), "an answer counted before close() is kept whole"
