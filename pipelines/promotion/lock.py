"""One promotion at a time per (service, stack): a lock file with an owner and a lease.

Every change to the lock file (take, take over, renew, release) is a compare-and-swap made
while holding an ``flock`` on a guard file beside it (``<stack>--<service>.lock.guard``, never
deleted; the kernel drops the flock when its process dies). Inside that short critical section
the lock file is read, judged (absent, live, stale, ours) and replaced atomically (a temporary
file, then ``os.replace``), so a reader never sees a torn write, and of two promotions that both
find a stale lock only the first to enter takes it over: the second finds the first's fresh lock.
Each acquisition carries a random ``token``; only the holder of that token may renew or release.
The same shape (a conditional write on the token) carries over to a DynamoDB lock table.

A lock whose lease (``expires_at``) has passed, or whose owning process is gone from this host,
is stale: it is taken over (and the takeover reported in ``took_over``), so a crashed controller
never blocks the next one. A promotion that runs longer than its lease keeps it with ``renew()``,
or with ``keep_alive()``, which renews from a background thread while the block runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from pipelines.errors import LockedError

DEFAULT_TTL_SECONDS = 3600.0
GUARD_WAIT_SECONDS = 10.0
"""How long a lock operation waits for another one's critical section (a few reads and writes)."""
WAIT_POLL_SECONDS = 0.5
"""How often a lock taken with ``wait_seconds`` looks again whether the holder has let go."""


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock, since when, and until when it is honoured."""

    service: str
    stack: str
    owner: str
    pid: int
    host: str
    acquired_at: float
    expires_at: float
    operation: str
    token: str = ""
    """Random per acquisition: what ``renew`` and ``release`` check to know the lock is still theirs."""

    def is_stale(self, now: float) -> bool:
        if now >= self.expires_at:
            return True
        return self.host == socket.gethostname() and not psutil.pid_exists(self.pid)

    def describe(self) -> str:
        """The holder as a person reads it: who, doing what, which process on which host, since when."""
        return (
            f"{self.owner} ({self.operation}, pid {self.pid} on {self.host}) "
            f"since {_timestamp(self.acquired_at)}, lease until {_timestamp(self.expires_at)}"
        )


class PromotionLock:
    """A context manager holding the (service, stack) lock for one operation.

    ``wait_seconds`` > 0 makes ``acquire`` wait that long for a live holder to let go before it
    raises ``LockedError``; the default (0) raises at once.
    """

    def __init__(
        self,
        directory: Path,
        *,
        service: str,
        stack: str,
        owner: str,
        operation: str,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        wait_seconds: float = 0.0,
    ) -> None:
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds = {ttl_seconds!r}: a lease lasts a positive number of seconds")
        if not wait_seconds >= 0:
            raise ValueError(f"wait_seconds = {wait_seconds!r}: waiting takes zero or more seconds")
        self.path = directory / f"{stack}--{service}.lock"
        self.info = LockInfo(
            service=service,
            stack=stack,
            owner=owner,
            pid=os.getpid(),
            host=socket.gethostname(),
            acquired_at=0.0,
            expires_at=0.0,
            operation=operation,
        )
        self.ttl = ttl_seconds
        self.wait = wait_seconds
        self.took_over: LockInfo | None = None
        self.lost: LockedError | None = None
        """The last failed ``keep_alive`` renewal (cleared by a successful ``renew``)."""
        self._heartbeat: tuple[threading.Thread, threading.Event] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def acquire(self) -> PromotionLock:
        """Take the lock (or take over a stale one), or raise ``LockedError`` naming the holder."""
        deadline = time.monotonic() + self.wait
        while True:
            with _guarded(self.path):
                now = time.time()
                holder = read_lock(self.path)
                if holder is None or holder.is_stale(now):
                    # Absent, unreadable (nothing this module writes) or stale: ours now, atomically.
                    info = replace(
                        self.info,
                        acquired_at=now,
                        expires_at=now + self.ttl,
                        token=secrets.token_hex(16),
                    )
                    _write(self.path, info)
                    self.info, self.took_over, self.lost = info, holder, None
                    return self
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._locked_by(holder)
            time.sleep(min(WAIT_POLL_SECONDS, remaining))

    def renew(self, ttl_seconds: float | None = None) -> LockInfo:
        """Extend the lease to ``ttl_seconds`` (default: the lock's TTL) from now, if still ours.

        Raises ``LockedError`` when the lock is no longer ours: released, or taken over by another
        promotion after the lease lapsed. A lapsed lease that nobody took over is simply extended.
        """
        ttl = self.ttl if ttl_seconds is None else ttl_seconds
        if not ttl > 0:
            raise ValueError(f"ttl_seconds = {ttl!r}: a lease lasts a positive number of seconds")
        with _guarded(self.path):
            holder = read_lock(self.path)
            if holder is None or not self._owns(holder):
                raise self._lost(holder)
            info = replace(holder, expires_at=time.time() + ttl)
            _write(self.path, info)
            self.info, self.lost = info, None
            return info

    @contextmanager
    def keep_alive(self, interval_seconds: float | None = None) -> Iterator[PromotionLock]:
        """Renew the lease every ``interval_seconds`` (default: a third of the TTL) while the block runs.

        A renewal that fails is kept in ``lost`` (and the heartbeat keeps trying); the controller's own
        ``renew()`` raises a lost lock, so call it before any step that must happen under the lock.
        """
        interval = self.ttl / 3 if interval_seconds is None else interval_seconds
        if not 0 < interval < self.ttl:
            raise ValueError(
                f"interval_seconds = {interval!r}: renew more often than the lease lasts "
                f"(0 < interval < {self.ttl:g} s)"
            )
        if self._heartbeat is not None:
            raise RuntimeError(f"{self.path} already has a heartbeat; keep_alive() does not nest")
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    self.renew()
                except LockedError as error:
                    self.lost = error

        thread = threading.Thread(target=beat, name=f"lock-heartbeat-{self.path.stem}", daemon=True)
        self._heartbeat = (thread, stop)
        thread.start()
        try:
            yield self
        finally:
            self._stop_heartbeat()

    def release(self) -> None:
        """Remove the lock file if it is still ours; a lock lost to a takeover is left to its holder."""
        self._stop_heartbeat()
        if not self.info.token:
            return
        with _guarded(self.path):
            holder = read_lock(self.path)
            if holder is not None and self._owns(holder):
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> PromotionLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _owns(self, holder: LockInfo) -> bool:
        return bool(self.info.token) and holder.token == self.info.token

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is None:
            return
        thread, stop = self._heartbeat
        self._heartbeat = None
        stop.set()
        if thread is not threading.current_thread():
            thread.join()

    def _locked_by(self, holder: LockInfo) -> LockedError:
        waited = [f"waited {self.wait:g} s for it to be released"] if self.wait else []
        return LockedError(
            f"{self.info.service} on stack {self.info.stack} is locked by {holder.describe()}",
            details=[
                f"lock file: {self.path}",
                *waited,
                "retry later, or `modelrail resume` after a crash",
            ],
        )

    def _lost(self, holder: LockInfo | None) -> LockedError:
        if not self.info.token:
            return LockedError(
                f"{self.path} was never acquired by this {self.info.operation}; acquire() it first"
            )
        where = (
            "the lock file is gone or unreadable"
            if holder is None
            else f"it is now held by {holder.describe()}"
        )
        return LockedError(
            f"{self.info.service} on stack {self.info.stack} is no longer locked by this "
            f"{self.info.operation} (acquired {_timestamp(self.info.acquired_at)}): {where}",
            details=[
                f"lock file: {self.path}",
                "stop without touching the stack; once the lock is free, "
                f"`modelrail resume --stack {self.info.stack}` finishes or undoes this operation",
            ],
        )


@contextmanager
def _guarded(path: Path) -> Iterator[None]:
    """Hold the flock of ``path``'s guard file: one lock operation at a time, across processes."""
    guard = path.with_name(f"{path.name}.guard")
    descriptor = os.open(guard, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        deadline = time.monotonic() + GUARD_WAIT_SECONDS
        delay = 0.001
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"{guard} stayed locked for {GUARD_WAIT_SECONDS:g} s: another process is stuck "
                        "inside a lock operation",
                        details=["find it with `fuser` or `lsof` on the guard file"],
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.005)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor drops the flock


def _write(path: Path, info: LockInfo) -> None:
    """Replace the lock file in one step, so that no reader ever sees half of it."""
    temporary = path.with_name(f"{path.name}.{info.token}.tmp")
    try:
        temporary.write_text(json.dumps(asdict(info), sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def read_lock(path: Path) -> LockInfo | None:
    """The lock's holder, or None when the file is gone or unreadable (an unreadable lock is stale)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return LockInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def held_locks(directory: Path, stack: str) -> list[LockInfo]:
    """Live (non-stale) locks on a stack: promotions in flight."""
    now = time.time()
    locks = [read_lock(path) for path in sorted(directory.glob(f"{stack}--*.lock"))]
    return [lock for lock in locks if lock is not None and not lock.is_stale(now)]
