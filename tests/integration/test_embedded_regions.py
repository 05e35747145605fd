"""The embedded AWS seeds every stack in the stack's own region (moto validates S3 like AWS does).

Outside us-east-1 a CreateBucket needs ``LocationConstraint`` = the region, and us-east-1 refuses
one; dev, staging and prod live in eu-west-1, so ``MODELRAIL_AWS=embedded`` used to fail on them
with IllegalLocationConstraintException.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipelines.embedded import server
from pipelines.embedded.seed import declared_resources, ensure_bucket, seed
from pipelines.embedded.session import EmbeddedAws, stop
from pipelines.packaging.build import PackageResult

from .conftest import REPO, SERVICE

pytestmark = pytest.mark.integration

STACKS = sorted(path.name.split(".")[1] for path in (REPO / "stacks").glob("Pulumi.*.yaml"))


def test_some_stack_lives_outside_us_east_1() -> None:
    """Otherwise the tests below would not exercise a location constraint at all."""
    assert {"dev", "staging", "prod"} <= set(STACKS)
    assert {declared_resources(stack).region for stack in ("dev", "staging", "prod")} != {"us-east-1"}


@pytest.mark.parametrize("stack", STACKS)
def test_seeding_creates_the_declared_buckets_and_groups_in_the_stack_region(
    stack: str, moto_aws: EmbeddedAws
) -> None:
    resources = declared_resources(stack)
    assert resources.buckets and resources.groups
    s3, sagemaker = moto_aws.client("s3", resources.region), moto_aws.client("sagemaker", resources.region)
    seed(s3, sagemaker, resources)
    seed(s3, sagemaker, resources)  # idempotent: a second seeding finds everything there
    for bucket in resources.buckets:
        location = s3.get_bucket_location(Bucket=bucket)["LocationConstraint"]
        assert (location or "us-east-1") == resources.region, bucket
    for group in resources.groups:
        described = sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        assert f":sagemaker:{resources.region}:" in described["ModelPackageGroupArn"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_a_bucket_is_created_in_the_region_of_its_client(region: str, moto_aws: EmbeddedAws) -> None:
    s3 = moto_aws.client("s3", region)
    bucket = f"modelrail-seed-test-{region}"
    ensure_bucket(s3, bucket)
    ensure_bucket(s3, bucket)
    assert (s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] or "us-east-1") == region


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(state))
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(REPO))
    monkeypatch.setenv("MODELRAIL_AWS", "embedded")
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    try:
        yield state
    finally:
        stop(state)


def test_the_cli_lists_versions_of_a_eu_west_1_stack_on_the_embedded_aws(state: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "versions", "--service", SERVICE, "--stack", "dev", "--json"],
        check=False, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert json.loads(result.stdout)["versions"] == []
    assert "IllegalLocationConstraint" not in result.stderr + result.stdout


def test_a_restored_server_still_has_the_versions_of_a_eu_west_1_stack(
    state: Path, package: PackageResult
) -> None:
    from pipelines.registry.factory import registry_for_stack

    registry_for_stack("dev", SERVICE).register(SERVICE, package.path, "alice@example.com")
    info = server.recorded(state)
    assert info is not None
    psutil.Process(info.pid).kill()
    psutil.Process(info.pid).wait(timeout=10)
    [restored] = registry_for_stack("dev", SERVICE).versions(SERVICE)
    assert restored.package_sha == package.package_id
