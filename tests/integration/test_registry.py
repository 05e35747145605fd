"""The registry against a real moto server: content addressing, model packages, refusals."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from infra.naming import artifact_key
from pipelines.errors import BadInputError, ExitCode
from pipelines.packaging.build import PackageResult
from pipelines.packaging.load import load_package
from pipelines.packaging.tarball import extract_tarball, write_tarball
from pipelines.registry.port import ArtifactConflictError, MissingGroupError, VersionNotFoundError
from pipelines.registry.sagemaker import SageMakerRegistry, evaluation_key
from pipelines.registry.stages import Stage
from pipelines.serving.verify import TamperedArtifactError

from .conftest import SERVICE

pytestmark = pytest.mark.integration


def test_register_uploads_by_content_and_creates_a_pending_experimental_package(
    registry: SageMakerRegistry, package: PackageResult
) -> None:
    registration = registry.register(SERVICE, package.path, "alice@example.com")
    version = registration.version
    assert registration.created and registration.uploaded
    assert version.package_sha == package.package_id
    assert version.approval == "PendingManualApproval"
    assert version.stage == "experimental"
    assert version.registrant == "alice@example.com"
    assert version.dataset_fingerprint == package.manifest["dataset"]["sha256"]
    assert version.git_sha == "2" * 40
    assert version.tarball_sha256 == package.tarball_sha256
    key = artifact_key(SERVICE, package.package_id)
    assert version.artifact_uri == f"s3://{registry.bucket}/{key}"
    stored = registry.s3.get_object(Bucket=registry.bucket, Key=key)["Body"].read()
    assert stored == package.path.read_bytes()
    evaluation = registry.s3.get_object(
        Bucket=registry.bucket, Key=evaluation_key(SERVICE, package.package_id)
    )
    assert version.evaluation_uri.endswith(evaluation_key(SERVICE, package.package_id))
    assert "roc_auc" in json.loads(evaluation["Body"].read())["metrics"]


def test_registering_the_same_package_again_changes_nothing(
    registry: SageMakerRegistry, package: PackageResult
) -> None:
    first = registry.register(SERVICE, package.path, "alice")
    again = registry.register(SERVICE, package.path, "bob")
    assert not again.created and not again.uploaded
    assert again.version.arn == first.version.arn
    assert again.version.registrant == "alice"
    assert [v.package_sha for v in registry.versions(SERVICE)] == [package.package_id]


def test_a_different_file_under_an_existing_sha_is_refused(
    registry: SageMakerRegistry, package: PackageResult, tmp_path: Path
) -> None:
    registry.register(SERVICE, package.path, "alice")
    # The same files, so the same manifest and package id, but recompressed: other tarball bytes.
    raw = gzip.decompress(package.path.read_bytes())
    repacked = tmp_path / "model.tar.gz"
    repacked.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
    assert load_package(repacked).package_id == package.package_id
    with pytest.raises(ArtifactConflictError) as caught:
        registry.register(SERVICE, repacked, "mallory")
    assert package.package_id in caught.value.message
    assert f"stored tarball sha256: {package.tarball_sha256}" in caught.value.details
    assert caught.value.exit_code == ExitCode.FAILED
    assert len(registry.versions(SERVICE)) == 1


def test_a_missing_group_is_refused_naming_the_group_and_the_stack(
    registry: SageMakerRegistry, package: PackageResult
) -> None:
    registry.environment = "nowhere"
    with pytest.raises(MissingGroupError) as caught:
        registry.register(SERVICE, package.path, "alice")
    assert "'nowhere-adult-income'" in caught.value.message
    assert f"stack {registry.stack!r}" in caught.value.message


def test_versions_are_listed_in_order_and_found_by_prefix(
    registry: SageMakerRegistry, package: PackageResult, other_package: PackageResult
) -> None:
    registry.register(SERVICE, package.path, "alice")
    registry.register(SERVICE, other_package.path, "bob")
    listed = registry.versions(SERVICE)
    assert [(v.version_number, v.package_sha) for v in listed] == [
        (1, package.package_id),
        (2, other_package.package_id),
    ]
    assert registry.version(SERVICE, other_package.package_id[:8]).registrant == "bob"
    with pytest.raises(BadInputError, match="at least 8"):
        registry.version(SERVICE, package.package_id[:7])
    with pytest.raises(VersionNotFoundError):
        registry.version(SERVICE, "f" * 64)


def test_stage_and_approval_updates_keep_the_rest_of_the_metadata(
    registry: SageMakerRegistry, package: PackageResult
) -> None:
    registry.register(SERVICE, package.path, "alice")
    staged = registry.set_stage(SERVICE, package.package_id, Stage.CANDIDATE, "gatekeeper")
    assert (staged.stage, staged.approval) == ("candidate", "PendingManualApproval")
    approved = registry.set_approval(SERVICE, package.package_id, "Approved", "bob", "gates passed")
    assert (approved.stage, approved.approval) == ("candidate", "Approved")
    assert approved.registrant == "alice"
    assert approved.metadata["StageChangedBy"] == "gatekeeper"
    assert approved.metadata["ApprovalChangedBy"] == "bob"
    with pytest.raises(BadInputError, match="allowed: experimental, candidate, production, archived"):
        registry.set_stage(SERVICE, package.package_id, "staging", "x")  # type: ignore[arg-type]


def test_fetch_verifies_and_loads_the_registered_model(
    registry: SageMakerRegistry, package: PackageResult
) -> None:
    registry.register(SERVICE, package.path, "alice")
    loaded = registry.fetch(SERVICE, package.package_id[:12])
    assert loaded.package_id == package.package_id


def test_a_tampered_artifact_in_the_bucket_is_refused_naming_file_and_both_hashes(
    registry: SageMakerRegistry, package: PackageResult, tmp_path: Path
) -> None:
    registry.register(SERVICE, package.path, "alice")
    unpacked = tmp_path / "unpacked"
    extract_tarball(package.path, unpacked)
    schema = unpacked / "schema.json"
    expected_inner = hashlib.sha256(schema.read_bytes()).hexdigest()
    schema.write_bytes(schema.read_bytes().replace(b"Bachelors", b"Bachelorz", 1))
    actual_inner = hashlib.sha256(schema.read_bytes()).hexdigest()
    files = {p.relative_to(unpacked).as_posix(): p.read_bytes() for p in unpacked.rglob("*") if p.is_file()}
    tampered = write_tarball(files, tmp_path / "tampered.tar.gz")
    key = artifact_key(SERVICE, package.package_id)
    registry.s3.put_object(Bucket=registry.bucket, Key=key, Body=tampered)

    with pytest.raises(TamperedArtifactError) as outer:
        registry.fetch(SERVICE, package.package_id)
    assert outer.value.details == [
        "file: model.tar.gz",
        f"expected sha256: {package.tarball_sha256}",
        f"actual sha256: {hashlib.sha256(tampered).hexdigest()}",
    ]
    # Even with the outer checksum out of the way, the file inside names itself.
    downloaded = tmp_path / "downloaded.tar.gz"
    downloaded.write_bytes(tampered)
    with pytest.raises(TamperedArtifactError) as inner:
        load_package(downloaded)
    assert inner.value.details == [
        "file: schema.json",
        f"expected sha256: {expected_inner}",
        f"actual sha256: {actual_inner}",
    ]


def test_a_package_for_another_service_is_bad_input(
    registry: SageMakerRegistry, package: PackageResult
) -> None:
    with pytest.raises(BadInputError, match="not 'churn'"):
        registry.register("churn", package.path, "alice")


def test_the_artifact_carries_its_stage_for_the_lifecycle_rules(
    registry: SageMakerRegistry, package: PackageResult
) -> None:
    registration = registry.register(SERVICE, package.path, "alice@example.com")
    key = artifact_key(SERVICE, registration.version.package_sha)

    def stage_tag() -> str:
        tags = registry.s3.get_object_tagging(Bucket=registry.bucket, Key=key)["TagSet"]
        return str({tag["Key"]: tag["Value"] for tag in tags}["stage"])

    assert stage_tag() == "experimental"
    registry.set_stage(SERVICE, registration.version.package_sha, Stage.CANDIDATE, "ci@example.com")
    assert stage_tag() == "candidate"
