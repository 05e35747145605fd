"""The MetricsSource port: where the canary analysis reads live metrics, and how it rings the alarm."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pipelines.metrics.stats import CanaryWindow


@runtime_checkable
class MetricsSource(Protocol):
    """Live per-variant metrics of a service, and the switch that makes its endpoint roll back.

    Adapters: ``LocalMetricsSource`` (the sandbox's Prometheus ``/metrics``) and
    ``CloudWatchMetricsSource`` (``AWS/SageMaker`` per-variant metrics).
    """

    def window(self, service: str, start: float, end: float) -> CanaryWindow:
        """Baseline and canary stats of ``service`` over ``[start, end)`` (epoch seconds)."""
        ...

    def breach(self, service: str, guardrail: str, value: float, reason: str) -> None:
        """Publish the quality metric the alarms watch and set the guardrail's alarm.

        ``guardrail`` is one of ``infra.naming.GUARDRAILS``. Setting the alarm is what makes
        SageMaker (or the sandbox) roll an in-flight deployment back at once.
        """
        ...
