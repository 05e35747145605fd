"""A shadow variant in the sandbox: production requests copied to another version in the background.

The router draws each request production answered for mirroring with the shadow's share
(``deployment.shadow.percent``) and offers a copy to the shadow's ``Mirror``: a bounded queue
and a few workers that send it on. A full queue (the shadow is slower than its share of the
traffic) drops the copy and counts it, so the client never waits for the shadow and never sees
its answer. Each answer is counted under the shadow's version like a served request (status,
model latency, predictions), but as the shadow's (``MetricsBook.invocation(shadow=True)``, exposed
with ``variant="shadow"``): the copies never count as that version's traffic, even once it is the
canary of the next phase. Each is compared with production's answer to the same request,
prediction by prediction (``ServedOutput.agreed``), as SageMaker's shadow variants are judged
against the production variant on the same requests.

The shadow's latency is its time for the copies it was sent: copies the queue dropped are not
sent, so a shadow too slow for its share shows as a high latency on fewer requests, and as drops.

``close`` stops the counting at once: every count (an answer, a comparison, a dropped copy) is
made under the lock ``close`` takes to set its flag, after checking the flag, so once ``close``
has returned nothing more is counted, not even an answer that was in flight.
"""

from __future__ import annotations

import contextlib
import http.client
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.sandbox.fleet import ModelServerProcess
from pipelines.sandbox.metrics import MetricsBook
from pipelines.sandbox.outputs import Guess, ServedOutput

MIRROR_WORKERS = 8
"""Copies in flight to one shadow at most: its load stays bounded whatever production's is."""
MIRROR_QUEUE = 32
"""Copies waiting for a worker; one more is dropped (and counted)."""


@dataclass(frozen=True)
class ShadowSpec:
    """The shadow variant a stack update asks for (``shadowVersion``), unpacked where the daemon reads it."""

    version: str
    model_dir: Path


@dataclass(frozen=True)
class _Copy:
    """One production request to send to the shadow, with production's answer to compare against."""

    body: bytes
    headers: dict[str, str]
    production: tuple[Guess, ...]
    """Production's predictions; empty when it answered none (an error), so nothing is paired."""
    output: ServedOutput
    """Production's output, whose rules say when two predictions agree."""


class Mirror:
    """The shadow of one endpoint: its server, its share, and the workers that send it copies."""

    def __init__(
        self,
        service: str,
        fleet: ModelServerProcess,
        percent: int,
        book: MetricsBook,
        *,
        workers: int = MIRROR_WORKERS,
        queue_size: int = MIRROR_QUEUE,
    ) -> None:
        self.service = service
        self.fleet = fleet
        self.percent = percent
        """Share of production requests copied, 1 to 100; changed in place by a stack update."""
        self._book = book
        self._queue: queue.Queue[_Copy | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        """Held to set ``_closed`` and around every count, so no count lands after ``close``."""
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"mirror-{service}-{index}", daemon=True)
            for index in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def version(self) -> str:
        return self.fleet.version

    def offer(
        self, body: bytes, headers: Mapping[str, str], production: Sequence[Guess], output: ServedOutput
    ) -> bool:
        """Queue a copy of a production request without waiting; False (counted as dropped) when full."""
        copy = _Copy(body, dict(headers), tuple(production), output)
        with self._lock:
            if self._closed:
                return False
            try:
                self._queue.put_nowait(copy)
            except queue.Full:
                self._book.mirror_dropped(self.service, self.version)
                return False
        return True

    def close(self) -> None:
        """Stop mirroring at once: queued copies are forgotten, answers still in flight not counted.

        Once this returns nothing more is counted: a count in progress finishes first."""
        with self._lock:
            self._closed = True
        for _ in self._workers:
            while True:
                try:
                    self._queue.put_nowait(None)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()

    def _work(self) -> None:
        while True:
            copy = self._queue.get()
            if copy is None or self._closed:
                return
            self._send(copy)

    def _send(self, copy: _Copy) -> None:
        started = time.perf_counter()
        try:
            status, payload, headers = self.fleet.invoke(copy.body, copy.headers)
        except (OSError, http.client.HTTPException):
            self._count(502, None, [], None)  # not counted once closed: a shadow being removed is not failing
            return
        latency_ms = (time.perf_counter() - started) * 1000
        bins: list[int] = []
        comparison: tuple[int, int] | None = None
        if status == 200:
            bins, guesses = self.fleet.output.read_predictions(payload, headers.get("Content-Type", ""))
            if copy.production:
                comparison = (len(copy.production), copy.output.agreed(copy.production, guesses))
        self._count(status, latency_ms if status < 500 else None, bins, comparison)

    def _count(
        self,
        status: int,
        latency_ms: float | None,
        bins: list[int],
        comparison: tuple[int, int] | None,
    ) -> None:
        """Count one answer as the shadow's, with its ``(paired, agreed)`` comparison when it has one;
        nothing once the mirror is closed. The flag is read and the counts made under one lock."""
        with self._lock:
            if self._closed:
                return
            self._book.invocation(self.service, self.version, status, latency_ms, bins, shadow=True)
            if comparison is not None:
                paired, agreed = comparison
                self._book.comparison(self.service, self.version, paired, agreed)
