"""What the embedded AWS must contain before any command runs: the stack's declared resources.

``declared_resources`` reads the buckets and model package groups from the stack's offline
plan (``pipelines.plan.build_plan``), so the embedded AWS holds exactly what ``pulumi up``
would create. Until the infrastructure program exists, it derives the same names from the
stack config through ``infra.naming``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from infra.naming import artifact_bucket_name, model_package_group_name
from pipelines.errors import BadInputError, RefusedError
from pipelines.paths import project_root, stack_path

EMBEDDED_ACCOUNT_ID = "123456789012"
"""moto's default account; the offline plan runs as the same account, so names agree."""

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
GROUP_TYPE = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"


@dataclass(frozen=True)
class DeclaredResources:
    """The buckets and model package groups one stack declares."""

    stack: str
    region: str
    environment: str
    buckets: tuple[str, ...]
    groups: tuple[str, ...]
    source: Literal["plan", "config"]
    """Where the names came from: the offline plan, or the stack config and ``infra.naming``."""


def declared_resources(stack: str) -> DeclaredResources:
    """The stack's buckets and groups: from the offline plan when the infra program exists."""
    config = load_config(stack)
    if (project_root() / "infra" / "__main__.py").is_file():
        buckets, groups = _from_plan(stack)
        source: Literal["plan", "config"] = "plan"
    else:
        buckets = (
            artifact_bucket_name(config.platform.environment, EMBEDDED_ACCOUNT_ID, config.platform.region),
        )
        groups = tuple(
            model_package_group_name(config.platform.environment, name) for name in sorted(config.services)
        )
        source = "config"
    return DeclaredResources(
        stack=stack,
        region=config.platform.region,
        environment=config.platform.environment,
        buckets=buckets,
        groups=groups,
        source=source,
    )


def load_config(stack: str) -> Any:
    """The validated stack config, with its problems as the CLI's typed errors."""
    from infra.config import StackConfigError, StackFileUnreadableError, load_stack_file

    try:
        return load_stack_file(stack_path(stack))
    except StackFileUnreadableError as error:
        raise BadInputError(str(error)) from None
    except StackConfigError as error:
        raise RefusedError(
            f"{error.source}: the stack config is invalid", details=[str(issue) for issue in error.issues]
        ) from None


def _from_plan(stack: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from pipelines.plan import build_plan

    plan = build_plan(stack)
    buckets: set[str] = set()
    groups: set[str] = set()
    for step in plan.get("steps", []):
        state = step.get("newState") or {}
        inputs = state.get("inputs") or {}
        if state.get("type") in BUCKET_TYPES and isinstance(inputs.get("bucket"), str):
            buckets.add(inputs["bucket"])
        elif state.get("type") == GROUP_TYPE and isinstance(inputs.get("modelPackageGroupName"), str):
            groups.add(inputs["modelPackageGroupName"])
    return tuple(sorted(buckets)), tuple(sorted(groups))


def seed(s3: Any, sagemaker: Any, resources: DeclaredResources) -> None:
    """Create every declared bucket and group that does not exist yet (idempotent)."""
    for bucket in resources.buckets:
        ensure_bucket(s3, bucket)
    for group in resources.groups:
        ensure_group(sagemaker, group)


def ensure_bucket(s3: Any, bucket: str) -> None:
    """Create ``bucket`` in the region of the ``s3`` client unless it exists (idempotent).

    Outside us-east-1, S3 (and moto, which validates the same way) refuses a CreateBucket without
    ``CreateBucketConfiguration.LocationConstraint`` equal to the endpoint's region
    (IllegalLocationConstraintException), and us-east-1 refuses one that names it.
    """
    from botocore.exceptions import ClientError

    region = s3.meta.region_name or "us-east-1"
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=bucket, **location)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise


def ensure_group(sagemaker: Any, group: str) -> None:
    from botocore.exceptions import ClientError

    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group, ModelPackageGroupDescription=f"modelrail model versions ({group})"
        )
