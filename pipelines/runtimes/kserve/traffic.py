"""The canary shares a KServe rollout pins in the stack file, one stack update each.

KServe does not shift traffic over time by itself (SageMaker's blue/green does): each share is a
``canaryTrafficPercent`` the controller writes into the service's stack config and applies with
a stack update, analysing the canary while it bakes; the last step removes the field (``None``),
which rolls the latest revision out with all the traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.config import Service


def kserve_steps(service: Service) -> tuple[int | None, ...]:
    """``canary``: the canary's share, then all of it; ``linear``: every multiple of the step below
    100, then all of it; ``all_at_once``: all of it in one update."""
    policy = service.deployment
    if policy.strategy == "canary":
        return (policy.canary_percent, None)
    if policy.strategy == "linear":
        step = policy.linear_step_percent
        return (*range(step, 100, step), None)
    return (None,)
