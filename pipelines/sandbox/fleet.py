"""Model server processes on loopback, and the weighted set of them behind one service's URL.

``ModelServerProcess`` is one server, started from a command template and watched over
``/ping``. ``FleetSet`` is what a SageMaker-style endpoint and a KServe-style InferenceService
share: the router's weighted choice among their servers, the watchdog's restarts, scaling a
server down once it takes no traffic, and stopping them all.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import BadInputError
from pipelines.sandbox.description import FleetDescription
from pipelines.sandbox.outputs import ServedOutput
from pipelines.serving.launch import launcher_command, serving_environment
from pipelines.serving.threads import DEFAULT_SERVING_THREADS

if TYPE_CHECKING:
    from pipelines.sandbox.metrics import MetricsBook

DEFAULT_SERVER_COMMAND = tuple(launcher_command(Path("{model_dir}"), port="{port}", python="{python}"))
"""The SageMaker serving contract as packaged with every model, started by the platform's
launcher (``pipelines.serving.launch``): verified, then run from the package's own ``code/``
with the repository out of reach, exactly as the serving container runs it."""

READY_TIMEOUT_SECONDS = 60.0
UPSTREAM_TIMEOUT_SECONDS = 30.0
"""How long the router waits for a model server's answer, a client's or a mirrored copy's."""


class FleetStartError(RuntimeError):
    """A model server that exited or never answered ``/ping``; the message carries its log tail."""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ping(port: int, timeout: float = 1.0) -> bool:
    """True when ``GET /ping`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class ModelServerProcess:
    """The fleet of one version: a single model server process (one "instance").

    With the default command the process is the package's own serving code (``code/``), run
    from the model directory after the platform verified it, so the sandbox serves exactly what
    was packaged and gated; a directory whose serving code is not the platform's never starts.
    ``serving_threads`` is the service's ``servingThreads``, passed as ``MODELRAIL_SERVING_THREADS``;
    ``version`` (the package id) is passed as ``MODELRAIL_MODEL_VERSION``, as the endpoint's Model
    does, so the launcher refuses a directory holding another package.
    """

    def __init__(
        self,
        service: str,
        version: str,
        model_dir: Path,
        command: Sequence[str],
        log_dir: Path,
        *,
        serving_threads: int = DEFAULT_SERVING_THREADS,
    ) -> None:
        self.service = service
        self.version = version
        self.model_dir = model_dir
        self.command = tuple(command)
        self.serving_threads = serving_threads
        self.log_path = log_dir / f"{service}-{version[:12]}.log"
        self.port = 0
        self.restarts = 0
        self.misses = 0
        """Consecutive failed pings, so one slow answer under load does not restart a server."""
        self.process: subprocess.Popen[bytes] | None = None
        self._output: ServedOutput | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def output(self) -> ServedOutput:
        """What this version answers (its ``schema.json`` output), read once, at the first ``start``."""
        if self._output is None:
            raise RuntimeError(f"model server for {self.version[:12]} has not been started")
        return self._output

    def start(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Start the server on a fresh port and wait for ``/ping``; ``FleetStartError`` if it never answers.

        The version's schema is read first, once: the router bins this version's predictions
        and judges its labels by it, and a schema it cannot read stops the deployment here.
        """
        if self._output is None:
            try:
                self._output = ServedOutput.read(Path(self.model_dir))
            except BadInputError as error:
                raise FleetStartError(f"model server for {self.version[:12]}: {error.message}") from None
        self.port = free_port()
        values = {
            "python": sys.executable,
            "model_dir": str(Path(self.model_dir).resolve()),
            "port": str(self.port),
        }
        argv = [part.format(**values) for part in self.command]
        env = serving_environment(os.environ, self.serving_threads, package_id=self.version)
        with self.log_path.open("ab") as log:
            try:
                self.process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
                )
            except OSError as error:  # the rollout thread must end in a verdict, not die mid-start
                raise FleetStartError(
                    f"model server for {self.version[:12]} did not start: {error}"
                ) from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise FleetStartError(
                    f"model server for {self.version[:12]} exited with code {self.process.returncode}: "
                    f"{self.log_tail()}"
                )
            if ping(self.port, timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise FleetStartError(
            f"model server for {self.version[:12]} did not answer /ping within {timeout:g} s"
        )

    def invoke(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """``POST /invocations`` to this server: its status, body and headers (without
        ``Content-Length``, which the router writes again); ``OSError`` or
        ``http.client.HTTPException`` when it cannot be reached or does not answer in time."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=UPSTREAM_TIMEOUT_SECONDS)
        try:
            connection.request("POST", "/invocations", body=body, headers=dict(headers))
            response = connection.getresponse()
            payload = response.read()
            reply_headers = {
                key: value for key, value in response.getheaders() if key.lower() != "content-length"
            }
            return response.status, payload, reply_headers
        finally:
            connection.close()

    def healthy(self) -> bool:
        return self.process is not None and self.process.poll() is None and ping(self.port)

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(3)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"


@dataclass(frozen=True)
class FleetContext:
    """What every service of one sandbox shares, so the runtime builds it once for all of them:
    how a model server is started and where it logs, whom a change (the metrics book,
    ``daemon.json``) or a restart (the restart counter) is reported to, and the book a shadow's
    mirrored requests are counted in."""

    command: tuple[str, ...]
    log_dir: Path
    on_change: Callable[[FleetSet], None]
    on_restart: Callable[[str, str], None]
    book: MetricsBook


class FleetSet:
    """The model servers behind one service's URL and the share of its traffic each takes.

    Servers are keyed by the service's own name for them: the version for a SageMaker-style
    endpoint, the revision for an InferenceService. ``weights`` uses the same keys. Every change
    goes through ``_lock``; ``on_change`` is called after one, outside it.
    """

    def __init__(self, service: str, url: str, context: FleetContext) -> None:
        self.service = service
        self.url = url
        self._command = context.command
        self._log_dir = context.log_dir
        self._on_change = context.on_change
        self._on_restart = context.on_restart
        self._lock = threading.RLock()
        self.fleets: dict[str, ModelServerProcess] = {}
        self.weights: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        """The rollout in flight (one at a time), joined by ``stop``."""
        self._starting: list[ModelServerProcess] = []
        """Servers coming up (not yet in ``fleets``), so ``stop`` can end them too."""
        self._scaling_down: dict[str, tuple[ModelServerProcess, float]] = {}
        """Servers that left the traffic, each with the monotonic time it stops at."""
        self._closed = False

    # ---- what the router and the control API read ----

    @property
    def served_as(self) -> str:
        """The runtime and the name it serves the service under, for a refusal that names both."""
        raise NotImplementedError

    def roles(self) -> dict[str, str]:
        """``baseline``, ``canary`` or ``shadow`` per served version, for the metrics' ``variant_info``."""
        raise NotImplementedError

    def version_weights(self) -> dict[str, float]:
        """Share of traffic per version (two keys may serve one version)."""
        with self._lock:
            shares: dict[str, float] = {}
            for key, weight in self.weights.items():
                fleet = self.fleets.get(key)
                if fleet is not None:
                    shares[fleet.version] = round(shares.get(fleet.version, 0.0) + weight, 6)
            return shares

    def in_service(self) -> bool:
        """Whether some server takes traffic (the router's own ``/ping``)."""
        with self._lock:
            return any(weight > 0 for weight in self.weights.values())

    def fleet_descriptions(self) -> tuple[FleetDescription, ...]:
        with self._lock:
            return tuple(
                FleetDescription(
                    version=fleet.version,
                    port=fleet.port,
                    pid=fleet.pid,
                    restarts=fleet.restarts,
                    healthy=fleet.process is not None and fleet.process.poll() is None,
                )
                for fleet in self.fleets.values()
            )

    def servers(self) -> list[ModelServerProcess]:
        """Every server that may be running: routed ones and ones waiting to scale down."""
        with self._lock:
            return [*self.fleets.values(), *(fleet for fleet, _ in self._scaling_down.values())]

    def route(self, draw: float) -> ModelServerProcess | None:
        """The server for a request, given a uniform draw in [0, 1); ``None`` when nothing serves."""
        with self._lock:
            cumulative = 0.0
            chosen = None
            for key, weight in self.weights.items():
                if weight <= 0:
                    continue
                cumulative += weight
                chosen = self.fleets.get(key)
                if draw < cumulative:
                    break
            return chosen

    # ---- housekeeping ----

    def watch(self) -> None:
        """Restart a server that exited, or missed ``/ping`` twice running, and stop the servers
        whose scale-down wait is over (called by the watchdog)."""
        now = time.monotonic()
        with self._lock:
            fleets = list(self.fleets.values())
            due = [key for key, (_, at) in self._scaling_down.items() if at <= now]
            retired = [self._scaling_down.pop(key)[0] for key in due]
        for fleet in retired:
            fleet.stop()
        if retired:
            self._on_change(self)
        for fleet in fleets:
            exited = fleet.process is None or fleet.process.poll() is not None
            if not exited and fleet.healthy():
                fleet.misses = 0
                continue
            fleet.misses += 1
            if not exited and fleet.misses < 2:
                continue
            self._on_restart(self.service, fleet.version)  # counted as attempted, in step with fleet.restarts
            try:
                fleet.restart()
            except FleetStartError:
                continue  # tried again on the next round; its requests keep failing as 5xx
            fleet.misses = 0
            self._on_change(self)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every server, including one a rollout is starting right now (the sandbox is shutting down)."""
        with self._lock:
            self._closed = True
            self._stopping()
            servers = [*self.servers(), *self._starting]
            self.fleets = {}
            self.weights = {}
            self._scaling_down = {}
            thread = self._thread
        for fleet in servers:
            fleet.stop()
        if thread is not None:
            thread.join(timeout)

    def _stopping(self) -> None:
        """Hook for a subclass to wake its rollout thread when the sandbox stops."""

    def _launch(self, version: str, model_dir: Path) -> ModelServerProcess:
        """Start a server for ``version`` and wait for ``/ping``; ``FleetStartError`` if it never answers."""
        fleet = ModelServerProcess(self.service, version, model_dir, self._command, self._log_dir)
        with self._lock:
            self._starting.append(fleet)
        try:
            fleet.start()
        finally:
            with self._lock:
                self._starting.remove(fleet)
        return fleet

    def _scale_down(self, key: str, after_seconds: float) -> None:
        """Take a server out of routing now and stop it once ``after_seconds`` have passed."""
        fleet = self.fleets.pop(key)
        self.weights.pop(key, None)
        self._scaling_down[key] = (fleet, time.monotonic() + after_seconds)
