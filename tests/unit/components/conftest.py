"""Arguments shared by the component tests: one environment's plain and resource-produced values."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

VERSION = "f" * 64
OTHER_VERSION = "0" * 64


def platform_values() -> dict[str, Any]:
    """What infra passes to a service's components (outputs of the artifact store, as plain values)."""
    return {
        "environment": "prod",
        "account_id": "123456789012",
        "region": "eu-west-1",
        "bucket_name": "modelrail-prod-artifacts",
        "bucket_arn": "arn:aws:s3:::modelrail-prod-artifacts",
        "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/k",
        "kms_key_alias": "alias/modelrail-prod-artifacts",
        "repository_arn": "arn:aws:ecr:eu-west-1:123456789012:repository/modelrail-prod",
        "repository_url": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod",
    }


def service_settings(**overrides: Any) -> dict[str, Any]:
    """A service's stack-config entry (``infra.config.Service``), as a stack file writes it."""
    settings: dict[str, Any] = {
        "modelVersion": VERSION,
        "instanceCount": 4,
        "deployment": {"strategy": "canary", "canaryPercent": 25, "bakeSeconds": 900},
        "autoscaling": {"minInstances": 2, "maxInstances": 8},
    }
    settings.update(overrides)
    return settings


def endpoint_values(settings: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A ModelEndpoint's arguments; ``settings`` replaces keys of ``service_settings()``."""
    values: dict[str, Any] = {
        **platform_values(),
        "service": "fraud-score",
        "settings": service_settings(**(settings or {})),
        "alerts_topic_arn": "arn:aws:sns:eu-west-1:123456789012:alerts",
        "tags": {"service": "fraud-score", "environment": "prod", "managed-by": "modelrail"},
    }
    values.update(overrides)
    return values


def settled(*resources: pulumi.Resource) -> pulumi.Output[list[str]]:
    """An output that resolves once every given resource is registered."""
    return pulumi.Output.all(*(resource.urn for resource in resources))


class Children:
    """Collects every resource created under a component, to wait until all are registered.

    Pass ``children.opts`` to the component; ``children.settled()`` then resolves only after
    the last child's registration, so assertions over the monitor's registrations see them all.
    """

    def __init__(self) -> None:
        self.resources: list[pulumi.Resource] = []
        self.opts = pulumi.ResourceOptions(transformations=[self._collect])

    def _collect(self, args: pulumi.ResourceTransformationArgs) -> None:
        self.resources.append(args.resource)

    def settled(self, *more: pulumi.Resource) -> pulumi.Output[list[str]]:
        return settled(*self.resources, *more)


@pytest.fixture
def values() -> dict[str, Any]:
    return endpoint_values()
