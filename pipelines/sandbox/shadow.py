"""A shadow variant in the sandbox: production requests copied to another version in the background.

The router draws each request production answered for mirroring with the shadow's share
(``deployment.shadow.percent``) and offers a copy to the shadow's ``Mirror``: a bounded queue
and a few workers that send it on. A full queue (the shadow is slower than its share of the
traffic) drops the copy and counts it, so the client never waits for the shadow and never sees
its answer. Each answer is counted under the shadow's version like a served request (status,
model latency, predictions) and compared with production's answer to the same request,
prediction by prediction (``ServedOutput.agreed``), as SageMaker's shadow variants are judged
against the production variant on the same requests.

The shadow's latency is its time for the copies it was sent: copies the queue dropped are not
sent, so a shadow too slow for its share shows as a high latency on fewer requests, and as drops.
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
        self._closed = threading.Event()
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
        if self._closed.is_set():
            return False
        try:
            self._queue.put_nowait(_Copy(body, dict(headers), tuple(production), output))
        except queue.Full:
            self._book.mirror_dropped(self.service, self.version)
            return False
        return True

    def close(self) -> None:
        """Stop mirroring at once: queued copies are forgotten, answers still in flight not counted."""
        self._closed.set()
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
            if copy is None or self._closed.is_set():
                return
            self._send(copy)

    def _send(self, copy: _Copy) -> None:
        started = time.perf_counter()
        try:
            status, payload, headers = self.fleet.invoke(copy.body, copy.headers)
        except (OSError, http.client.HTTPException):
            if not self._closed.is_set():  # a shadow being removed is not failing
                self._book.invocation(self.service, self.version, 502, None, [])
            return
        latency_ms = (time.perf_counter() - started) * 1000
        bins: list[int] = []
        guesses: list[Guess] = []
        if status == 200:
            bins, guesses = self.fleet.output.read_predictions(payload, headers.get("Content-Type", ""))
        if self._closed.is_set():
            return
        self._book.invocation(self.service, self.version, status, latency_ms if status < 500 else None, bins)
        if status == 200 and copy.production:
            agreed = copy.output.agreed(copy.production, guesses)
            self._book.comparison(self.service, self.version, len(copy.production), agreed)
