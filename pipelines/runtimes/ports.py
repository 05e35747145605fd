"""The ports a serving runtime fills for the controller, after Flagger's split of its metrics
providers (read only) from its router (which moves traffic).

* ``EndpointInspector`` (``pipelines.runners.base``): what the endpoint really runs.
* ``MetricsSource`` (``pipelines.metrics.source``): read-only windows of live per-version metrics.
* ``TrafficRouter``: the one actuator the controller calls on a breach, to take the canary's
  traffic away at once (SageMaker: set the guardrail's rollback alarm; KServe: the canary's share
  to 0). Putting the previous version back in the stack file and on the endpoint is the
  controller's one revert path, whatever the router did.
* ``traffic_steps``: the shares of traffic the new version takes, one stack update each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from infra.config import Service
    from pipelines.metrics.source import MetricsSource
    from pipelines.runners.base import EndpointInspector


class TrafficRouter(Protocol):
    """Stops a canary's traffic when the analysis finds a guardrail breached."""

    def abort(self, service: str, guardrail: str, value: float, reason: str) -> None:
        """Take the canary's traffic away now; ``guardrail`` is one of ``infra.naming.GUARDRAILS``
        and ``value`` what the canary showed. Idempotent: a resumed controller may call it again."""
        ...


TrafficSteps = Callable[["Service"], tuple[int | None, ...]]
"""The canary shares a rollout pins in the stack file (``canaryTrafficPercent``), one stack update
each, the last ``None`` (all traffic). ``(None,)``: one update, the runtime shifts traffic itself."""


StepCheck = Callable[[str, str, int], str]
"""``(service, version, percent)``: why the endpoint does not show ``version`` ready and carrying
``percent``% of the traffic after a canary step, or '' when it does."""


def one_update(_service: Service) -> tuple[int | None, ...]:
    """The runtime shifts traffic itself during one stack update (SageMaker's blue/green)."""
    return (None,)


@dataclass(frozen=True)
class RuntimeAdapters:
    """Everything the controller needs to roll out a service on one runtime."""

    runtime: str
    endpoints: EndpointInspector
    metrics: MetricsSource | None
    """None where no live metrics can be read: a canary there cannot be analysed."""
    router: TrafficRouter
    traffic_steps: TrafficSteps = one_update
    step_check: StepCheck | None = None
    """How a stepped runtime shows that a canary step holds; None where ``traffic_steps`` is one update."""
