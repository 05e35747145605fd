"""DescribeEndpoint of an endpoint that does not exist is a state (NotFound), not a botocore traceback."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from pipelines.runners.sagemaker_endpoints import SageMakerEndpoints


def _client() -> Any:
    return boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_a_missing_endpoint_is_not_found() -> None:
    sagemaker = _client()
    stubber = Stubber(sagemaker)
    stubber.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message='Could not find endpoint "dev-adult-income".',
    )
    with stubber:
        state = SageMakerEndpoints(sagemaker, "dev").describe("adult-income")
    assert (state.status, state.config_name) == ("NotFound", "")
    assert "Could not find endpoint" in state.failure_reason


def test_other_errors_still_surface() -> None:
    sagemaker = _client()
    stubber = Stubber(sagemaker)
    stubber.add_client_error(
        "describe_endpoint", service_error_code="AccessDeniedException", service_message="no"
    )
    with stubber, pytest.raises(ClientError):
        SageMakerEndpoints(sagemaker, "dev").describe("adult-income")
