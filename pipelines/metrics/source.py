"""The MetricsSource port: where the canary analysis reads live metrics (read only).

Stopping a canary is another port, ``pipelines.runtimes.ports.TrafficRouter`` (Flagger splits
its metrics providers from its router the same way): a source never changes what it measures.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pipelines.metrics.stats import CanaryWindow


@runtime_checkable
class MetricsSource(Protocol):
    """Live per-variant metrics of a service, read only.

    Adapters: ``LocalMetricsSource`` (the sandbox router's ``/metrics``),
    ``PrometheusMetricsSource`` (PromQL over a Prometheus server's HTTP API, e.g. KServe) and
    ``CloudWatchMetricsSource`` (``AWS/SageMaker`` per-variant metrics).
    """

    def window(
        self, service: str, start: float, end: float, *, rollout_start: float, shadow: bool = False
    ) -> CanaryWindow:
        """Baseline and canary stats of ``service`` over ``[start, end)`` (epoch seconds).

        ``rollout_start`` is when the rollout began. A source that sees the two fleets side by
        side (the sandbox) ignores it; one that compares in time (CloudWatch, one series per
        variant) ends its baseline there, so every interval of a rollout is judged against the
        same stretch of the old configuration alone, never against canary traffic.

        ``shadow``: the window of a shadow phase, production against the shadow variant on the
        same requests (``CanaryWindow.agreement`` where the source pairs their answers). A source
        without shadows raises ``ValueError``.
        """
        ...
