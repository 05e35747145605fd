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
from pipelines.training import container, evaluate_step, register_step
from tests.unit.components.conftest import platform_values

TRAINING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.0-training"
SERVING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.0"


def _definition_steps() -> list[dict[str, Any]]:
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
        region="eu-west-1",
        compute=Compute(),
        seed=4,
    ).render()
    return list(json.loads(definition)["Steps"])


def _steps() -> dict[str, dict[str, Any]]:
    return {step["Name"]: step["Arguments"] for step in _definition_steps()}


MODULES = {"Evaluate": evaluate_step, "Register": register_step}
"""The module each Processing step runs, by step name."""


def test_every_module_the_definition_runs_can_be_imported() -> None:
    processing = [step for step in _definition_steps() if step["Type"] == "Processing"]
    assert {step["Name"] for step in processing} == set(MODULES)
    for step in processing:
        entrypoint = step["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
        assert entrypoint[:2] == ["python3", "-m"]
        module = entrypoint[2]
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:  # its package does not exist either
            spec = None
        assert spec is not None, f"the {step['Name']} step runs {module}, which does not exist"
        assert module == MODULES[step["Name"]].__name__
        importlib.import_module(module)
    # The Train step runs the image's `train`, which runs the container module.
    assert {step["Type"] for step in _definition_steps()} == {"Training", "Processing"}
    assert importlib.util.find_spec(container.__name__) is not None


def test_every_step_runs_the_training_image_and_register_names_the_serving_image() -> None:
    steps = _steps()
    assert steps["Train"]["AlgorithmSpecification"]["TrainingImage"] == TRAINING_IMAGE
    assert steps["Evaluate"]["AppSpecification"]["ImageUri"] == TRAINING_IMAGE
    assert steps["Register"]["AppSpecification"]["ImageUri"] == TRAINING_IMAGE
    arguments = steps["Register"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--serving-image") + 1] == SERVING_IMAGE


def test_the_processing_steps_read_and_write_where_their_modules_look() -> None:
    steps = _steps()
    for name, module in MODULES.items():
        arguments = steps[name]
        paths = {item["InputName"]: item["S3Input"]["LocalPath"] for item in arguments["ProcessingInputs"]}
        for output in arguments["ProcessingOutputConfig"]["Outputs"]:
            paths[output["OutputName"]] = output["S3Output"]["LocalPath"]
        assert paths == module.LOCAL_PATHS, name


def test_the_register_step_gets_every_argument_its_module_takes() -> None:
    step = next(step for step in _definition_steps() if step["Name"] == "Register")
    assert step["DependsOn"] == ["Evaluate"]
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    names, values = arguments[0::2], arguments[1::2]
    assert names == [f"--{name}" for name in register_step.ARGUMENTS]
    given = dict(zip(names, values, strict=True))
    assert given["--registrant"] == {
        "Std:Join": {"On": ":", "Values": ["sagemaker-pipeline", {"Get": "Execution.PipelineName"}]}
    }
    resolved = [
        value if isinstance(value, str) else "sagemaker-pipeline:modelrail-prod-x" for value in arguments
    ]
    target = register_step.parse_arguments(resolved, {})
    assert target.service == "fraud-score"
    assert target.environment == "prod"
    assert target.region == "eu-west-1"
    assert target.bucket == "modelrail-prod-artifacts"


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
