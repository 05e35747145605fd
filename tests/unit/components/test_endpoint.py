"""ModelEndpoint under Pulumi mocks: the guarded rollout, stable alarms, retained configurations."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.base import ComponentArgsError, validate_args
from components.endpoint import ModelEndpoint, ModelEndpointArgs
from infra import naming
from infra.config import PLATFORM_KEY, SERVICES_KEY, Service, StackConfigError, parse_config_map
from pipelines.plan.mocks import PlanMonitor, Registration
from tests.unit.components.conftest import OTHER_VERSION, VERSION, Children, endpoint_values, service_settings

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
    _, done = _build(
        endpoint_values({"deployment": {"strategy": "linear", "linearStepPercent": 20, "bakeSeconds": 300}})
    )

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
    _, done = _build(endpoint_values({"dataCapturePercent": 15}))

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
    _, done = _build(
        endpoint_values({"guardrails": {"p99LatencyMs": 120, "minLiveAccuracy": 0.9, "max4xxRate": 0.02}})
    )

    def check(_: Any) -> None:
        alarms = {a.inputs["name"].rsplit("-score-", 1)[1]: a.inputs for a in _by_type(pulumi_mocks, ALARM)}
        latency = alarms["p99-latency"]
        assert latency["extendedStatistic"] == "p99"
        assert latency["threshold"] == 120_000  # microseconds
        assert latency["treatMissingData"] == "notBreaching"
        assert alarms["live-accuracy"]["namespace"] == "modelrail"
        assert alarms["live-accuracy"]["treatMissingData"] == "ignore"
        assert alarms["live-accuracy"]["comparisonOperator"] == "LessThanThreshold"
        assert alarms["live-accuracy"]["threshold"] == 0.9
        rate = alarms["5xx-rate"]
        assert [q["id"] for q in rate["metricQueries"]] == ["errors", "invocations", "rate"]
        assert (rate["threshold"], alarms["4xx-rate"]["threshold"]) == (0.01, 0.02)
        for alarm in alarms.values():
            assert alarm["alarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:alerts"]

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_without_live_labels_the_accuracy_alarm_stays_but_can_never_fire(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    """The alarm list is force-new: dropping the alarm would replace the live endpoint."""
    _, done = _build(endpoint_values({"guardrails": {"minLiveAccuracy": None}}))

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
    scaling = {
        "minInstances": 2,
        "maxInstances": 8,
        "scaleInCooldownSeconds": 900,
        "scaleOutCooldownSeconds": 30,
    }
    _, done = _build(endpoint_values({"autoscaling": scaling}))

    def check(_: Any) -> None:
        (target,) = _by_type(pulumi_mocks, "aws:appautoscaling/target:Target")
        assert target.inputs["resourceId"] == "endpoint/prod-fraud-score/variant/primary"
        assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 8)
        (policy,) = _by_type(pulumi_mocks, "aws:appautoscaling/policy:Policy")
        tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
        assert tracking["predefinedMetricSpecification"] == {
            "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        }
        assert (tracking["targetValue"], tracking["scaleInCooldown"], tracking["scaleOutCooldown"]) == (
            1000,
            900,
            30,
        )

    return done.apply(check)


SHADOWED = {
    "modelVersion": VERSION,
    "shadowVersion": OTHER_VERSION,
    "instanceCount": 5,
    "deployment": {
        "strategy": "canary",
        "canaryPercent": 25,
        "bakeSeconds": 900,
        "progression": ["shadow", "canary", "full"],
        "shadow": {"percent": 30},
    },
}
"""A shadow phase as the controller pins it: production stays, the candidate is the shadow."""


@pytest.mark.parametrize("shadowed", [True, False], ids=["shadow-version", "none"])
@pulumi.runtime.test  # pulumi ships it unannotated
def test_the_shadow_version_is_a_shadow_variant_with_its_own_model(
    pulumi_mocks: PlanMonitor, shadowed: bool
) -> pulumi.Output[Any]:
    settings = SHADOWED if shadowed else {**SHADOWED, "shadowVersion": None}
    _, done = _build(endpoint_values(settings))

    def check(_: Any) -> None:
        (config,) = _by_type(pulumi_mocks, CONFIG)
        models = {model.urn.rsplit("::", 1)[1]: model.inputs for model in _by_type(pulumi_mocks, MODEL)}
        (production,) = config.inputs["productionVariants"]
        assert production["variantName"] == "primary"  # a blue/green update keeps the variant's name
        assert production["initialInstanceCount"] == 5
        served = models["fraud-score-model"]["primaryContainer"]["environment"]
        assert served["MODELRAIL_MODEL_VERSION"] == VERSION
        assert config.inputs["dataCaptureConfig"]["initialSamplingPercentage"] == 20
        if not shadowed:
            assert "shadowProductionVariants" not in config.inputs
            assert set(models) == {"fraud-score-model"}
            return
        (shadow,) = config.inputs["shadowProductionVariants"]
        assert shadow["variantName"] == "shadow"
        assert shadow["initialVariantWeight"] == 0.3  # 30% mirrored, against production's weight of 1
        assert shadow["instanceType"] == production["instanceType"]
        assert shadow["initialInstanceCount"] == 2  # 5 instances' load × 30%: a production instance's each
        assert set(models) == {"fraud-score-model", "fraud-score-shadow-model"}
        mirrored = models["fraud-score-shadow-model"]
        assert mirrored["primaryContainer"]["environment"]["MODELRAIL_MODEL_VERSION"] == OTHER_VERSION
        assert mirrored["primaryContainer"]["modelDataUrl"].endswith(
            f"/fraud-score/{OTHER_VERSION}/model.tar.gz"
        )
        assert shadow["modelName"].startswith("fraud-score-shadow-model-")  # auto-named, as the mocks name it
        assert production["modelName"].startswith("fraud-score-model-")
        assert next(
            m for m in _by_type(pulumi_mocks, MODEL) if m.urn.endswith("shadow-model")
        ).retain_on_delete

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_a_shadow_update_shifts_traffic_as_every_update_does(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    """One deployment config for every update: adding the shadow changes the configuration only."""
    _, done = _build(endpoint_values(SHADOWED))

    def check(_: Any) -> None:
        (endpoint,) = _by_type(pulumi_mocks, ENDPOINT)
        policy = endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
        assert policy["trafficRoutingConfiguration"] == {
            "type": "CANARY",
            "canarySize": {"type": "CAPACITY_PERCENT", "value": 25},
            "waitIntervalInSeconds": 900,
        }
        alarms = endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
        assert [a["alarmName"] for a in alarms] == [
            f"modelrail-prod-fraud-score-{k}" for k in naming.GUARDRAILS
        ]
        (latency,) = [a for a in _by_type(pulumi_mocks, ALARM) if a.inputs["name"].endswith("-p99-latency")]
        assert latency.inputs["dimensions"]["VariantName"] == "primary"  # a shadow never rolls it back

    return done.apply(check)


def test_a_shadow_version_outside_a_shadow_phase_is_refused() -> None:
    with pytest.raises(ComponentArgsError) as raised:
        validate_args(
            "ModelEndpoint 'x'", ModelEndpointArgs, endpoint_values({"shadowVersion": OTHER_VERSION})
        )
    (problem,) = raised.value.problems
    assert problem.startswith(f'settings.shadowVersion = "{OTHER_VERSION}": only during a shadow phase')


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
def test_a_new_configuration_starts_at_the_instance_count_floor(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    """The floor the controller wrote (instances running when the rollout began) is the start count."""
    _, done = _build(endpoint_values({"instanceCountFloor": 6}))

    def check(_: Any) -> None:
        (config,) = _by_type(pulumi_mocks, CONFIG)
        assert config.inputs["productionVariants"][0]["initialInstanceCount"] == 6

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_invalid_arguments_are_all_reported_before_any_resource_exists(pulumi_mocks: PlanMonitor) -> None:
    bad = endpoint_values(
        {"modelVersion": "v1", "deployment": {"strategy": "canary", "canaryPercent": 101}},
        service="Fraud_Score",
    )
    with pytest.raises(ComponentArgsError) as raised:
        ModelEndpoint("bad", bad)
    message = str(raised.value)
    assert "service = 'Fraud_Score'" in message
    assert "settings.modelVersion = 'v1'" in message
    assert "settings.deployment.canaryPercent = 101: input should be less than or equal to 100" in message
    assert pulumi_mocks.registrations == []


def test_cross_field_rules_name_the_value_and_the_fix() -> None:
    with pytest.raises(ComponentArgsError) as raised:
        validate_args("ModelEndpoint 'x'", ModelEndpointArgs, endpoint_values({"instanceCount": 1}))
    assert raised.value.problems == [
        "settings.instanceCount = 1: a canary needs at least 2 instances "
        "(use strategy all_at_once or raise instanceCount)",
        "settings.instanceCount = 1: between autoscaling.minInstances and maxInstances (2 to 8)",
    ]


def test_the_component_enforces_the_rules_config_validate_reports() -> None:
    """One schema: the stack file's check and the component's report the same problems, and the
    component takes the validated ``Service`` itself as well as its mapping."""
    entry = service_settings(
        instanceCount=1,
        deployment={"strategy": "all_at_once", "bakeSeconds": 4000, "maxExecutionSeconds": 600},
        autoscaling={"minInstances": 3, "maxInstances": 2},
    )
    source = "stacks/Pulumi.prod.yaml"
    config = {
        PLATFORM_KEY: {"environment": "prod", "region": "eu-west-1", "approvalRequired": True},
        SERVICES_KEY: {"fraud-score": entry},
    }
    with pytest.raises(StackConfigError) as stack_error:
        parse_config_map(config, stack="prod", source=source)
    prefix = f"{source}: config.{SERVICES_KEY}.fraud-score."
    stack_problems = [str(issue).removeprefix(prefix) for issue in stack_error.value.issues]
    assert [problem.split(" = ")[0] for problem in stack_problems] == [
        "deployment.bakeSeconds",
        "deployment",
        "deployment.maxExecutionSeconds",
        "deployment.strategy",
        "autoscaling.minInstances",
        "instanceCount",
    ]

    for settings in (entry, Service.model_validate(entry)):
        with pytest.raises(ComponentArgsError) as component_error:
            validate_args("ModelEndpoint 'x'", ModelEndpointArgs, {**endpoint_values(), "settings": settings})
        problems = [p.removeprefix("settings.") for p in component_error.value.problems]
        assert problems == stack_problems


def test_an_endpoint_needs_a_pinned_sagemaker_service() -> None:
    with pytest.raises(ComponentArgsError) as raised:
        validate_args(
            "ModelEndpoint 'x'",
            ModelEndpointArgs,
            endpoint_values({"modelVersion": None, "runtime": "kserve"}),
        )
    message = str(raised.value)
    assert "settings.runtime = 'kserve': a ModelEndpoint serves runtime 'sagemaker' only" in message
    assert "settings.modelVersion = None: an endpoint serves a pinned model version" in message
