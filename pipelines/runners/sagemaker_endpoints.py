"""``DescribeEndpoint`` on AWS: what a SageMaker endpoint really runs after a stack update."""

from __future__ import annotations

from typing import Any

from infra.naming import endpoint_name
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
            # DescribeEndpoint answers a ValidationException "Could not find endpoint" for a missing one.
            message = str(error.response.get("Error", {}).get("Message", ""))
            if "Could not find" in message or "does not exist" in message:
                return EndpointState("NotFound", "", message)
            raise
        return EndpointState(
            status=str(described["EndpointStatus"]),
            config_name=str(described["EndpointConfigName"]),
            failure_reason=str(described.get("FailureReason", "")),
        )

    def expected_config(self, service: str, version: str, outputs: dict[str, Any]) -> str:
        try:
            return str(outputs["services"][service]["endpointConfigName"])
        except (KeyError, TypeError):
            raise RefusedError(
                f"the stack outputs name no endpoint configuration for {service}",
                details=["expected outputs.services.<service>.endpointConfigName from infra/__main__.py"],
            ) from None
