"""The pipeline definition names code that exists, in the image that has it, at the paths it reads.

A definition that calls a module nobody wrote renders and deploys fine and fails only when the
pipeline first runs; these tests fail instead. They read the rendered JSON, as SageMaker does.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from components.base import ComponentArgsError, validate_args
from components.pipeline_definition import Compute, train_evaluate_register
from components.training import TrainingArgs
from pipelines.training import container, evaluate_step
from tests.unit.components.conftest import platform_values

TRAINING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.0-training"
SERVING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.0"


def _steps() -> dict[str, dict[str, Any]]:
    definition = train_evaluate_register(
        service="fraud-score",
        bucket="modelrail-prod-artifacts",
        data_prefix="datasets/fraud-score/",
        output_prefix="training/fraud-score/",
        training_image_uri=TRAINING_IMAGE,
        serving_image_uri=SERVING_IMAGE,
        role_arn="arn:aws:iam::123456789012:role/train",
        kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k",
        model_package_group_name="prod-fraud-score",
        compute=Compute(),
        seed=4,
    ).render()
    return {step["Name"]: step["Arguments"] for step in json.loads(definition)["Steps"]}


def test_every_module_the_definition_runs_can_be_imported() -> None:
    entrypoint = _steps()["Evaluate"]["AppSpecification"]["ContainerEntrypoint"]
    assert entrypoint[:2] == ["python3", "-m"]
    module = entrypoint[2]
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # its package does not exist either
        spec = None
    assert spec is not None, f"the Evaluate step runs {module}, which does not exist"
    assert module == evaluate_step.__name__


def test_train_and_evaluate_run_the_training_image_and_register_names_the_serving_image() -> None:
    steps = _steps()
    assert steps["Train"]["AlgorithmSpecification"]["TrainingImage"] == TRAINING_IMAGE
    assert steps["Evaluate"]["AppSpecification"]["ImageUri"] == TRAINING_IMAGE
    (registered,) = steps["Register"]["InferenceSpecification"]["Containers"]
    assert registered["Image"] == SERVING_IMAGE


def test_the_evaluate_step_reads_and_writes_where_its_module_looks() -> None:
    arguments = _steps()["Evaluate"]
    paths = {item["InputName"]: item["S3Input"]["LocalPath"] for item in arguments["ProcessingInputs"]}
    for output in arguments["ProcessingOutputConfig"]["Outputs"]:
        paths[output["OutputName"]] = output["S3Output"]["LocalPath"]
    assert paths == evaluate_step.LOCAL_PATHS


def test_the_train_step_gives_the_container_its_channel_and_service() -> None:
    arguments = _steps()["Train"]
    assert [channel["ChannelName"] for channel in arguments["InputDataConfig"]] == [container.CHANNEL]
    hyperparameters = arguments["HyperParameters"]
    assert hyperparameters["service"] == "fraud-score"
    assert hyperparameters["seed"] == "4"
    assert hyperparameters["data_uri"] == {"Get": "Parameters.TrainDataUri"}
    # SageMaker passes hyperparameters as strings; the rest are references it resolves to strings.
    assert all(isinstance(value, str) or set(value) == {"Get"} for value in hyperparameters.values())


def _training_args(**overrides: Any) -> TrainingArgs:
    values = {**platform_values(), "service": "svc", "model_package_group_name": "prod-svc", **overrides}
    return validate_args("Training 'svc'", TrainingArgs, values)


def test_the_training_image_is_the_serving_tag_with_training_appended_unless_given() -> None:
    assert _training_args(image_tag="1.4.0").training_tag == "1.4.0-training"
    assert _training_args(image_tag="1.4.0", training_image_tag="trainer-7").training_tag == "trainer-7"


def test_a_training_tag_that_cannot_be_an_image_of_its_own_is_refused() -> None:
    with pytest.raises(ComponentArgsError, match="over ECR's 128"):
        _training_args(image_tag="v" * 125)
    with pytest.raises(ComponentArgsError, match="the same tag as the serving image"):
        _training_args(image_tag="1.0", training_image_tag="1.0")
