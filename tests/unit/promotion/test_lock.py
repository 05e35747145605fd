"""The promotion lock's lease: who a refusal names, renewing, keeping alive, waiting, losing it."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.errors import ExitCode, LockedError
from pipelines.promotion.lock import PromotionLock, read_lock


def _lock(directory: Path, owner: str, **options: float) -> PromotionLock:
    return PromotionLock(directory, service="svc", stack="dev", owner=owner, operation="promote", **options)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def test_a_refusal_names_the_holder_its_host_pid_and_since_when(tmp_path: Path) -> None:
    with _lock(tmp_path, "dave@example.com") as held:
        with pytest.raises(LockedError) as refused:
            _lock(tmp_path, "carol@example.com").acquire()
        since = _iso(held.info.acquired_at)
    assert refused.value.exit_code is ExitCode.LOCKED
    assert refused.value.message == (
        f"svc on stack dev is locked by dave@example.com (promote, pid {os.getpid()} on "
        f"{socket.gethostname()}) since {since}, lease until {_iso(held.info.expires_at)}"
    )
    assert f"lock file: {held.path}" in refused.value.details


def test_renewing_moves_the_lease_forward_and_keeps_the_holder(tmp_path: Path) -> None:
    with _lock(tmp_path, "dave@example.com", ttl_seconds=60) as lock:
        before = lock.info
        renewed = lock.renew(ttl_seconds=600)
        on_disk = read_lock(lock.path)
    assert on_disk == renewed == lock.info
    assert renewed.expires_at >= before.expires_at + 500
    assert (renewed.token, renewed.acquired_at, renewed.owner) == (
        before.token,
        before.acquired_at,
        before.owner,
    )


def test_a_lapsed_lease_nobody_took_over_is_renewed(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "dave@example.com", ttl_seconds=0.05).acquire()
    time.sleep(0.1)
    lock.renew(ttl_seconds=60)
    with pytest.raises(LockedError, match=r"locked by dave@example\.com"):
        _lock(tmp_path, "carol@example.com").acquire()
    lock.release()
    assert not lock.path.exists()


def test_a_lease_lost_to_a_takeover_can_neither_be_renewed_nor_released(tmp_path: Path) -> None:
    slow = _lock(tmp_path, "dave@example.com", ttl_seconds=0.05).acquire()
    time.sleep(0.1)
    taker = _lock(tmp_path, "carol@example.com").acquire()
    assert taker.took_over == slow.info
    with pytest.raises(LockedError) as lost:
        slow.renew()
    assert re.fullmatch(
        rf"svc on stack dev is no longer locked by this promote \(acquired {re.escape(_iso(slow.info.acquired_at))}\):"
        rf" it is now held by carol@example\.com \(promote, pid {os.getpid()} on .*\) since .*",
        lost.value.message,
    ), lost.value.message
    slow.release()
    assert read_lock(taker.path) == taker.info, "the old holder's release leaves the new holder's lock"
    taker.release()
    assert not taker.path.exists()


def test_renewing_a_lock_never_acquired_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LockedError, match=r"dev--svc\.lock was never acquired by this promote"):
        _lock(tmp_path, "dave@example.com").renew()


def test_keep_alive_holds_a_short_lease_past_its_ttl_and_stops_on_exit(tmp_path: Path) -> None:
    with _lock(tmp_path, "dave@example.com", ttl_seconds=1.0) as lock:
        with lock.keep_alive(interval_seconds=0.1):
            time.sleep(1.6)
            with pytest.raises(LockedError, match=r"locked by dave@example\.com"):
                _lock(tmp_path, "carol@example.com").acquire()
            assert lock.lost is None
        assert not any(t.name.startswith("lock-heartbeat-") for t in threading.enumerate())
        expires = lock.info.expires_at
        time.sleep(0.3)
        assert read_lock(lock.path) == lock.info and lock.info.expires_at == expires, "no renewal after exit"


def test_keep_alive_records_a_lock_lost_to_someone_else(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "dave@example.com").acquire()
    with lock.keep_alive(interval_seconds=0.05):
        lock.path.unlink()  # e.g. removed by hand; a takeover looks the same to the heartbeat
        deadline = time.monotonic() + 5
        while lock.lost is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lock.lost is not None and "the lock file is gone" in lock.lost.message
        with pytest.raises(LockedError, match="no longer locked by this promote"):
            lock.renew()


def test_keep_alive_renews_more_often_than_the_lease_lasts(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "dave@example.com", ttl_seconds=60).acquire()
    with pytest.raises(ValueError, match=r"interval_seconds = 60: renew more often than the lease lasts"):
        lock.keep_alive(interval_seconds=60).__enter__()
    lock.release()


def test_a_waiting_promotion_gets_the_lock_once_the_holder_lets_go(tmp_path: Path) -> None:
    holder = _lock(tmp_path, "dave@example.com").acquire()
    threading.Timer(0.3, holder.release).start()
    with _lock(tmp_path, "carol@example.com", wait_seconds=10) as waiter:
        assert waiter.took_over is None
        assert read_lock(waiter.path) == waiter.info


def test_a_promotion_that_waited_in_vain_says_so_and_names_the_holder(tmp_path: Path) -> None:
    with _lock(tmp_path, "dave@example.com"):
        started = time.monotonic()
        with pytest.raises(LockedError, match=r"locked by dave@example\.com") as refused:
            _lock(tmp_path, "carol@example.com", wait_seconds=0.3).acquire()
        assert time.monotonic() - started >= 0.3
    assert "waited 0.3 s for it to be released" in refused.value.details


def test_a_lease_is_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ttl_seconds = 0: a lease lasts a positive number of seconds"):
        _lock(tmp_path, "dave@example.com", ttl_seconds=0)
