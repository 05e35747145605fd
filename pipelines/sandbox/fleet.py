"""One model server process on loopback, started from a command template and watched over ``/ping``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from pipelines.errors import BadInputError
from pipelines.sandbox.outputs import ServedOutput
from pipelines.serving.launch import launcher_command, serving_environment
from pipelines.serving.threads import DEFAULT_SERVING_THREADS

DEFAULT_SERVER_COMMAND = tuple(launcher_command(Path("{model_dir}"), port="{port}", python="{python}"))
"""The SageMaker serving contract as packaged with every model, started by the platform's
launcher (``pipelines.serving.launch``): verified, then run from the package's own ``code/``
with the repository out of reach, exactly as the serving container runs it."""

READY_TIMEOUT_SECONDS = 60.0


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
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
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
