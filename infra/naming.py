"""Physical names that the infrastructure and the controller must agree on.

Most resources are auto-named by Pulumi. These are not, because the controller finds them by
name (the artifact bucket, model package groups, endpoints) or because renaming them would
replace a resource that must survive rollouts (the rollback alarms). Keep every such name here.
"""

from __future__ import annotations

VARIANT_NAME = "primary"
"""The production variant. It must never change between endpoint configurations."""

SHADOW_VARIANT_NAME = "shadow"
"""The shadow variant of a shadow phase; CloudWatch reports its metrics under this ``VariantName``."""

QUALITY_NAMESPACE = "modelrail"
"""CloudWatch namespace of the metrics the controller publishes."""

LIVE_ACCURACY_METRIC = "LiveAccuracy"
"""Accuracy on delayed labels, published by the controller; one of the rollback alarms watches it.

Published with the dimensions ``EndpointName`` and ``VariantName``, like SageMaker's own metrics."""

PREDICTION_DRIFT_METRIC = "PredictionDrift"
"""Jensen-Shannon distance of the canary's predictions from the baseline's, published by the
controller (same namespace and dimensions); shown on the service dashboard."""

GUARDRAILS = ("5xx-rate", "4xx-rate", "p99-latency", "live-accuracy")
"""The alarm kinds every endpoint carries, in a fixed order (changing the list replaces the endpoint)."""


def artifact_bucket_name(environment: str, account_id: str, region: str) -> str:
    """The artifact bucket: globally unique through the account and region."""
    return f"modelrail-{environment}-artifacts-{account_id}-{region}"


def access_log_bucket_name(environment: str, account_id: str, region: str) -> str:
    """The bucket receiving the artifact bucket's access logs."""
    return f"modelrail-{environment}-access-logs-{account_id}-{region}"


def model_package_group_name(environment: str, service: str) -> str:
    """One SageMaker model package group per service and environment."""
    return f"{environment}-{service}"


def endpoint_name(environment: str, service: str) -> str:
    """The SageMaker endpoint of a service; stable so clients and alarms can name it."""
    return f"{environment}-{service}"


MODEL_VERSION_ANNOTATION = "modelrail.io/model-version"
"""The annotation of an InferenceService naming the model version its spec serves: KServe's
status names revisions, not models, so the controller reads the version from it."""


def version_config_name(service: str, version: str) -> str:
    """The name a version's serving configuration is known by where the platform does not name
    it (the sandbox's endpoint configurations, a KServe revision's spec): service and short sha."""
    return f"{service}-{version[:12]}"


def alerts_topic_name(environment: str) -> str:
    """The environment's alerts topic: the guardrail alarms and the controller publish to it."""
    return f"modelrail-{environment}-alerts"


def alarm_name(environment: str, service: str, guardrail: str) -> str:
    """A rollback alarm's name, derived from the service so it never changes between rollouts."""
    if guardrail not in GUARDRAILS:
        raise ValueError(f"unknown guardrail {guardrail!r}; known: {', '.join(GUARDRAILS)}")
    return f"modelrail-{environment}-{service}-{guardrail}"


def artifact_key(service: str, package_sha: str) -> str:
    """Content-addressed location of a model package inside the artifact bucket."""
    return f"models/{service}/{package_sha}/model.tar.gz"


def image_repository_name(environment: str) -> str:
    """The ECR repository holding the serving (and training) images of an environment."""
    return f"modelrail-{environment}"


def dashboard_name(environment: str, service: str) -> str:
    """The CloudWatch dashboard of a service."""
    return f"modelrail-{environment}-{service}"


def alarm_names(environment: str, service: str) -> tuple[str, ...]:
    """Every rollback alarm of a service, in ``GUARDRAILS`` order: the endpoint's fixed alarm list."""
    return tuple(alarm_name(environment, service, guardrail) for guardrail in GUARDRAILS)


def artifact_key_alias(environment: str) -> str:
    """The alias of the artifact key; role policies name the key through it (see ``any_key_arn``)."""
    return f"alias/modelrail-{environment}-artifacts"


# ARNs built from names. AWS assigns an ARN when it creates the resource, so until then (on the
# first preview of a stack) a resource's ``arn`` output is unknown, and so is any policy document
# rendered from it; the same ARN built from the name is known, and the policy can be checked.


def bucket_arn(bucket: str) -> str:
    """An S3 bucket's ARN (no region or account: bucket names are global)."""
    return f"arn:aws:s3:::{bucket}"


def repository_arn(region: str, account_id: str, repository: str) -> str:
    """An ECR repository's ARN."""
    return f"arn:aws:ecr:{region}:{account_id}:repository/{repository}"


def topic_arn(region: str, account_id: str, topic: str) -> str:
    """An SNS topic's ARN: the name follows the account directly, without a resource type."""
    return f"arn:aws:sns:{region}:{account_id}:{topic}"


def queue_arn(region: str, account_id: str, queue: str) -> str:
    """An SQS queue's ARN: the name follows the account directly, without a resource type."""
    return f"arn:aws:sqs:{region}:{account_id}:{queue}"


def event_rule_arn(region: str, account_id: str, rule: str) -> str:
    """An EventBridge rule's ARN on the default event bus."""
    return f"arn:aws:events:{region}:{account_id}:rule/{rule}"


def role_arn(account_id: str, role: str) -> str:
    """An IAM role's ARN, for a role on the default path ``/`` (IAM is global: no region)."""
    return f"arn:aws:iam::{account_id}:role/{role}"


def alarm_arn(region: str, account_id: str, alarm: str) -> str:
    """A CloudWatch alarm's ARN: ``alarm:`` and the name, separated by a colon, not a slash."""
    return f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{alarm}"


def sagemaker_arn(region: str, account_id: str, resource_type: str, name: str) -> str:
    """A SageMaker ARN (``endpoint``, ``model-package-group``…); SageMaker writes the name in lower case."""
    return f"arn:aws:sagemaker:{region}:{account_id}:{resource_type}/{name.lower()}"


def any_key_arn(region: str, account_id: str) -> str:
    """Every KMS key of an account and region: with a ``kms:ResourceAliases`` condition, one key.

    A key's ARN holds an ID that AWS draws when it creates the key, so no name gives it in
    advance. Role policies therefore name the key as "the key carrying this alias" (AWS's
    alias-based access control), which is known before the key exists.
    """
    return f"arn:aws:kms:{region}:{account_id}:key/*"
