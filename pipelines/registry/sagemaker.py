"""The registry on AWS: content-addressed artifacts in S3, versions in the SageMaker Model Registry.

Each version is a model package in the service's group, created ``PendingManualApproval``.
Its CustomerMetadataProperties carry what the controller needs to find and trust it
(``METADATA_KEYS``); its ModelMetrics point at the evaluation report next to the artifact.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from infra.naming import artifact_key, model_package_group_name
from pipelines.errors import BadInputError
from pipelines.packaging.load import load_package
from pipelines.registry.port import (
    APPROVALS,
    MIN_PREFIX,
    AmbiguousVersionError,
    Approval,
    ArtifactConflictError,
    MissingGroupError,
    ModelVersion,
    Registration,
    RegistryJournal,
    UploadVerificationError,
    VersionNotFoundError,
)
from pipelines.registry.stages import Stage, stage_named
from pipelines.serving.model import LoadedPackage
from pipelines.serving.verify import TamperedArtifactError

PACKAGE_SHA = "PackageSha256"
TARBALL_SHA = "TarballSha256"
DATASET = "DatasetFingerprint"
GIT_SHA = "GitSha"
REGISTRANT = "Registrant"
STAGE = "Stage"
STAGE_CHANGED_BY = "StageChangedBy"
APPROVAL_CHANGED_BY = "ApprovalChangedBy"
SERVICE = "Service"
METADATA_KEYS = (PACKAGE_SHA, TARBALL_SHA, DATASET, GIT_SHA, REGISTRANT, STAGE, SERVICE)

TARBALL_SHA_META = "tarball-sha256"
"""S3 user metadata on the artifact: the tarball's own sha256 (the key names the manifest's)."""

EVALUATION_FILE = "evaluation.json"


def evaluation_key(service: str, package_sha: str) -> str:
    """The evaluation report sits next to the artifact it describes."""
    return artifact_key(service, package_sha).rsplit("/", 1)[0] + "/" + EVALUATION_FILE


class SageMakerRegistry:
    """``Registry`` over boto3 S3 and SageMaker clients (real AWS or the embedded server)."""

    def __init__(
        self,
        *,
        s3: Any,
        sagemaker: Any,
        bucket: str,
        environment: str,
        stack: str,
        serving_image: str,
        journal: RegistryJournal | None = None,
    ) -> None:
        self.s3 = s3
        self.sagemaker = sagemaker
        self.bucket = bucket
        self.environment = environment
        self.stack = stack
        self.serving_image = serving_image
        self.journal = journal

    # -- registration -------------------------------------------------------------------------

    def register(self, service: str, package: Path, registrant: str) -> Registration:
        """Upload the package content-addressed and create its model package, or find both there.

        The package is verified before anything is written. Registering the same package again
        changes nothing; a different file under an existing package sha is refused.
        """
        started = time.perf_counter()
        loaded = load_package(package)
        if loaded.manifest.get("service") != service:
            raise BadInputError(
                f"{package}: the package is for service {loaded.manifest.get('service')!r}, not {service!r}"
            )
        group = self._group(service)
        sha = loaded.package_id
        data = package.read_bytes()
        tarball_sha = hashlib.sha256(data).hexdigest()
        key = artifact_key(service, sha)
        uploaded = self._put_content_addressed(key, data, tarball_sha, sha)
        evaluation = self._evaluation_bytes(package)
        self._put_object(evaluation_key(service, sha), evaluation, content_type="application/json")

        existing = self._find(service, group, sha)
        if existing is not None:
            return Registration(existing, False, uploaded, time.perf_counter() - started, loaded.manifest)
        manifest = loaded.manifest
        metadata = {
            PACKAGE_SHA: sha,
            TARBALL_SHA: tarball_sha,
            DATASET: str(manifest["dataset"]["sha256"]),
            GIT_SHA: str(manifest["code"]["git_sha"]),
            REGISTRANT: registrant,
            STAGE: Stage.EXPERIMENTAL,
            SERVICE: service,
        }
        request: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelPackageDescription": f"{service} {sha}",
            "ModelApprovalStatus": "PendingManualApproval",
            "CustomerMetadataProperties": metadata,
            "MetadataProperties": {"CommitId": metadata[GIT_SHA][:1024], "GeneratedBy": "modelrail"},
            "InferenceSpecification": {
                "Containers": [{"Image": self.serving_image, "ModelDataUrl": self._uri(key)}],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["application/json", "text/csv"],
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": self._uri(evaluation_key(service, sha)),
                    }
                }
            },
        }
        self.sagemaker.create_model_package(**request)
        if self.journal is not None:
            self.journal.package_written(group, sha, request, self.sagemaker.meta.region_name)
        self._tag_stage(service, sha, Stage.EXPERIMENTAL)
        version = self.version(service, sha)
        return Registration(version, True, uploaded, time.perf_counter() - started, loaded.manifest)

    def _put_content_addressed(self, key: str, data: bytes, tarball_sha: str, package_sha: str) -> bool:
        """Upload unless the same bytes are there; refuse different bytes; verify what was stored."""
        stored = self._stored_sha(key)
        if stored == tarball_sha:
            return False
        if stored is not None:
            raise ArtifactConflictError(
                f"s3://{self.bucket}/{key}: a different file is already registered under package {package_sha}",
                details=[
                    f"stored tarball sha256: {stored}",
                    f"this tarball sha256: {tarball_sha}",
                    "a package id names one artifact forever; rebuild the package with `modelrail package`",
                ],
            )
        self._put_object(key, data, content_type="application/gzip", tarball_sha=tarball_sha)
        readback = hashlib.sha256(self._get_bytes(key)).hexdigest()
        if readback != tarball_sha:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            raise UploadVerificationError(
                f"s3://{self.bucket}/{key}: read back sha256 {readback}, uploaded {tarball_sha}; upload removed"
            )
        return True

    def _stored_sha(self, key: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        recorded = head.get("Metadata", {}).get(TARBALL_SHA_META)
        return str(recorded) if recorded else hashlib.sha256(self._get_bytes(key)).hexdigest()

    def _put_object(
        self, key: str, data: bytes, *, content_type: str, tarball_sha: str | None = None
    ) -> None:
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
        extra: dict[str, Any] = {"Metadata": {TARBALL_SHA_META: tarball_sha}} if tarball_sha else {}
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
            **extra,
        )
        if self.journal is not None:
            self.journal.object_written(self.bucket, key, data, self.s3.meta.region_name)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        """Upload ``data`` under ``key`` with its checksum (journaled like every write); returns its S3 URI."""
        self._put_object(key, data, content_type=content_type)
        return self._uri(key)

    def put_file(self, key: str, path: Path) -> str:
        """Upload a file under ``key`` (the lineage catalog's mirror); returns its S3 URI."""
        self._put_object(key, path.read_bytes(), content_type="application/octet-stream")
        return self._uri(key)

    def _evaluation_bytes(self, package: Path) -> bytes:
        from pipelines.packaging.tarball import read_member

        data = read_member(package, EVALUATION_FILE)
        if data is None:
            raise BadInputError(f"{package}: no {EVALUATION_FILE} in the package")
        return data

    # -- queries -------------------------------------------------------------------------------

    def versions(self, service: str) -> list[ModelVersion]:
        """Every version of ``service`` in this stack, oldest first."""
        group = self._group(service)
        return [self._describe(service, arn) for arn in self._package_arns(group)]

    def version(self, service: str, sha_or_prefix: str) -> ModelVersion:
        """The version whose package sha is ``sha_or_prefix`` (or starts with it, ≥ 8 hex digits)."""
        wanted = sha_or_prefix.strip().lower()
        if len(wanted) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in wanted):
            raise BadInputError(
                f"version {sha_or_prefix!r}: give the package sha (64 hex digits) or a unique prefix "
                f"of at least {MIN_PREFIX}"
            )
        matches = [v for v in self.versions(service) if v.package_sha.startswith(wanted)]
        if not matches:
            raise VersionNotFoundError(
                f"no version {sha_or_prefix} of {service!r} in stack {self.stack!r} "
                f"(group {self._group_name(service)!r})"
            )
        if len(matches) > 1:
            raise AmbiguousVersionError(
                f"version prefix {sha_or_prefix!r} matches {len(matches)} versions of {service!r}",
                details=[v.package_sha for v in matches],
            )
        return matches[0]

    def _find(self, service: str, group: str, sha: str) -> ModelVersion | None:
        for arn in self._package_arns(group):
            described = self._describe(service, arn)
            if described.package_sha == sha:
                return described
        return None

    def _package_arns(self, group: str) -> list[str]:
        arns: list[tuple[int, str]] = []
        paginator = self.sagemaker.get_paginator("list_model_packages")
        for page in paginator.paginate(ModelPackageGroupName=group):
            for summary in page.get("ModelPackageSummaryList", []):
                arns.append((int(summary.get("ModelPackageVersion") or 0), summary["ModelPackageArn"]))
        return [arn for _, arn in sorted(arns)]

    def _describe(self, service: str, arn: str) -> ModelVersion:
        described = self.sagemaker.describe_model_package(ModelPackageName=arn)
        metadata = dict(described.get("CustomerMetadataProperties") or {})
        containers = (described.get("InferenceSpecification") or {}).get("Containers") or [{}]
        statistics = ((described.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}
        created = described.get("CreationTime")
        return ModelVersion(
            service=service,
            package_sha=metadata.get(PACKAGE_SHA, ""),
            version_number=int(described.get("ModelPackageVersion") or 0),
            arn=arn,
            stage=stage_named(
                metadata.get(STAGE, Stage.EXPERIMENTAL), where=f"model package {arn} metadata {STAGE}"
            ),
            approval=str(described.get("ModelApprovalStatus", "")),
            registrant=metadata.get(REGISTRANT, ""),
            dataset_fingerprint=metadata.get(DATASET, ""),
            git_sha=metadata.get(GIT_SHA, ""),
            tarball_sha256=metadata.get(TARBALL_SHA, ""),
            artifact_uri=str(containers[0].get("ModelDataUrl", "")),
            evaluation_uri=str(statistics.get("S3Uri", "")),
            created_at=created.isoformat() if hasattr(created, "isoformat") else str(created or ""),
            metadata=metadata,
        )

    # -- updates -------------------------------------------------------------------------------

    def set_stage(self, service: str, sha: str, stage: Stage, actor: str) -> ModelVersion:
        """Move a version to ``stage``; which moves are legal is ``check_transition``'s to say."""
        stage = stage_named(stage, where=f"{service} {sha[:12]} set_stage")
        updated = self._update(
            service, sha, {STAGE: stage, STAGE_CHANGED_BY: actor}, approval=None, description=None
        )
        self._tag_stage(service, updated.package_sha, stage)
        return updated

    def _tag_stage(self, service: str, sha: str, stage: Stage) -> None:
        """Tag the artifact with its stage: the bucket's lifecycle rules expire by this tag.

        Experimental and candidate artifacts expire after the stack's retention days; production
        and archived ones carry a tag no rule expires, so a rollback target never disappears.
        """
        self.s3.put_object_tagging(
            Bucket=self.bucket,
            Key=artifact_key(service, sha),
            Tagging={"TagSet": [{"Key": "stage", "Value": stage}]},
        )

    def set_approval(
        self, service: str, sha: str, approval: Approval, actor: str, description: str = ""
    ) -> ModelVersion:
        """Set the SageMaker approval status, recording who decided and why."""
        if approval not in APPROVALS:
            raise BadInputError(f"approval {approval!r}: allowed: {', '.join(APPROVALS)}")
        return self._update(
            service, sha, {APPROVAL_CHANGED_BY: actor}, approval=approval, description=description
        )

    def _update(
        self,
        service: str,
        sha: str,
        changes: dict[str, str],
        *,
        approval: str | None,
        description: str | None,
    ) -> ModelVersion:
        current = self.version(service, sha)
        metadata = {**current.metadata, **changes}
        # Send the whole state: moto replaces (rather than merges) metadata and clears an
        # approval status that is left out; real SageMaker accepts the same request.
        request: dict[str, Any] = {
            "ModelPackageArn": current.arn,
            "ModelApprovalStatus": approval or current.approval,
            "CustomerMetadataProperties": metadata,
        }
        if description:
            request["ApprovalDescription"] = description[:1024]
        self.sagemaker.update_model_package(**request)
        updated = self.version(service, current.package_sha)
        if self.journal is not None:
            self.journal.package_written(
                self._group_name(service),
                current.package_sha,
                self._recreate(updated),
                self.sagemaker.meta.region_name,
            )
        return updated

    def _recreate(self, version: ModelVersion) -> dict[str, Any]:
        """The CreateModelPackage request that recreates ``version`` in its current state."""
        described = self.sagemaker.describe_model_package(ModelPackageName=version.arn)
        request = {
            "ModelPackageGroupName": described["ModelPackageGroupName"],
            "ModelPackageDescription": described.get("ModelPackageDescription", ""),
            "ModelApprovalStatus": described["ModelApprovalStatus"],
            "CustomerMetadataProperties": described.get("CustomerMetadataProperties") or {},
            "InferenceSpecification": described["InferenceSpecification"],
            "ModelMetrics": described.get("ModelMetrics") or {},
        }
        if described.get("MetadataProperties"):
            request["MetadataProperties"] = described["MetadataProperties"]
        return request

    # -- retrieval -----------------------------------------------------------------------------

    def download(self, service: str, sha: str, dest: Path) -> Path:
        """Download a version's artifact to ``dest``; refuse it unless its sha256 is the registered one."""
        version = self.version(service, sha)
        data = self._get_bytes(artifact_key(service, version.package_sha))
        actual = hashlib.sha256(data).hexdigest()
        if actual != version.tarball_sha256:
            raise TamperedArtifactError(
                f"s3://{self.bucket}/{artifact_key(service, version.package_sha)}: sha256 {actual} does not match "
                f"the registered {version.tarball_sha256}; refusing a tampered artifact",
                details=[
                    "file: model.tar.gz",
                    f"expected sha256: {version.tarball_sha256}",
                    f"actual sha256: {actual}",
                ],
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return dest

    def fetch(self, service: str, sha: str) -> LoadedPackage:
        """Download, verify the tarball and every file in it, and load the model."""
        version = self.version(service, sha)
        with tempfile.TemporaryDirectory(prefix="modelrail-fetch-") as scratch:
            path = self.download(service, version.package_sha, Path(scratch) / "model.tar.gz")
            return load_package(path, expected_package_id=version.package_sha)

    # -- helpers -------------------------------------------------------------------------------

    def _group_name(self, service: str) -> str:
        return model_package_group_name(self.environment, service)

    def _group(self, service: str) -> str:
        """The service's group name, after checking that the group exists."""
        from botocore.exceptions import ClientError

        group = self._group_name(service)
        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("ValidationException", "ResourceNotFound", "ResourceNotFoundException"):
                raise MissingGroupError(
                    f"model package group {group!r} does not exist in stack {self.stack!r}",
                    details=[
                        f"declare service {service!r} in stacks/Pulumi.{self.stack}.yaml and deploy the stack "
                        "(the embedded default creates the groups the local stack declares)",
                    ],
                ) from None
            raise
        return group

    def _get_bytes(self, key: str) -> bytes:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        data: bytes = body.read()
        return data

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"
