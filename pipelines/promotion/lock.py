"""One promotion at a time per (service, stack): a lock file with an owner and an expiry.

The lock is created with ``O_EXCL``, so of two concurrent promotions exactly one gets it. A
lock whose expiry has passed, or whose owning process is gone from this host, is stale: it is
taken over (and the takeover is reported), so a crashed controller never blocks the next one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from pipelines.errors import LockedError

DEFAULT_TTL_SECONDS = 3600.0
TORN_WRITE_GRACE_SECONDS = 5.0
"""An empty lock file this young is another process between create and write, not a crash."""


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

    def is_stale(self, now: float) -> bool:
        if now >= self.expires_at:
            return True
        return self.host == socket.gethostname() and not psutil.pid_exists(self.pid)


class PromotionLock:
    """A context manager holding the (service, stack) lock for one operation."""

    def __init__(
        self,
        directory: Path,
        *,
        service: str,
        stack: str,
        owner: str,
        operation: str,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
    ) -> None:
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
        self.took_over: LockInfo | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def acquire(self) -> PromotionLock:
        now = time.time()
        info = LockInfo(**{**asdict(self.info), "acquired_at": now, "expires_at": now + self.ttl})
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = read_lock(self.path)
                if holder is None and _age(self.path, now) < TORN_WRITE_GRACE_SECONDS:
                    raise LockedError(
                        f"{self.info.service} on stack {self.info.stack} is being locked by another "
                        "promotion",
                        details=[f"lock file: {self.path}"],
                    ) from None
                if holder is not None and not holder.is_stale(now):
                    raise LockedError(
                        f"{self.info.service} on stack {self.info.stack} is locked by {holder.owner} "
                        f"({holder.operation}, pid {holder.pid} on {holder.host}) until "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.expires_at))}",
                        details=[
                            f"lock file: {self.path}",
                            "retry later, or `modelrail resume` after a crash",
                        ],
                    ) from None
                self.took_over = holder
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(asdict(info), handle)
            self.info = info
            return self
        raise LockedError(f"could not take the lock {self.path}; another promotion raced for it")

    def release(self) -> None:
        holder = read_lock(self.path)
        if holder is not None and holder.pid == self.info.pid and holder.acquired_at == self.info.acquired_at:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> PromotionLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except OSError:
        return float("inf")


def read_lock(path: Path) -> LockInfo | None:
    """The lock's holder, or None when the file is gone or unreadable (a torn write is stale)."""
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
