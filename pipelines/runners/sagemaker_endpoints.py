"""``DescribeEndpoint`` on AWS: what a SageMaker endpoint really runs after a stack update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.naming import VARIANT_NAME, endpoint_name
from pipelines.errors import RefusedError
from pipelines.runners.base import EndpointState

Variant = dict[str, Any]
"""One ``ProductionVariant`` of a DescribeEndpointConfig answer."""


class SageMakerEndpoints:
    """Reads endpoint status and configuration with boto3; the stack outputs say what to expect."""

    def __init__(self, sagemaker: Any, environment: str) -> None:
        self.sagemaker = sagemaker
        self.environment = environment

    def describe(self, service: str) -> EndpointState:
        from botocore.exceptions import ClientError

        name = endpoint_name(self.environment, service)
        try:
            described = self.sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if _not_found(error):
                return EndpointState("NotFound", "", _message(error))
            raise
        return EndpointState(
            status=str(described["EndpointStatus"]),
            config_name=str(described["EndpointConfigName"]),
            failure_reason=str(described.get("FailureReason", "")),
            instance_count=_instances(described.get("ProductionVariants", [])),
        )

    def expected_config(self, service: str, version: str, outputs: dict[str, Any]) -> str:
        try:
            return str(outputs["services"][service]["endpointConfigName"])
        except (KeyError, TypeError):
            raise RefusedError(
                f"the stack outputs name no endpoint configuration for {service}",
                details=["expected outputs.services.<service>.endpointConfigName from infra/__main__.py"],
            ) from None

    def serves(self, service: str, config_name: str, version: str) -> bool:
        """The production variant's Model carries the version it serves in its container environment
        (``MODELRAIL_MODEL_VERSION``, set by ``components/endpoint.py``): DescribeEndpointConfig, then
        DescribeModel. A configuration or model that is gone serves nothing."""
        return self._version(config_name, _production) == version

    def shadow(self, service: str, config_name: str) -> str | None:
        """The version of the configuration's shadow variant, read like ``serves`` reads production's:
        SageMaker allows one (``ShadowProductionVariants``, with one production variant), and its
        Model carries the version. None without a shadow, or when the configuration is gone."""
        return self._version(config_name, _shadow)

    def _version(
        self, config_name: str, variant_of: Callable[[dict[str, Any]], Variant | None]
    ) -> str | None:
        """``MODELRAIL_MODEL_VERSION`` of the Model behind one variant of ``config_name``, or None."""
        from botocore.exceptions import ClientError

        from pipelines.serving.launch import MODEL_VERSION_ENV

        try:
            variant = variant_of(self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name))
            if variant is None or not variant.get("ModelName"):
                return None
            model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
        except ClientError as error:
            if _not_found(error):
                return None
            raise
        version = model.get("PrimaryContainer", {}).get("Environment", {}).get(MODEL_VERSION_ENV)
        return None if version is None else str(version)


def _production(config: dict[str, Any]) -> Variant | None:
    """The production variant of a DescribeEndpointConfig answer, by its fixed name."""
    return next(
        (v for v in config.get("ProductionVariants", []) if v.get("VariantName") == VARIANT_NAME), None
    )


def _shadow(config: dict[str, Any]) -> Variant | None:
    """The shadow variant of a DescribeEndpointConfig answer: the only one there may be."""
    return next(iter(config.get("ShadowProductionVariants", [])), None)


def _message(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _not_found(error: Any) -> bool:
    """SageMaker answers a ValidationException "Could not find endpoint/model …" for a missing one."""
    message = _message(error)
    return "Could not find" in message or "does not exist" in message


def _instances(variants: list[dict[str, Any]]) -> int | None:
    """The production variant's instances as autoscaling has them: the desired count, or the current
    one when more run (a scale-in under way), or None when DescribeEndpoint gives neither."""
    for variant in variants:
        if variant.get("VariantName") == VARIANT_NAME:
            counts = [
                int(variant[key])
                for key in ("DesiredInstanceCount", "CurrentInstanceCount")
                if variant.get(key) is not None
            ]
            return max(counts) if counts else None
    return None
