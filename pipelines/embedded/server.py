"""Start, find and stop the moto server process on a free loopback port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.dependencies import DependencyUnavailableError

STATE_FILE = "embedded.json"
LOG_FILE = "embedded/moto.log"
HOST = "127.0.0.1"
_START_TIMEOUT_S = 60.0


class EmbeddedServerError(DependencyUnavailableError):
    """The moto server could not be started or reached."""


@dataclass(frozen=True)
class ServerInfo:
    """A running moto server, as recorded in ``embedded.json``."""

    pid: int
    port: int
    started_at: str
    create_time: float
    """The process's start time as the OS reports it; guards against a reused pid."""

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def spawn(state_dir: Path, *, detached: bool) -> tuple[subprocess.Popen[bytes], ServerInfo]:
    """Start ``moto.server`` on a free port and wait until it answers.

    ``detached`` puts it in a session of its own, so it outlives the command that started it
    and a Ctrl-C in the terminal does not reach it.
    """
    import psutil

    log_path = state_dir / LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detached,
            )
        info = ServerInfo(
            pid=process.pid,
            port=port,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            create_time=psutil.Process(process.pid).create_time(),
        )
        if _wait_ready(process, info):
            return process, info
        _terminate(process.pid)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise EmbeddedServerError(
        f"the moto server did not start; see {log_path}", hint="", details=tail.splitlines()[-10:]
    )


def record(state_dir: Path, info: ServerInfo) -> None:
    """Write ``embedded.json`` atomically."""
    path = state_dir / STATE_FILE
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(asdict(info), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    staging.replace(path)


def recorded(state_dir: Path) -> ServerInfo | None:
    """The server ``embedded.json`` names, whether or not it still runs."""
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServerInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def is_alive(info: ServerInfo) -> bool:
    """The recorded process still runs (same pid *and* start time) and answers HTTP."""
    import psutil

    try:
        process = psutil.Process(info.pid)
        if abs(process.create_time() - info.create_time) > 1.0 or process.status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.Error:
        return False
    return _answers(info.port)


def stop(state_dir: Path) -> ServerInfo | None:
    """Stop the recorded server if it is still the process we started; forget it either way."""
    info = recorded(state_dir)
    if info is not None and is_alive(info):
        _terminate(info.pid)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return info


def _terminate(pid: int) -> None:
    import psutil

    try:
        process = psutil.Process(pid)
        process.terminate()
        process.wait(timeout=10)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    except psutil.Error:
        pass


def _wait_ready(process: subprocess.Popen[bytes], info: ServerInfo) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _answers(info.port):
            return True
        time.sleep(0.1)
    return False


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/moto-api/", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
