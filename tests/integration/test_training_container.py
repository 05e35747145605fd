"""What the SageMaker Pipeline's jobs produce is what the registry takes, against a real moto server.

The Train step's entrypoint runs as a process on an ``/opt/ml`` layout with its hyperparameters
as SageMaker passes them (strings); its model directory is tarred the way SageMaker tars it; the
Evaluate step's entrypoint scores that tarball as a process; and the registry registers it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.naming import model_package_group_name
from pipelines.packaging.load import load_package
from pipelines.registry.sagemaker import SageMakerRegistry, evaluation_key
from pipelines.training import container
from pipelines.training.manifest import fingerprint, parse_manifest
from pipelines.training.trainer import EVALUATION_FILE, TRAINING_MANIFEST_FILE
from tests.unit.training.opt_ml import (
    GIT_SHA,
    held_out_rows,
    json_file,
    run_entrypoint,
    sagemaker_tarball,
    training_job,
)

from .conftest import REPO, SERVICE

pytestmark = pytest.mark.integration

ADULT = REPO / "data" / "adult" / "adult.data"
DIABETES = REPO / "data" / "diabetes" / "diabetes.csv"
HYPERPARAMETERS = {
    "service": SERVICE,
    "sample_rows": "1500",
    "max_iter": "10",
    "seed": "11",
    "data_sha256": fingerprint(ADULT),
    "data_uri": "s3://modelrail-test-artifacts/datasets/adult-income/train/",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """adult-income trained by ``python -m pipelines.training.container``; its /opt/ml and model.tar.gz."""
    work = tmp_path_factory.mktemp("sagemaker-job")
    prefix = training_job(work / "opt-ml", HYPERPARAMETERS, ADULT)
    done = run_entrypoint("pipelines.training.container", prefix)
    assert done.returncode == 0, done.stderr
    return prefix, sagemaker_tarball(prefix / "model", work / "model.tar.gz")


def test_the_jobs_model_tarball_is_a_package_the_registry_registers(
    trained: tuple[Path, Path], registry: SageMakerRegistry
) -> None:
    prefix, tarball = trained
    loaded = load_package(tarball)
    manifest = json_file(prefix / "model" / TRAINING_MANIFEST_FILE)
    assert manifest["hyperparameters"]["sample_rows"] == 1500
    assert manifest["hyperparameters"]["max_iter"] == 10
    assert manifest["seed"] == 11
    assert manifest["code_git_sha"] == GIT_SHA
    registration = registry.register(SERVICE, tarball, "sagemaker-pipeline")
    assert registration.created and registration.uploaded
    version = registration.version
    assert version.package_sha == loaded.package_id
    assert version.dataset_fingerprint == fingerprint(ADULT)
    assert version.git_sha == GIT_SHA
    assert version.approval == "PendingManualApproval"
    again = registry.register(SERVICE, tarball, "sagemaker-pipeline")
    assert not again.created and not again.uploaded


def test_the_evaluate_step_reports_what_the_registry_records(
    trained: tuple[Path, Path], registry: SageMakerRegistry, tmp_path: Path
) -> None:
    """On the rows training held out, the Evaluate step's report is the package's: the ModelMetrics."""
    prefix, tarball = trained
    manifest = parse_manifest(
        json_file(prefix / "model" / TRAINING_MANIFEST_FILE), source="training-manifest"
    )
    step = tmp_path / "processing-job"
    (step / "processing" / "model").mkdir(parents=True)
    (step / "processing" / "model" / "model.tar.gz").write_bytes(tarball.read_bytes())
    (step / "processing" / "test").mkdir(parents=True)
    held_out_rows(manifest, ADULT, step / "processing" / "test" / "adult.test")
    done = run_entrypoint("pipelines.training.evaluate_step", step)
    assert done.returncode == 0, done.stderr
    report = json_file(step / "processing" / "evaluation" / EVALUATION_FILE)
    assert report["task"] == "binary_classification"
    assert report["rows"] == 300
    version = registry.register(SERVICE, tarball, "sagemaker-pipeline").version
    recorded = registry.s3.get_object(
        Bucket=registry.bucket, Key=evaluation_key(SERVICE, version.package_sha)
    )
    assert report == json.loads(recorded["Body"].read())


def test_a_regression_service_trained_by_the_job_registers_too(
    registry: SageMakerRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.sagemaker.create_model_package_group(
        ModelPackageGroupName=model_package_group_name(registry.environment, "diabetes")
    )
    prefix = training_job(tmp_path / "opt-ml", {"service": "diabetes", "alpha": "2"}, DIABETES)
    monkeypatch.setenv(container.OPT_ML_ENV, str(prefix))
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(REPO))
    monkeypatch.setenv(container.GIT_SHA_ENV, GIT_SHA)
    assert container.main() == 0
    tarball = sagemaker_tarball(prefix / "model", tmp_path / "model.tar.gz")
    version = registry.register("diabetes", tarball, "sagemaker-pipeline").version
    assert version.package_sha == load_package(tarball).package_id
    assert version.service == "diabetes"
    recorded = registry.s3.get_object(
        Bucket=registry.bucket, Key=evaluation_key("diabetes", version.package_sha)
    )
    assert json.loads(recorded["Body"].read())["task"] == "regression"
