"""A real moto server process per test worker, on a free loopback port, always stopped at the end.

Tests that need AWS take ``moto_endpoint`` (the server) or ``registry`` (a ``SageMakerRegistry``
whose bucket and model package group are unique to the test, so tests never see each other's
versions even when they share the server).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.naming import model_package_group_name
from pipelines.embedded import server
from pipelines.embedded.session import EmbeddedAws
from pipelines.packaging.build import PackageResult, build_package
from pipelines.registry.sagemaker import SageMakerRegistry
from pipelines.training.manifest import Hyperparameters, TrainingManifest, fingerprint
from pipelines.training.trainer import train

REPO = Path(__file__).resolve().parents[2]
SERVICE = "adult-income"
PINNED = "1" * 64
"""The version the pinned-sandbox workspace's local stack file names."""
STANDIN = ["{python}", str(Path(__file__).with_name("standin_server.py")), "--model-dir", "{model_dir}",
           "--port", "{port}"]  # fmt: skip
"""The sandbox's server command for the stand-in model server (fleets start in well under a second)."""


@pytest.fixture(scope="session")
def moto_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAws]:
    """A moto server subprocess on 127.0.0.1; terminated however the session ends."""
    state = tmp_path_factory.mktemp("moto")
    process, info = server.spawn(state, detached=False)
    try:
        yield EmbeddedAws(info.endpoint_url, state, info)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except Exception:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def registry(moto_aws: EmbeddedAws) -> SageMakerRegistry:
    """A registry with its own bucket and group for ``adult-income`` (environment ``t<random>``)."""
    environment = f"t{uuid.uuid4().hex[:10]}"
    bucket = f"modelrail-{environment}-artifacts"
    s3, sagemaker = moto_aws.client("s3"), moto_aws.client("sagemaker")
    s3.create_bucket(Bucket=bucket)
    sagemaker.create_model_package_group(ModelPackageGroupName=model_package_group_name(environment, SERVICE))
    return SageMakerRegistry(
        s3=s3,
        sagemaker=sagemaker,
        bucket=bucket,
        environment=environment,
        stack=environment,
        serving_image="modelrail-serving:test",
    )


def small_manifest(seed: int = 11, **hyperparameters: object) -> TrainingManifest:
    return TrainingManifest(
        service=SERVICE,
        data_uri="data/adult/adult.data",
        data_sha256=fingerprint(REPO / "data" / "adult" / "adult.data"),
        hyperparameters=Hyperparameters.model_validate(
            {"sample_rows": 1500, "max_iter": 10, **hyperparameters}
        ),
        seed=seed,
        code_git_sha="2" * 40,
    )


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    """A small real package, built once per worker."""
    work = tmp_path_factory.mktemp("package")
    model_dir = train(small_manifest(), work / "model", root=REPO).out_dir
    return build_package(SERVICE, model_dir, work / "model.tar.gz")


@pytest.fixture(scope="session")
def other_package(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    """A second package of the same service (another seed)."""
    work = tmp_path_factory.mktemp("other")
    model_dir = train(small_manifest(seed=12), work / "model", root=REPO).out_dir
    return build_package(SERVICE, model_dir, work / "model.tar.gz")


@pytest.fixture
def pinned_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project whose local stack pins ``PINNED``, and a state directory; yields the state.

    The sandbox started there is stopped however the test ends.
    """
    from pipelines.promotion.stackfile import write_pin
    from pipelines.sandbox import stop_sandbox

    project, state = tmp_path / "project", tmp_path / "state"
    shutil.copytree(REPO / "stacks", project / "stacks")
    for shared in ("services", "data"):
        (project / shared).symlink_to(REPO / shared, target_is_directory=True)
    write_pin(project / "stacks" / "Pulumi.local.yaml", SERVICE, PINNED)
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(project))
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(state))
    try:
        yield state
    finally:
        stop_sandbox(state)
