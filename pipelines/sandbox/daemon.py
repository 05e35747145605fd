"""``python -m pipelines.sandbox.daemon``: the detached sandbox process and its loopback HTTP API.

One port serves everything:

* the router: ``POST /endpoints/<service>/invocations``, ``POST /endpoints/<service>/labels``,
  ``GET /endpoints/<service>/ping``;
* metrics: ``GET /metrics`` (Prometheus text; ``?at=<epoch seconds>`` for an earlier reading);
* control: ``GET /control/status`` (every endpoint's description and every InferenceService's
  revisions and split), ``GET /control/services/<service>`` (its runtime and URL),
  ``POST /control/stop``; SageMaker-style endpoints: ``GET /control/endpoints/<service>``,
  ``POST /control/deploy`` (the version, and its ``shadow`` or none), ``POST /control/alarm``;
  KServe-style InferenceServices:
  ``GET /control/inferenceservices/<service>``, ``POST /control/revisions``, ``POST /control/abort``.

The router's paths are the same for both kinds, so a load generator need not know which it drives.

The daemon records itself and every model server in ``daemon.json`` and stops them all on
``/control/stop``, SIGTERM or SIGINT. It leads its own process group (the client starts it with
``start_new_session``) and the model servers inherit it, so ``sandbox stop`` can end the group:
nothing the sandbox started outlives it, recorded or not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from infra.config import DeploymentPolicy
from pipelines.sandbox.endpoint import DeploymentInProgressError, UpdateRefusedError
from pipelines.sandbox.fleet import DEFAULT_SERVER_COMMAND
from pipelines.sandbox.inference_service import InferenceService
from pipelines.sandbox.runtime import Sandbox, UnknownServiceError
from pipelines.sandbox.shadow import ShadowSpec
from pipelines.sandbox.state import DaemonState, ProcessRecord, clear_state, write_state

MAX_BODY_BYTES = 6 * 1024 * 1024
WATCH_SECONDS = 0.5
SNAPSHOT_SECONDS = 1.0


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    sandbox: Sandbox


class Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [part for part in url.path.split("/") if part]
        sandbox = self.server.sandbox
        try:
            if parts == ["metrics"]:
                at = parse_qs(url.query).get("at", [None])[0]
                text = sandbox.book.exposition(None if at is None else float(at))
                self._reply(HTTPStatus.OK, text.encode(), "text/plain; version=0.0.4")
            elif parts == ["control", "status"]:
                payload = {
                    "pid": os.getpid(),
                    "endpoints": sandbox.status(),
                    "inference_services": sandbox.inference_services(),
                }
                self._json(HTTPStatus.OK, payload)
            elif len(parts) == 3 and parts[:2] == ["control", "services"]:
                found = sandbox.service(parts[2])
                runtime = "kserve" if isinstance(found, InferenceService) else "sagemaker"
                self._json(HTTPStatus.OK, {"service": parts[2], "runtime": runtime, "url": found.url})
            elif len(parts) == 3 and parts[:2] == ["control", "endpoints"]:
                self._json(HTTPStatus.OK, sandbox.describe(parts[2]).to_json())
            elif len(parts) == 3 and parts[:2] == ["control", "inferenceservices"]:
                self._json(HTTPStatus.OK, sandbox.inference_service(parts[2]).document())
            elif len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "ping":
                healthy = sandbox.service(parts[1]).in_service()
                self._reply(HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE, b"", "text/plain")
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no route GET {url.path}"})
        except UnknownServiceError as error:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(error.args[0])})
        except ValueError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        parts = [part for part in url.path.split("/") if part]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY_BYTES} bytes"})
            return
        body = self.rfile.read(length)
        sandbox = self.server.sandbox
        try:
            if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
                headers = {
                    key: value
                    for key in ("Content-Type", "Accept")
                    if (value := self.headers.get(key)) is not None
                }
                upstream = sandbox.invoke(parts[1], body, headers)
                self._reply(upstream.status, upstream.body, None, upstream.headers)
            elif len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "labels":
                payload = json.loads(body or b"[]")
                items = payload if isinstance(payload, list) else payload.get("labels", [payload])
                self._json(HTTPStatus.OK, sandbox.labels(parts[1], [dict(item) for item in items]))
            elif parts == ["control", "deploy"]:
                self._deploy(json.loads(body))
            elif parts == ["control", "revisions"]:
                self._apply_revision(json.loads(body))
            elif parts == ["control", "abort"]:
                request = json.loads(body)
                aborted = sandbox.abort_canary(str(request["service"]), str(request["reason"]))
                self._json(HTTPStatus.OK, {"aborted": aborted})
            elif parts == ["control", "alarm"]:
                request = json.loads(body)
                rolled = sandbox.trip_alarm(request["service"], request["guardrail"], request["reason"])
                self._json(HTTPStatus.OK, {"rolling_back": rolled})
            elif parts == ["control", "stop"]:
                self._json(HTTPStatus.OK, {"stopping": True})
                threading.Thread(target=self.server.shutdown, daemon=True).start()
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no route POST {url.path}"})
        except UnknownServiceError as error:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(error.args[0])})
        except (DeploymentInProgressError, UpdateRefusedError) as error:
            self._json(HTTPStatus.CONFLICT, {"error": str(error)})
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"bad request: {error}"})

    def _deploy(self, request: dict[str, Any]) -> None:
        try:
            policy = DeploymentPolicy.model_validate(request.get("policy", {}))
        except ValidationError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"invalid deployment policy: {error}"})
            return
        wanted = request.get("shadow")
        shadow = None if wanted is None else ShadowSpec(str(wanted["version"]), Path(wanted["model_dir"]))
        for model_dir in (Path(request["model_dir"]), *([] if shadow is None else [shadow.model_dir])):
            if not model_dir.is_dir():
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"model directory {model_dir} does not exist"})
                return
        started = self.server.sandbox.deploy(
            str(request["service"]), str(request["version"]), Path(request["model_dir"]), policy, shadow
        )
        self._json(HTTPStatus.ACCEPTED, {"started": started})

    def _apply_revision(self, request: dict[str, Any]) -> None:
        model_dir = Path(request["model_dir"])
        if not model_dir.is_dir():
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"model directory {model_dir} does not exist"})
            return
        percent = request["canary_percent"]
        if percent is not None and (isinstance(percent, bool) or not isinstance(percent, int)):
            self._json(
                HTTPStatus.BAD_REQUEST,
                {"error": f"canary_percent = {percent!r}; allowed: an integer 0..100, or null"},
            )
            return
        started = self.server.sandbox.apply_revision(
            str(request["service"]), str(request["version"]), model_dir, percent, str(request["namespace"])
        )
        self._json(HTTPStatus.ACCEPTED, {"started": started})

    def _json(self, status: int, payload: Any) -> None:
        self._reply(status, json.dumps(payload, sort_keys=True).encode(), "application/json")

    def _reply(
        self, status: int, body: bytes, content_type: str | None, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the router serves thousands of requests; metrics are the record."""


def _tick(sandbox: Sandbox, stopping: threading.Event) -> None:
    """Snapshot the metrics every second and watch the model servers twice a second."""
    next_snapshot = 0.0
    while not stopping.wait(WATCH_SECONDS):
        now = time.time()
        if now >= next_snapshot:
            sandbox.book.snapshot(now)
            next_snapshot = now + SNAPSHOT_SECONDS
        sandbox.watch()


def _end_children(grace_seconds: float = 3.0) -> None:
    """End any process the sandbox started that is still running (a server still coming up)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace_seconds)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.sandbox.daemon")
    parser.add_argument("--sandbox-dir", type=Path, required=True)
    parser.add_argument("--server-command", default=json.dumps(DEFAULT_SERVER_COMMAND))
    args = parser.parse_args(argv)

    directory: Path = args.sandbox_dir
    log_dir = directory / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = SandboxServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    me = ProcessRecord.of(os.getpid(), "daemon")
    started_at = time.time()
    record_lock = threading.Lock()
    closed = threading.Event()

    def record() -> None:
        import psutil

        with record_lock:
            if closed.is_set():
                return
            children = []
            for pid, service, version in sandbox.pids():
                try:
                    children.append(ProcessRecord.of(pid, "model-server", service, version))
                except psutil.Error:
                    continue  # it exited a moment ago; the watchdog restarts it and records again
            write_state(directory, DaemonState(me, url, started_at, tuple(children)))

    sandbox = Sandbox(url, json.loads(args.server_command), log_dir, on_processes=record)
    server.sandbox = sandbox

    def _stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stopping = threading.Event()
    ticker = threading.Thread(target=_tick, args=(sandbox, stopping), name="tick", daemon=True)
    record()
    ticker.start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stopping.set()
        ticker.join(5)
        sandbox.shutdown()
        _end_children()
        server.server_close()
        with record_lock:
            closed.set()
            clear_state(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
