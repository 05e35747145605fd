"""The contenders of ``test_lock_race``, importable without pytest (spawned processes start fast).

A contender waits for the round to start, tries to take the lock with its own ``PromotionLock``,
records a win, and holds the lock (never releases it) until every contender has tried.
"""

from __future__ import annotations

import json
import multiprocessing.sharedctypes
import multiprocessing.synchronize
import threading
from collections.abc import Callable
from pathlib import Path

from pipelines.errors import LockedError
from pipelines.promotion.lock import PromotionLock

CONTENDERS = 4
BARRIER_SECONDS = 20.0

Barrier = threading.Barrier | multiprocessing.synchronize.Barrier


def seed_stale_lock(directory: Path, round_number: int) -> None:
    """An expired lock of a promotion on another host (so neither its pid nor its host matter)."""
    stale = {
        "service": "svc",
        "stack": "dev",
        "owner": f"crashed-{round_number}",
        "pid": 1,
        "host": "elsewhere",
        "acquired_at": 0.0,
        "expires_at": 1.0,
        "operation": "promote",
    }
    (directory / "dev--svc.lock").write_text(json.dumps(stale), encoding="utf-8")


def contend(
    directory: Path,
    rounds: int,
    start: Barrier,
    tried: Barrier,
    record: Callable[[int], None],
) -> None:
    for round_number in range(rounds):
        start.wait(BARRIER_SECONDS)
        lock = PromotionLock(directory, service="svc", stack="dev", owner="racer", operation="promote")
        try:
            lock.acquire()
        except LockedError:
            pass
        else:
            record(round_number)
        tried.wait(BARRIER_SECONDS)  # a winner holds the lock until every contender has tried


def contend_in_process(
    directory: str,
    rounds: int,
    index: int,
    wins: multiprocessing.sharedctypes.SynchronizedArray,  # type: ignore[type-arg]
    barriers: tuple[multiprocessing.synchronize.Barrier, ...],
) -> None:
    def record(round_number: int) -> None:
        wins[round_number * CONTENDERS + index] = 1

    start, tried = barriers
    contend(Path(directory), rounds, start, tried, record)
