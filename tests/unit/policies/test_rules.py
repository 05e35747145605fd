"""Each policy rule, with one compliant and one non-compliant stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies import rules
from policies.rules import RULES, Resource, Stack, evaluate

TAGS = {"service": "svc", "environment": "prod", "managed-by": "modelrail"}
BUCKET_URN = "urn:pulumi:prod::modelrail::aws:s3/bucket:Bucket::artifacts"


def _resource(type_: str, name: str, props: dict[str, Any], depends_on: tuple[str, ...] = ()) -> Resource:
    return Resource(f"urn:pulumi:prod::modelrail::{type_}::{name}", type_, props, depends_on)


def _bucket_stack(**overrides: dict[str, Any] | None) -> Stack:
    """A bucket with all four side resources; an override of None drops that side resource."""
    side: dict[str, dict[str, Any] | None] = {
        rules.BUCKET_SSE: {
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": "arn:k",
                    },
                    "bucketKeyEnabled": True,
                }
            ]
        },
        rules.BUCKET_VERSIONING: {"versioningConfiguration": {"status": "Enabled"}},
        rules.BUCKET_PUBLIC_ACCESS: dict.fromkeys(
            ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
        ),
        rules.BUCKET_POLICY: {
            "policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                }
            )
        },
    }
    for key, value in overrides.items():
        side[getattr(rules, key)] = value
    resources = [Resource(BUCKET_URN, rules.BUCKET, {"bucket": "b", "tags": TAGS})]
    for type_, props in side.items():
        if props is not None:
            resources.append(
                _resource(type_, f"side-{len(resources)}", {"bucket": "b", **props}, (BUCKET_URN,))
            )
    return Stack(tuple(resources))


def _violations(rule_name: str, stack: Stack) -> list[str]:
    (rule,) = [r for r in RULES if r.name == rule_name]
    return [v.message for v in rule.evaluate(stack)]


def test_rule_names_are_unique_and_every_rule_names_a_fix() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert all(rule.fix and rule.description for rule in RULES)


@pytest.mark.parametrize(
    ("rule_name", "side", "broken"),
    [
        ("s3-bucket-kms-encrypted", "BUCKET_SSE", None),
        (
            "s3-bucket-kms-encrypted",
            "BUCKET_SSE",
            {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        ),
        ("s3-bucket-versioned", "BUCKET_VERSIONING", None),
        ("s3-bucket-versioned", "BUCKET_VERSIONING", {"versioningConfiguration": {"status": "Suspended"}}),
        ("s3-bucket-public-access-blocked", "BUCKET_PUBLIC_ACCESS", None),
        (
            "s3-bucket-public-access-blocked",
            "BUCKET_PUBLIC_ACCESS",
            {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True},
        ),
        ("s3-bucket-tls-only", "BUCKET_POLICY", None),
        ("s3-bucket-tls-only", "BUCKET_POLICY", {"policy": json.dumps({"Statement": []})}),
    ],
)
def test_bucket_rules(rule_name: str, side: str, broken: dict[str, Any] | None) -> None:
    assert _violations(rule_name, _bucket_stack()) == []
    (message,) = _violations(rule_name, _bucket_stack(**{side: broken}))
    assert message


def test_side_resources_of_another_bucket_do_not_count() -> None:
    stack = _bucket_stack()
    other = Resource("urn:pulumi:prod::modelrail::aws:s3/bucket:Bucket::other", rules.BUCKET, {"bucket": "o"})
    assert len(_violations("s3-bucket-versioned", Stack((*stack.resources, other)))) == 1


@pytest.mark.parametrize(
    ("rule_name", "type_", "good", "bad"),
    [
        (
            "ecr-tags-immutable",
            rules.ECR_REPOSITORY,
            {"imageTagMutability": "IMMUTABLE"},
            {"imageTagMutability": "MUTABLE"},
        ),
        (
            "ecr-scan-on-push",
            rules.ECR_REPOSITORY,
            {"imageScanningConfiguration": {"scanOnPush": True}},
            {"imageScanningConfiguration": {"scanOnPush": False}},
        ),
        ("sagemaker-endpoint-config-kms", rules.ENDPOINT_CONFIG, {"kmsKeyArn": "arn:k"}, {}),
        (
            "sagemaker-endpoint-config-data-capture",
            rules.ENDPOINT_CONFIG,
            {"dataCaptureConfig": {"enableCapture": True, "initialSamplingPercentage": 10}},
            {"dataCaptureConfig": {"enableCapture": False, "initialSamplingPercentage": 0}},
        ),
        ("sqs-queue-kms", rules.QUEUE, {"kmsMasterKeyId": "arn:k"}, {"sqsManagedSseEnabled": True}),
        ("sns-topic-kms", rules.TOPIC, {"kmsMasterKeyId": "arn:k"}, {}),
        (
            "iam-no-wildcard-action",
            "aws:iam/rolePolicy:RolePolicy",
            {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"]}]})},
            {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": ["s3:*"]}]})},
        ),
        (
            "iam-no-wildcard-action",
            "aws:kms/key:Key",
            {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt"}]})},
            {"policy": json.dumps({"Statement": [{"Effect": "Deny", "Action": "*"}]})},
        ),
        (
            "iam-no-wildcard-action",
            "aws:iam/role:Role",
            {
                "assumeRolePolicy": json.dumps(
                    {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
                )
            },
            {"inlinePolicies": [{"policy": json.dumps({"Statement": {"Effect": "Allow", "Action": "*"}})}]},
        ),
        ("resources-tagged", "aws:sagemaker/model:Model", {"tags": TAGS}, {"tags": {"service": "svc"}}),
    ],
)
def test_single_resource_rules(rule_name: str, type_: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    assert _violations(rule_name, Stack((_resource(type_, "good", good),))) == []
    (message,) = _violations(rule_name, Stack((_resource(type_, "bad", bad),)))
    assert message


def test_a_deny_may_cover_a_whole_service_but_never_everything() -> None:
    deny_s3 = {"policy": json.dumps({"Statement": [{"Effect": "Deny", "Action": "s3:*"}]})}
    assert _violations("iam-no-wildcard-action", Stack((_resource(rules.BUCKET_POLICY, "p", deny_s3),))) == []


def _endpoint(environment: str, routing: str, alarms: list[str]) -> Resource:
    return _resource(
        rules.ENDPOINT,
        "ep",
        {
            "tags": {**TAGS, "environment": environment},
            "deploymentConfig": {
                "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": routing}},
                "autoRollbackConfiguration": {"alarms": [{"alarmName": name} for name in alarms]},
            },
        },
    )


ALARM = _resource(rules.METRIC_ALARM, "alarm", {"name": "modelrail-prod-svc-5xx-rate", "tags": TAGS})


@pytest.mark.parametrize("routing", ["CANARY", "LINEAR"])
def test_prod_endpoint_with_a_gradual_rollout_and_declared_alarms_complies(routing: str) -> None:
    stack = Stack((_endpoint("prod", routing, ["modelrail-prod-svc-5xx-rate"]), ALARM))
    assert _violations("sagemaker-prod-endpoint-gradual-rollout", stack) == []


@pytest.mark.parametrize(
    ("routing", "alarms", "expected"),
    [
        ("ALL_AT_ONCE", ["modelrail-prod-svc-5xx-rate"], "not CANARY or LINEAR"),
        ("CANARY", [], "no auto-rollback alarms"),
        ("CANARY", ["modelrail-prod-svc-typo"], "not declared in this stack: modelrail-prod-svc-typo"),
    ],
)
def test_prod_endpoint_without_guarded_gradual_rollout_is_refused(
    routing: str, alarms: list[str], expected: str
) -> None:
    (message,) = _violations(
        "sagemaker-prod-endpoint-gradual-rollout", Stack((_endpoint("prod", routing, alarms), ALARM))
    )
    assert expected in message


def test_non_prod_endpoints_may_roll_out_all_at_once() -> None:
    assert (
        _violations("sagemaker-prod-endpoint-gradual-rollout", Stack((_endpoint("dev", "ALL_AT_ONCE", []),)))
        == []
    )


def test_evaluate_orders_violations_by_rule_then_urn() -> None:
    stack = Stack(
        (
            _resource(rules.TOPIC, "b", {"tags": TAGS}),
            _resource(rules.TOPIC, "a", {"tags": {}}),
        )
    )
    found = [(v.rule, v.urn.rsplit("::", 1)[1]) for v in evaluate(stack)]
    assert found == [("resources-tagged", "a"), ("sns-topic-kms", "a"), ("sns-topic-kms", "b")]


def test_taggable_types_match_what_pulumi_aws_accepts() -> None:
    import importlib

    from pipelines.plan import build_plan

    declared = {step["newState"]["type"] for step in build_plan("prod")["steps"]}
    for type_ in sorted(t for t in declared if t.startswith("aws:")):
        module, cls = type_.split(":")[1].split("/")[0], type_.rsplit(":", 1)[1]
        resource_class = getattr(importlib.import_module(f"pulumi_aws.{module}"), cls)
        takes_tags = "tags" in resource_class._internal_init.__code__.co_varnames
        assert takes_tags == (type_ in rules.TAGGABLE_TYPES), type_


def _key_policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"policy": json.dumps({"Statement": list(statements)})}


ROOT = {"AWS": "arn:aws:iam::123456789012:root"}


def test_a_key_policy_may_give_only_the_account_root_kms_star() -> None:
    """AWS's default key policy; a root limited to a list of actions can delegate only those."""
    root = _key_policy({"Effect": "Allow", "Principal": ROOT, "Action": "kms:*", "Resource": "*"})
    role = _key_policy(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/r"}, "Action": "kms:*"}
    )
    assert _violations("iam-no-wildcard-action", Stack((_resource(rules.KMS_KEY, "k", root),))) == []
    (message,) = _violations("iam-no-wildcard-action", Stack((_resource(rules.KMS_KEY, "k", role),)))
    assert "Allow kms:*" in message


def test_kms_star_outside_a_key_policy_is_a_wildcard() -> None:
    policy = _key_policy({"Effect": "Allow", "Principal": ROOT, "Action": "kms:*", "Resource": "*"})
    (message,) = _violations("iam-no-wildcard-action", Stack((_resource(rules.ROLE_POLICY, "p", policy),)))
    assert "Allow kms:*" in message


@pytest.mark.parametrize(
    ("statement", "delegates"),
    [
        ({"Effect": "Allow", "Principal": ROOT, "Action": "kms:*", "Resource": "*"}, True),
        (
            {"Effect": "Allow", "Principal": ROOT, "Action": ["kms:*Grant*", "kms:Decrypt"], "Resource": "*"},
            True,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": ROOT,
                "Action": ["kms:Decrypt", "kms:PutKeyPolicy"],
                "Resource": "*",
            },
            False,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": ROOT,
                "Action": "kms:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ml"}},
            },
            False,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "kms:*",
                "Resource": "*",
            },
            False,
        ),
    ],
)
def test_a_key_policy_must_let_iam_policies_delegate_grants(
    statement: dict[str, Any], delegates: bool
) -> None:
    found = _violations(
        "kms-key-policy-delegates-to-iam", Stack((_resource(rules.KMS_KEY, "k", _key_policy(statement)),))
    )
    assert (found == []) is delegates
    if not delegates:
        assert "cannot delegate kms:CreateGrant" in found[0]


def test_a_key_without_a_policy_gets_aws_default_which_delegates() -> None:
    assert _violations("kms-key-policy-delegates-to-iam", Stack((_resource(rules.KMS_KEY, "k", {}),))) == []


def _serving_stack(role_policy: dict[str, Any]) -> Stack:
    """Endpoint → configuration → model → role → role policy, linked by dependencies as in a plan."""
    role = _resource(rules.ROLE, "role", {})
    policy = _resource(rules.ROLE_POLICY, "role-policy", {"policy": json.dumps(role_policy)}, (role.urn,))
    model = _resource(rules.MODEL, "model", {"executionRoleArn": "[unknown]"}, (role.urn, policy.urn))
    config = _resource(
        rules.ENDPOINT_CONFIG, "config", {"productionVariants": [{"modelName": "m-1"}]}, (model.urn,)
    )
    endpoint = _resource(
        rules.ENDPOINT,
        "endpoint",
        {
            "deploymentConfig": {
                "autoRollbackConfiguration": {"alarms": [{"alarmName": "modelrail-prod-svc-5xx-rate"}]}
            }
        },
        (config.urn,),
    )
    return Stack((role, policy, model, config, endpoint))


@pytest.mark.parametrize(
    ("resource", "readable"),
    [
        ("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:modelrail-prod-svc-5xx-rate", True),
        ("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:modelrail-prod-svc-*", True),
        ("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:modelrail-prod-other-5xx-rate", False),
        ("arn:aws:sns:eu-west-1:123456789012:modelrail-prod-svc-5xx-rate", False),
    ],
)
def test_the_execution_role_must_read_the_endpoints_rollback_alarms(resource: str, readable: bool) -> None:
    statement = {"Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms"], "Resource": [resource]}
    found = _violations(
        "sagemaker-endpoint-role-reads-rollback-alarms", _serving_stack({"Statement": [statement]})
    )
    assert (found == []) is readable
    if not readable:
        assert found == ["execution role role cannot read modelrail-prod-svc-5xx-rate"]


def test_an_endpoint_whose_role_is_not_in_the_stack_is_refused() -> None:
    stack = Stack(tuple(r for r in _serving_stack({"Statement": []}).resources if r.type != rules.ROLE))
    (message,) = _violations("sagemaker-endpoint-role-reads-rollback-alarms", stack)
    assert "no execution role found" in message


def test_the_plans_unknown_text_becomes_unknown() -> None:
    from pipelines.plan.values import UNKNOWN_TEXT

    assert rules.PLAN_UNKNOWN_TEXT == UNKNOWN_TEXT
    plan = {
        "steps": [
            {
                "urn": "urn:pulumi:prod::modelrail::aws:sqs/queue:Queue::q",
                "newState": {
                    "urn": "urn:pulumi:prod::modelrail::aws:sqs/queue:Queue::q",
                    "type": rules.QUEUE,
                    "inputs": {"kmsMasterKeyId": UNKNOWN_TEXT, "tags": {"service": [UNKNOWN_TEXT]}},
                },
            }
        ]
    }
    (queue,) = rules.stack_from_plan(plan).resources
    assert queue.props["kmsMasterKeyId"] is rules.UNKNOWN
    assert queue.props["tags"]["service"] == [rules.UNKNOWN]
