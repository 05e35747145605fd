"""The alarm routers: CloudWatch (against botocore's Stubber, the exact calls) and the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.stub import Stubber

from pipelines.runtimes.alarms import MAX_REASON, CloudWatchAlarms, SandboxAlarms
from tests.unit.cloudwatch_stub import DIMENSIONS


def test_an_accuracy_abort_publishes_live_accuracy_then_sets_the_alarm(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    stubber.add_response(
        "put_metric_data",
        {},
        {
            "Namespace": "modelrail",
            "MetricData": [{"MetricName": "LiveAccuracy", "Dimensions": DIMENSIONS, "Value": 0.71}],
        },
    )
    stubber.add_response(
        "set_alarm_state",
        {},
        {
            "AlarmName": "modelrail-prod-adult-income-live-accuracy",
            "StateValue": "ALARM",
            "StateReason": "canary accuracy 71% < 80%",
        },
    )
    CloudWatchAlarms(client, "prod").abort("adult-income", "live-accuracy", 0.71, "canary accuracy 71% < 80%")
    stubber.assert_no_pending_responses()  # both calls made, in this order, with exactly these parameters


def test_a_latency_abort_only_sets_its_alarm_with_the_reason_cut_to_cloudwatchs_limit(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    stubber.add_response(
        "set_alarm_state",
        {},
        {
            "AlarmName": "modelrail-prod-adult-income-p99-latency",
            "StateValue": "ALARM",
            "StateReason": "s" * MAX_REASON,
        },
    )
    CloudWatchAlarms(client, "prod").abort("adult-income", "p99-latency", 900.0, "s" * 2000)
    stubber.assert_no_pending_responses()  # the alarm was set, and nothing was published


def test_an_unknown_guardrail_is_refused_before_any_call(cloudwatch: tuple[Any, Stubber]) -> None:
    client, _ = cloudwatch  # the fixture fails the test if any call was made
    with pytest.raises(ValueError, match="unknown guardrail"):
        CloudWatchAlarms(client, "prod").abort("adult-income", "vibes", 1.0, "no")


@dataclass
class FakeSandbox:
    alarms: list[tuple[str, str, str]] = field(default_factory=list)

    def trip_alarm(self, service: str, guardrail: str, reason: str) -> None:
        self.alarms.append((service, guardrail, reason))


def test_a_sandbox_abort_trips_its_alarm_with_the_observed_value() -> None:
    fake = FakeSandbox()
    SandboxAlarms(fake).abort("svc", "p99-latency", 412.5, "canary p99 above 250 ms")
    assert fake.alarms == [("svc", "p99-latency", "canary p99 above 250 ms (observed 412.5)")]
