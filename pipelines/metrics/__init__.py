"""Live metrics of model endpoints, per variant, behind one narrow port (``MetricsSource``).

Adapters live in their own modules and import their clients lazily:
``pipelines.metrics.local.LocalMetricsSource`` (the sandbox router's ``/metrics``),
``pipelines.metrics.promql.PrometheusMetricsSource`` (PromQL over a Prometheus server) and
``pipelines.metrics.cloudwatch.CloudWatchMetricsSource``. ``pipelines.metrics.exposition`` is
the router's text exposition, which the first two read.
"""

from pipelines.metrics.source import MetricsSource
from pipelines.metrics.stats import Agreement, CanaryWindow, LatencyHistogram, VariantStats
from pipelines.serving.series import LATENCY_BUCKETS_MS, PREDICTION_BINS

__all__ = [
    "LATENCY_BUCKETS_MS",
    "PREDICTION_BINS",
    "Agreement",
    "CanaryWindow",
    "LatencyHistogram",
    "MetricsSource",
    "VariantStats",
]
