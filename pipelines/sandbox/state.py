"""The sandbox's footprint on disk: ``state_dir()/sandbox/daemon.json`` and the logs beside it.

The file names the daemon and every model server it started, each with its process start
time, so a later CLI invocation can tell a live sandbox from a stale file (a killed daemon,
a rebooted laptop) and clean up exactly the processes it started, even after a reused pid.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "daemon.json"


def sandbox_dir(state_root: Path | None = None) -> Path:
    """``<state dir>/sandbox``, created on demand."""
    from pipelines.paths import state_dir

    path = (state_root if state_root is not None else state_dir()) / "sandbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class ProcessRecord:
    """A process the sandbox started, identified by pid and start time (pids get reused)."""

    pid: int
    create_time: float
    role: str
    """``daemon`` or ``model-server``."""
    service: str | None = None
    version: str | None = None

    @classmethod
    def of(cls, pid: int, role: str, service: str | None = None, version: str | None = None) -> ProcessRecord:
        import psutil

        return cls(pid, psutil.Process(pid).create_time(), role, service, version)

    def alive(self) -> bool:
        """True while this very process (same pid, same start time) runs and is not a zombie."""
        import psutil

        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.create_time) < 0.01
            return same and bool(process.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def kill(self, grace_seconds: float = 3.0) -> bool:
        """Terminate, then kill after the grace period; True if it was running."""
        import psutil

        if not self.alive():
            return False
        try:
            process = psutil.Process(self.pid)
            process.terminate()
            try:
                process.wait(grace_seconds)
            except psutil.TimeoutExpired:
                process.kill()
                process.wait(grace_seconds)
        except psutil.Error:
            pass
        return True


@dataclass(frozen=True)
class DaemonState:
    """What ``daemon.json`` holds."""

    daemon: ProcessRecord
    url: str
    """The daemon's loopback address: control API, router and ``/metrics``."""
    started_at: float
    children: tuple[ProcessRecord, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "daemon": asdict(self.daemon),
            "url": self.url,
            "started_at": self.started_at,
            "children": [asdict(child) for child in self.children],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DaemonState:
        return cls(
            daemon=ProcessRecord(**data["daemon"]),
            url=str(data["url"]),
            started_at=float(data["started_at"]),
            children=tuple(ProcessRecord(**child) for child in data.get("children", [])),
        )


def read_state(directory: Path) -> DaemonState | None:
    """The recorded daemon, or ``None`` if there is no (readable) state file."""
    try:
        return DaemonState.from_json(json.loads((directory / STATE_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(directory: Path, state: DaemonState) -> None:
    """Replace the state file atomically, so a reader never sees half of it."""
    target = directory / STATE_FILE
    temporary = target.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True), encoding="utf-8")
    os.replace(temporary, target)


def clear_state(directory: Path) -> None:
    (directory / STATE_FILE).unlink(missing_ok=True)
