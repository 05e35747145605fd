"""``TrafficRouter``s that stop a canary by setting its guardrail's rollback alarm.

SageMaker's blue/green deployment watches the guardrail alarms and rolls back at once when one
goes to ALARM; the sandbox's SageMaker-style endpoints do the same with their own alarms. So
for both, taking the canary's traffic away is setting that alarm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from infra.naming import LIVE_ACCURACY_METRIC, QUALITY_NAMESPACE, VARIANT_NAME, alarm_name, endpoint_name

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient

MAX_REASON = 1023
"""CloudWatch's limit on an alarm's StateReason."""


class CloudWatchAlarms:
    """The router of SageMaker endpoints in one environment: their guardrail alarms in CloudWatch."""

    def __init__(self, cloudwatch: CloudWatchClient, environment: str) -> None:
        self.cloudwatch = cloudwatch
        self.environment = environment

    def abort(self, service: str, guardrail: str, value: float, reason: str) -> None:
        """Publish LiveAccuracy for an accuracy breach, then set the guardrail's alarm to ALARM.

        The metric goes first so the alarm's own evaluation agrees with the state set here, and
        does not flip it back to OK a minute later. An unknown guardrail is refused before any call.
        """
        name = alarm_name(self.environment, service, guardrail)
        if guardrail == "live-accuracy":
            self.cloudwatch.put_metric_data(
                Namespace=QUALITY_NAMESPACE,
                MetricData=[
                    {
                        "MetricName": LIVE_ACCURACY_METRIC,
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": endpoint_name(self.environment, service)},
                            {"Name": "VariantName", "Value": VARIANT_NAME},
                        ],
                        "Value": value,
                    }
                ],
            )
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason[:MAX_REASON])


class SandboxAlarmClient(Protocol):
    """What ``SandboxAlarms`` needs from ``SandboxClient``."""

    def trip_alarm(self, service: str, guardrail: str, reason: str) -> None: ...


class SandboxAlarms:
    """The router of the sandbox's SageMaker-style endpoints: their alarms, through its control API."""

    def __init__(self, client: SandboxAlarmClient) -> None:
        self.client = client

    def abort(self, service: str, guardrail: str, value: float, reason: str) -> None:
        """Trip the sandbox's alarm; a deployment in flight rolls back to the old version at once."""
        self.client.trip_alarm(service, guardrail, f"{reason} (observed {value:g})")
