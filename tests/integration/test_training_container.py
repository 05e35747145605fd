"""What the SageMaker Pipeline's jobs produce is what the registry takes, against a real moto server.

The Train step's entrypoint runs as a process on an ``/opt/ml`` layout with its hyperparameters
as SageMaker passes them (strings); its model directory is tarred the way SageMaker tars it; the
Evaluate step's entrypoint scores that tarball as a process; and the registry registers it, both
called here and as the Register step's entrypoint, a process given its ContainerArguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.naming import artifact_key, model_package_group_name
from pipelines.embedded.session import EMBEDDED_KEY, EmbeddedAws
from pipelines.packaging.load import load_package
from pipelines.registry.sagemaker import SageMakerRegistry, evaluation_key
from pipelines.training import container, register_step
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


def _register_step(
    job: Path, registry: SageMakerRegistry, aws: EmbeddedAws, registrant: str
) -> subprocess.CompletedProcess[str]:
    """``python -m pipelines.training.register_step`` with its ContainerArguments, against moto."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("SM_", "MODELRAIL_", "AWS_"))
    }
    env.update(
        {
            "MODELRAIL_OPT_ML": str(job),
            "MODELRAIL_PROJECT_DIR": str(REPO),
            "AWS_ENDPOINT_URL": aws.endpoint_url,
            "AWS_ACCESS_KEY_ID": EMBEDDED_KEY,
            "AWS_SECRET_ACCESS_KEY": EMBEDDED_KEY,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    arguments = {
        "service": SERVICE,
        "bucket": registry.bucket,
        "model-package-group": model_package_group_name(registry.environment, SERVICE),
        "serving-image": registry.serving_image,
        "registrant": registrant,
        "region": registry.sagemaker.meta.region_name,
    }
    command = [sys.executable, "-m", register_step.__name__]
    command += [item for name in register_step.ARGUMENTS for item in (f"--{name}", arguments[name])]
    return subprocess.run(command, cwd=job, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_register_step_registers_the_jobs_tarball_with_the_registry_code(
    trained: tuple[Path, Path], registry: SageMakerRegistry, moto_aws: EmbeddedAws, tmp_path: Path
) -> None:
    """The pipeline's Register step is the registry's one writer: the version is one the controller can use."""
    _, tarball = trained
    job = tmp_path / "processing-job"
    (job / "processing" / "model").mkdir(parents=True)
    (job / "processing" / "model" / "model.tar.gz").write_bytes(tarball.read_bytes())
    registrant = "sagemaker-pipeline:modelrail-test-adult-income"
    package_sha = load_package(tarball).package_id

    done = _register_step(job, registry, moto_aws, registrant)
    assert done.returncode == 0, done.stderr
    result = json_file(job / "processing" / "registration" / "registration.json")
    assert result == json.loads(done.stdout)
    assert result["package_sha"] == package_sha
    assert result["created"] and result["uploaded"]

    version = registry.version(SERVICE, package_sha)
    assert version.package_sha == package_sha
    assert version.tarball_sha256 == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert version.stage == "experimental"
    assert version.approval == "PendingManualApproval"
    assert version.registrant == registrant
    assert version.dataset_fingerprint == fingerprint(ADULT)
    assert version.git_sha == GIT_SHA
    assert version.artifact_uri == f"s3://{registry.bucket}/{artifact_key(SERVICE, package_sha)}"
    assert version.evaluation_uri == f"s3://{registry.bucket}/{evaluation_key(SERVICE, package_sha)}"
    downloaded = registry.download(SERVICE, package_sha, tmp_path / "downloaded" / "model.tar.gz")
    assert downloaded.read_bytes() == tarball.read_bytes()
    assert load_package(downloaded, expected_package_id=package_sha).package_id == package_sha

    again = _register_step(job, registry, moto_aws, registrant)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert not second["created"] and not second["uploaded"]
    assert second["package_sha"] == package_sha
    assert [v.package_sha for v in registry.versions(SERVICE)] == [package_sha]


def test_the_register_step_reports_why_it_cannot_register(
    registry: SageMakerRegistry, moto_aws: EmbeddedAws, tmp_path: Path
) -> None:
    """No model input: the reason goes to the job's exit message and nothing is registered."""
    job = tmp_path / "processing-job"
    (job / "processing" / "model").mkdir(parents=True)
    done = _register_step(job, registry, moto_aws, "sagemaker-pipeline:x")
    assert done.returncode != 0
    assert "no model artifact" in (job / "output" / "message").read_text()
    assert registry.versions(SERVICE) == []
