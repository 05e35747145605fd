# /// script
# requires-python = ">=3.11"
# dependencies = ["sagemaker-mlops>=1.27,<2"]
# ///
"""Parity check: the sagemaker v3 SDK builds the same pipeline definition as our typed model.

modelrail renders its SageMaker Pipeline definition (train → evaluate → register) from the
pydantic models in ``components/pipeline_definition.py``; the snapshot test in
``tests/unit/components/test_rendered_documents.py`` pins exactly what they render. This script
builds the same pipeline with the SDK (``sagemaker-mlops``: ``ModelTrainer``, ``Processor`` for
both the Evaluate and the Register step, ``Pipeline``) from the same inputs and compares the SDK's JSON with
that snapshot, so a drift between our model and the service's format, as the SDK writes it, shows.

Why a separate script, with its own environment, instead of a test in the suite:

* Adding ``sagemaker-mlops`` to the project's lock would downgrade, for everyone, rich 15 → 14,
  boto3 1.44 → 1.43 and pyarrow 26 → 25 (and graphql-core), because of its pins.
* It would add 152 MB in 62 packages to the project's environment (on its own, with its
  dependencies, it installs 131 packages, about 700 MB), and importing it takes 7.7–9 s.
* Importing it needs an AWS region (``sagemaker/ai_registry/air_hub.py`` creates boto3 clients at
  class-definition time and raises ``NoRegionError`` without one).

So it is a PEP 723 script: ``make sdk-parity`` (``uv run --locked --script
tests/sdk/sdk_parity.py``) installs it from its own lock, ``tests/sdk/sdk_parity.py.lock``
(refresh that with ``uv lock --script tests/sdk/sdk_parity.py``). It imports nothing from the project: the inputs
below are the literal values ``_definition()`` in the snapshot test passes.

It runs offline: dummy credentials, the region set before the import, the role check
(``SAGEMAKER_VALIDATE_ROLE=false``) and telemetry off, a SageMaker config file of our own (not
the user's ``~/.config/sagemaker``), every step given its S3 locations (the defaults resolve the
session's default bucket, an S3 call), and any TCP connection refused outright.

The comparison leaves out only the SDK-only keys in ``SDK_DEFAULTS``: each at its documented
place, with its documented value, and only where our definition has no such key (where it has
one, the two are compared). A listed key that the SDK no longer writes fails the check, so the
list stays exact. It sorts only the SDK's lists that our renderer sorts (``SORTED_LISTS``).
Anything else that differs is printed, and the exit status is 1.

    uv run --script tests/sdk/sdk_parity.py [--snapshot PATH] [--sdk-json PATH] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

SNAPSHOT = (
    Path(__file__).resolve().parents[1]
    / "unit/components/__snapshots__/test_rendered_documents"
    / "test_pipeline_definition_matches_its_snapshot.json"
)

# The inputs of tests/unit/components/test_rendered_documents.py::_definition(), and the defaults
# of components/pipeline_definition.py that it leaves as they are.
REGION = "eu-west-1"
SERVICE = "svc"
BUCKET = "modelrail-prod-artifacts"
DATA_PREFIX = "datasets/svc/"
OUTPUT_PREFIX = "training/svc/"
TRAINING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.0-training"
SERVING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.0"
ROLE_ARN = "arn:aws:iam::123456789012:role/train"
KMS_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/k"
MODEL_PACKAGE_GROUP = "prod-svc"
SEED = 7
TRAIN_INSTANCE_TYPE = "ml.m5.xlarge"  # Compute(instance_type="ml.m5.xlarge")
TRAIN_MAX_RUNTIME_SECONDS = 86400  # Compute's default
EVALUATE_INSTANCE_TYPE = "ml.m5.large"  # EvaluationStep's Compute(max_runtime_seconds=3600)
EVALUATE_MAX_RUNTIME_SECONDS = 3600
VOLUME_SIZE_GB = 30
EVALUATE_MODULE = "pipelines.training.evaluate_step"
REGISTER_MODULE = "pipelines.training.register_step"
REGISTER_INSTANCE_TYPE = "ml.m5.large"  # RegisterStep's Compute(max_runtime_seconds=1800)
REGISTER_MAX_RUNTIME_SECONDS = 1800

# Keys the SDK always writes and our renderer leaves out, each with the one value the SDK writes,
# which is the service's default (or empty). Left out only at that path, only with that value and
# only when our definition lacks the key: the same key with another value is a difference.
SDK_DEFAULTS: tuple[tuple[str, Any, str], ...] = (
    (
        "$.MlflowConfig",
        None,
        "the pipeline's MLflow tracking config: none configured, null",
    ),
    (
        "$.Steps[*].Arguments.InputDataConfig[*].InputMode",
        "File",
        "a channel's input mode: without it the channel takes AlgorithmSpecification.TrainingInputMode (File)",
    ),
    (
        "$.Steps[*].Arguments.OutputDataConfig.CompressionType",
        "GZIP",
        "the model artifact's compression: GZIP is CreateTrainingJob's default",
    ),
    (
        "$.Steps[*].Arguments.ProcessingInputs[*].S3Input.S3CompressionType",
        "None",
        "a processing input's compression: None is CreateProcessingJob's default",
    ),
)

# Lists components/pipeline_definition.py renders sorted where the SDK writes them in the order
# given: only these are sorted on the SDK's side before comparing. None since the Register step
# became a Processing job (a RegisterModel step's content and instance types were).
SORTED_LISTS: tuple[str, ...] = ()

SAGEMAKER_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def _offline_environment(config_file: Path) -> None:
    """What the SDK reads at import and at build time: fixed here, never the user's."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            # Importing sagemaker.mlops creates boto3 clients, which need a region.
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            # ModelTrainer(role=...) would otherwise call iam:SimulatePrincipalPolicy / GetRole.
            "SAGEMAKER_VALIDATE_ROLE": "false",
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            # Our config (telemetry off), not /etc/xdg/sagemaker or ~/.config/sagemaker.
            "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(config_file),
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config_file),
        }
    )


def _refuse_network() -> None:
    """Any TCP connection fails at once: building a definition must not talk to AWS."""
    original_connect = socket.socket.connect

    def connect(self: Any, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(f"sdk_parity runs offline, but the SDK tried to connect to {address!r}")
        original_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]


def build_sdk_definition() -> dict[str, Any]:
    """The pipeline, built with the SDK from the snapshot's inputs, as parsed JSON."""
    import boto3
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
        StoppingCondition,
    )
    from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import Pipeline, ProcessingStep, TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    boto_session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    # default_bucket= only names the bucket: Session.default_bucket() still HEADs it in S3, so
    # nothing below may call it (every input and output below names its S3 location).
    session = PipelineSession(
        boto_session=boto_session, default_bucket=BUCKET, sagemaker_config=SAGEMAKER_CONFIG
    )

    train_data = ParameterString(name="TrainDataUri", default_value=f"s3://{BUCKET}/{DATA_PREFIX}train/")
    test_data = ParameterString(name="TestDataUri", default_value=f"s3://{BUCKET}/{DATA_PREFIX}test/")

    trainer = ModelTrainer(
        sagemaker_session=session,
        role=ROLE_ARN,
        base_job_name="train",
        training_image=TRAINING_IMAGE,
        compute=Compute(
            instance_type=TRAIN_INSTANCE_TYPE,
            instance_count=1,
            volume_size_in_gb=VOLUME_SIZE_GB,
            volume_kms_key_id=KMS_KEY_ARN,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=TRAIN_MAX_RUNTIME_SECONDS),
        output_data_config=OutputDataConfig(
            s3_output_path=f"s3://{BUCKET}/{OUTPUT_PREFIX}models/", kms_key_id=KMS_KEY_ARN
        ),
        hyperparameters={"service": SERVICE, "seed": str(SEED), "data_uri": train_data},
    )
    train_step = TrainingStep(
        name="Train",
        step_args=trainer.train(input_data_config=[InputData(channel_name="train", data_source=train_data)]),
    )
    model_artifacts = train_step.properties.ModelArtifacts.S3ModelArtifacts

    processor = Processor(
        role=ROLE_ARN,
        image_uri=TRAINING_IMAGE,
        instance_count=1,
        instance_type=EVALUATE_INSTANCE_TYPE,
        entrypoint=["python3", "-m", EVALUATE_MODULE],
        volume_size_in_gb=VOLUME_SIZE_GB,
        volume_kms_key=KMS_KEY_ARN,
        output_kms_key=KMS_KEY_ARN,
        max_runtime_in_seconds=EVALUATE_MAX_RUNTIME_SECONDS,
        base_job_name="evaluate",
        sagemaker_session=session,
    )

    def s3_input(name: str, source: Any, local_path: str) -> Any:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=source,
                local_path=local_path,
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            ),
        )

    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    eval_step = ProcessingStep(
        name="Evaluate",
        step_args=processor.run(
            inputs=[
                s3_input("model", model_artifacts, "/opt/ml/processing/model"),
                s3_input("test", test_data, "/opt/ml/processing/test"),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="evaluation",
                    s3_output=ProcessingS3Output(
                        s3_uri=f"s3://{BUCKET}/{OUTPUT_PREFIX}evaluation/",
                        local_path="/opt/ml/processing/evaluation",
                        s3_upload_mode="EndOfJob",
                    ),
                )
            ],
        ),
        property_files=[report],
    )
    register_processor = Processor(
        role=ROLE_ARN,
        image_uri=TRAINING_IMAGE,
        instance_count=1,
        instance_type=REGISTER_INSTANCE_TYPE,
        entrypoint=["python3", "-m", REGISTER_MODULE],
        volume_size_in_gb=VOLUME_SIZE_GB,
        volume_kms_key=KMS_KEY_ARN,
        output_kms_key=KMS_KEY_ARN,
        max_runtime_in_seconds=REGISTER_MAX_RUNTIME_SECONDS,
        base_job_name="register",
        sagemaker_session=session,
    )
    register_step = ProcessingStep(
        name="Register",
        step_args=register_processor.run(
            inputs=[s3_input("model", model_artifacts, "/opt/ml/processing/model")],
            outputs=[
                ProcessingOutput(
                    output_name="registration",
                    s3_output=ProcessingS3Output(
                        s3_uri=f"s3://{BUCKET}/{OUTPUT_PREFIX}registration/",
                        local_path="/opt/ml/processing/registration",
                        s3_upload_mode="EndOfJob",
                    ),
                )
            ],
            arguments=[
                "--service",
                SERVICE,
                "--bucket",
                BUCKET,
                "--model-package-group",
                MODEL_PACKAGE_GROUP,
                "--serving-image",
                SERVING_IMAGE,
                "--registrant",
                Join(on=":", values=["sagemaker-pipeline", ExecutionVariables.PIPELINE_NAME]),
                "--region",
                REGION,
            ],
        ),
        depends_on=[eval_step],
    )

    pipeline = Pipeline(
        name=f"modelrail-{SERVICE}",
        parameters=[train_data, test_data],
        steps=[train_step, eval_step, register_step],
        sagemaker_session=session,
    )
    definition: dict[str, Any] = json.loads(pipeline.definition())
    return definition


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.escape(path).replace(re.escape("[*]"), r"\[\d+\]"))


_DEFAULTS = [(_pattern(path), path, value) for path, value, _ in SDK_DEFAULTS]
_SORTED_LISTS = [_pattern(path) for path in SORTED_LISTS]


def _child(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def sort_lists(node: Any, path: str = "$") -> Any:
    """``node`` with the lists at ``SORTED_LISTS`` sorted, as our renderer sorts them."""
    if isinstance(node, dict):
        return {key: sort_lists(value, _child(path, key)) for key, value in node.items()}
    if isinstance(node, list):
        items = [sort_lists(item, _child(path, index)) for index, item in enumerate(node)]
        if any(pattern.fullmatch(path) for pattern in _SORTED_LISTS):
            items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return items
    return node


def _sdk_default(path: str, value: Any) -> str | None:
    """The ``SDK_DEFAULTS`` entry that ``path = value`` is, if any."""
    return next(
        (name for pattern, name, default in _DEFAULTS if pattern.fullmatch(path) and value == default), None
    )


def written_defaults(node: Any, path: str = "$") -> set[str]:
    """The ``SDK_DEFAULTS`` entries that ``node`` (the SDK's definition) has, with their value."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            child = _child(path, key)
            if (default := _sdk_default(child, value)) is not None:
                found.add(default)
            found |= written_defaults(value, child)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found |= written_defaults(item, _child(path, index))
    return found


def diff(ours: Any, sdk: Any, path: str = "$") -> tuple[list[str], int]:
    """Every difference as a line, and how many object keys were compared.

    A key only the SDK writes is left out when it is an ``SDK_DEFAULTS`` entry (path and value).
    A key both write is always compared.
    """
    lines: list[str] = []
    keys = 0
    if isinstance(ours, dict) and isinstance(sdk, dict):
        for key in sorted(set(ours) | set(sdk)):
            child = _child(path, key)
            if key not in ours and _sdk_default(child, sdk[key]) is not None:
                continue
            keys += 1
            if key not in sdk:
                lines.append(f"  only ours: {child} = {json.dumps(ours[key])}")
            elif key not in ours:
                lines.append(f"  only SDK : {child} = {json.dumps(sdk[key])}")
            else:
                child_lines, child_keys = diff(ours[key], sdk[key], child)
                lines += child_lines
                keys += child_keys
    elif isinstance(ours, list) and isinstance(sdk, list) and len(ours) == len(sdk):
        for index, (mine, theirs) in enumerate(zip(ours, sdk, strict=True)):
            child_lines, child_keys = diff(mine, theirs, _child(path, index))
            lines += child_lines
            keys += child_keys
    elif ours != sdk or type(ours) is not type(sdk):
        lines.append(f"  differs  : {path}\n      ours: {json.dumps(ours)}\n      SDK : {json.dumps(sdk)}")
    return lines, keys


def compare(ours: Any, sdk: Any) -> tuple[list[str], int]:
    """``diff`` of our definition and the SDK's (its ``SORTED_LISTS`` sorted), plus any stale entry."""
    lines, keys = diff(ours, sort_lists(sdk))
    written = written_defaults(sdk)
    lines += [
        f"  stale SDK_DEFAULTS: the SDK no longer writes {path} = {json.dumps(value)}"
        for path, value, _ in SDK_DEFAULTS
        if path not in written
    ]
    return lines, keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=SNAPSHOT,
        help="our rendered definition to compare with (default: the committed snapshot)",
    )
    parser.add_argument("--sdk-json", type=Path, help="also write the SDK's definition, as it built it, here")
    parser.add_argument("--verbose", action="store_true", help="show the SDK's own logging and warnings")
    args = parser.parse_args(argv)

    ours = json.loads(args.snapshot.read_text())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sdk-parity-") as scratch:
        config_file = Path(scratch) / "config.yaml"
        config_file.write_text(json.dumps(SAGEMAKER_CONFIG))  # JSON is YAML
        _offline_environment(config_file)
        _refuse_network()
        with warnings.catch_warnings():
            if not args.verbose:
                # Its INFO/WARNING lines ("Popping out 'TrainingJobName'", "No Wait, No Logs") are
                # about running a job, not about the definition.
                logging.disable(logging.WARNING)
                warnings.simplefilter("ignore")
            sdk_raw = build_sdk_definition()
        logging.disable(logging.NOTSET)
    elapsed = time.perf_counter() - started
    print(f"sagemaker-mlops {version('sagemaker-mlops')}: built the pipeline offline in {elapsed:.1f} s")

    if args.sdk_json:
        args.sdk_json.write_text(json.dumps(sdk_raw, indent=2, sort_keys=True) + "\n")
    lines, keys = compare(ours, sdk_raw)
    if lines:
        print(f"definitions differ: {args.snapshot} (ours) vs the SDK's, {len(lines)} difference(s):")
        print("\n".join(lines))
        return 1
    print(f"definitions match ({keys} keys compared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
