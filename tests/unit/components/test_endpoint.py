"""ModelEndpoint under Pulumi mocks: the guarded rollout, stable alarms, retained configurations."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.base import ComponentArgsError
from components.endpoint import ModelEndpoint, ModelEndpointArgs
from infra import naming
from pipelines.plan.mocks import PlanMonitor, Registration
from tests.unit.components.conftest import VERSION, Children, endpoint_values

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _by_type(monitor: PlanMonitor, type_: str) -> list[Registration]:
    return [r for r in monitor.registrations if r.type == type_]


def _build(values: dict[str, Any]) -> tuple[ModelEndpoint, pulumi.Output[list[str]]]:
    """The endpoint, and an output resolving once it and all its children are registered."""
    children = Children()
    endpoint = ModelEndpoint("fraud-score", values, opts=children.opts)
    return endpoint, children.settled(endpoint)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_a_canary_endpoint_rolls_back_on_every_guardrail_alarm(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    _, done = _build(endpoint_values())

    def check(_: Any) -> None:
        (endpoint,) = _by_type(pulumi_mocks, ENDPOINT)
        config = endpoint.inputs["deploymentConfig"]
        routing = config["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
        assert routing == {
            "type": "CANARY",
            "canarySize": {"type": "CAPACITY_PERCENT", "value": 25},
            "waitIntervalInSeconds": 900,
        }
        rollback = [a["alarmName"] for a in config["autoRollbackConfiguration"]["alarms"]]
        assert rollback == [
            "modelrail-prod-fraud-score-5xx-rate",
            "modelrail-prod-fraud-score-4xx-rate",
            "modelrail-prod-fraud-score-p99-latency",
            "modelrail-prod-fraud-score-live-accuracy",
        ]
        assert sorted(a.inputs["name"] for a in _by_type(pulumi_mocks, ALARM)) == sorted(rollback)
        assert endpoint.inputs["name"] == "prod-fraud-score"

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_a_linear_rollout_shifts_equal_steps(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    _, done = _build(endpoint_values(rollout={"strategy": "linear", "linear_step_percent": 20}))

    def check(_: Any) -> None:
        (endpoint,) = _by_type(pulumi_mocks, ENDPOINT)
        routing = endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
        assert routing["type"] == "LINEAR"
        assert routing["linearStepSize"] == {"type": "CAPACITY_PERCENT", "value": 20}
        assert "canarySize" not in routing

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_the_endpoint_configuration_is_encrypted_captures_data_and_is_kept_on_delete(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    _, done = _build(endpoint_values(data_capture_percent=15))

    def check(_: Any) -> None:
        (config,) = _by_type(pulumi_mocks, CONFIG)
        assert config.retain_on_delete
        assert "name" not in config.inputs  # auto-named: every change is a new configuration
        assert config.inputs["kmsKeyArn"].startswith("arn:aws:kms:")
        capture = config.inputs["dataCaptureConfig"]
        assert capture["enableCapture"] is True
        assert capture["initialSamplingPercentage"] == 15
        assert capture["destinationS3Uri"] == "s3://modelrail-prod-artifacts/data-capture/fraud-score/"
        assert config.inputs["productionVariants"][0]["variantName"] == "primary"
        (model,) = _by_type(pulumi_mocks, MODEL)
        assert model.retain_on_delete
        assert model.inputs["primaryContainer"]["modelDataUrl"] == (
            f"s3://modelrail-prod-artifacts/models/fraud-score/{VERSION}/model.tar.gz"
        )

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_alarms_treat_missing_data_deliberately_and_notify_the_topic(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    _, done = _build(endpoint_values(guardrails={"p99_latency_ms": 120, "min_live_accuracy": 0.9}))

    def check(_: Any) -> None:
        alarms = {a.inputs["name"].rsplit("-score-", 1)[1]: a.inputs for a in _by_type(pulumi_mocks, ALARM)}
        latency = alarms["p99-latency"]
        assert latency["extendedStatistic"] == "p99"
        assert latency["threshold"] == 120_000  # microseconds
        assert latency["treatMissingData"] == "notBreaching"
        assert alarms["live-accuracy"]["namespace"] == "modelrail"
        assert alarms["live-accuracy"]["treatMissingData"] == "ignore"
        assert alarms["live-accuracy"]["comparisonOperator"] == "LessThanThreshold"
        rate = alarms["5xx-rate"]
        assert [q["id"] for q in rate["metricQueries"]] == ["errors", "invocations", "rate"]
        for alarm in alarms.values():
            assert alarm["alarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:alerts"]

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_without_live_labels_the_accuracy_alarm_stays_but_can_never_fire(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    """The alarm list is force-new: dropping the alarm would replace the live endpoint."""
    _, done = _build(endpoint_values(guardrails={"min_live_accuracy": None}))

    def check(_: Any) -> None:
        (endpoint,) = _by_type(pulumi_mocks, ENDPOINT)
        rollback = [
            a["alarmName"] for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
        ]
        assert rollback == [f"modelrail-prod-fraud-score-{kind}" for kind in naming.GUARDRAILS]
        (accuracy,) = [
            a.inputs for a in _by_type(pulumi_mocks, ALARM) if a.inputs["name"].endswith("live-accuracy")
        ]
        # Accuracy lies in [0, 1]: below 0 never happens, and without data the alarm ends in OK.
        assert (accuracy["comparisonOperator"], accuracy["threshold"]) == ("LessThanThreshold", 0)
        assert accuracy["treatMissingData"] == "notBreaching"
        assert "never fires" in accuracy["alarmDescription"]

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_the_execution_role_may_read_every_rollback_alarm(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    """SageMaker reads the rollback alarms with the model's role; the ARNs are those AWS assigns."""
    endpoint, done = _build(endpoint_values(region=pulumi_mocks.plan_mocks.region))

    def check(values: list[Any]) -> None:
        policy = next(r for r in pulumi_mocks.registrations if r.urn.endswith("::fraud-score-role-policy"))
        (statement,) = [
            s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Sid"] == "ReadRollbackAlarms"
        ]
        assert statement["Action"] == ["cloudwatch:DescribeAlarms"]
        alarm_arns = values[1]
        assert len(alarm_arns) == 4
        assert statement["Resource"] == sorted(alarm_arns)
        assert all(arn.startswith("arn:aws:cloudwatch:us-east-1:123456789012:alarm:") for arn in alarm_arns)

    arns = pulumi.Output.all(*(alarm.arn for alarm in endpoint.alarms.alarms.values()))
    return pulumi.Output.all(done, arns).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_autoscaling_tracks_invocations_per_instance_on_the_primary_variant(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    _, done = _build(endpoint_values())

    def check(_: Any) -> None:
        (target,) = _by_type(pulumi_mocks, "aws:appautoscaling/target:Target")
        assert target.inputs["resourceId"] == "endpoint/prod-fraud-score/variant/primary"
        assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 8)
        (policy,) = _by_type(pulumi_mocks, "aws:appautoscaling/policy:Policy")
        tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
        assert tracking["predefinedMetricSpecification"] == {
            "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        }

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_a_shadow_variant_serves_its_own_model(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    _, done = _build(endpoint_values(shadow={"model_version": "a" * 64, "sampling_percent": 50}))

    def check(_: Any) -> None:
        (config,) = _by_type(pulumi_mocks, CONFIG)
        (shadow,) = config.inputs["shadowProductionVariants"]
        assert shadow["variantName"] == "shadow"
        assert shadow["initialVariantWeight"] == 0.5
        assert len(_by_type(pulumi_mocks, MODEL)) == 2

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_grant_invoke_allows_exactly_invoking_this_endpoint(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    import pulumi_aws as aws

    endpoint, _ = _build(endpoint_values(region=pulumi_mocks.plan_mocks.region))
    caller = aws.iam.Role("caller", assume_role_policy="{}")
    grant = endpoint.grant_invoke(caller)

    def check(values: list[str]) -> None:
        policy = next(r for r in pulumi_mocks.registrations if r.urn.endswith("::fraud-score-invoke-1"))
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Action"] == [
            "sagemaker:InvokeEndpoint",
            "sagemaker:InvokeEndpointWithResponseStream",
        ]
        assert statement["Resource"] == [values[1]]  # built from the name: the ARN AWS assigns

    return pulumi.Output.all(grant.urn, endpoint.endpoint_arn).apply(check)


def test_metric_helpers_name_the_variant_dimensions() -> None:
    from components.endpoint import EndpointMetrics

    latency = EndpointMetrics("prod-svc").model_latency("p50")
    assert latency.widget_metric() == [
        "AWS/SageMaker",
        "ModelLatency",
        "EndpointName",
        "prod-svc",
        "VariantName",
        "primary",
        {"label": "primary p50", "period": 60, "stat": "p50"},
    ]


@pulumi.runtime.test  # pulumi ships it unannotated
def test_invalid_arguments_are_all_reported_before_any_resource_exists(pulumi_mocks: PlanMonitor) -> None:
    bad = endpoint_values(
        service="Fraud_Score",
        model_version="v1",
        instance_count=1,
        rollout={"strategy": "canary", "canary_percent": 80},
    )
    with pytest.raises(ComponentArgsError) as raised:
        ModelEndpoint("bad", bad)
    message = str(raised.value)
    assert "service = 'Fraud_Score'" in message
    assert "model_version = 'v1'" in message
    assert "rollout.canary_percent = 80" in message
    assert pulumi_mocks.registrations == []


def test_cross_field_rules_name_the_value_and_the_fix() -> None:
    from components.base import validate_args

    with pytest.raises(ComponentArgsError) as raised:
        validate_args("ModelEndpoint 'x'", ModelEndpointArgs, endpoint_values(instance_count=1))
    assert "instance_count = 1: a canary needs at least 2 instances" in str(raised.value)
