"""Stale-lock takeover under contention: of several promotions that all find a stale lock, one wins.

Each round seeds a stale lock, then releases 4 contenders at once (separate processes, or separate
threads of one process as in the controller's own concurrency), each with its own
``PromotionLock``. Every winner holds its lock until all contenders have tried, so two winners in
one round would be two promotions inside the lock at the same time. (Winners never release: the
next round's stale lock simply replaces theirs, while every contender waits for the round to start.)
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.errors import LockedError
from pipelines.promotion import lock as lock_module
from pipelines.promotion.lock import LockInfo, PromotionLock
from tests.unit.promotion.lock_racer import (
    BARRIER_SECONDS,
    CONTENDERS,
    Barrier,
    contend,
    contend_in_process,
    seed_stale_lock,
)

PROCESS_ROUNDS = 500
THREAD_ROUNDS = 300


def _run_rounds(directory: Path, rounds: int, start: Barrier, tried: Barrier) -> None:
    for round_number in range(rounds):
        seed_stale_lock(directory, round_number)
        start.wait(BARRIER_SECONDS)
        tried.wait(BARRIER_SECONDS)


def _winners_per_round(wins: list[int], rounds: int) -> list[int]:
    return [sum(wins[r * CONTENDERS : (r + 1) * CONTENDERS]) for r in range(rounds)]


def test_of_processes_racing_for_a_stale_lock_exactly_one_takes_it_over(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    wins = context.Array("b", PROCESS_ROUNDS * CONTENDERS, lock=False)
    barriers = (context.Barrier(CONTENDERS + 1), context.Barrier(CONTENDERS + 1))
    workers = [
        context.Process(
            target=contend_in_process,
            args=(str(tmp_path), PROCESS_ROUNDS, index, wins, barriers),
            daemon=True,
        )
        for index in range(CONTENDERS)
    ]
    for worker in workers:
        worker.start()
    try:
        _run_rounds(tmp_path, PROCESS_ROUNDS, *barriers)
    finally:
        for worker in workers:
            worker.join(BARRIER_SECONDS)
            if worker.is_alive():
                worker.terminate()
    assert [worker.exitcode for worker in workers] == [0] * CONTENDERS
    winners = _winners_per_round(list(wins), PROCESS_ROUNDS)
    doubles = sum(1 for count in winners if count > 1)
    unclaimed = sum(1 for count in winners if count == 0)
    assert (doubles, unclaimed) == (0, 0), (
        f"of {PROCESS_ROUNDS} rounds, {doubles} had two or more holders and {unclaimed} had none"
    )


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads far more often than every 5 ms, so that they interleave inside lock operations."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


@pytest.mark.usefixtures("eager_thread_switching")
def test_of_threads_racing_for_a_stale_lock_exactly_one_takes_it_over(tmp_path: Path) -> None:
    wins = [0] * (THREAD_ROUNDS * CONTENDERS)
    start, tried = threading.Barrier(CONTENDERS + 1), threading.Barrier(CONTENDERS + 1)
    errors: list[BaseException] = []

    def contender(index: int) -> None:
        def record(round_number: int) -> None:
            wins[round_number * CONTENDERS + index] = 1

        try:
            contend(tmp_path, THREAD_ROUNDS, start, tried, record)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
            start.abort()
            tried.abort()

    threads = [threading.Thread(target=contender, args=(index,), daemon=True) for index in range(CONTENDERS)]
    for thread in threads:
        thread.start()
    try:
        _run_rounds(tmp_path, THREAD_ROUNDS, start, tried)
    finally:
        for thread in threads:
            thread.join(BARRIER_SECONDS)
    assert not errors
    winners = _winners_per_round(wins, THREAD_ROUNDS)
    doubles = sum(1 for count in winners if count > 1)
    unclaimed = sum(1 for count in winners if count == 0)
    assert (doubles, unclaimed) == (0, 0), (
        f"of {THREAD_ROUNDS} rounds, {doubles} had two or more holders and {unclaimed} had none"
    )


def test_a_contender_stalled_after_judging_the_lock_stale_cannot_unlink_the_takers_fresh_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving behind the double acquisitions, forced: B reads the stale lock and stalls,
    A takes it over meanwhile (if it can), then B goes on."""
    seed_stale_lock(tmp_path, 0)
    judged, a_finished = threading.Event(), threading.Event()
    real_read_lock = lock_module.read_lock

    def stalling_read_lock(path: Path) -> LockInfo | None:
        holder = real_read_lock(path)
        if threading.current_thread().name == "B" and not judged.is_set():
            judged.set()
            a_finished.wait(1.0)  # an atomic takeover keeps A out until B is done
        return holder

    monkeypatch.setattr(lock_module, "read_lock", stalling_read_lock)
    holders: list[str] = []

    def contend() -> None:
        try:
            PromotionLock(tmp_path, service="svc", stack="dev", owner="racer", operation="promote").acquire()
            holders.append(threading.current_thread().name)
        except LockedError:
            pass
        finally:
            if threading.current_thread().name == "A":
                a_finished.set()

    b = threading.Thread(target=contend, name="B", daemon=True)
    b.start()
    assert judged.wait(BARRIER_SECONDS)
    a = threading.Thread(target=contend, name="A", daemon=True)
    a.start()
    a.join(BARRIER_SECONDS)
    b.join(BARRIER_SECONDS)
    assert len(holders) == 1, f"holders: {holders}"
