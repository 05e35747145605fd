"""ArtifactStore: the artifact bucket, its access-log bucket, their KMS key and the image repository.

Model packages are content-addressed: ``models/<service>/<package sha256>/model.tar.gz``. The
path never says which stage a version is in, so lifecycle rules follow an object tag instead:

=====================  ============================================================
``stage`` tag          lifecycle
=====================  ============================================================
``experimental``       expires ``experimental_days`` after upload
``candidate``          expires ``candidate_days`` after upload
``production``         never expires (the running version)
``previous-production`` never expires (the rollback target)
(no tag)               never expires
=====================  ============================================================

The controller sets the tag when it registers, gates and promotes a version. Overwritten or
deleted objects stay recoverable as noncurrent versions for ``noncurrent_days``. Captured
endpoint data lives under ``data-capture/`` and monitoring reports under ``monitoring/``.
"""

from __future__ import annotations

from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import iam
from components.base import ComponentArgs, OutputStr, child, render_json, validate_args
from infra import naming

STAGE_TAG = "stage"
EXPIRING_STAGES = ("experimental", "candidate")
"""Stages whose artifacts expire; ``production`` and ``previous-production`` never do."""
MODEL_PREFIX = "models/"
CAPTURE_PREFIX = "data-capture/"
MONITORING_PREFIX = "monitoring/"
ACCESS_LOG_PREFIX = "access-logs/"

Days = Annotated[int, Field(ge=1, le=3650)]


class ArtifactStoreArgs(ComponentArgs):
    """Arguments of ``ArtifactStore``."""

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    """The environment, used in descriptions and names (e.g. ``prod``)."""
    account_id: OutputStr
    """The AWS account, named in the key and bucket policies."""
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    """The region of the repository, part of its ARN."""
    bucket_name: OutputStr
    """Physical name of the artifact bucket (the controller finds it by name)."""
    log_bucket_name: OutputStr
    """Physical name of the bucket receiving the artifact bucket's access logs."""
    repository_name: Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$", max_length=256)]
    """ECR repository for the serving and training images."""
    experimental_days: Days = 30
    """Days an artifact tagged ``stage=experimental`` is kept."""
    candidate_days: Days = 90
    """Days an artifact tagged ``stage=candidate`` is kept."""
    noncurrent_days: Days = 30
    """Days a noncurrent object version is kept."""
    access_log_days: Days = 365
    """Days access logs are kept."""
    untagged_image_days: Annotated[int, Field(ge=1, le=365)] = 7
    """Days an untagged image (a superseded build layer) stays in the repository."""
    force_destroy: bool = False
    """Let ``pulumi destroy`` delete non-empty buckets; only for throwaway stacks."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags on every taggable child."""

    def problems(self) -> list[str]:
        if self.candidate_days < self.experimental_days:
            return [
                f"candidate_days = {self.candidate_days}: keep candidates at least as long as "
                f"experimental artifacts (experimental_days = {self.experimental_days})"
            ]
        return []


class ArtifactStore(pulumi.ComponentResource):
    """Encrypted, versioned, private artifact storage and an immutable image repository.

    Both buckets get the same hardening: SSE-KMS with a customer-managed key (rotated yearly) and
    S3 bucket keys, versioning, all four public access blocks, owner-enforced object ownership
    (no ACLs), and a policy refusing plain HTTP and non-KMS encryption.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    """Built from the bucket's name, so it is known before the bucket exists (see ``components.iam``)."""
    log_bucket_name: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    kms_key_alias: pulumi.Output[str]
    """The key's alias (``infra.naming.artifact_key_alias``), by which role policies name the key.

    An output of the alias, so a role policy naming it is created after the alias exists.
    """
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    """Built from the repository's name, known before the repository exists, like ``bucket_arn``."""

    def __init__(
        self,
        name: str,
        args: ArtifactStoreArgs | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        valid = validate_args(f"ArtifactStore {name!r}", ArtifactStoreArgs, args)
        super().__init__("modelrail:artifacts:ArtifactStore", name, None, opts)
        self._args = valid

        key_policy = pulumi.Output.from_input(valid.account_id).apply(
            lambda account: render_json(iam.kms_key_policy(account, ["logging.s3.amazonaws.com"]))
        )
        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"modelrail {valid.environment}: artifacts, access logs, images, captured data",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=key_policy,
            tags=valid.tags,
            opts=child(self),
        )
        alias = aws.kms.Alias(
            f"{name}-key-alias",
            name=naming.artifact_key_alias(valid.environment),
            target_key_id=self.kms_key.key_id,
            opts=child(self),
        )

        self.log_bucket = self._hardened_bucket(
            f"{name}-logs", valid.log_bucket_name, logs_from=valid.bucket_name
        )
        self._lifecycle(
            f"{name}-logs",
            self.log_bucket,
            [
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ACCESS_LOG_PREFIX},
                    "expiration": {"days": valid.access_log_days},
                },
                *self._common_rules(),
            ],
        )

        self.bucket = self._hardened_bucket(name, valid.bucket_name, logs_from=None)
        self._lifecycle(
            name,
            self.bucket,
            [
                *(
                    {
                        "id": f"expire-{stage}-artifacts",
                        "status": "Enabled",
                        "filter": {"and_": {"prefix": MODEL_PREFIX, "tags": {STAGE_TAG: stage}}},
                        "expiration": {"days": days},
                    }
                    for stage, days in zip(
                        EXPIRING_STAGES, (valid.experimental_days, valid.candidate_days), strict=True
                    )
                ),
                *self._common_rules(),
            ],
        )
        aws.s3.BucketLogging(
            f"{name}-access-logging",
            bucket=self.bucket.id,
            target_bucket=self.log_bucket.id,
            target_prefix=ACCESS_LOG_PREFIX,
            target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
            opts=child(self),
        )

        self.repository = aws.ecr.Repository(
            f"{name}-images",
            name=valid.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.kms_key.arn}],
            tags=valid.tags,
            opts=child(self),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-images-lifecycle",
            repository=self.repository.name,
            policy=render_json(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"expire untagged images after {valid.untagged_image_days} days",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": valid.untagged_image_days,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child(self),
        )

        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.bucket.apply(naming.bucket_arn)
        self.log_bucket_name = self.log_bucket.bucket
        self.kms_key_arn = self.kms_key.arn
        self.kms_key_alias = alias.name
        self.repository_url = self.repository.repository_url
        self.repository_arn = pulumi.Output.all(valid.account_id, self.repository.name).apply(
            lambda v: naming.repository_arn(valid.region, v[0], v[1])
        )
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "log_bucket_name": self.log_bucket_name,
                "kms_key_arn": self.kms_key_arn,
                "kms_key_alias": self.kms_key_alias,
                "repository_url": self.repository_url,
                "repository_arn": self.repository_arn,
            }
        )

    def artifact_uri(self, key: str) -> pulumi.Output[str]:
        """``s3://<artifact bucket>/<key>``."""
        return pulumi.Output.concat("s3://", self.bucket_name, "/", key)

    def _hardened_bucket(self, name: str, bucket: OutputStr, logs_from: OutputStr | None) -> aws.s3.Bucket:
        """A bucket and the side resources that make it private, encrypted and versioned.

        ``logs_from`` names the bucket whose access logs this one receives, if any.
        """
        valid = self._args
        resource = aws.s3.Bucket(
            name,
            bucket=bucket,
            force_destroy=valid.force_destroy,
            tags=valid.tags,
            opts=child(self),
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=resource.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child(self),
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=resource.id,
            versioning_configuration={"status": "Enabled"},
            opts=child(self),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=resource.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": self.kms_key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child(self),
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=resource.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child(self),
        )
        # ARNs from the names, known before the buckets exist (see ``components.iam``).
        source_arn = (
            pulumi.Output.from_input(logs_from).apply(naming.bucket_arn) if logs_from is not None else None
        )
        policy = pulumi.Output.all(resource.bucket, source_arn, valid.account_id).apply(
            lambda values: render_json(iam.bucket_policy(naming.bucket_arn(values[0]), values[1], values[2]))
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=resource.id,
            policy=policy,
            opts=child(self, depends_on=[public_access]),
        )
        return resource

    def _common_rules(self) -> list[dict[str, Any]]:
        return [
            {
                "id": "expire-noncurrent-versions",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "noncurrent_version_expiration": {"noncurrent_days": self._args.noncurrent_days},
            },
            {
                "id": "abort-incomplete-uploads",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            },
        ]

    def _lifecycle(self, name: str, bucket: aws.s3.Bucket, rules: list[dict[str, Any]]) -> None:
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=rules,  # type: ignore[arg-type]
            opts=child(self),
        )
