"""``SandboxClient``: start, find, drive and stop the sandbox daemon from any process.

The daemon outlives the CLI invocation that started it; ``daemon.json`` under
``state_dir()/sandbox`` says where it listens. The daemon leads a process group of its own
(``start_new_session``) and every model server it starts inherits it, so stopping the sandbox
ends the whole group: a model server the daemon started but never recorded (it was killed
while the server came up) cannot outlive it. A state file whose daemon is gone (killed,
crashed, a reboot) is stale: the client ends whatever that group left behind and removes the
file, so the next start begins clean.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import DeploymentPolicy
from infra.naming import GUARDRAILS
from pipelines.dependencies import DependencyUnavailableError
from pipelines.errors import BadInputError, ModelrailError, RefusedError
from pipelines.sandbox.description import EndpointDescription
from pipelines.sandbox.fleet import DEFAULT_SERVER_COMMAND, READY_TIMEOUT_SECONDS
from pipelines.sandbox.revisions import settled
from pipelines.sandbox.shadow import ShadowSpec
from pipelines.sandbox.state import DaemonState, ProcessRecord, clear_state, read_state, sandbox_dir

START_TIMEOUT_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.2
RETRY_DELAYS_SECONDS = (0.2, 0.5, 1.0)
"""Backoff between attempts of a read (GET) when the daemon runs but does not answer."""
REVISION_TIMEOUT_SECONDS = READY_TIMEOUT_SECONDS + 30.0
"""A revision settles once its server answers ``/ping`` or gives up (``READY_TIMEOUT_SECONDS``)."""
SERVICE_PATHS = ("/control/endpoints/", "/control/inferenceservices/", "/control/services/", "/control/abort")
"""Control paths whose 404 means the service has no endpoint (or InferenceService) yet."""


class SandboxNotRunningError(DependencyUnavailableError):
    """No live sandbox daemon in this state directory, or it stopped answering."""


class EndpointNotFoundError(BadInputError):
    """No endpoint (or InferenceService) for that service yet, as SageMaker's DescribeEndpoint
    and ``kubectl get inferenceservice`` fail."""


class SandboxTimeoutError(ModelrailError):
    """A deployment did not finish within the time the caller allowed."""


@dataclass(frozen=True)
class StopReport:
    """What stopping (or recovering) a sandbox did."""

    was_running: bool
    stale: bool
    """The state file named a daemon that was already gone."""
    stopped_pids: tuple[int, ...]


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def recover_stale(directory: Path) -> StopReport | None:
    """If the recorded daemon is dead, end every process its group left and clear the file."""
    state = read_state(directory)
    if state is None or state.daemon.alive():
        return None
    stopped = [child.pid for child in state.children if child.kill()]
    stopped += [pid for pid in end_group(state.daemon) if pid not in stopped]
    clear_state(directory)
    return StopReport(was_running=False, stale=True, stopped_pids=tuple(stopped))


def group_members(daemon: ProcessRecord) -> list[int]:
    """Live processes of the sandbox's process group (the daemon's pid is the group's id).

    A group id is not reused while any member lives, so members of that group are the
    sandbox's, unless the group's leader is alive and is not the recorded daemon (the group
    ended and a new one took the number): then nothing is.
    """
    import psutil

    group = daemon.pid
    leader_alive = psutil.pid_exists(group)
    if leader_alive and not daemon.alive():
        try:
            if psutil.Process(group).status() != psutil.STATUS_ZOMBIE:
                return []
        except psutil.Error:
            pass
    members = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) == group and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (OSError, psutil.Error):
            continue
    return [pid for pid in members if pid != os.getpid()]


def end_group(daemon: ProcessRecord, grace_seconds: float = 3.0) -> list[int]:
    """SIGTERM the sandbox's process group, SIGKILL what is left after the grace; the pids ended."""
    import psutil

    members = group_members(daemon)
    if not members:
        return []
    with contextlib.suppress(OSError):
        os.killpg(daemon.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while group_members(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_members(daemon):
        with contextlib.suppress(OSError):
            os.killpg(daemon.pid, signal.SIGKILL)
        psutil.wait_procs([p for p in map(_process, members) if p is not None], timeout=grace_seconds)
    return members


def _process(pid: int) -> Any:
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


class SandboxClient:
    """Talks to one running sandbox daemon over its loopback HTTP API."""

    def __init__(
        self,
        state: DaemonState,
        directory: Path,
        process: subprocess.Popen[bytes] | None = None,
        server_command: Sequence[str] | None = None,
    ) -> None:
        self.state = state
        self.directory = directory
        self.url = state.url
        self._process = process
        self.server_command = tuple(server_command or DEFAULT_SERVER_COMMAND)

    # ---- finding and starting ----

    @classmethod
    def connect(cls, state_root: Path | None = None) -> SandboxClient:
        """The sandbox running in this state directory; ``SandboxNotRunningError`` if none is."""
        directory = sandbox_dir(state_root)
        recover_stale(directory)
        state = read_state(directory)
        if state is None:
            raise SandboxNotRunningError(
                f"no sandbox is running (state directory {directory})", hint="the local stack starts one"
            )
        return cls(state, directory)

    @classmethod
    def start(
        cls,
        state_root: Path | None = None,
        *,
        server_command: Sequence[str] | None = None,
        timeout: float = START_TIMEOUT_SECONDS,
    ) -> SandboxClient:
        """Start a detached sandbox daemon, or return the one already running here.

        ``server_command`` is the model server's argv, with ``{python}``, ``{model_dir}`` and
        ``{port}`` filled in per fleet; it defaults to the packaged serving code.
        """
        try:
            return cls.connect(state_root)
        except SandboxNotRunningError:
            pass
        directory = sandbox_dir(state_root)
        command = list(server_command or DEFAULT_SERVER_COMMAND)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_project_root()), env.get("PYTHONPATH")) if p)
        with (directory / "daemon.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pipelines.sandbox.daemon",
                    "--sandbox-dir",
                    str(directory),
                    "--server-command",
                    json.dumps(command),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=_project_root(),
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (directory / "daemon.log").read_text(errors="replace").strip().splitlines()[-5:]
                raise ModelrailError(
                    f"the sandbox daemon exited with code {process.returncode}: {' | '.join(tail)}"
                )
            state = read_state(directory)
            if state is not None and state.daemon.pid == process.pid:
                return cls(state, directory, process, command)
            time.sleep(0.05)
        process.kill()
        process.wait(5)
        raise ModelrailError(
            f"the sandbox daemon did not start within {timeout:g} s (log: {directory / 'daemon.log'})"
        )

    def running(self) -> bool:
        """Whether this client's daemon process still runs."""
        return self.state.daemon.alive()

    def ensure_running(self) -> bool:
        """Start a new daemon in place of a dead one (its endpoints are gone with it); True if it had to.

        For reconciling only (``LocalStackRunner.refresh``): a new daemon has no endpoints, so the
        stack update deploys what the stack file pins onto an empty endpoint.
        """
        if self.running():
            return False
        fresh = SandboxClient.start(self.directory.parent, server_command=self.server_command)
        self.state, self.url, self._process = fresh.state, fresh.url, fresh._process
        return True

    # ---- the controller's interface ----

    def deploy(
        self,
        service: str,
        version: str,
        model_dir: Path,
        policy: DeploymentPolicy,
        shadow: ShadowSpec | None = None,
    ) -> None:
        """Update the endpoint to ``version`` with ``shadow`` or none, and return at once (``wait``
        for it to finish).

        A new production version is a blue/green deployment (or the endpoint's first one), which
        stops any shadow first. With the version that already serves, only the shadow changes,
        mirrored at ``policy.shadow.percent``; the same version and shadow again is a no-op.
        ``RefusedError`` while another deployment of the service is in flight, or for a new
        production version together with a shadow (the controller changes one at a time).
        """
        fields: dict[str, Any] = {"policy": policy.model_dump(), "shadow": None}
        if shadow is not None:
            fields["shadow"] = {"version": shadow.version, "model_dir": str(_existing_dir(shadow.model_dir))}
        self._post_model("/control/deploy", service, version, model_dir, **fields)

    def wait(self, service: str, timeout: float) -> EndpointDescription:
        """Block until the service's deployment has finished (completed, rolled back or failed)."""
        deadline = time.monotonic() + timeout
        while True:
            description = self.describe_endpoint(service)
            if description.phase.finished:
                return description
            if time.monotonic() >= deadline:
                raise SandboxTimeoutError(
                    f"endpoint {description.endpoint_name} is still {description.status} "
                    f"({description.phase.value}) after {timeout:g} s"
                )
            time.sleep(POLL_SECONDS)

    def describe_endpoint(self, service: str) -> EndpointDescription:
        """DescribeEndpoint: status, config name, serving version, failure reason, phase and weights.

        ``EndpointNotFoundError`` before the service's first deployment.
        """
        return EndpointDescription.from_json(self._request("GET", f"/control/endpoints/{service}"))

    def trip_alarm(self, service: str, guardrail: str, reason: str) -> None:
        """Set a guardrail alarm; a deployment in flight rolls back to the old version at once."""
        if guardrail not in GUARDRAILS:
            raise BadInputError(f"guardrail {guardrail!r} is not an alarm; known: {', '.join(GUARDRAILS)}")
        self._request(
            "POST", "/control/alarm", {"service": service, "guardrail": guardrail, "reason": reason}
        )

    def apply_revision(
        self,
        service: str,
        version: str,
        model_dir: Path,
        canary_percent: int | None,
        *,
        namespace: str,
        timeout: float = REVISION_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        """Apply a KServe predictor spec and block until the InferenceService has settled; its document.

        A new version starts a revision and moves traffic once it is ready (``canary_percent``
        N: N% to it, the rest on the latest rolled-out revision; ``None``: all of it). The same
        version with another share only re-splits. A revision that never becomes ready leaves
        traffic where it was and the document ``Ready: False``; that is a result, not an error.
        ``SandboxTimeoutError`` after ``timeout`` seconds; ``RefusedError`` while another
        revision of the service is still starting.
        """
        self._post_model(
            "/control/revisions",
            service,
            version,
            model_dir,
            canary_percent=canary_percent,
            namespace=namespace,
        )
        deadline = time.monotonic() + timeout
        while True:
            document = self.inference_service(service)
            if settled(document):
                return document
            if time.monotonic() >= deadline:
                raise SandboxTimeoutError(
                    f"InferenceService {document['metadata']['name']} has not observed generation "
                    f"{document['metadata']['generation']} after {timeout:g} s (revision "
                    f"{document['status']['components']['predictor']['latestCreatedRevision']} still starting)"
                )
            time.sleep(POLL_SECONDS)

    def inference_service(self, service: str) -> dict[str, Any]:
        """The service's InferenceService document, shaped as ``kubectl get inferenceservice -o json``.

        ``EndpointNotFoundError`` before the service's first applied revision.
        """
        return self._request("GET", f"/control/inferenceservices/{service}")

    def abort_canary(self, service: str, reason: str) -> None:
        """Patch ``canaryTrafficPercent`` to 0: the latest revision's traffic goes back at once.

        Idempotent: without a canary in flight nothing changes.
        """
        self._request("POST", "/control/abort", {"service": service, "reason": reason})

    def endpoint_url(self, service: str) -> str:
        """The service's base URL, endpoint or InferenceService alike: ``/invocations``, ``/labels``
        and ``/ping`` hang off it."""
        return str(self._request("GET", f"/control/services/{service}")["url"])

    def metrics_text(self, at: float | None = None) -> str:
        """The router's Prometheus exposition, now or as of ``at`` (epoch seconds)."""
        query = "" if at is None else f"?at={at!r}"
        return self._get_text(f"/metrics{query}")

    def status(self) -> dict[str, Any]:
        """Every service of the sandbox, from one reading: ``endpoints`` (each SageMaker-style
        endpoint's description) and ``inference_services`` (each InferenceService's revisions,
        traffic split and ``Ready``), both keyed by service."""
        payload = self._request("GET", "/control/status")
        return {"endpoints": payload["endpoints"], "inference_services": payload["inference_services"]}

    def stop(self) -> None:
        """Stop the daemon and every model server; nothing of the sandbox keeps running."""
        self.shutdown()

    def shutdown(self, timeout: float = 15.0) -> StopReport:
        """``stop`` with a report of what was stopped (for ``modelrail sandbox stop``)."""
        state = read_state(self.directory) or self.state
        running = [record for record in (state.daemon, *state.children) if record.alive()]
        with contextlib.suppress(ModelrailError):  # unreachable or already stopping: signals below
            self._request("POST", "/control/stop", {}, timeout=2.0)
        deadline = time.monotonic() + timeout
        while state.daemon.alive() and time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            time.sleep(0.05)
        for record in running:
            record.kill()  # whatever the daemon did not stop itself
        ended = [pid for pid in end_group(state.daemon) if pid not in {r.pid for r in running}]
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        clear_state(self.directory)
        stopped = [record.pid for record in running] + ended
        return StopReport(was_running=True, stale=False, stopped_pids=tuple(stopped))

    # ---- HTTP ----

    def _post_model(self, path: str, service: str, version: str, model_dir: Path, **fields: Any) -> None:
        """POST a model for the daemon to serve from disk: by its absolute path, as the daemon's
        working directory is not the caller's, and refused here already when it does not exist."""
        self._request(
            "POST",
            path,
            {"service": service, "version": version, "model_dir": str(_existing_dir(model_dir)), **fields},
        )

    def _request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            raw = self._send(request, timeout, retry=method == "GET")
        except urllib.error.HTTPError as error:
            message = _error_message(error)
            if error.code == 404 and path.startswith(SERVICE_PATHS):
                raise EndpointNotFoundError(message) from None
            if error.code in (400, 404):
                raise BadInputError(message) from None
            raise RefusedError(message) from None
        body: dict[str, Any] = json.loads(raw or b"{}")
        return body

    def _get_text(self, path: str) -> str:
        return self._send(
            urllib.request.Request(self.url + path), REQUEST_TIMEOUT_SECONDS, retry=True
        ).decode()

    def _send(self, request: urllib.request.Request, timeout: float, *, retry: bool) -> bytes:
        """The response body; reads are retried with backoff while the daemon lives but does not answer.

        ``SandboxNotRunningError`` names the daemon and what to do once it is gone (or still silent).
        """
        delays = RETRY_DELAYS_SECONDS if retry else ()
        for attempt in range(len(delays) + 1):
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    body: bytes = response.read()
                    return body
            except urllib.error.HTTPError:
                raise
            except (OSError, urllib.error.URLError) as error:
                where = [f"{request.get_method()} {request.full_url}: {error}"]
                if not self.running():
                    raise SandboxNotRunningError(
                        f"the sandbox daemon (pid {self.state.daemon.pid}, {self.url}) is gone, and every "
                        "endpoint with it",
                        hint="`modelrail resume` starts a new one and converges",
                        details=where,
                    ) from None
                if attempt == len(delays):
                    raise SandboxNotRunningError(
                        f"the sandbox daemon at {self.url} is not answering", details=where
                    ) from None
                time.sleep(delays[attempt])
        raise AssertionError("unreachable")


def _existing_dir(model_dir: Path) -> Path:
    """The absolute path of a model directory; ``BadInputError`` when it does not exist."""
    resolved = Path(model_dir).resolve()
    if not resolved.is_dir():
        raise BadInputError(f"{resolved}: the model directory does not exist")
    return resolved


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {error.code} {error.reason}"


def stop_sandbox(state_root: Path | None = None) -> StopReport:
    """Stop the sandbox in this state directory if one runs, recovering a stale one; idempotent."""
    directory = sandbox_dir(state_root)
    stale = recover_stale(directory)
    if stale is not None:
        return stale
    state = read_state(directory)
    if state is None:
        return StopReport(was_running=False, stale=False, stopped_pids=())
    return SandboxClient(state, directory).shutdown()


@contextmanager
def sandbox_session(
    state_root: Path | None = None, *, server_command: Sequence[str] | None = None
) -> Iterator[SandboxClient]:
    """A sandbox for a test or the demo that is stopped on the way out, Ctrl-C and errors included.

    It adopts a sandbox already running in that state directory, and stops it too.
    """
    client = SandboxClient.start(state_root, server_command=server_command)
    try:
        yield client
    finally:
        client.shutdown()
