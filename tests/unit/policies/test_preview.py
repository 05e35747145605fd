"""Every rule decides at preview, on properties as CrossGuard hands them over during a first preview.

During ``pulumi preview`` the engine sends what it does not know yet (ARNs, IDs, what is built
from them) as sentinel strings, and pulumi-policy wraps the properties in a proxy that raises
``UnknownValueError`` when one is read. A rule that lets the error escape becomes an advisory
"can't run policy during preview" and enforces nothing. Here each rule sees such a stack: the
compliant one passes, and with one property missing (the rest still unknown) the rule fails.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policies import rules
from policies.crossguard import known_or_unknown, stack_policy

U = UNKNOWN_STRING_VALUE
"""How the engine sends an unknown value (a computed output of any type) to the analyzer."""

TAGS = {"service": "svc", "environment": "prod", "managed-by": "modelrail"}
ALARM = "modelrail-prod-svc-5xx-rate"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


KEY_POLICY = _policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
)
SERVING_POLICY = _policy(
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/models/svc/*"]},
    {
        "Effect": "Allow",
        "Action": ["cloudwatch:DescribeAlarms"],
        "Resource": [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ALARM}"],
    },
)

PREVIEW: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "key": (rules.KMS_KEY, {"arn": U, "keyId": U, "policy": KEY_POLICY, "tags": TAGS}, ()),
    "bucket": (rules.BUCKET, {"bucket": "b", "arn": U, "tags": TAGS}, ()),
    "sse": (
        rules.BUCKET_SSE,
        {
            "bucket": U,
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": U},
                    "bucketKeyEnabled": True,
                }
            ],
        },
        ("bucket", "key"),
    ),
    "versioning": (
        rules.BUCKET_VERSIONING,
        {"bucket": U, "versioningConfiguration": {"status": "Enabled"}},
        ("bucket",),
    ),
    "public-access": (
        rules.BUCKET_PUBLIC_ACCESS,
        {
            "bucket": U,
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
        ("bucket",),
    ),
    "bucket-policy": (
        rules.BUCKET_POLICY,
        {
            "bucket": U,
            "policy": _policy(
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": ["s3:*"],
                    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ),
        },
        ("bucket",),
    ),
    "repository": (
        rules.ECR_REPOSITORY,
        {
            "name": "r",
            "arn": U,
            "repositoryUrl": U,
            "imageTagMutability": "IMMUTABLE",
            "imageScanningConfiguration": {"scanOnPush": True},
            "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": U}],
            "tags": TAGS,
        },
        ("key",),
    ),
    "role": (
        rules.ROLE,
        {
            "name": "svc-role-1a2b3c4",
            "arn": U,
            "assumeRolePolicy": _policy(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": ["sts:AssumeRole"],
                }
            ),
            "tags": TAGS,
        },
        (),
    ),
    "role-policy": (rules.ROLE_POLICY, {"role": U, "policy": SERVING_POLICY}, ("role",)),
    "model": (
        rules.MODEL,
        {"name": "m-1", "arn": U, "executionRoleArn": U, "primaryContainer": {"image": U}, "tags": TAGS},
        ("role", "role-policy"),
    ),
    "alarm": (rules.METRIC_ALARM, {"name": ALARM, "arn": U, "alarmActions": [U], "tags": TAGS}, ()),
    "config": (
        rules.ENDPOINT_CONFIG,
        {
            "name": "c-1",
            "arn": U,
            "kmsKeyArn": U,
            "productionVariants": [{"variantName": "primary", "modelName": "m-1"}],
            "dataCaptureConfig": {
                "enableCapture": True,
                "initialSamplingPercentage": 20,
                "destinationS3Uri": U,
                "kmsKeyId": U,
            },
            "tags": TAGS,
        },
        ("model", "key"),
    ),
    "endpoint": (
        rules.ENDPOINT,
        {
            "name": "prod-svc",
            "arn": U,
            "endpointConfigName": "c-1",
            "deploymentConfig": {
                "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "CANARY"}},
                "autoRollbackConfiguration": {"alarms": [{"alarmName": ALARM}]},
            },
            "tags": TAGS,
        },
        ("config", "alarm"),
    ),
    "queue": (rules.QUEUE, {"name": "q-1", "arn": U, "url": U, "kmsMasterKeyId": U, "tags": TAGS}, ("key",)),
    "topic": (rules.TOPIC, {"name": "t", "arn": U, "kmsMasterKeyId": U, "tags": TAGS}, ("key",)),
}
"""One resource of each kind the rules read, with what a first preview leaves unknown unknown."""


def _urn(name: str) -> str:
    return f"urn:pulumi:prod::modelrail::{PREVIEW[name][0]}::{name}"


def _args(stack: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]]) -> SimpleNamespace:
    """The stack as CrossGuard's ``StackValidationArgs``: proxied properties, resolved dependencies."""
    resources = {
        name: SimpleNamespace(
            urn=f"urn:pulumi:prod::modelrail::{type_}::{name}",
            resource_type=type_,
            props=unknown_checking_proxy(deserialize_properties(copy.deepcopy(props))),
            dependencies=[],
        )
        for name, (type_, props, _) in stack.items()
    }
    for name, (_, _, depends_on) in stack.items():
        resources[name].dependencies = [resources[other] for other in depends_on]
    return SimpleNamespace(resources=list(resources.values()))


def _reported(rule_name: str, stack: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]]) -> list[str]:
    """What CrossGuard would report for one rule; an unknown read escaping would raise here."""
    (rule,) = [r for r in rules.RULES if r.name == rule_name]
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(f"{urn}: {message}")

    stack_policy(rule).validate(_args(stack), report)  # type: ignore[arg-type]  # a stand-in for the args
    return reported


def _without(name: str, path: str) -> Callable[[dict[str, Any]], None]:
    """A change to the preview stack: drop one (dotted) property of one resource."""

    def drop(stack: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        value = stack[name][1]
        for part in parents:
            value = value[part][0] if isinstance(value[part], list) else value[part]
        del value[last]

    return drop


def _with(name: str, prop: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def put(stack: dict[str, Any]) -> None:
        stack[name][1][prop] = value

    return put


def _no_alarm_statement(stack: dict[str, Any]) -> None:
    stack["role-policy"][1]["policy"] = _policy(json.loads(SERVING_POLICY)["Statement"][0])


BROKEN: dict[str, list[tuple[str, Callable[[dict[str, Any]], None]]]] = {
    "s3-bucket-kms-encrypted": [
        ("no key", _without("sse", "rules.applyServerSideEncryptionByDefault.kmsMasterKeyId")),
        ("no encryption", lambda stack: stack.pop("sse")),
    ],
    "s3-bucket-versioned": [("no versioning", _without("versioning", "versioningConfiguration"))],
    "s3-bucket-public-access-blocked": [("one flag", _without("public-access", "restrictPublicBuckets"))],
    "s3-bucket-tls-only": [("no deny", _with("bucket-policy", "policy", _policy()))],
    "ecr-tags-immutable": [("mutable", _without("repository", "imageTagMutability"))],
    "ecr-scan-on-push": [("no scan", _without("repository", "imageScanningConfiguration"))],
    "sagemaker-endpoint-config-kms": [("no key", _without("config", "kmsKeyArn"))],
    "sagemaker-endpoint-config-data-capture": [("no capture", _without("config", "dataCaptureConfig"))],
    "sagemaker-prod-endpoint-gradual-rollout": [
        ("no rollback", _without("endpoint", "deploymentConfig.autoRollbackConfiguration"))
    ],
    "sagemaker-endpoint-role-reads-rollback-alarms": [("no DescribeAlarms", _no_alarm_statement)],
    "sqs-queue-kms": [("no key", _without("queue", "kmsMasterKeyId"))],
    "sns-topic-kms": [("no key", _without("topic", "kmsMasterKeyId"))],
    "iam-no-wildcard-action": [
        (
            "wildcard",
            _with("role-policy", "policy", _policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})),
        ),
        ("document unknown as a whole", _with("role-policy", "policy", U)),
    ],
    "kms-key-policy-delegates-to-iam": [
        (
            "root without grants",
            _with(
                "key",
                "policy",
                _policy(
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:PutKeyPolicy"],
                        "Resource": "*",
                    }
                ),
            ),
        ),
        ("policy unknown", _with("key", "policy", U)),
    ],
    "resources-tagged": [
        ("no service tag", lambda stack: stack["topic"][1].update(tags={"environment": "prod"}))
    ],
}


def test_the_stand_in_raises_on_unknowns_as_crossguard_does() -> None:
    """Without ``known_or_unknown`` a rule reading kmsKeyArn would raise, and only be an advisory."""
    (config,) = [r for r in _args(PREVIEW).resources if r.resource_type == rules.ENDPOINT_CONFIG]
    with pytest.raises(UnknownValueError):
        config.props["kmsKeyArn"]
    assert known_or_unknown(config.props)["kmsKeyArn"] is rules.UNKNOWN


def test_every_rule_is_exercised() -> None:
    assert set(BROKEN) == {rule.name for rule in rules.RULES}


@pytest.mark.parametrize("rule_name", sorted(BROKEN))
def test_a_compliant_stack_passes_at_preview(rule_name: str) -> None:
    assert _reported(rule_name, PREVIEW) == []


@pytest.mark.parametrize(
    ("rule_name", "change"),
    [(name, change) for name, changes in sorted(BROKEN.items()) for change, _ in changes],
)
def test_a_missing_property_fails_at_preview_whatever_else_is_unknown(rule_name: str, change: str) -> None:
    stack = copy.deepcopy(PREVIEW)
    dict(BROKEN[rule_name])[change](stack)
    reported = _reported(rule_name, stack)
    assert reported, f"{rule_name} let '{change}' through"
    assert all("Fix:" in message for message in reported)


def test_an_unknown_key_counts_as_set_only_when_a_key_of_the_stack_produces_it() -> None:
    stack = copy.deepcopy(PREVIEW)
    stack["queue"] = (rules.QUEUE, stack["queue"][1], ())
    (message,) = _reported("sqs-queue-kms", stack)
    assert "unknown at preview and comes from no KMS key of this stack" in message


def test_an_unknown_document_fails_with_the_fix_of_building_it_from_names() -> None:
    stack = copy.deepcopy(PREVIEW)
    stack["role-policy"][1]["policy"] = U
    (message,) = _reported("sagemaker-endpoint-role-reads-rollback-alarms", stack)
    assert "unknown at preview, so it cannot be checked" in message
    assert "infra.naming builds ARNs from names" in message
