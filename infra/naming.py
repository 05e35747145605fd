"""Physical names that the infrastructure and the controller must agree on.

Most resources are auto-named by Pulumi. These are not, because the controller finds them by
name (the artifact bucket, model package groups, endpoints) or because renaming them would
replace a resource that must survive rollouts (the rollback alarms). Keep every such name here.
"""

from __future__ import annotations

VARIANT_NAME = "primary"
"""The production variant. It must never change between endpoint configurations."""

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
