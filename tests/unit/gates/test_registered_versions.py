"""The gates read versions through the registry port they are handed, each package fetched once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import RefusedError
from pipelines.promotion.ports import VersionInfo

SERVICE = "adult-income"
V1, V2 = "1" * 64, "2" * 64


class _Store:
    """A ``VersionStore`` holding two versions, counting downloads."""

    def __init__(self) -> None:
        self.downloads: list[str] = []

    def get_version(self, service: str, version: str) -> VersionInfo:
        matches = [sha for sha in (V1, V2) if sha.startswith(version)]
        if service != SERVICE or len(matches) != 1:
            raise RefusedError(f"no version {version} of {service}")
        return VersionInfo(service, matches[0], "candidate", "rita@example.com")

    def set_stage(self, service: str, sha: str, stage: str, actor: str) -> None:
        raise AssertionError("the gates never change a stage")

    def approve(self, service: str, sha: str, actor: str, description: str) -> None:
        raise AssertionError("the gates never approve")

    def download(self, service: str, sha: str, target: Path) -> Path:
        self.downloads.append(sha)
        target.write_bytes(sha.encode())
        return target


def test_versions_resolve_and_download_through_the_port(tmp_path: Path) -> None:
    from pipelines.gates.stage import RegisteredVersions

    store = _Store()
    versions = RegisteredVersions(store, "dev", SERVICE, tmp_path)
    assert versions.resolve(V2[:12]) == V2
    first = versions.download(V2)
    assert versions.download(V2) == first and first.read_bytes() == V2.encode()
    assert store.downloads == [V2], "a package is fetched once per stage run"


def test_a_requested_baseline_is_resolved_by_the_port(tmp_path: Path) -> None:
    from pipelines.gates.stage import RegisteredVersions

    versions = RegisteredVersions(_Store(), "dev", SERVICE, tmp_path)
    assert versions.baseline(V1[:8], V2) == (V1, None)
    with pytest.raises(RefusedError, match="no version 3333"):
        versions.baseline("33333333", V2)
