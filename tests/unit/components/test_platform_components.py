"""ArtifactStore, ModelRegistry, Training and monitoring under Pulumi mocks."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.artifacts import ArtifactStore
from components.base import ComponentArgsError
from components.monitoring import Alerts, ServiceMonitor
from components.pipeline_definition import REGISTER_MODULE
from components.registry import ModelRegistry
from components.training import Training
from infra.config import Guardrails
from pipelines.plan.mocks import PlanMonitor, Registration
from tests.unit.components.conftest import Children, platform_values

TAGS = {"service": "platform", "environment": "prod", "managed-by": "modelrail"}


def _of(monitor: PlanMonitor, type_: str) -> list[Registration]:
    return [r for r in monitor.registrations if r.type == type_]


def _store(children: Children) -> ArtifactStore:
    return ArtifactStore(
        "artifacts",
        {
            "environment": "prod",
            "account_id": "123456789012",
            "region": "us-east-1",
            "bucket_name": "modelrail-prod-artifacts",
            "log_bucket_name": "modelrail-prod-logs",
            "repository_name": "modelrail-prod",
            "experimental_days": 14,
            "candidate_days": 60,
            "tags": TAGS,
        },
        opts=children.opts,
    )


@pulumi.runtime.test  # pulumi ships it unannotated
def test_both_buckets_are_encrypted_versioned_private_and_tls_only(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    children = Children()
    store = _store(children)

    def check(_: Any) -> None:
        buckets = {r.inputs["bucket"] for r in _of(pulumi_mocks, "aws:s3/bucket:Bucket")}
        assert buckets == {"modelrail-prod-artifacts", "modelrail-prod-logs"}
        expectations: list[tuple[str, dict[str, Any]]] = [
            ("bucketVersioning:BucketVersioning", {"versioningConfiguration": {"status": "Enabled"}}),
            (
                "bucketPublicAccessBlock:BucketPublicAccessBlock",
                {
                    "blockPublicAcls": True,
                    "blockPublicPolicy": True,
                    "ignorePublicAcls": True,
                    "restrictPublicBuckets": True,
                },
            ),
        ]
        for side, expected in expectations:
            configured = _of(pulumi_mocks, f"aws:s3/{side}")
            assert {r.inputs["bucket"] for r in configured} == buckets
            for resource in configured:
                assert expected.items() <= resource.inputs.items()
        for sse in _of(
            pulumi_mocks,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        ):
            (rule,) = sse.inputs["rules"]
            assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
            assert rule["bucketKeyEnabled"] is True
        (key,) = _of(pulumi_mocks, "aws:kms/key:Key")
        assert key.inputs["enableKeyRotation"] is True
        (logging,) = _of(pulumi_mocks, "aws:s3/bucketLogging:BucketLogging")
        assert logging.inputs["targetBucket"] == "modelrail-prod-logs"

    return children.settled(store).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_only_experimental_and_candidate_artifacts_expire(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    children = Children()
    store = _store(children)

    def check(_: Any) -> None:
        lifecycle = next(
            r
            for r in _of(pulumi_mocks, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
            if r.inputs["bucket"] == "modelrail-prod-artifacts"
        )
        rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
        assert rules["expire-experimental-artifacts"]["expiration"] == {"days": 14}
        assert rules["expire-experimental-artifacts"]["filter"]["and"] == {
            "prefix": "models/",
            "tags": {"stage": "experimental"},
        }
        assert rules["expire-candidate-artifacts"]["expiration"] == {"days": 60}
        expiring = [rule for rule in rules.values() if "expiration" in rule]
        assert all(
            rule["filter"]["and"]["tags"]["stage"] in {"experimental", "candidate"} for rule in expiring
        )
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}

    return children.settled(store).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_the_image_repository_is_immutable_scanned_and_encrypted(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    children = Children()
    store = _store(children)

    def check(_: Any) -> None:
        (repo,) = _of(pulumi_mocks, "aws:ecr/repository:Repository")
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo.inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
        (lifecycle,) = _of(pulumi_mocks, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
        (rule,) = json.loads(lifecycle.inputs["policy"])["rules"]
        assert rule["selection"]["tagStatus"] == "untagged"

    return children.settled(store).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_children_are_parented_to_their_component(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    children = Children()
    store = _store(children)

    def check(_: Any) -> None:
        (component,) = [
            r for r in pulumi_mocks.registrations if r.type == "modelrail:artifacts:ArtifactStore"
        ]
        children = [r for r in pulumi_mocks.registrations if r.custom]
        assert children
        assert {r.parent for r in children} == {component.urn}

    return children.settled(store).apply(check)


def test_artifact_store_reports_every_bad_argument_at_once() -> None:
    with pytest.raises(ComponentArgsError) as raised:
        ArtifactStore(
            "bad",
            {
                "environment": "Prod",
                "account_id": "1",
                "region": "us-east-1",
                "bucket_name": "b",
                "log_bucket_name": "l",
                "repository_name": "Bad Repo",
                "experimental_days": 0,
            },
        )
    assert raised.value.component == "ArtifactStore 'bad'"
    assert len(raised.value.problems) == 3


def test_candidates_must_outlive_experiments() -> None:
    with pytest.raises(ComponentArgsError, match="candidate_days = 5"):
        ArtifactStore(
            "bad",
            {
                "environment": "prod",
                "account_id": "1",
                "region": "us-east-1",
                "bucket_name": "b",
                "log_bucket_name": "l",
                "repository_name": "r",
                "experimental_days": 10,
                "candidate_days": 5,
            },
        )


def _prod_registry(children: Children) -> ModelRegistry:
    """The prod registry of one service, shared with a second account, as the tests below read it."""
    return ModelRegistry(
        "registry",
        {
            "environment": "prod",
            "account_id": "123456789012",
            "region": "us-east-1",
            "group_names": {"svc": "prod-svc"},
            "reader_account_ids": ["210987654321"],
            "tags": TAGS,
        },
        opts=children.opts,
    )


@pulumi.runtime.test  # pulumi ships it unannotated
def test_registry_routes_package_state_changes_to_an_encrypted_queue(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    children = Children()
    registry = _prod_registry(children)

    def check(_: Any) -> None:
        (group,) = _of(pulumi_mocks, "aws:sagemaker/modelPackageGroup:ModelPackageGroup")
        assert group.inputs["modelPackageGroupName"] == "prod-svc"
        (rule,) = _of(pulumi_mocks, "aws:cloudwatch/eventRule:EventRule")
        pattern = json.loads(rule.inputs["eventPattern"])
        assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
        assert pattern["detail"] == {"ModelPackageGroupName": ["prod-svc"]}
        queues = _of(pulumi_mocks, "aws:sqs/queue:Queue")
        assert len(queues) == 2 and all(q.inputs["kmsMasterKeyId"] for q in queues)
        main = next(q for q in queues if "redrivePolicy" in q.inputs)
        assert json.loads(main.inputs["redrivePolicy"])["maxReceiveCount"] == 5
        (read,) = _of(pulumi_mocks, "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")
        assert "210987654321" in read.inputs["resourcePolicy"]
        assert len(_of(pulumi_mocks, "aws:sqs/queuePolicy:QueuePolicy")) == 2

    return children.settled(registry).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_training_pipeline_registers_pending_manual_approval(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    values = platform_values()
    children = Children()
    training = Training(
        "svc-training",
        {**values, "service": "svc", "model_package_group_name": "prod-svc", "tags": TAGS},
        opts=children.opts,
    )

    def check(_: Any) -> None:
        (pipeline,) = _of(pulumi_mocks, "aws:sagemaker/pipeline:Pipeline")
        definition = json.loads(pipeline.inputs["pipelineDefinition"])
        assert [step["Name"] for step in definition["Steps"]] == ["Train", "Evaluate", "Register"]
        # Register runs the registry's own code, which creates every version PendingManualApproval
        # (tests/integration/test_training_container.py runs it against moto); nothing in the
        # step can ask for another status.
        register = definition["Steps"][2]["Arguments"]
        assert register["AppSpecification"]["ContainerEntrypoint"] == ["python3", "-m", REGISTER_MODULE]
        arguments = register["AppSpecification"]["ContainerArguments"]
        assert arguments[arguments.index("--model-package-group") + 1] == "prod-svc"
        assert "ModelApprovalStatus" not in json.dumps(register)
        assert pipeline.inputs["pipelineName"] == "modelrail-prod-svc"

    return children.settled(training).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_alerts_topic_is_encrypted_and_the_webhook_stays_secret(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    children = Children()
    alerts = Alerts(
        "alerts",
        {
            "environment": "prod",
            "account_id": "123456789012",
            "region": "us-east-1",
            "emails": ["oncall@example.com"],
            "webhook_url": pulumi.Output.secret("https://hooks.example.com/x"),
            "tags": TAGS,
        },
        opts=children.opts,
    )

    def check(_: Any) -> None:
        (topic,) = _of(pulumi_mocks, "aws:sns/topic:Topic")
        assert topic.inputs["kmsMasterKeyId"]
        endpoints = sorted(
            s.inputs["endpoint"] for s in _of(pulumi_mocks, "aws:sns/topicSubscription:TopicSubscription")
        )
        assert endpoints == ["[secret]", "oncall@example.com"]

    return children.settled(alerts).apply(check)


def test_alerts_refuse_a_plain_http_webhook() -> None:
    with pytest.raises(ComponentArgsError, match="use an https:// URL"):
        Alerts(
            "alerts",
            {"environment": "prod", "account_id": "1", "region": "us-east-1", "webhook_url": "http://x"},
        )


@pulumi.runtime.test  # pulumi ships it unannotated
def test_service_monitor_schedules_data_quality_on_the_endpoint(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    children = Children()
    monitor = ServiceMonitor(
        "svc-monitor",
        {
            **{k: v for k, v in platform_values().items() if "repository" not in k},
            "service": "svc",
            "endpoint_name": "prod-svc",
            "guardrails": Guardrails(min_live_accuracy=0.75, max_prediction_drift=0.2),
            "tags": TAGS,
        },
        opts=children.opts,
    )

    def check(_: Any) -> None:
        (job,) = _of(pulumi_mocks, "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition")
        assert job.inputs["dataQualityJobInput"]["endpointInput"]["endpointName"] == "prod-svc"
        assert "468650794304" in job.inputs["dataQualityAppSpecification"]["imageUri"]
        (schedule,) = _of(pulumi_mocks, "aws:sagemaker/monitoringSchedule:MonitoringSchedule")
        assert schedule.inputs["monitoringScheduleConfig"]["monitoringType"] == "DataQuality"
        (dashboard,) = _of(pulumi_mocks, "aws:cloudwatch/dashboard:Dashboard")
        assert dashboard.inputs["dashboardName"] == "modelrail-prod-svc"
        widgets = {
            w["properties"]["title"]: w["properties"]
            for w in json.loads(dashboard.inputs["dashboardBody"])["widgets"]
        }
        lines = {
            title: widget["annotations"]["horizontal"][0]["value"]
            for title, widget in widgets.items()
            if "annotations" in widget
        }
        assert lines == {"Live accuracy": 0.75, "Prediction drift (Jensen-Shannon)": 0.2}

    return children.settled(monitor).apply(check)


def test_service_monitor_needs_an_analyzer_image_in_unknown_regions() -> None:
    values = {k: v for k, v in platform_values().items() if "repository" not in k}
    with pytest.raises(ComponentArgsError, match="pass analyzer_image_uri"):
        ServiceMonitor(
            "m",
            {
                **values,
                "region": "ap-south-2",
                "service": "svc",
                "endpoint_name": "e",
                "guardrails": Guardrails(),
            },
        )


def _registration(monitor: PlanMonitor, urn_suffix: str) -> Registration:
    (found,) = [r for r in monitor.registrations if r.urn.endswith(urn_suffix)]
    return found


def _statements(registration: Registration, prop: str = "policy") -> dict[str, Any]:
    return {s["Sid"]: s for s in json.loads(registration.inputs[prop])["Statement"]}


# The policies below are built from names (known on a stack's first preview) instead of the
# resources' ``arn`` outputs (unknown until AWS creates them); each test checks that the ARN
# built from the name is the ARN the (mock) provider assigns.


@pulumi.runtime.test  # pulumi ships it unannotated
def test_bucket_policies_and_the_repository_arn_are_the_arns_aws_assigns(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    children = Children()
    store = _store(children)

    def check(values: list[Any]) -> None:
        bucket_arn, repository_arn = values[1], values[2]
        statements = _statements(_registration(pulumi_mocks, "::artifacts-policy"))
        assert statements["DenyInsecureTransport"]["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
        (bucket,) = [
            r for r in pulumi_mocks.registrations if r.urn.endswith("aws:s3/bucket:Bucket::artifacts")
        ]
        (repository,) = _of(pulumi_mocks, "aws:ecr/repository:Repository")
        assert bucket_arn == pulumi_mocks.resources[bucket.urn].state["arn"]
        assert repository_arn == pulumi_mocks.resources[repository.urn].state["arn"]

    return pulumi.Output.all(children.settled(store), store.bucket_arn, store.repository_arn).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_queue_policies_name_the_queue_and_the_rule_as_aws_does(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    children = Children()
    registry = _prod_registry(children)

    def check(values: list[Any]) -> None:
        queue_arn, rule_arn, group_arn = values[1], values[2], values[3]
        sends = _statements(_registration(pulumi_mocks, "::registry-events-policy"))["EventBridgeRuleSends"]
        assert sends["Resource"] == [queue_arn]
        assert sends["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
        read = _statements(_registration(pulumi_mocks, "::registry-svc-read"), "resourcePolicy")
        assert group_arn in read["CrossAccountRead"]["Resource"]

    return pulumi.Output.all(
        children.settled(registry), registry.queue_arn, registry.rule.arn, registry.groups["svc"].arn
    ).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_the_topic_policy_names_the_topic_as_aws_does(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    children = Children()
    alerts = Alerts(
        "alerts",
        {"environment": "prod", "account_id": "123456789012", "region": "us-east-1", "tags": TAGS},
        opts=children.opts,
    )

    def check(values: list[Any]) -> None:
        publish = _statements(_registration(pulumi_mocks, "::alerts-topic-policy"))["CloudWatchAlarmsPublish"]
        assert publish["Resource"] == [values[1]]
        assert values[1] == "arn:aws:sns:us-east-1:123456789012:modelrail-prod-alerts"

    return pulumi.Output.all(children.settled(alerts), alerts.topic_arn).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_the_training_role_passes_exactly_itself(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    children = Children()
    training = Training(
        "svc-training",
        {**platform_values(), "service": "svc", "model_package_group_name": "prod-svc", "tags": TAGS},
        opts=children.opts,
    )

    def check(values: list[Any]) -> None:
        passes = _statements(_registration(pulumi_mocks, "::svc-training-role-policy"))[
            "PassOwnRoleToSageMaker"
        ]
        assert passes["Resource"] == [values[1]]

    return pulumi.Output.all(children.settled(training), training.role_arn).apply(check)
