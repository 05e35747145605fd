"""One sandbox endpoint and its blue/green deployments, after SageMaker's deployment guardrails.

A deployment starts the new (green) fleet next to the old (blue) one, then shifts traffic by
the service's policy: ``canary`` (the canary share, a bake, then everything), ``linear``
(equal steps, a bake after each) or ``all_at_once``. With all traffic on green there is a
final bake, then the termination wait, then blue stops. A guardrail alarm set at any point
before that rolls traffic back to blue at once and stops green: the endpoint ends InService
on the OLD configuration with a failure reason, just as SageMaker's auto-rollback leaves it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from infra.config import DeploymentPolicy
from infra.naming import alarm_name, endpoint_name, version_config_name
from pipelines.sandbox.description import (
    DeploymentPhase,
    EndpointDescription,
    EndpointStatus,
)
from pipelines.sandbox.fleet import FleetContext, FleetSet, FleetStartError

ENVIRONMENT = "local"
"""The sandbox stands in for the ``local`` stack's endpoints."""


class DeploymentInProgressError(RuntimeError):
    """SageMaker refuses to update an endpoint that is already updating; so does the sandbox."""


def traffic_steps(policy: DeploymentPolicy) -> list[float]:
    """The new fleet's share after each shift, ending at 1.0."""
    if policy.strategy == "canary":
        return [min(policy.canary_percent, 100) / 100, 1.0]
    if policy.strategy == "linear":
        step = policy.linear_step_percent
        return [min(share, 100) / 100 for share in range(step, 100, step)] + [1.0]
    return [1.0]


class Endpoint(FleetSet):
    """The live state of one service's endpoint; its fleets are keyed by version."""

    def __init__(self, service: str, url: str, context: FleetContext) -> None:
        super().__init__(service, url, context)
        self._alarm = threading.Event()
        self.serving_version: str | None = None
        self.target_version: str | None = None
        self.status: EndpointStatus = "Creating"
        self.phase = DeploymentPhase.NONE
        self.failure_reason: str | None = None
        self.alarms: dict[str, str] = {}
        self.updated_at = time.time()

    # ---- what the router and the control API read ----

    def describe(self) -> EndpointDescription:
        with self._lock:
            return EndpointDescription(
                service=self.service,
                endpoint_name=endpoint_name(ENVIRONMENT, self.service),
                url=self.url,
                status=self.status,
                config_name=None
                if self.serving_version is None
                else version_config_name(self.service, self.serving_version),
                serving_version=self.serving_version,
                failure_reason=self.failure_reason,
                phase=self.phase,
                target_version=self.target_version,
                weights=dict(self.weights),
                alarms=dict(self.alarms),
                fleets=self.fleet_descriptions(),
                updated_at=self.updated_at,
            )

    @property
    def served_as(self) -> str:
        return f"SageMaker endpoint {endpoint_name(ENVIRONMENT, self.service)}"

    def roles(self) -> dict[str, str]:
        """``baseline`` for the version that owns the endpoint, ``canary`` for the one being deployed."""
        with self._lock:
            return {
                version: "baseline" if version == self.serving_version else "canary"
                for version in self.fleets
            }

    # ---- what the control API changes ----

    def deploy(self, version: str, model_dir: Path, policy: DeploymentPolicy) -> bool:
        """Start deploying ``version``; False (nothing to do) if it already serves and nothing is in flight."""
        with self._lock:
            if not self.phase.finished:
                raise DeploymentInProgressError(
                    f"endpoint {self.service} is {self.status} ({self.phase.value}, deploying "
                    f"{(self.target_version or '')[:12]}); wait for it to finish"
                )
            if version == self.serving_version and self.status == "InService":
                return False
            self._alarm.clear()
            self.alarms = {}
            self.target_version = version
            self.failure_reason = None
            self.status = "Creating" if self.serving_version is None else "Updating"
            self._set_phase(DeploymentPhase.PROVISIONING)
            self._thread = threading.Thread(
                target=self._run,
                args=(version, model_dir, policy),
                name=f"deploy-{self.service}",
                daemon=True,
            )
            self._thread.start()
            return True

    def trip_alarm(self, guardrail: str, reason: str) -> bool:
        """Set a guardrail alarm; True if it rolls back a deployment in flight."""
        name = alarm_name(ENVIRONMENT, self.service, guardrail)
        with self._lock:
            self.alarms[guardrail] = reason
            self.updated_at = time.time()
            rolling_back = self.phase in (
                DeploymentPhase.PROVISIONING,
                DeploymentPhase.BAKING,
                DeploymentPhase.FINAL_BAKE,
                DeploymentPhase.TERMINATION_WAIT,
            )
            if rolling_back and self.serving_version is not None:
                self.failure_reason = f"alarm {name} in ALARM: {reason}"
                self.status = "RollingBack"
                self._route_only(self.serving_version)
                self._set_phase(DeploymentPhase.ROLLING_BACK)
                self._alarm.set()
        self._on_change(self)
        return rolling_back

    def _stopping(self) -> None:
        self._alarm.set()

    # ---- the deployment itself ----

    def _run(self, version: str, model_dir: Path, policy: DeploymentPolicy) -> None:
        try:
            fleet = self._launch(version, model_dir)
        except FleetStartError as error:
            self._fail(version, f"the new fleet did not start: {error}")
            return
        with self._lock:
            if self._closed:
                fleet.stop()
                return
            if self._alarm.is_set():
                fleet.stop()
                self._finish_rollback(version)
                return
            self.fleets[version] = fleet
            old = self.serving_version
            if old is None:
                self._complete(version)
        self._on_change(self)
        if old is None:
            return
        deadline = time.monotonic() + policy.max_execution_seconds
        for share in traffic_steps(policy):
            with self._lock:
                self.weights = {old: round(1.0 - share, 6), version: share} if share < 1 else {version: 1.0}
                self._set_phase(DeploymentPhase.BAKING if share < 1 else DeploymentPhase.FINAL_BAKE)
            self._on_change(self)
            if self._bake(policy.bake_seconds, deadline, version):
                return
        with self._lock:
            self._set_phase(DeploymentPhase.TERMINATION_WAIT)
        self._on_change(self)
        if self._bake(policy.termination_wait_seconds, deadline, version):
            return
        with self._lock:
            retired = self.fleets.pop(old, None) if old != version else None
        if retired is not None:
            retired.stop()  # the old fleet is gone before the endpoint reports the deployment complete
        with self._lock:
            self._complete(version)
        self._on_change(self)

    def _bake(self, seconds: float, deadline: float, version: str) -> bool:
        """Wait while the alarms watch; True if the deployment was rolled back meanwhile."""
        wait = min(seconds, max(deadline - time.monotonic(), 0.0))
        if self._alarm.wait(wait):
            self._finish_rollback(version)
            return True
        if time.monotonic() >= deadline and seconds > 0:
            self._time_out()
            self._finish_rollback(version)
            return True
        return False

    def _time_out(self) -> None:
        with self._lock:
            assert self.serving_version is not None
            self.failure_reason = "the deployment exceeded max_execution_seconds"
            self.status = "RollingBack"
            self._route_only(self.serving_version)
            self._set_phase(DeploymentPhase.ROLLING_BACK)

    def _finish_rollback(self, version: str) -> None:
        with self._lock:
            fleet = self.fleets.pop(version, None) if version != self.serving_version else None
            if self.serving_version is not None:
                self._route_only(self.serving_version)
        if fleet is not None:
            fleet.stop()
        with self._lock:
            self.status = "InService"
            self._set_phase(DeploymentPhase.ROLLED_BACK)
        self._on_change(self)

    def _complete(self, version: str) -> None:
        """Make ``version`` own the endpoint and all its traffic."""
        self._route_only(version)
        self.serving_version = version
        self.status = "InService"
        self._set_phase(DeploymentPhase.COMPLETED)

    def _fail(self, version: str, reason: str) -> None:
        with self._lock:
            self.failure_reason = reason
            if self.serving_version is None:
                self.status = "Failed"
                self._set_phase(DeploymentPhase.FAILED)
            else:
                self.status = "InService"
                self._route_only(self.serving_version)
                self._set_phase(DeploymentPhase.ROLLED_BACK)
        self._on_change(self)

    def _route_only(self, version: str) -> None:
        self.weights = {version: 1.0}

    def _set_phase(self, phase: DeploymentPhase) -> None:
        self.phase = phase
        self.updated_at = time.time()
