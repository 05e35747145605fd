"""The bucket copy of the audit log, damaged or unreachable: ``verify`` reports it, never raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.promotion.audit import AuditLog
from pipelines.promotion.wiring import BucketCopy, audit_key
from pipelines.registry.sagemaker import SageMakerRegistry

pytestmark = pytest.mark.integration


@pytest.fixture
def audit(registry: SageMakerRegistry, tmp_path: Path) -> AuditLog:
    log = AuditLog(tmp_path / "audit", "local", remote=BucketCopy(registry, audit_key("local")))
    log.append("register", actor="rita@example.com", service="adult-income", version="ab" * 32)
    log.append("approve", actor="alice@example.com", service="adult-income", version="ab" * 32)
    assert log.verify().ok
    return log


def test_a_bucket_copy_that_is_not_json_lines_is_named_by_line(
    audit: AuditLog, registry: SageMakerRegistry
) -> None:
    first = audit.path.read_bytes().splitlines()[0]
    registry.s3.put_object(Bucket=registry.bucket, Key=audit_key("local"), Body=first + b"\n\xff{}\n")
    assert audit.verify().problems == (
        "the copy in the artifact bucket, line 2: not UTF-8 (byte 0xff at column 1, in '\ufffd{}'); "
        "the line was edited or corrupted; it differs from the local log (2 entries) from line 2",
    )


def test_a_bucket_that_cannot_be_read_is_a_problem(audit: AuditLog, registry: SageMakerRegistry) -> None:
    registry.s3.delete_object(Bucket=registry.bucket, Key=audit_key("local"))
    registry.s3.delete_bucket(Bucket=registry.bucket)
    assert audit.verify().problems == (
        "the copy in the artifact bucket cannot be read (NoSuchBucket: An error occurred (NoSuchBucket) "
        "when calling the GetObject operation: The specified bucket does not exist)",
    )
