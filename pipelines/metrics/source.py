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

    def window(self, service: str, start: float, end: float, *, rollout_start: float) -> CanaryWindow:
        """Baseline and canary stats of ``service`` over ``[start, end)`` (epoch seconds).

        ``rollout_start`` is when the rollout began. A source that sees the two fleets side by
        side (the sandbox) ignores it; one that compares in time (CloudWatch, one series per
        variant) ends its baseline there, so every interval of a rollout is judged against the
        same stretch of the old configuration alone, never against canary traffic.
        """
        ...

    def breach(self, service: str, guardrail: str, value: float, reason: str) -> None:
        """Publish the quality metric the alarms watch and set the guardrail's alarm.

        ``guardrail`` is one of ``infra.naming.GUARDRAILS``. Setting the alarm is what makes
        SageMaker (or the sandbox) roll an in-flight deployment back at once.
        """
        ...
