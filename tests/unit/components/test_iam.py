"""Policy documents are pure functions: least privilege, no wildcard actions, deterministic JSON."""

from __future__ import annotations

import json

import pytest

from components import iam
from components.base import render_json

ACCOUNT = "123456789012"
BUCKET = "arn:aws:s3:::bucket"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
REPO = "arn:aws:ecr:eu-west-1:123456789012:repository/r"

DOCUMENTS = {
    "assume": iam.assume_role_policy("sagemaker.amazonaws.com", ACCOUNT),
    "bucket": iam.bucket_policy(BUCKET, None, ACCOUNT),
    "log-bucket": iam.bucket_policy(BUCKET, "arn:aws:s3:::source", ACCOUNT),
    "key": iam.kms_key_policy(ACCOUNT, ["logging.s3.amazonaws.com"]),
    "training": iam.training_policy(
        bucket_arn=BUCKET,
        data_prefix="datasets/svc/",
        output_prefix="training/svc/",
        repository_arn=REPO,
        kms_key_arn=KEY,
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
        kms_key_arn=KEY,
        region="eu-west-1",
        account_id=ACCOUNT,
    ),
    "monitoring": iam.monitoring_policy(
        bucket_arn=BUCKET,
        capture_prefix="data-capture/svc/",
        output_prefix="monitoring/svc/",
        kms_key_arn=KEY,
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


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_no_document_allows_a_wildcard_action(name: str) -> None:
    for effect, action in iam.actions_of(DOCUMENTS[name]):
        assert action != "*"
        if effect == "Allow":
            assert "*" not in action, f"{name}: {action}"


@pytest.mark.parametrize("name", sorted(set(DOCUMENTS) - {"key"}))
def test_star_resources_appear_only_where_aws_requires_them(name: str) -> None:
    for statement in DOCUMENTS[name]["Statement"]:
        resources = statement.get("Resource", [])
        if "*" in ([resources] if isinstance(resources, str) else resources):
            assert set(statement["Action"]) <= STAR_RESOURCE_ALLOWED, statement["Sid"]


def test_key_policy_names_its_actions_instead_of_kms_star() -> None:
    actions = {action for _, action in iam.actions_of(DOCUMENTS["key"])}
    assert "kms:*" not in actions
    assert {"kms:ScheduleKeyDeletion", "kms:Decrypt", "kms:GenerateDataKey"} <= actions


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
