"""Compose one environment's delivery platform from the typed stack config.

Shared per environment: the artifact store (buckets, key, image repository), the model
registry and its event queue, and the alerts topic. Per service: a training pipeline; per
``sagemaker`` service a guarded endpoint and its monitoring, per ``kserve`` service an
InferenceService on the platform's cluster (``infra.kserve``). Every taggable resource carries the
platform's tags plus ``service``, ``environment`` and ``managed-by``; shared resources have
``service: platform``.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.artifacts import ArtifactStore
from components.base import standard_tags
from components.endpoint import ModelEndpoint
from components.monitoring import Alerts, ServiceMonitor
from components.registry import ModelRegistry
from components.training import Training
from infra import naming
from infra.config import Service, StackConfig
from infra.kserve import build_kserve_services

SHARED = "platform"
"""The ``service`` tag of resources every service shares."""


def build_platform(config: StackConfig) -> dict[str, Any]:
    """Declare the platform and every SageMaker service; return the stack outputs."""
    platform = config.platform
    env, region = platform.environment, platform.region
    account = aws.get_caller_identity_output().account_id

    def tags(service: str) -> dict[str, str]:
        return standard_tags(env, service, platform.tags)

    artifacts = ArtifactStore(
        "artifacts",
        {
            "environment": env,
            "account_id": account,
            "region": region,
            "bucket_name": account.apply(lambda a: naming.artifact_bucket_name(env, a, region)),
            "log_bucket_name": account.apply(lambda a: naming.access_log_bucket_name(env, a, region)),
            "repository_name": naming.image_repository_name(env),
            "experimental_days": platform.retention_days.experimental,
            "candidate_days": platform.retention_days.candidate,
            "noncurrent_days": platform.retention_days.noncurrent_versions,
            "tags": tags(SHARED),
        },
    )
    webhook = config.alert_webhook_url
    alerts = Alerts(
        "alerts",
        {
            "environment": env,
            "account_id": account,
            "region": region,
            "emails": platform.alerts.emails,
            "webhook_url": pulumi.Output.secret(webhook) if webhook is not None else None,
            "tags": tags(SHARED),
        },
    )
    registry = ModelRegistry(
        "registry",
        {
            "environment": env,
            "account_id": account,
            "region": region,
            "group_names": {name: naming.model_package_group_name(env, name) for name in config.services},
            "tags": tags(SHARED),
        },
    )

    shared = {
        "artifactBucket": artifacts.bucket_name,
        "accessLogBucket": artifacts.log_bucket_name,
        "imageRepositoryUrl": artifacts.repository_url,
        "alertsTopicArn": alerts.topic_arn,
        "eventQueueUrl": registry.queue_url,
    }
    services: dict[str, Any] = {}
    for name, service in sorted(config.services.items()):
        services[name] = _service(name, service, config, artifacts, registry, alerts, account, tags(name))
        services[name].update(shared)
    # KServe services are served by the cluster's InferenceServices, declared with its provider.
    for name, outputs in build_kserve_services(
        config, artifacts=artifacts, account=account, tags=tags
    ).items():
        services[name].update(outputs)
    return {**shared, "services": services}


def _service(
    name: str,
    service: Service,
    config: StackConfig,
    artifacts: ArtifactStore,
    registry: ModelRegistry,
    alerts: Alerts,
    account: pulumi.Output[str],
    tags: dict[str, str],
) -> dict[str, Any]:
    """One service's training pipeline, endpoint and monitoring; returns its outputs."""
    env, region = config.platform.environment, config.platform.region
    storage = {
        "account_id": account,
        "bucket_name": artifacts.bucket_name,
        "bucket_arn": artifacts.bucket_arn,
        "kms_key_arn": artifacts.kms_key_arn,
        "kms_key_alias": artifacts.kms_key_alias,
    }
    images = {"repository_arn": artifacts.repository_arn, "repository_url": artifacts.repository_url}
    group = registry.group_names[name]
    training = Training(
        f"{name}-training",
        {
            "environment": env,
            "service": name,
            "region": region,
            **storage,
            **images,
            "image_tag": service.serving_image_tag,
            "model_package_group_name": group,
            "tags": tags,
        },
    )
    if service.model_version is None or service.runtime != "sagemaker":
        # No model promoted yet, or served by KServe: the registry group and the training pipeline here.
        return {"modelPackageGroup": group, "trainingPipeline": training.pipeline_name}
    endpoint = ModelEndpoint(
        name,
        {
            "environment": env,
            "service": name,
            "region": region,
            **storage,
            **images,
            "settings": service,
            "alerts_topic_arn": alerts.topic_arn,
            "tags": tags,
        },
    )
    monitor = ServiceMonitor(
        f"{name}-monitor",
        {
            "environment": env,
            "service": name,
            "region": region,
            **storage,
            "endpoint_name": endpoint.endpoint_name,
            "guardrails": service.guardrails,
            "tags": tags,
        },
    )
    return {
        "endpointName": endpoint.endpoint_name,
        "endpointConfigName": endpoint.endpoint_config_name,
        "variantName": endpoint.variant_name,
        "alarmNames": endpoint.alarm_names,
        "modelPackageGroup": group,
        "dashboardName": monitor.dashboard_name,
        "trainingPipeline": training.pipeline_name,
    }
