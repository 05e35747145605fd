"""The artifact bucket stops answering mid-bake of a failing canary (the embedded AWS died).

Before: a botocore traceback, exit 1, the local audit log one entry ahead of its bucket copy,
the journal closed as "failed" and nothing left for ``resume``. Now the command stops with a
typed error naming the dependency and what to do, the decision stays in the journal, and
``resume`` finishes it once the bucket answers: one audit entry, the copy caught up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.dependencies import DependencyUnavailableError
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.audit_copy import catch_up, lags
from pipelines.promotion.journal import Step, unfinished
from pipelines.promotion.stackfile import pinned_version
from tests.unit.promotion.fakes import V1, V2
from tests.unit.promotion.rolling_fakes import SERVICE, make_rolling_world


@dataclass
class Bucket:
    """The audit log's bucket copy; ``down`` makes every call fail as the embedded AWS's would."""

    body: bytes | None = None
    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise DependencyUnavailableError("the embedded AWS at http://127.0.0.1:4566 is not answering")

    def upload(self, text: bytes) -> None:
        self._check()
        self.body = text

    def download(self) -> bytes | None:
        self._check()
        return self.body


def test_the_bucket_dying_mid_bake_stops_with_a_typed_error_and_resume_converges(
    tmp_path: Path, repo: Path
) -> None:
    world = make_rolling_world(tmp_path, repo)
    bucket = Bucket()
    audit = AuditLog(tmp_path / "state" / "audit", "staging", remote=bucket)
    audit.append("register", actor="rita@example.com", service=SERVICE, version=V2)
    world.controller.audit = audit
    abort = world.metrics.abort

    def breach_then_lose_the_bucket(service: str, guardrail: str, value: float, reason: str) -> None:
        abort(service, guardrail, value, reason)
        bucket.down = True

    world.metrics.abort = breach_then_lose_the_bucket  # type: ignore[method-assign]

    with pytest.raises(
        DependencyUnavailableError, match="is not answering; run `modelrail resume` once it is back"
    ):
        world.controller.promote(SERVICE, V2, "carol@example.com")

    assert pinned_version(world.stack_path, SERVICE) == V1 and world.endpoint.serving == V1
    (journal,) = unfinished(world.controller.journal_dir)
    assert journal.last_step == Step.DECIDED and journal.get(Step.DECIDED)["outcome"] == "rolled_back"
    assert [e["action"] for e in audit.entries()] == ["register", "promote:rolled_back"]
    assert bucket.body is not None and lags(audit.path.read_bytes(), bucket.body)

    bucket.down = False
    (outcome,) = world.controller.resume("ops@example.com")

    assert outcome.outcome == "rolled_back" and outcome.reason.startswith("canary analysis: interval 3")
    entries = list(audit.entries())
    assert [e["action"] for e in entries] == ["register", "promote:rolled_back"], "recorded once"
    assert len(entries[1]["analysis"]) == 3
    assert bucket.body == audit.path.read_bytes(), "the bucket copy caught up"
    assert audit.verify().ok
    assert not unfinished(world.controller.journal_dir)


def test_a_copy_that_differs_otherwise_is_evidence_and_is_never_overwritten(tmp_path: Path) -> None:
    bucket = Bucket()
    audit = AuditLog(tmp_path / "audit", "staging", remote=bucket)
    audit.append("register", actor="rita@example.com", service=SERVICE, version=V1)
    audit.append("register", actor="rita@example.com", service=SERVICE, version=V2)
    bucket.body = b'{"forged": true}\n'
    assert not catch_up(audit)
    assert bucket.body == b'{"forged": true}\n'
    bucket.body = audit.path.read_bytes().splitlines(keepends=True)[0]
    assert catch_up(audit) and bucket.body == audit.path.read_bytes()
