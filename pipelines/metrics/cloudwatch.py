"""``CloudWatchMetricsSource``: windows from ``AWS/SageMaker`` per-variant metrics.

What CloudWatch can and cannot tell apart. SageMaker publishes invocation metrics by
``EndpointName`` and ``VariantName``, and a blue/green deployment keeps the variant name (it
must not change between configurations), so the old and the new fleet report into the SAME
series while both take traffic. There is no per-fleet dimension to split them. This source
therefore compares in time instead of side by side:

* the canary is the variant over ``[start, end)``, i.e. after the update began: during the
  canary step a blend dominated by the old fleet's share, after the full shift the new fleet
  alone, which is when a bake should read it;
* the baseline is the same variant over the ``baseline_seconds`` before ``rollout_start``
  (the moment the update began), i.e. the old configuration alone, and the same for every
  interval of the rollout: a baseline that ended at each interval's start would take in the
  canary traffic of the intervals before it.

A regression seen only in the canary step is diluted by the canary share, and time-of-day
effects are not controlled. Latency comes as p50/p99 only (``ExtendedStatistics``, converted
from microseconds), so the latency check compares point estimates. There is no prediction
histogram either (that needs data capture), so the drift check does not run here. Live
accuracy is the ``modelrail`` namespace's ``LiveAccuracy`` metric, published as statistic
sets (SampleCount = labels, Sum = correct ones) so its Average is the accuracy the alarm watches.
Setting the alarms that roll a deployment back is ``pipelines.runtimes.alarms.CloudWatchAlarms``.

A shadow phase is the one case CloudWatch compares side by side: the shadow variant reports
under its own ``VariantName`` (``shadow``, next to production's ``primary``), as SageMaker's
shadow-test dashboard compares them
(https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-view-monitor-edit-dashboard.html),
so a shadow window is production against the shadow over the same ``[start, end)``. The shadow
sees the mirrored share of production's requests, so rates and percentiles compare, counts do
not. Agreement (the two answers to one request) needs both predictions of each mirrored request:
CloudWatch has counts, not answers, so a window here has none (``agreement`` is None); pairing
them takes the data capture of both variants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from infra.naming import (
    LIVE_ACCURACY_METRIC,
    QUALITY_NAMESPACE,
    SHADOW_VARIANT_NAME,
    VARIANT_NAME,
    endpoint_name,
)
from pipelines.metrics.stats import CanaryWindow, VariantStats

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient

SAGEMAKER_NAMESPACE = "AWS/SageMaker"


class CloudWatchMetricsSource:
    """The ``MetricsSource`` of SageMaker endpoints in one environment."""

    def __init__(
        self,
        cloudwatch: CloudWatchClient,
        environment: str,
        *,
        baseline_seconds: float = 3600.0,
    ) -> None:
        self.cloudwatch = cloudwatch
        self.environment = environment
        self.baseline_seconds = baseline_seconds
        """How much of the old configuration's traffic, before the rollout, the baseline takes."""

    def window(
        self, service: str, start: float, end: float, *, rollout_start: float, shadow: bool = False
    ) -> CanaryWindow:
        if end < start:
            raise ValueError(f"a window ends after it starts: start={start}, end={end}")
        if shadow:  # side by side: production and the shadow on the same requests
            return CanaryWindow(
                start=start,
                end=end,
                baseline=self.variant(service, start, end),
                canary=self.variant(service, start, end, variant_name=SHADOW_VARIANT_NAME),
            )
        return CanaryWindow(
            start=start,
            end=end,
            baseline=self.variant(service, rollout_start - self.baseline_seconds, rollout_start),
            canary=self.variant(service, start, end),
        )

    def variant(
        self, service: str, start: float, end: float, *, variant_name: str = VARIANT_NAME
    ) -> VariantStats:
        """One variant's stats over ``[start, end)``: production's unless ``variant_name`` names another."""
        dimensions = [
            {"Name": "EndpointName", "Value": endpoint_name(self.environment, service)},
            {"Name": "VariantName", "Value": variant_name},
        ]
        invocations = self._sum(SAGEMAKER_NAMESPACE, "Invocations", dimensions, start, end)
        errors_4xx = self._sum(SAGEMAKER_NAMESPACE, "Invocation4XXErrors", dimensions, start, end)
        errors_5xx = self._sum(SAGEMAKER_NAMESPACE, "Invocation5XXErrors", dimensions, start, end)
        latency = self._statistics(
            SAGEMAKER_NAMESPACE, "ModelLatency", dimensions, start, end, extended=["p50", "p99"]
        )
        p50 = _worst(latency, "p50")
        p99 = _worst(latency, "p99")
        accuracy = self._statistics(
            QUALITY_NAMESPACE, LIVE_ACCURACY_METRIC, dimensions, start, end, statistics=["SampleCount", "Sum"]
        )
        labelled = round(sum(point.get("SampleCount", 0.0) for point in accuracy))
        correct = min(round(sum(point.get("Sum", 0.0) for point in accuracy)), labelled)
        return VariantStats(
            invocations=invocations,
            errors_4xx=errors_4xx,
            errors_5xx=errors_5xx,
            latency_p50_ms=None if p50 is None else p50 / 1000,
            latency_p99_ms=None if p99 is None else p99 / 1000,
            labelled=labelled,
            correct=correct,
        )

    def _sum(self, namespace: str, metric: str, dimensions: Sequence[Any], start: float, end: float) -> int:
        points = self._statistics(namespace, metric, dimensions, start, end, statistics=["Sum"])
        return round(sum(float(point.get("Sum", 0.0)) for point in points))

    def _statistics(
        self,
        namespace: str,
        metric: str,
        dimensions: Sequence[Any],
        start: float,
        end: float,
        *,
        statistics: list[Any] | None = None,
        extended: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Datapoints over the window, in one period that covers it (a multiple of 60 s)."""
        period = max(60, math.ceil((end - start) / 60) * 60)
        kwargs: dict[str, Any] = {
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": list(dimensions),
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
            "Period": period,
        }
        if statistics:
            kwargs["Statistics"] = statistics
        if extended:
            kwargs["ExtendedStatistics"] = extended
        response = self.cloudwatch.get_metric_statistics(**kwargs)
        return [dict(point) for point in response.get("Datapoints", [])]


def _worst(points: list[dict[str, Any]], percentile: str) -> float | None:
    """The largest percentile over the window's datapoints (percentiles do not add; the worst is safe)."""
    values = [
        float(point["ExtendedStatistics"][percentile])
        for point in points
        if percentile in point.get("ExtendedStatistics", {})
    ]
    return max(values) if values else None
