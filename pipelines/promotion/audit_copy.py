"""Bring the audit log's bucket copy up to date when it lags the local log.

``AuditLog.append`` writes the local log (fsync'd) and then uploads the copy; when the
artifact bucket does not answer in between, the copy is left one or more entries behind.
``catch_up`` uploads the local log again, but only when the copy is a true prefix of a local log
whose chain and head verify: a copy that differs in any other way is evidence for
``modelrail audit verify`` and is never overwritten.
"""

from __future__ import annotations

from pipelines.promotion.audit import AuditLog


def lags(local: bytes, copy: bytes | None) -> bool:
    """The copy holds the first entries of the local log and fewer of them."""
    copied = (copy or b"").splitlines()
    entries = local.splitlines()
    return len(copied) < len(entries) and entries[: len(copied)] == copied


def catch_up(audit: AuditLog) -> bool:
    """Upload the local log if its bucket copy lags behind it; True if it did."""
    if audit.remote is None or not audit.path.exists():
        return False
    local = audit.path.read_bytes()
    if not lags(local, audit.remote.download()):
        return False
    if not AuditLog(audit.path.parent, audit.path.stem).verify().ok:
        return False  # a damaged local log is not what the bucket should hold
    audit.remote.upload(local)
    return True
