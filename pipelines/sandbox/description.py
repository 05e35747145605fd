"""What the sandbox says about an endpoint: the shape of SageMaker's DescribeEndpoint, plus the traffic split."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, cast

EndpointStatus = Literal["Creating", "InService", "Updating", "RollingBack", "Failed"]
"""SageMaker's endpoint statuses that the sandbox uses (``Creating`` only for a first deployment)."""


class DeploymentPhase(StrEnum):
    """Where a blue/green deployment of an endpoint stands."""

    NONE = "none"
    """No deployment has run on this endpoint yet."""
    PROVISIONING = "provisioning"
    """The new (green) fleet, or a new shadow fleet, is starting; all traffic stays on the old (blue) fleet."""
    BAKING = "baking"
    """Part of the traffic is on the new fleet (the canary, or a linear step); the alarms are watched."""
    FINAL_BAKE = "final_bake"
    """All traffic is on the new fleet and the old fleet still runs; the alarms are watched."""
    TERMINATION_WAIT = "termination_wait"
    """The deployment succeeded; the old fleet is kept for the termination wait, then stopped."""
    ROLLING_BACK = "rolling_back"
    """An alarm fired or the new fleet failed: traffic is back on the old fleet, the new one is stopping."""
    COMPLETED = "completed"
    """Terminal: the new version serves all traffic and the old fleet is gone (or the shadow is
    what the update asked for: started, re-shared or stopped)."""
    ROLLED_BACK = "rolled_back"
    """Terminal: the endpoint is back on the old configuration (``failure_reason`` says why), the
    old shadow too when a new shadow fleet did not start."""
    FAILED = "failed"
    """Terminal: a first deployment whose fleet never became healthy; the endpoint is ``Failed``."""

    @property
    def finished(self) -> bool:
        return self in (
            DeploymentPhase.NONE,
            DeploymentPhase.COMPLETED,
            DeploymentPhase.ROLLED_BACK,
            DeploymentPhase.FAILED,
        )


@dataclass(frozen=True)
class FleetDescription:
    """One model server process of an endpoint."""

    version: str
    port: int
    pid: int | None
    restarts: int
    healthy: bool


@dataclass(frozen=True)
class EndpointDescription:
    """DescribeEndpoint for a sandbox endpoint.

    ``config_name`` and ``serving_version`` name the configuration that owns the endpoint: the
    old one until a deployment completes, and again after a rollback, which is how the
    controller notices a rollout that did not stick.
    """

    service: str
    endpoint_name: str
    url: str
    """Base URL: ``{url}/invocations``, ``{url}/labels``, ``{url}/ping``."""
    status: EndpointStatus
    config_name: str | None
    serving_version: str | None
    failure_reason: str | None
    phase: DeploymentPhase
    target_version: str | None
    """The version being (or last) deployed."""
    weights: dict[str, float] = field(default_factory=dict)
    """Share of traffic per version right now."""
    alarms: dict[str, str] = field(default_factory=dict)
    """Guardrail alarms in ALARM, with their reasons."""
    fleets: tuple[FleetDescription, ...] = ()
    """Every model server, the shadow's included."""
    updated_at: float = 0.0
    shadow_version: str | None = None
    """The shadow variant's version, which takes a copy of ``shadow_percent`` % of production's
    requests and answers no client; ``None`` without one."""
    shadow_percent: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "endpoint_name": self.endpoint_name,
            "url": self.url,
            "status": self.status,
            "config_name": self.config_name,
            "serving_version": self.serving_version,
            "failure_reason": self.failure_reason,
            "phase": self.phase.value,
            "target_version": self.target_version,
            "weights": dict(self.weights),
            "alarms": dict(self.alarms),
            "fleets": [vars(fleet) for fleet in self.fleets],
            "updated_at": self.updated_at,
            "shadow_version": self.shadow_version,
            "shadow_percent": self.shadow_percent,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointDescription:
        return cls(
            service=data["service"],
            endpoint_name=data["endpoint_name"],
            url=data["url"],
            status=cast(EndpointStatus, data["status"]),
            config_name=data["config_name"],
            serving_version=data["serving_version"],
            failure_reason=data["failure_reason"],
            phase=DeploymentPhase(data["phase"]),
            target_version=data["target_version"],
            weights={str(k): float(v) for k, v in data["weights"].items()},
            alarms={str(k): str(v) for k, v in data["alarms"].items()},
            fleets=tuple(FleetDescription(**fleet) for fleet in data["fleets"]),
            updated_at=float(data.get("updated_at", 0.0)),
            shadow_version=data.get("shadow_version"),
            shadow_percent=data.get("shadow_percent"),
        )
