"""The interfaces every stack runner and endpoint inspector implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.errors import ModelrailError


class StackUpdateError(ModelrailError):
    """A stack operation failed for a reason other than a concurrent update."""


@dataclass(frozen=True)
class ResourceChange:
    """One resource a preview would touch: the operation and the changed property paths."""

    urn: str
    type: str
    op: str
    paths: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "op": self.op, "paths": list(self.paths)}


@dataclass(frozen=True)
class Preview:
    """What a stack update would do, per resource, with the engine's change summary."""

    changes: tuple[ResourceChange, ...]
    summary: dict[str, int] = field(default_factory=dict)

    @property
    def replaces(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.op in {"replace", "create-replacement", "delete-replaced"})

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "summary": dict(sorted(self.summary.items()))}


class StackRunner(Protocol):
    """Select a stack, preview it, update it and read its outputs."""

    stack: str

    def refresh(self) -> None:
        """Reconcile the stack's state with what really runs."""

    def preview(self) -> Preview:
        """What ``up`` would change, per resource."""

    def up(self, message: str) -> dict[str, Any]:
        """Apply the stack file; blocks until the update is done; returns the stack outputs."""

    def outputs(self) -> dict[str, Any]:
        """The stack's current outputs."""


@dataclass(frozen=True)
class EndpointState:
    """What ``DescribeEndpoint`` says about a service's endpoint."""

    status: str
    config_name: str
    failure_reason: str = ""
    instance_count: int | None = None
    """Instances of the production variant as autoscaling has it: ``DesiredInstanceCount`` (what
    Application Auto Scaling last asked for), at least ``CurrentInstanceCount``; None when not
    known (no endpoint, or a sandbox, which has no instances to count)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "configName": self.config_name,
            "failureReason": self.failure_reason,
            "instanceCount": self.instance_count,
        }


class EndpointInspector(Protocol):
    """Reads the endpoint's real state, and which configuration a stack's outputs expect it to run."""

    def describe(self, service: str) -> EndpointState:
        """The endpoint's status and current configuration."""

    def expected_config(self, service: str, version: str, outputs: dict[str, Any]) -> str:
        """The configuration the endpoint must run once ``version`` is rolled out."""

    def shadow(self, service: str, config_name: str) -> str | None:
        """The version the configuration's shadow variant serves, or None without one (a runtime
        without shadows always says None)."""

    def serves(self, service: str, config_name: str, version: str) -> bool:
        """Whether the endpoint configuration ``config_name`` serves ``version``, read from the
        configuration itself: after a failed or timed-out update the stack outputs may still name
        the previous configuration, so they cannot say."""
