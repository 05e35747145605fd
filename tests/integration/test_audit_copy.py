"""The audit log's copy in the artifact bucket: written through the registry, restored with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.embedded.record import LocalRecord
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.wiring import BucketCopy, audit_key
from pipelines.registry.sagemaker import SageMakerRegistry

pytestmark = pytest.mark.integration


def test_the_copy_verifies_and_is_recorded_for_a_restored_server(
    registry: SageMakerRegistry, tmp_path: Path
) -> None:
    record = LocalRecord(tmp_path / "record")
    registry.journal = record
    audit = AuditLog(tmp_path / "audit", "local", remote=BucketCopy(registry, audit_key("local")))
    audit.append("register", actor="rita@example.com", service="adult-income", version="ab" * 32)
    audit.append("approve", actor="alice@example.com", service="adult-income", version="ab" * 32)
    assert audit.verify().ok

    recorded = {key: path.read_bytes() for bucket, key, path in record.objects() if bucket == registry.bucket}
    assert recorded[audit_key("local")] == audit.path.read_bytes(), (
        "a restarted embedded AWS gets the copy back"
    )

    registry.s3.put_object(Bucket=registry.bucket, Key=audit_key("local"), Body=b"")
    assert audit.verify().problems == (
        "the local log (2 entries) differs from the copy in the artifact bucket (0 entries)",
    )
