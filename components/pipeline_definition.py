"""The SageMaker Pipeline definition (train → evaluate → register) as typed models.

The sagemaker SDK would build the same JSON, but it is a gigabyte of dependencies and needs
a region at import time. The definition format is small and stable (schema version
``2020-12-01``), so the three steps are modelled here and rendered as deterministic JSON.
Registration always leaves the new version ``PendingManualApproval``: a person approves it
after the controller's gates, never the pipeline.

All three steps run the training image (``docker/training.Dockerfile``): the Train step its
``train`` entrypoint (``pipelines.training.container``), the Evaluate step the module
``EVALUATE_MODULE`` and the Register step the module ``REGISTER_MODULE``, whose input and output
paths are this file's ``LocalPath`` values. Register is a Processing job, not a RegisterModel
step: it runs the platform's own registry code (``SageMakerRegistry.register``), so the pipeline
and ``modelrail register`` write versions the same way (content-addressed artifact, the
controller's CustomerMetadataProperties). The model package it creates names the serving image,
which serves the package the Train step laid out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from components.base import render_json

SCHEMA_VERSION = "2020-12-01"
TRAIN_STEP = "Train"
EVALUATE_STEP = "Evaluate"
REGISTER_STEP = "Register"
EVALUATION_OUTPUT = "evaluation"
EVALUATION_FILE = "evaluation.json"
EVALUATE_MODULE = "pipelines.training.evaluate_step"
"""The Evaluate step's module in the training image (a unit test imports it by this name)."""
REGISTER_MODULE = "pipelines.training.register_step"
"""The Register step's module in the training image (a unit test imports it by this name)."""
REGISTRATION_OUTPUT = "registration"
MODEL_INPUT_PATH = "/opt/ml/processing/model"
TEST_INPUT_PATH = "/opt/ml/processing/test"
EVALUATION_OUTPUT_PATH = "/opt/ml/processing/evaluation"
REGISTRATION_OUTPUT_PATH = "/opt/ml/processing/registration"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Get(_Model):
    """A reference resolved by SageMaker at run time (a parameter or a step's property)."""

    path: str

    def render(self) -> dict[str, Any]:
        return {"Get": self.path}


class Join(_Model):
    """Values joined at run time, e.g. an output prefix and a file name."""

    on: str
    values: tuple[str | Get, ...]

    def render(self) -> dict[str, Any]:
        return {"Std:Join": {"On": self.on, "Values": [_render(value) for value in self.values]}}


Value = str | Get | Join


def _render(value: Value) -> Any:
    return value if isinstance(value, str) else value.render()


class Parameter(_Model):
    """A pipeline parameter, overridable per execution."""

    name: str
    default: str

    def render(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": "String", "DefaultValue": self.default}

    @property
    def ref(self) -> Get:
        return Get(path=f"Parameters.{self.name}")


class Compute(_Model):
    """Instances a job runs on; volumes encrypted with the platform key."""

    instance_type: str = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1)
    volume_size_gb: int = Field(default=30, ge=1)
    max_runtime_seconds: int = Field(default=86400, ge=60)


class TrainingStep(_Model):
    """Train the model from the training-data prefix; the artifact goes to the output prefix.

    The ``train`` channel holds the one data snapshot; the artifact SageMaker tars from
    ``/opt/ml/model`` is a whole model package.
    """

    image_uri: str
    role_arn: str
    train_data: Value
    output_uri: str
    kms_key_arn: str
    compute: Compute = Compute()
    hyperparameters: dict[str, Value] = {}
    """Strings (SageMaker passes every value as one), or references resolved at run time."""

    def render(self) -> dict[str, Any]:
        return {
            "Name": TRAIN_STEP,
            "Type": "Training",
            "Arguments": {
                "AlgorithmSpecification": {"TrainingImage": self.image_uri, "TrainingInputMode": "File"},
                "HyperParameters": {
                    key: _render(value) for key, value in sorted(self.hyperparameters.items())
                },
                "InputDataConfig": [
                    {
                        "ChannelName": "train",
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataDistributionType": "FullyReplicated",
                                "S3DataType": "S3Prefix",
                                "S3Uri": _render(self.train_data),
                            }
                        },
                    }
                ],
                "OutputDataConfig": {"KmsKeyId": self.kms_key_arn, "S3OutputPath": self.output_uri},
                "ResourceConfig": {
                    "InstanceCount": self.compute.instance_count,
                    "InstanceType": self.compute.instance_type,
                    "VolumeKmsKeyId": self.kms_key_arn,
                    "VolumeSizeInGB": self.compute.volume_size_gb,
                },
                "RoleArn": self.role_arn,
                "StoppingCondition": {"MaxRuntimeInSeconds": self.compute.max_runtime_seconds},
            },
        }

    @property
    def model_artifacts(self) -> Get:
        return Get(path=f"Steps.{TRAIN_STEP}.ModelArtifacts.S3ModelArtifacts")


class EvaluationStep(_Model):
    """Score the trained model on held-out data; writes ``evaluation.json`` in the trainer's format."""

    image_uri: str
    role_arn: str
    model_artifacts: Get
    test_data: Value
    output_uri: str
    kms_key_arn: str
    compute: Compute = Compute(max_runtime_seconds=3600)

    def render(self) -> dict[str, Any]:
        return {
            "Name": EVALUATE_STEP,
            "Type": "Processing",
            "Arguments": {
                "AppSpecification": {
                    "ContainerEntrypoint": ["python3", "-m", EVALUATE_MODULE],
                    "ImageUri": self.image_uri,
                },
                "ProcessingInputs": [
                    _processing_input("model", self.model_artifacts, MODEL_INPUT_PATH),
                    _processing_input("test", self.test_data, TEST_INPUT_PATH),
                ],
                "ProcessingOutputConfig": _processing_output(
                    EVALUATION_OUTPUT, EVALUATION_OUTPUT_PATH, self.output_uri, self.kms_key_arn
                ),
                "ProcessingResources": _processing_resources(self.compute, self.kms_key_arn),
                "RoleArn": self.role_arn,
                "StoppingCondition": {"MaxRuntimeInSeconds": self.compute.max_runtime_seconds},
            },
            "PropertyFiles": [
                {
                    "FilePath": EVALUATION_FILE,
                    "OutputName": EVALUATION_OUTPUT,
                    "PropertyFileName": "EvaluationReport",
                }
            ],
        }

    @property
    def report_uri(self) -> Join:
        output = f"Steps.{EVALUATE_STEP}.ProcessingOutputConfig.Outputs['{EVALUATION_OUTPUT}'].S3Output.S3Uri"
        return Join(on="/", values=(Get(path=output), EVALUATION_FILE))


def _processing_output(name: str, local_path: str, uri: str, kms_key_arn: str) -> dict[str, Any]:
    """A Processing job's one output, uploaded when the job ends, encrypted with the platform key."""
    return {
        "KmsKeyId": kms_key_arn,
        "Outputs": [
            {
                "OutputName": name,
                "S3Output": {"LocalPath": local_path, "S3UploadMode": "EndOfJob", "S3Uri": uri},
            }
        ],
    }


def _processing_resources(compute: Compute, kms_key_arn: str) -> dict[str, Any]:
    """A Processing job's instances, their volumes encrypted with the platform key."""
    return {
        "ClusterConfig": {
            "InstanceCount": compute.instance_count,
            "InstanceType": compute.instance_type,
            "VolumeKmsKeyId": kms_key_arn,
            "VolumeSizeInGB": compute.volume_size_gb,
        }
    }


def _processing_input(name: str, source: Value, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "LocalPath": local_path,
            "S3DataDistributionType": "FullyReplicated",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3Uri": _render(source),
        },
    }


class RegisterStep(_Model):
    """Register the trained package with the platform's registry code, pending a person's approval.

    A Processing job in the training image runs ``REGISTER_MODULE``, which calls
    ``SageMakerRegistry.register``: the same writer as ``modelrail register``. It uploads the
    artifact content-addressed (``infra.naming.artifact_key``) with the package's evaluation
    report beside it, and creates the model package ``PendingManualApproval`` with the
    CustomerMetadataProperties the controller reads; a package already registered is left as it
    is. The registry creates every version ``PendingManualApproval`` and nothing here can ask for
    another status: approving is a person's call. It runs after Evaluate, so a package that
    cannot be scored is never registered.
    """

    image_uri: str
    """The training image (it holds the registry code and boto3)."""
    role_arn: str
    model_artifacts: Get
    service: str
    bucket: str
    model_package_group_name: str
    serving_image_uri: str
    """Named in the model package's InferenceSpecification: the image that serves the package."""
    region: str
    output_uri: str
    kms_key_arn: str
    compute: Compute = Compute(max_runtime_seconds=1800)

    @property
    def registrant(self) -> Join:
        """Who registered: the pipeline, by its name at run time."""
        return Join(on=":", values=("sagemaker-pipeline", Get(path="Execution.PipelineName")))

    def container_arguments(self) -> list[Any]:
        arguments: list[tuple[str, Value]] = [
            ("--service", self.service),
            ("--bucket", self.bucket),
            ("--model-package-group", self.model_package_group_name),
            ("--serving-image", self.serving_image_uri),
            ("--registrant", self.registrant),
            ("--region", self.region),
        ]
        return [_render(item) for pair in arguments for item in pair]

    def render(self) -> dict[str, Any]:
        return {
            "Name": REGISTER_STEP,
            "Type": "Processing",
            "DependsOn": [EVALUATE_STEP],
            "Arguments": {
                "AppSpecification": {
                    "ContainerArguments": self.container_arguments(),
                    "ContainerEntrypoint": ["python3", "-m", REGISTER_MODULE],
                    "ImageUri": self.image_uri,
                },
                "ProcessingInputs": [_processing_input("model", self.model_artifacts, MODEL_INPUT_PATH)],
                "ProcessingOutputConfig": _processing_output(
                    REGISTRATION_OUTPUT, REGISTRATION_OUTPUT_PATH, self.output_uri, self.kms_key_arn
                ),
                "ProcessingResources": _processing_resources(self.compute, self.kms_key_arn),
                "RoleArn": self.role_arn,
                "StoppingCondition": {"MaxRuntimeInSeconds": self.compute.max_runtime_seconds},
            },
        }


class PipelineDefinition(_Model):
    """A whole pipeline: its parameters and its steps, in execution order."""

    parameters: tuple[Parameter, ...]
    training: TrainingStep
    evaluation: EvaluationStep
    registration: RegisterStep

    def to_dict(self) -> dict[str, Any]:
        return {
            "Version": SCHEMA_VERSION,
            "Metadata": {},
            "Parameters": [parameter.render() for parameter in self.parameters],
            "PipelineExperimentConfig": {
                "ExperimentName": {"Get": "Execution.PipelineName"},
                "TrialName": {"Get": "Execution.PipelineExecutionId"},
            },
            "Steps": [self.training.render(), self.evaluation.render(), self.registration.render()],
        }

    def render(self) -> str:
        """The definition as ``aws.sagemaker.Pipeline`` takes it: deterministic JSON."""
        return render_json(self.to_dict())


def train_evaluate_register(
    *,
    service: str,
    bucket: str,
    data_prefix: str,
    output_prefix: str,
    training_image_uri: str,
    serving_image_uri: str,
    role_arn: str,
    kms_key_arn: str,
    model_package_group_name: str,
    region: str,
    compute: Compute,
    seed: int = 0,
) -> PipelineDefinition:
    """The standard modelrail pipeline for one service, from plain (already resolved) values.

    The Train step's hyperparameters name the service, the seed and where the data came from
    (the ``TrainDataUri`` parameter, recorded in the package's training manifest).
    """
    train_data = Parameter(name="TrainDataUri", default=f"s3://{bucket}/{data_prefix}train/")
    test_data = Parameter(name="TestDataUri", default=f"s3://{bucket}/{data_prefix}test/")
    training = TrainingStep(
        image_uri=training_image_uri,
        role_arn=role_arn,
        train_data=train_data.ref,
        output_uri=f"s3://{bucket}/{output_prefix}models/",
        kms_key_arn=kms_key_arn,
        compute=compute,
        hyperparameters={"service": service, "seed": str(seed), "data_uri": train_data.ref},
    )
    evaluation = EvaluationStep(
        image_uri=training_image_uri,
        role_arn=role_arn,
        model_artifacts=training.model_artifacts,
        test_data=test_data.ref,
        output_uri=f"s3://{bucket}/{output_prefix}evaluation/",
        kms_key_arn=kms_key_arn,
    )
    registration = RegisterStep(
        image_uri=training_image_uri,
        role_arn=role_arn,
        model_artifacts=training.model_artifacts,
        service=service,
        bucket=bucket,
        model_package_group_name=model_package_group_name,
        serving_image_uri=serving_image_uri,
        region=region,
        output_uri=f"s3://{bucket}/{output_prefix}registration/",
        kms_key_arn=kms_key_arn,
    )
    return PipelineDefinition(
        parameters=(train_data, test_data),
        training=training,
        evaluation=evaluation,
        registration=registration,
    )
