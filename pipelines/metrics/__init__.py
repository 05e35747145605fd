"""Live metrics of model endpoints, per variant, behind one narrow port (``MetricsSource``).

Adapters live in their own modules and import their clients lazily:
``pipelines.metrics.local.LocalMetricsSource`` and
``pipelines.metrics.cloudwatch.CloudWatchMetricsSource``.
"""

from pipelines.metrics.source import MetricsSource
from pipelines.metrics.stats import (
    LATENCY_BUCKETS_MS,
    PREDICTION_BINS,
    CanaryWindow,
    LatencyHistogram,
    VariantStats,
    prediction_bin,
)

__all__ = [
    "LATENCY_BUCKETS_MS",
    "PREDICTION_BINS",
    "CanaryWindow",
    "LatencyHistogram",
    "MetricsSource",
    "VariantStats",
    "prediction_bin",
]
