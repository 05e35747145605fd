"""The registry of a stack: the embedded AWS for ``local``, the account's own services otherwise."""

from __future__ import annotations

import os
from typing import Any

from infra.naming import artifact_bucket_name
from pipelines.embedded.seed import EMBEDDED_ACCOUNT_ID, load_config
from pipelines.registry.sagemaker import SageMakerRegistry

SERVING_IMAGE_ENV = "MODELRAIL_SERVING_IMAGE"
"""The serving image URI recorded in each model package; defaults to ``modelrail-serving:<tag>``."""


def registry_for_stack(stack: str, service: str | None = None) -> SageMakerRegistry:
    """A ready ``SageMakerRegistry`` for ``stack``; starts (or restores) the embedded AWS when selected."""
    from pipelines.embedded.session import embedded_selected, ensure_embedded

    config = load_config(stack)
    environment, region = config.platform.environment, config.platform.region
    tag = config.services[service].serving_image_tag if service in config.services else "latest"
    image = os.environ.get(SERVING_IMAGE_ENV, f"modelrail-serving:{tag}")
    if embedded_selected(stack):
        aws = ensure_embedded(stack)
        return SageMakerRegistry(
            s3=aws.client("s3", region),
            sagemaker=aws.client("sagemaker", region),
            bucket=artifact_bucket_name(environment, EMBEDDED_ACCOUNT_ID, region),
            environment=environment,
            stack=stack,
            serving_image=image,
            journal=aws.record,
        )
    import boto3

    from pipelines.dependencies import guard_client, retry_config

    session = boto3.session.Session(region_name=region)

    def client(name: str) -> Any:
        made = session.client(name, config=retry_config(embedded=False))  # type: ignore[call-overload]
        return guard_client(made, f"AWS {name} in {region}")

    account = client("sts").get_caller_identity()["Account"]
    return SageMakerRegistry(
        s3=client("s3"),
        sagemaker=client("sagemaker"),
        bucket=artifact_bucket_name(environment, account, region),
        environment=environment,
        stack=stack,
        serving_image=image,
    )
