"""Training: a least-privilege SageMaker role and the service's train → evaluate → register pipeline.

Train, Evaluate and Register run the training image; the model package Register creates names
the serving image: two tags of the environment's one image repository. The serving image
refuses a package whose serving code differs from its own, so the two are built from the same
commit; the training image's tag is therefore the serving image's with ``-training`` appended
unless one is given.
"""

from __future__ import annotations

from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import iam
from components.base import ComponentArgs, OutputStr, child, render_json, sagemaker_role, validate_args
from components.pipeline_definition import Compute, train_evaluate_register
from infra import naming

SERVICE_NAME = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
"""An ECR image tag: up to 128 letters, digits, ``_``, ``.`` and ``-``, not starting with the last two."""
TRAINING_TAG_SUFFIX = "-training"


def data_prefix(service: str) -> str:
    """Where a service's training and test data live in the artifact bucket."""
    return f"datasets/{service}/"


def output_prefix(service: str) -> str:
    """Where a service's pipeline writes trained models and evaluation reports."""
    return f"training/{service}/"


def model_prefix(service: str) -> str:
    """Where the registry keeps a service's content-addressed artifacts (``naming.artifact_key``)."""
    return f"models/{service}/"


class TrainingArgs(ComponentArgs):
    """Arguments of ``Training``."""

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    service: Annotated[str, Field(pattern=SERVICE_NAME)]
    account_id: OutputStr
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    bucket_name: OutputStr
    """The artifact bucket (data in ``datasets/<service>/``, output in ``training/<service>/``)."""
    bucket_arn: OutputStr
    kms_key_arn: OutputStr
    """Encrypts job volumes and outputs."""
    kms_key_alias: OutputStr
    """The alias of that key (``alias/…``); the role's policy names the key by it (``iam.use_key``)."""
    repository_arn: OutputStr
    repository_url: OutputStr
    image_tag: Annotated[str, Field(pattern=IMAGE_TAG)] = "latest"
    """Tag of the serving image (``docker/serving.Dockerfile``), which the registered model package names."""
    training_image_tag: Annotated[str, Field(pattern=IMAGE_TAG)] | None = None
    """Tag of the training image (``docker/training.Dockerfile``) that runs Train, Evaluate and Register;
    default ``<image_tag>-training``, the training image of the serving image's commit."""
    model_package_group_name: OutputStr
    """Where the pipeline registers new versions."""
    compute: Compute = Compute()
    """Instances for the training job (default one ``ml.m5.large``, 30 GB, 24 h)."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Random seed passed to training, so a run is reproducible."""
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def training_tag(self) -> str:
        return self.training_image_tag or f"{self.image_tag}{TRAINING_TAG_SUFFIX}"

    def problems(self) -> list[str]:
        if self.training_image_tag is None and len(self.training_tag) > 128:
            return [
                f"image_tag = {self.image_tag!r}: the training image's default tag "
                f"{self.training_tag[:40]!r}... would be {len(self.training_tag)} characters, over ECR's 128; "
                "shorten the tag or pass training_image_tag"
            ]
        if self.training_tag == self.image_tag:
            return [
                f"training_image_tag = {self.training_image_tag!r}: the same tag as the serving image; "
                "the training image is another image (docker/training.Dockerfile), so it needs its own tag"
            ]
        return []


class Training(pulumi.ComponentResource):
    """The execution role and SageMaker Pipeline that produce new versions of one service."""

    role_arn: pulumi.Output[str]
    pipeline_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: TrainingArgs | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        valid = validate_args(f"Training {name!r}", TrainingArgs, args)
        super().__init__("modelrail:training:Training", name, None, opts)
        data, output = data_prefix(valid.service), output_prefix(valid.service)

        self.role = sagemaker_role(
            f"{name}-role",
            self,
            description=f"modelrail {valid.environment}: trains and registers {valid.service}",
            account_id=valid.account_id,
            tags=valid.tags,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.id,
            # The role's ARN from its (auto-)name, known before the role exists (``components.iam``).
            policy=pulumi.Output.all(
                valid.bucket_arn,
                valid.repository_arn,
                valid.model_package_group_name,
                self.role.name,
                valid.account_id,
                valid.kms_key_alias,
            ).apply(
                lambda v: render_json(
                    iam.training_policy(
                        bucket_arn=v[0],
                        data_prefix=data,
                        output_prefix=output,
                        model_prefix=model_prefix(valid.service),
                        repository_arn=v[1],
                        kms_key_alias=v[5],
                        model_package_group=v[2],
                        role_arn=naming.role_arn(v[4], v[3]),
                        region=valid.region,
                        account_id=v[4],
                    )
                )
            ),
            opts=child(self),
        )
        definition = pulumi.Output.all(
            valid.bucket_name,
            pulumi.Output.concat(valid.repository_url, ":", valid.training_tag),
            pulumi.Output.concat(valid.repository_url, ":", valid.image_tag),
            self.role.arn,
            valid.kms_key_arn,
            valid.model_package_group_name,
        ).apply(
            lambda v: train_evaluate_register(
                service=valid.service,
                bucket=v[0],
                data_prefix=data,
                output_prefix=output,
                training_image_uri=v[1],
                serving_image_uri=v[2],
                role_arn=v[3],
                kms_key_arn=v[4],
                model_package_group_name=v[5],
                region=valid.region,
                compute=valid.compute,
                seed=valid.seed,
            ).render()
        )
        pipeline_name = f"modelrail-{valid.environment}-{valid.service}"
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=f"Train, evaluate and register {valid.service} (pending manual approval)",
            role_arn=self.role.arn,
            pipeline_definition=definition,
            tags=valid.tags,
            opts=child(self, depends_on=[policy]),
        )

        self.role_arn = self.role.arn
        self.pipeline_name = self.pipeline.pipeline_name
        self.register_outputs({"role_arn": self.role_arn, "pipeline_name": self.pipeline_name})
