"""The registry's narrow interface, its data and its errors; adapters implement ``Registry``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pipelines.errors import BadInputError, RefusedError
from pipelines.registry.stages import Stage
from pipelines.serving.model import LoadedPackage

Approval = Literal["PendingManualApproval", "Approved", "Rejected"]
APPROVALS = ("PendingManualApproval", "Approved", "Rejected")
MIN_PREFIX = 8


class MissingGroupError(RefusedError):
    """The service's model package group does not exist in the stack's account."""


class VersionNotFoundError(RefusedError):
    """No registered version matches the given package sha or prefix."""


class ArtifactConflictError(RefusedError):
    """A different file already sits under the same content address."""


class UploadVerificationError(RefusedError):
    """The object read back after upload is not the bytes that were sent."""


class AmbiguousVersionError(BadInputError):
    """A sha prefix that matches more than one version."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version, as the registry describes it."""

    service: str
    package_sha: str
    version_number: int
    arn: str
    stage: Stage
    approval: str
    registrant: str
    dataset_fingerprint: str
    git_sha: str
    tarball_sha256: str
    artifact_uri: str
    evaluation_uri: str
    created_at: str
    metadata: dict[str, str] = field(default_factory=dict)
    """All CustomerMetadataProperties, including who changed the stage or approval last."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Registration:
    """The outcome of ``register``: the version, and whether this call created it."""

    version: ModelVersion
    created: bool
    uploaded: bool
    """False when the identical artifact was already in the bucket."""
    seconds: float
    manifest: dict[str, Any] = field(default_factory=dict)
    """The verified package manifest (what lineage records about the model's origin)."""

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "uploaded": self.uploaded, "version": self.version.to_json()}


class RegistryJournal(Protocol):
    """Receives every write, so an embedded AWS can be rebuilt from disk (``LocalRecord``)."""

    def object_written(self, bucket: str, key: str, data: bytes, region: str) -> None: ...

    def package_written(self, group: str, package_sha: str, request: dict[str, Any], region: str) -> None: ...


class Registry(Protocol):
    """What the controller needs from a model registry."""

    stack: str
    bucket: str

    def register(self, service: str, package: Path, registrant: str) -> Registration: ...

    def versions(self, service: str) -> list[ModelVersion]: ...

    def version(self, service: str, sha_or_prefix: str) -> ModelVersion: ...

    def set_stage(self, service: str, sha: str, stage: Stage, actor: str) -> ModelVersion: ...

    def set_approval(
        self, service: str, sha: str, approval: Approval, actor: str, description: str = ""
    ) -> ModelVersion: ...

    def download(self, service: str, sha: str, dest: Path) -> Path: ...

    def fetch(self, service: str, sha: str) -> LoadedPackage: ...

    def put_file(self, key: str, path: Path) -> str: ...
