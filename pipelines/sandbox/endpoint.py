"""One sandbox endpoint and its blue/green deployments, after SageMaker's deployment guardrails.

A deployment starts the new (green) fleet next to the old (blue) one, then shifts traffic by
the service's policy: ``canary`` (the canary share, a bake, then everything), ``linear``
(equal steps, a bake after each) or ``all_at_once``. With all traffic on green there is a
final bake, then the termination wait, then blue stops. A guardrail alarm set at any point
before that rolls traffic back to blue at once and stops green: the endpoint ends InService
on the OLD configuration with a failure reason, just as SageMaker's auto-rollback leaves it.

An endpoint may also run a shadow variant (``shadowVersion``): a fleet that takes a copy of a
share of production's requests and answers no client (``pipelines.sandbox.shadow``). With the
production version unchanged, a stack update that adds, replaces, re-shares or removes the
shadow is applied at once, without a blue/green of production: the endpoint is Updating while a
new shadow fleet starts, then InService; a shadow fleet that does not start leaves the endpoint
InService on its old configuration with the reason. A new production version is a blue/green
deployment that first stops the shadow, and comes without one: the controller changes one at a
time, so an update that asks for both is refused (``UpdateRefusedError``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.config import DeploymentPolicy
from infra.naming import alarm_name, endpoint_name, version_config_name
from pipelines.sandbox.description import (
    DeploymentPhase,
    EndpointDescription,
    EndpointStatus,
)
from pipelines.sandbox.fleet import FleetContext, FleetSet, FleetStartError, ModelServerProcess
from pipelines.sandbox.shadow import Mirror, ShadowSpec

ENVIRONMENT = "local"
"""The sandbox stands in for the ``local`` stack's endpoints."""


class DeploymentInProgressError(RuntimeError):
    """SageMaker refuses to update an endpoint that is already updating; so does the sandbox."""


class UpdateRefusedError(RuntimeError):
    """An update the endpoint refuses as a whole: a shadow together with a new production version
    (or before any production version serves), or a shadow of the version production serves."""


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
        self._book = context.book
        self._mirror: Mirror | None = None
        """The shadow variant, while there is one."""
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
                shadow_version=None if self._mirror is None else self._mirror.version,
                shadow_percent=None if self._mirror is None else self._mirror.percent,
            )

    @property
    def served_as(self) -> str:
        return f"SageMaker endpoint {endpoint_name(ENVIRONMENT, self.service)}"

    def roles(self) -> dict[str, str]:
        """``baseline`` for the version that owns the endpoint, ``canary`` for the one being deployed,
        ``shadow`` for the shadow variant's."""
        with self._lock:
            shadow = None if self._mirror is None else self._mirror.version

            def role(version: str) -> str:
                if version == self.serving_version:
                    return "baseline"
                return "shadow" if version == shadow else "canary"

            return {version: role(version) for version in self.fleets}

    def mirror_for(self, version: str) -> Mirror | None:
        """The shadow's mirror for a request ``version`` answered: only production's are copied."""
        with self._lock:
            return self._mirror if version == self.serving_version else None

    # ---- what the control API changes ----

    def deploy(
        self, version: str, model_dir: Path, policy: DeploymentPolicy, shadow: ShadowSpec | None = None
    ) -> bool:
        """Start an update to ``version`` with ``shadow`` (or none), mirrored at
        ``policy.shadow.percent``; False (nothing to do) if the endpoint runs exactly that already
        and nothing is in flight."""
        retired: ModelServerProcess | None = None
        with self._lock:
            if not self.phase.finished:
                raise DeploymentInProgressError(
                    f"endpoint {self.service} is {self.status} ({self.phase.value}, deploying "
                    f"{(self.target_version or '')[:12]}); wait for it to finish"
                )
            if version == self.serving_version and self.status == "InService":
                started, retired = self._change_shadow(shadow, policy.shadow.percent)
            else:
                if shadow is not None:
                    raise UpdateRefusedError(
                        f"endpoint {endpoint_name(ENVIRONMENT, self.service)}: a new production version "
                        f"({(self.serving_version or 'none')[:12]} -> {version[:12]}) and a shadow "
                        f"({shadow.version[:12]}) in one update; change one at a time: the production "
                        "version without shadowVersion, or the shadow alone"
                    )
                retired = self._drop_shadow()
                self._begin_update("Creating" if self.serving_version is None else "Updating", version)
                self._start_thread(self._run, (version, model_dir, policy), f"deploy-{self.service}")
                started = True
        if retired is not None:
            retired.stop()
            self._on_change(self)
        return started

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
        if self._mirror is not None:
            self._mirror.close()
            self._mirror = None

    # ---- the shadow variant ----

    def _change_shadow(
        self, shadow: ShadowSpec | None, percent: int
    ) -> tuple[bool, ModelServerProcess | None]:
        """With production unchanged, make the shadow what the update asks for (under the lock):
        whether anything changed, and the shadow fleet to stop once the lock is released."""
        current = None if self._mirror is None else (self._mirror.version, self._mirror.percent)
        if current == (None if shadow is None else (shadow.version, percent)):
            return False, None
        if shadow is not None and shadow.version == self.serving_version:
            raise UpdateRefusedError(
                f"endpoint {endpoint_name(ENVIRONMENT, self.service)}: shadowVersion "
                f"{shadow.version[:12]} is the version production serves; a shadow is another version"
            )
        self._begin_update("Updating", self.target_version)
        if shadow is not None and (current is None or current[0] != shadow.version):
            self._start_thread(self._run_shadow, (shadow, percent), f"shadow-{self.service}")
            return True, None
        retired = None
        if shadow is None:
            retired = self._drop_shadow()
        elif self._mirror is not None:
            self._mirror.percent = percent  # the same shadow at another share: nothing to start
        self.status = "InService"
        self._set_phase(DeploymentPhase.COMPLETED)
        return True, retired

    def _run_shadow(self, shadow: ShadowSpec, percent: int) -> None:
        """Start the shadow fleet; then it takes the place of the old shadow, if any, and mirroring starts."""
        try:
            fleet = self._launch(shadow.version, shadow.model_dir)
        except FleetStartError as error:
            with self._lock:
                self.failure_reason = f"the shadow fleet did not start: {error}"
                self.status = "InService"
                self._set_phase(DeploymentPhase.ROLLED_BACK)
            self._on_change(self)
            return
        with self._lock:
            if self._closed:
                fleet.stop()
                return
            rolled_back = self._alarm.is_set()  # the alarm gave the reason; the old configuration stays
            if rolled_back:
                retired: ModelServerProcess | None = fleet
            else:
                retired = self._drop_shadow()
                self.fleets[shadow.version] = fleet
                self._mirror = Mirror(self.service, fleet, percent, self._book)
        if retired is not None:
            retired.stop()  # gone before the endpoint reports the update finished
        with self._lock:
            self.status = "InService"
            self._set_phase(DeploymentPhase.ROLLED_BACK if rolled_back else DeploymentPhase.COMPLETED)
        self._on_change(self)

    def _drop_shadow(self) -> ModelServerProcess | None:
        """Stop mirroring and take the shadow fleet out (under the lock); the caller stops it."""
        mirror, self._mirror = self._mirror, None
        if mirror is None:
            return None
        mirror.close()
        return self.fleets.pop(mirror.version, None)

    def _begin_update(self, status: EndpointStatus, target_version: str | None) -> None:
        """An update starts with no alarms and no failure, its fleet provisioning."""
        self._alarm.clear()
        self.alarms = {}
        self.target_version = target_version
        self.failure_reason = None
        self.status = status
        self._set_phase(DeploymentPhase.PROVISIONING)

    def _start_thread(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
        self._thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._thread.start()

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
