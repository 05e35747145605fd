"""``DescribeEndpoint`` on AWS: what a SageMaker endpoint really runs after a stack update."""

from __future__ import annotations

from typing import Any

from infra.naming import VARIANT_NAME, endpoint_name
from pipelines.errors import RefusedError
from pipelines.runners.base import EndpointState


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
        from botocore.exceptions import ClientError

        from pipelines.serving.launch import MODEL_VERSION_ENV

        try:
            config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            model_name = next(
                (
                    variant["ModelName"]
                    for variant in config.get("ProductionVariants", [])
                    if variant.get("VariantName") == VARIANT_NAME
                ),
                None,
            )
            if model_name is None:
                return False
            model = self.sagemaker.describe_model(ModelName=model_name)
        except ClientError as error:
            if _not_found(error):
                return False
            raise
        environment = model.get("PrimaryContainer", {}).get("Environment", {})
        return bool(environment.get(MODEL_VERSION_ENV) == version)


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
