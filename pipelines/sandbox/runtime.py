"""The sandbox inside the daemon: its endpoints and InferenceServices, the router's forwarding (and
mirroring to a shadow), labels and metrics."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import DeploymentPolicy
from infra.naming import GUARDRAILS
from pipelines.sandbox.description import EndpointDescription
from pipelines.sandbox.endpoint import Endpoint
from pipelines.sandbox.fleet import FleetContext, FleetSet, ModelServerProcess
from pipelines.sandbox.inference_service import InferenceService
from pipelines.sandbox.metrics import MetricsBook
from pipelines.sandbox.outputs import Guess, ServedOutput
from pipelines.sandbox.revisions import check_canary_percent
from pipelines.sandbox.shadow import ShadowSpec

PREDICTIONS_KEPT = 200_000
"""Predictions remembered for joining delayed labels; the oldest are forgotten first."""


class UnknownServiceError(KeyError):
    """No endpoint (or InferenceService) of that name in the sandbox."""


class WrongRuntimeError(ValueError):
    """A SageMaker call for a service the sandbox serves as an InferenceService, or the reverse."""


@dataclass(frozen=True)
class Upstream:
    """A model server's answer as the router passes it on."""

    status: int
    body: bytes
    headers: dict[str, str]


class Sandbox:
    """Every endpoint of the sandbox plus the shared metrics book; thread-safe."""

    def __init__(
        self, base_url: str, command: Sequence[str], log_dir: Path, on_processes: Callable[[], None]
    ) -> None:
        self.base_url = base_url
        self.book = MetricsBook()
        self._context = FleetContext(tuple(command), log_dir, self._changed, self.book.restart, self.book)
        self._on_processes = on_processes
        self._services: dict[str, Endpoint | InferenceService] = {}
        """One entry per service: a SageMaker-style endpoint or an InferenceService, never both."""
        self._lock = threading.Lock()
        self._predictions: OrderedDict[str, tuple[str, str, ServedOutput, list[Guess]]] = OrderedDict()
        self._random = random.Random()

    # ---- control plane ----

    def service(
        self, service: str, kind: str = "endpoint or InferenceService"
    ) -> Endpoint | InferenceService:
        """The service's endpoint or InferenceService; ``UnknownServiceError`` (naming ``kind``) if neither."""
        with self._lock:
            try:
                return self._services[service]
            except KeyError:
                known = ", ".join(sorted(self._services)) or "none"
                raise UnknownServiceError(f"no {kind} for service {service!r} (services: {known})") from None

    def endpoint(self, service: str) -> Endpoint:
        """The service's SageMaker-style endpoint."""
        found = self.service(service, "endpoint")
        if not isinstance(found, Endpoint):
            raise UnknownServiceError(
                f"no endpoint for service {service!r}: it is served as {found.served_as} "
                "(read its document instead)"
            )
        return found

    def inference_service(self, service: str) -> InferenceService:
        """The service's KServe-style InferenceService."""
        found = self.service(service, "InferenceService")
        if not isinstance(found, InferenceService):
            raise UnknownServiceError(
                f"no InferenceService for service {service!r}: it is served as {found.served_as}"
            )
        return found

    def services(self) -> list[Endpoint | InferenceService]:
        with self._lock:
            return list(self._services.values())

    def deploy(
        self,
        service: str,
        version: str,
        model_dir: Path,
        policy: DeploymentPolicy,
        shadow: ShadowSpec | None = None,
    ) -> bool:
        found = self._service_or_new(service, lambda url: Endpoint(service, url, self._context))
        if not isinstance(found, Endpoint):
            raise WrongRuntimeError(
                f"service {service!r} is served as {found.served_as}; "
                "apply a revision to it instead of a SageMaker deployment"
            )
        return found.deploy(version, model_dir, policy, shadow)

    def apply_revision(
        self, service: str, version: str, model_dir: Path, canary_percent: int | None, namespace: str
    ) -> bool:
        """Apply a predictor spec to the service's InferenceService (created by the first one)."""
        check_canary_percent(canary_percent)
        found = self._service_or_new(
            service, lambda url: InferenceService(service, url, self._context, namespace)
        )
        if not isinstance(found, InferenceService):
            raise WrongRuntimeError(
                f"service {service!r} is served as {found.served_as}; "
                "deploy to it instead of applying a KServe revision"
            )
        return found.apply(version, model_dir, canary_percent)

    def _service_or_new(
        self, service: str, create: Callable[[str], Endpoint | InferenceService]
    ) -> Endpoint | InferenceService:
        """The service's endpoint or InferenceService; ``create(url)`` makes it if it has neither,
        under the lock, so two first deployments of one service make one."""
        with self._lock:
            found = self._services.get(service)
            if found is None:
                found = self._services[service] = create(f"{self.base_url}/endpoints/{service}")
            return found

    def abort_canary(self, service: str, reason: str) -> bool:
        return self.inference_service(service).abort_canary(reason)

    def trip_alarm(self, service: str, guardrail: str, reason: str) -> bool:
        if guardrail not in GUARDRAILS:
            raise ValueError(f"unknown guardrail {guardrail!r}; known: {', '.join(GUARDRAILS)}")
        return self.endpoint(service).trip_alarm(guardrail, reason)

    def describe(self, service: str) -> EndpointDescription:
        return self.endpoint(service).describe()

    def status(self) -> dict[str, Any]:
        """Every SageMaker-style endpoint's description, keyed by service."""
        return {
            found.service: found.describe().to_json()
            for found in self.services()
            if isinstance(found, Endpoint)
        }

    def inference_services(self) -> dict[str, Any]:
        """Every InferenceService's ``status`` (its revisions, split and ``Ready``), keyed by service;
        its full document is ``inference_service(service).document()``."""
        return {
            found.service: found.status() for found in self.services() if isinstance(found, InferenceService)
        }

    def pids(self) -> list[tuple[int, str, str]]:
        """(pid, service, version) of every running model server."""
        return [
            (fleet.pid, found.service, fleet.version)
            for found in self.services()
            for fleet in found.servers()
            if fleet.pid is not None
        ]

    def watch(self) -> None:
        for found in self.services():
            found.watch()

    def shutdown(self) -> None:
        for found in self.services():
            found.stop()

    def _changed(self, fleets: FleetSet) -> None:
        alarms = fleets.describe().alarms if isinstance(fleets, Endpoint) else {}
        self.book.set_service(fleets.service, fleets.roles(), fleets.version_weights(), alarms)
        self._on_processes()

    # ---- data plane ----

    def invoke(self, service: str, body: bytes, headers: dict[str, str]) -> Upstream:
        """Route one invocation by the endpoint's weights; an unreachable server is a 502 on its version.

        A request production answered is then copied to the endpoint's shadow, if it has one and
        the draw falls in its share; the copy is queued, never waited for.
        """
        endpoint = self.service(service)
        fleet = endpoint.route(self._random.random())
        if fleet is None:
            message = json.dumps({"error": f"endpoint {service} has no fleet in service"}).encode()
            return Upstream(503, message, {"Content-Type": "application/json"})
        version = fleet.version
        started = time.perf_counter()
        try:
            status, payload, reply_headers = fleet.invoke(body, headers)
        except (OSError, http.client.HTTPException) as error:
            self.book.invocation(service, version, 502, None, [])
            self._mirror(endpoint, fleet, body, headers, [])
            message = json.dumps({"error": f"model server {version[:12]} unreachable: {error}"}).encode()
            return Upstream(
                502, message, {"Content-Type": "application/json", "X-Modelrail-Variant": version}
            )
        latency_ms = (time.perf_counter() - started) * 1000
        bins: list[int] = []
        guesses: list[Guess] = []
        if status == 200:
            bins, guesses = fleet.output.read_predictions(payload, reply_headers.get("Content-Type", ""))
        self.book.invocation(service, version, status, latency_ms if status < 500 else None, bins)
        self._mirror(endpoint, fleet, body, headers, guesses)
        request_id = uuid.uuid4().hex
        if guesses:
            with self._lock:
                self._predictions[request_id] = (service, version, fleet.output, guesses)
                while len(self._predictions) > PREDICTIONS_KEPT:
                    self._predictions.popitem(last=False)
        reply_headers.update({"X-Modelrail-Request-Id": request_id, "X-Modelrail-Variant": version})
        return Upstream(status, payload, reply_headers)

    def _mirror(
        self,
        endpoint: Endpoint | InferenceService,
        fleet: ModelServerProcess,
        body: bytes,
        headers: dict[str, str],
        guesses: list[Guess],
    ) -> None:
        """Offer the shadow a copy of a request ``fleet`` answered (with ``guesses``), if it is
        production's and the draw falls within the shadow's share."""
        mirror = endpoint.mirror_for(fleet.version) if isinstance(endpoint, Endpoint) else None
        if mirror is not None and self._random.random() * 100 < mirror.percent:
            mirror.offer(body, headers, guesses, fleet.output)

    def labels(self, service: str, items: list[dict[str, Any]]) -> dict[str, int]:
        """Join delayed labels to their predictions: ``{"request_id": …, "label": … | "labels": [...]}``.

        A label is a class name, or a number for a regression service. Each is judged by the
        rule of the version that made the prediction (``ServedOutput.correct``); ``invalid``
        counts the labels that rule cannot judge (a regression label that is not a number).
        """
        self.service(service)
        matched = unknown = invalid = 0
        for item in items:
            request_id = str(item.get("request_id", ""))
            given = item.get("labels", [item.get("label")])
            with self._lock:
                known = self._predictions.pop(request_id, None)
            if known is None or known[0] != service or not isinstance(given, list):
                unknown += 1
                continue
            _, version, output, predicted = known
            for truth, guess in zip(given, predicted, strict=False):
                correct = output.correct(guess, truth)
                if correct is None:
                    invalid += 1
                    continue
                self.book.label(service, version, correct)
                matched += 1
        return {"matched": matched, "unknown": unknown, "invalid": invalid}
