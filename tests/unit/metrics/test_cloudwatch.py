"""CloudWatchMetricsSource against botocore's Stubber: the exact calls, and how answers become stats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.stub import ANY, Stubber

from pipelines.metrics.cloudwatch import CloudWatchMetricsSource
from tests.unit.cloudwatch_stub import DIMENSIONS

SHADOW_DIMENSIONS = [DIMENSIONS[0], {"Name": "VariantName", "Value": "shadow"}]
"""adult-income's shadow variant in prod: the same endpoint, its own variant name."""


def _expect_variant(
    stubber: Stubber, start: float, end: float, answers: dict[str, Any], dimensions: list[Any] = DIMENSIONS
) -> None:
    """Queue the five calls one variant window makes, in order."""
    common = {
        "Dimensions": dimensions,
        "StartTime": datetime.fromtimestamp(start, UTC),
        "EndTime": datetime.fromtimestamp(end, UTC),
        "Period": ANY,
    }
    for metric in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors"):
        stubber.add_response(
            "get_metric_statistics",
            {"Datapoints": [{"Sum": answers[metric]}]},
            {**common, "Namespace": "AWS/SageMaker", "MetricName": metric, "Statistics": ["Sum"]},
        )
    stubber.add_response(
        "get_metric_statistics",
        {"Datapoints": [{"ExtendedStatistics": {"p50": answers["p50_us"], "p99": answers["p99_us"]}}]},
        {
            **common,
            "Namespace": "AWS/SageMaker",
            "MetricName": "ModelLatency",
            "ExtendedStatistics": ["p50", "p99"],
        },
    )
    stubber.add_response(
        "get_metric_statistics",
        {"Datapoints": [{"SampleCount": answers["labels"], "Sum": answers["correct"]}]},
        {
            **common,
            "Namespace": "modelrail",
            "MetricName": "LiveAccuracy",
            "Statistics": ["SampleCount", "Sum"],
        },
    )


def test_a_window_reads_the_variant_after_the_update_against_the_hour_before(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    update, now = 1_700_000_000.0, 1_700_000_300.0
    _expect_variant(
        stubber,
        update - 3600,
        update,
        {"Invocations": 36000, "Invocation4XXErrors": 10, "Invocation5XXErrors": 36, "p50_us": 20000, "p99_us": 80000,
         "labels": 3000, "correct": 2550},
    )  # fmt: skip
    _expect_variant(
        stubber,
        update,
        now,
        {"Invocations": 3000, "Invocation4XXErrors": 1, "Invocation5XXErrors": 150, "p50_us": 41000, "p99_us": 190000,
         "labels": 200, "correct": 150},
    )  # fmt: skip

    window = CloudWatchMetricsSource(client, "prod").window("adult-income", update, now, rollout_start=update)

    assert window.baseline.invocations == 36000 and window.baseline.errors_5xx == 36
    assert window.baseline.latency_p99_ms == 80.0
    assert window.canary is not None
    assert window.canary.errors_5xx == 150 and window.canary.errors_4xx == 1
    assert (window.canary.latency_p50_ms, window.canary.latency_p99_ms) == (41.0, 190.0)
    assert window.canary.accuracy == 0.75
    assert window.canary.latency_histogram is None


def test_a_shadow_window_is_production_against_the_shadow_variant_over_the_same_interval(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    """Side by side, not in time: the shadow has its own VariantName, so the rollout's start is not
    the baseline's end; agreement would need both answers to each request, which CloudWatch has not."""
    client, stubber = cloudwatch
    update, start, end = 1_700_000_000.0, 1_700_000_600.0, 1_700_000_660.0
    _expect_variant(
        stubber,
        start,
        end,
        {"Invocations": 1000, "Invocation4XXErrors": 2, "Invocation5XXErrors": 3,
         "p50_us": 20000, "p99_us": 80000, "labels": 40, "correct": 34},
    )  # fmt: skip
    _expect_variant(
        stubber,
        start,
        end,
        {"Invocations": 500, "Invocation4XXErrors": 0, "Invocation5XXErrors": 25,
         "p50_us": 30000, "p99_us": 250000, "labels": 0, "correct": 0},
        SHADOW_DIMENSIONS,
    )  # fmt: skip

    window = CloudWatchMetricsSource(client, "prod").window(
        "adult-income", start, end, rollout_start=update, shadow=True
    )

    assert (window.start, window.end) == (start, end)
    assert window.baseline.invocations == 1000 and window.baseline.errors_5xx == 3
    assert window.baseline.latency_p99_ms == 80.0
    assert window.canary is not None
    assert (window.canary.invocations, window.canary.errors_5xx) == (500, 25)  # the mirrored half
    assert window.canary.latency_p99_ms == 250.0
    assert window.agreement is None
