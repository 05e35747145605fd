"""Policy documents are pure functions: least privilege, no wildcard actions, deterministic JSON."""

from __future__ import annotations

import json

import pytest

from components import iam
from components.base import render_json

ACCOUNT = "123456789012"
BUCKET = "arn:aws:s3:::bucket"
ALIAS = "alias/modelrail-prod-artifacts"
REPO = "arn:aws:ecr:eu-west-1:123456789012:repository/r"
ALARMS = [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:modelrail-prod-svc-{kind}" for kind in ("a", "b")]

DOCUMENTS = {
    "assume": iam.assume_role_policy("sagemaker.amazonaws.com", ACCOUNT),
    "bucket": iam.bucket_policy(BUCKET, None, ACCOUNT),
    "log-bucket": iam.bucket_policy(BUCKET, "arn:aws:s3:::source", ACCOUNT),
    "key": iam.kms_key_policy(ACCOUNT, ["logging.s3.amazonaws.com"]),
    "training": iam.training_policy(
        bucket_arn=BUCKET,
        data_prefix="datasets/svc/",
        output_prefix="training/svc/",
        model_prefix="models/svc/",
        repository_arn=REPO,
        kms_key_alias=ALIAS,
        model_package_group="prod-svc",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/train",
        region="eu-west-1",
        account_id=ACCOUNT,
    ),
    "serving": iam.serving_policy(
        bucket_arn=BUCKET,
        model_prefix="models/svc/",
        capture_prefix="data-capture/svc/",
        repository_arn=REPO,
        kms_key_alias=ALIAS,
        alarm_arns=ALARMS,
        region="eu-west-1",
        account_id=ACCOUNT,
    ),
    "monitoring": iam.monitoring_policy(
        bucket_arn=BUCKET,
        capture_prefix="data-capture/svc/",
        output_prefix="monitoring/svc/",
        kms_key_alias=ALIAS,
        region="eu-west-1",
        account_id=ACCOUNT,
    ),
    "invoke": iam.invoke_policy("arn:aws:sagemaker:eu-west-1:123456789012:endpoint/prod-svc"),
    "queue": iam.queue_policy("arn:aws:sqs:eu-west-1:123456789012:q", "arn:aws:events:eu-west-1:1:rule/r"),
    "topic": iam.topic_policy("arn:aws:sns:eu-west-1:123456789012:t", ACCOUNT),
    "group-read": iam.model_package_group_read_policy(
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/prod-svc", ["210987654321"]
    ),
}

STAR_RESOURCE_ALLOWED = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
"""Actions AWS offers no resource-level permissions for; key policies are the other exception."""
ROLE_POLICIES = ("training", "serving", "monitoring")


@pytest.mark.parametrize("name", sorted(set(DOCUMENTS) - {"key"}))
def test_no_document_allows_a_wildcard_action(name: str) -> None:
    for effect, action in iam.actions_of(DOCUMENTS[name]):
        assert action != "*"
        if effect == "Allow":
            assert "*" not in action, f"{name}: {action}"


def test_the_only_wildcard_in_a_key_policy_is_the_roots_kms_star() -> None:
    wildcards = [
        statement
        for statement in DOCUMENTS["key"]["Statement"]
        if any("*" in action for _, action in iam.actions_of({"Statement": [statement]}))
    ]
    assert [(s["Principal"], s["Action"]) for s in wildcards] == [
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "kms:*")
    ]


@pytest.mark.parametrize("name", sorted(set(DOCUMENTS) - {"key"}))
def test_star_resources_appear_only_where_aws_requires_them(name: str) -> None:
    for statement in DOCUMENTS[name]["Statement"]:
        resources = statement.get("Resource", [])
        if "*" in ([resources] if isinstance(resources, str) else resources):
            assert set(statement["Action"]) <= STAR_RESOURCE_ALLOWED, statement["Sid"]


def test_the_key_policy_has_aws_default_shape_so_iam_policies_can_delegate_grants() -> None:
    """A root limited to a list of actions can delegate only those: nobody could kms:CreateGrant."""
    (root, services) = DOCUMENTS["key"]["Statement"]
    assert root == {
        "Sid": "EnableIamPolicies",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    assert services["Principal"] == {"Service": ["logging.s3.amazonaws.com"]}
    assert services["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]


@pytest.mark.parametrize("name", ROLE_POLICIES)
def test_sagemaker_roles_may_create_grants_only_for_aws_resources(name: str) -> None:
    grants = next(s for s in DOCUMENTS[name]["Statement"] if s["Sid"] == "GrantKeyToAwsResources")
    assert grants["Action"] == ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


@pytest.mark.parametrize("name", ROLE_POLICIES)
def test_roles_name_the_key_by_its_alias_known_before_the_key_exists(name: str) -> None:
    for sid in ("UseKey", "GrantKeyToAwsResources"):
        statement = next(s for s in DOCUMENTS[name]["Statement"] if s["Sid"] == sid)
        assert statement["Resource"] == ["arn:aws:kms:eu-west-1:123456789012:key/*"]
        assert statement["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": ALIAS}


def test_the_serving_role_reads_exactly_its_rollback_alarms() -> None:
    """SageMaker reads the auto-rollback alarms with the endpoint's execution role."""
    (statement,) = [
        s for s in DOCUMENTS["serving"]["Statement"] if "cloudwatch:DescribeAlarms" in s["Action"]
    ]
    assert statement["Action"] == ["cloudwatch:DescribeAlarms"]
    assert statement["Resource"] == sorted(ALARMS)


def test_bucket_policy_refuses_plain_http_and_non_kms_encryption() -> None:
    statements = {s["Sid"]: s for s in DOCUMENTS["bucket"]["Statement"]}
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements["DenyObjectsNotEncryptedWithKms"]["Effect"] == "Deny"
    assert "AllowAccessLogDelivery" not in statements


def test_log_bucket_accepts_access_logs_only_from_its_source_bucket() -> None:
    delivery = next(s for s in DOCUMENTS["log-bucket"]["Statement"] if s["Sid"] == "AllowAccessLogDelivery")
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:s3:::source"}
    assert delivery["Resource"] == [f"{BUCKET}/access-logs/*"]


def test_training_role_reads_only_its_data_and_writes_only_its_output() -> None:
    statements = {s["Sid"]: s for s in DOCUMENTS["training"]["Statement"]}
    assert statements["ReadTrainingData"]["Resource"] == [f"{BUCKET}/datasets/svc/*"]
    assert statements["WriteTrainingOutput"]["Resource"] == [f"{BUCKET}/training/svc/*"]
    assert statements["PullImages"]["Resource"] == [REPO]
    assert statements["PassOwnRoleToSageMaker"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_serving_role_reads_only_its_own_service_models() -> None:
    statements = {s["Sid"]: s for s in DOCUMENTS["serving"]["Statement"]}
    assert statements["ReadModelArtifacts"]["Resource"] == [f"{BUCKET}/models/svc/*"]
    assert statements["WriteCapturedData"]["Resource"] == [f"{BUCKET}/data-capture/svc/*"]


def test_cross_account_readers_cannot_write() -> None:
    actions = {action for _, action in iam.actions_of(DOCUMENTS["group-read"])}
    assert actions == {
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
    }


def test_rendering_is_sorted_and_stable() -> None:
    text = render_json(DOCUMENTS["serving"])
    assert text == render_json(json.loads(text))
    assert text.index('"Statement"') < text.index('"Version"')
