"""Which version an endpoint configuration's shadow variant serves, read from SageMaker itself.

moto (5.2) keeps an endpoint configuration's production variants but drops its
``ShadowProductionVariants`` on CreateEndpointConfig and never returns them, so the configurations
without a shadow run against moto, and the one with a shadow against botocore's Stubber, which
holds every request and answer to SageMaker's own API model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pipelines.runners.sagemaker_endpoints import SageMakerEndpoints
from tests.unit.promotion.fakes import V1, V2
from tests.unit.runners.sagemaker_world import sagemaker_client

ROLE = "arn:aws:iam::123456789012:role/serving"


@pytest.fixture
def moto_sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="eu-west-1")


def _model(sagemaker: Any, name: str, version: str) -> None:
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "serving:latest", "Environment": {"MODELRAIL_MODEL_VERSION": version}},
    )


def _variant(name: str, model: str) -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}


def test_a_configuration_without_a_shadow_has_none_and_serves_its_production_version(
    moto_sagemaker: Any,
) -> None:
    _model(moto_sagemaker, "adult-income-model", V1)
    moto_sagemaker.create_endpoint_config(
        EndpointConfigName="adult-income-config",
        ProductionVariants=[_variant("primary", "adult-income-model")],
    )
    endpoints = SageMakerEndpoints(moto_sagemaker, "dev")
    assert endpoints.shadow("adult-income", "adult-income-config") is None
    assert endpoints.serves("adult-income", "adult-income-config", V1)
    assert not endpoints.serves("adult-income", "adult-income-config", V2)


def test_a_configuration_that_is_gone_has_no_shadow_and_one_whose_model_is_gone_serves_nothing(
    moto_sagemaker: Any,
) -> None:
    endpoints = SageMakerEndpoints(moto_sagemaker, "dev")
    assert endpoints.shadow("adult-income", "never-created") is None
    _model(moto_sagemaker, "adult-income-model", V1)
    moto_sagemaker.create_endpoint_config(
        EndpointConfigName="adult-income-config",
        ProductionVariants=[_variant("primary", "adult-income-model")],
    )
    moto_sagemaker.delete_model(ModelName="adult-income-model")
    assert not endpoints.serves("adult-income", "adult-income-config", V1)


def _expect(stubber: Stubber, config: dict[str, Any], models: dict[str, str]) -> None:
    """DescribeEndpointConfig of ``config``, then DescribeModel of each model named in ``models``."""
    stubber.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/c",
            "CreationTime": "2026-01-01T00:00:00Z",
            **config,
        },
        {"EndpointConfigName": config["EndpointConfigName"]},
    )
    for model, version in models.items():
        stubber.add_response(
            "describe_model",
            {
                "ModelName": model,
                "ModelArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model/{model}",
                "CreationTime": "2026-01-01T00:00:00Z",
                "PrimaryContainer": {
                    "Image": "serving:latest",
                    "Environment": {"MODELRAIL_MODEL_VERSION": version},
                },
            },
            {"ModelName": model},
        )


def test_the_shadow_variant_serves_the_version_its_model_carries() -> None:
    client = sagemaker_client()
    shadowed = {
        "EndpointConfigName": "adult-income-config-shadow",
        "ProductionVariants": [_variant("primary", "adult-income-model")],
        "ShadowProductionVariants": [
            {**_variant("shadow", "adult-income-shadow-model"), "InitialVariantWeight": 0.5}
        ],
    }
    with Stubber(client) as stubber:
        _expect(stubber, shadowed, {"adult-income-shadow-model": V2})
        _expect(stubber, shadowed, {"adult-income-model": V1})
        endpoints = SageMakerEndpoints(client, "dev")
        assert endpoints.shadow("adult-income", "adult-income-config-shadow") == V2
        assert endpoints.serves("adult-income", "adult-income-config-shadow", V1)  # production is unchanged
        stubber.assert_no_pending_responses()


def test_a_shadow_whose_model_is_gone_serves_nothing() -> None:
    client = sagemaker_client()
    shadowed = {
        "EndpointConfigName": "adult-income-config-shadow",
        "ProductionVariants": [_variant("primary", "adult-income-model")],
        "ShadowProductionVariants": [_variant("shadow", "adult-income-shadow-model")],
    }
    with Stubber(client) as stubber:
        _expect(stubber, shadowed, {})
        stubber.add_client_error(
            "describe_model",
            "ValidationException",
            "Could not find model adult-income-shadow-model.",
            expected_params={"ModelName": "adult-income-shadow-model"},
        )
        assert SageMakerEndpoints(client, "dev").shadow("adult-income", "adult-income-config-shadow") is None
        stubber.assert_no_pending_responses()
