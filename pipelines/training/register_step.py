"""``python -m pipelines.training.register_step``: the pipeline's Register step, a SageMaker Processing job.

It registers the Train step's package with the platform's own registry code
(``SageMakerRegistry.register``), so a version the pipeline makes is the one ``modelrail
register`` would make: the artifact uploaded content-addressed (``infra.naming.artifact_key``),
its evaluation report beside it, and a model package in the service's group, created
``PendingManualApproval`` at stage ``experimental``, whose CustomerMetadataProperties carry every
key the controller reads (``pipelines.registry.sagemaker.METADATA_KEYS``). Registering the same
package again changes nothing. Its paths are the Register step's ProcessingInput and output in
``components.pipeline_definition`` (a unit test holds the two together):

- ``/opt/ml/processing/model/model.tar.gz``: the training job's artifact, a whole package;
- ``/opt/ml/processing/registration/registration.json``: what was registered (the package sha,
  whether this run created the version or uploaded the artifact, the version's number and ARN).

The step's ContainerArguments name where to register (each ``--name value``): ``--service``,
``--bucket`` (the artifact bucket), ``--model-package-group`` (the service's group,
``<environment>-<service>``), ``--serving-image`` (the image the model package names),
``--registrant`` (who registers, e.g. ``sagemaker-pipeline:<pipeline name>``) and ``--region``
(default ``AWS_REGION``, then ``AWS_DEFAULT_REGION``). AWS credentials are the job's role, found
by boto3 as usual (``AWS_ENDPOINT_URL`` points it at another endpoint, e.g. moto in tests).

On a failure the reason goes to ``/opt/ml/output/message``, which DescribeProcessingJob shows as
ExitMessage (its first 1 KB), and the process exits non-zero (the platform error's exit code).
``MODELRAIL_OPT_ML`` moves the ``/opt/ml`` prefix (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pipelines.errors import BadInputError
from pipelines.training.container import job_prefix
from pipelines.training.processing_job import (
    MODEL_INPUT,
    exit_message,
    local_path,
    model_artifact,
    require_artifact,
    run_job,
)

REGISTRATION_OUTPUT = "/opt/ml/processing/registration"
LOCAL_PATHS = {"model": MODEL_INPUT, "registration": REGISTRATION_OUTPUT}
"""The ProcessingInput's and the ProcessingOutput's LocalPath, by its name in the definition."""
REGISTRATION_FILE = "registration.json"
ARGUMENTS = ("service", "bucket", "model-package-group", "serving-image", "registrant", "region")
"""The step's ContainerArguments, each ``--name value``."""


@dataclass(frozen=True)
class StepPaths:
    """Where the Register step's input and output are inside the container."""

    model: Path
    registration: Path
    message: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> StepPaths:
        prefix = job_prefix(environ)
        return cls(
            model=model_artifact(prefix),
            registration=local_path(prefix, REGISTRATION_OUTPUT) / REGISTRATION_FILE,
            message=exit_message(prefix),
        )


@dataclass(frozen=True)
class Target:
    """Where and as whom to register: the step's ContainerArguments."""

    service: str
    bucket: str
    model_package_group: str
    serving_image: str
    registrant: str
    region: str

    @property
    def environment(self) -> str:
        """The environment the group belongs to (``infra.naming.model_package_group_name``)."""
        suffix = f"-{self.service}"
        if not self.model_package_group.endswith(suffix) or len(self.model_package_group) == len(suffix):
            raise BadInputError(
                f"--model-package-group {self.model_package_group!r}: not the group of service "
                f"{self.service!r}; the registry names it <environment>{suffix}"
            )
        return self.model_package_group[: -len(suffix)]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"the Register step's arguments: {message}")


def parse_arguments(argv: Sequence[str], environ: Mapping[str, str]) -> Target:
    """The step's ContainerArguments; the region defaults to the job's ``AWS_REGION``."""
    parser = _Parser(prog="python3 -m pipelines.training.register_step", add_help=False)
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    for name in ARGUMENTS:
        if name == "region":
            parser.add_argument(f"--{name}", default=region, required=region is None)
        else:
            parser.add_argument(f"--{name}", required=True)
    values = vars(parser.parse_args(list(argv)))
    empty = [f"--{name}" for name in ARGUMENTS if not str(values[name.replace("-", "_")]).strip()]
    if empty:
        raise BadInputError(f"the Register step's arguments: {', '.join(empty)} must not be empty")
    return Target(**{name.replace("-", "_"): str(values[name.replace("-", "_")]) for name in ARGUMENTS})


def registry_for(target: Target) -> Any:
    """``SageMakerRegistry`` over boto3 clients of the job's role (as ``registry.factory`` builds it)."""
    import boto3

    from pipelines.dependencies import guard_client, retry_config
    from pipelines.registry.sagemaker import SageMakerRegistry

    environment = target.environment
    session = boto3.session.Session(region_name=target.region)

    def client(name: str) -> Any:
        made = session.client(name, config=retry_config(embedded=False))  # type: ignore[call-overload]
        return guard_client(made, f"AWS {name} in {target.region}")

    return SageMakerRegistry(
        s3=client("s3"),
        sagemaker=client("sagemaker"),
        bucket=target.bucket,
        environment=environment,
        stack=environment,
        serving_image=target.serving_image,
    )


def run(paths: StepPaths, target: Target, registry: Any | None = None) -> dict[str, Any]:
    """Register the package; write and return the registration result."""
    require_artifact(paths.model)
    registry = registry if registry is not None else registry_for(target)
    registration = registry.register(target.service, paths.model, target.registrant)
    version = registration.version
    result = {
        "service": target.service,
        "package_sha": version.package_sha,
        "tarball_sha256": version.tarball_sha256,
        "created": registration.created,
        "uploaded": registration.uploaded,
        "version_number": version.version_number,
        "model_package_arn": version.arn,
        "artifact_uri": version.artifact_uri,
        "approval": version.approval,
        "stage": version.stage,
        "registrant": version.registrant,
    }
    paths.registration.parent.mkdir(parents=True, exist_ok=True)
    paths.registration.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the step; on any failure write its reason to ``output/message`` and exit non-zero."""
    paths = StepPaths.from_environment(os.environ)

    def body() -> None:
        target = parse_arguments(sys.argv[1:] if argv is None else argv, os.environ)
        print(json.dumps(run(paths, target), sort_keys=True), flush=True)

    return run_job("registration", paths.message, body)


if __name__ == "__main__":
    sys.exit(main())
