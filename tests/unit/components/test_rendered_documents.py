"""Rendered documents (pipeline definition, dashboard) are deterministic and snapshot-tested."""

from __future__ import annotations

import json

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from components.monitoring import dashboard_body
from components.pipeline_definition import Compute, train_evaluate_register


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def _definition() -> str:
    return train_evaluate_register(
        service="svc",
        bucket="modelrail-prod-artifacts",
        data_prefix="datasets/svc/",
        output_prefix="training/svc/",
        training_image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.0-training",
        serving_image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.0",
        role_arn="arn:aws:iam::123456789012:role/train",
        kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k",
        model_package_group_name="prod-svc",
        region="eu-west-1",
        compute=Compute(instance_type="ml.m5.xlarge"),
        seed=7,
    ).render()


def test_pipeline_definition_matches_its_snapshot(snapshot_json: SnapshotAssertion) -> None:
    assert json.loads(_definition()) == snapshot_json


def test_pipeline_definition_rendering_is_byte_stable() -> None:
    text = _definition()
    assert text == _definition()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def test_steps_chain_train_to_evaluate_to_register() -> None:
    steps = {step["Name"]: step for step in json.loads(_definition())["Steps"]}
    model = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert steps["Evaluate"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] == model
    register = steps["Register"]
    assert register["DependsOn"] == ["Evaluate"]
    assert register["Type"] == "Processing"
    assert register["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] == model


def test_dashboard_matches_its_snapshot(snapshot_json: SnapshotAssertion) -> None:
    body = dashboard_body(
        endpoint_name="prod-svc", region="eu-west-1", min_live_accuracy=0.8, max_prediction_drift=0.1
    )
    assert body == snapshot_json
    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    assert titles == [
        "Invocations",
        "Errors (4xx, 5xx)",
        "Model latency p50 / p99 (µs)",
        "Live accuracy",
        "Prediction drift (Jensen-Shannon)",
    ]
