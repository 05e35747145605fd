"""Gate evidence and approvals: what a version proved, and who approved exactly that proof.

A gate report is stored per version and stage with a digest (sha256 of its canonical JSON).
An approval records the digest of the production-stage evidence it approved; when that evidence
changes (the gates ran again with another outcome), the approval no longer matches and is void.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def digest(report: dict[str, Any]) -> str:
    """The identity of a piece of evidence: the gate report's own canonical digest."""
    from pipelines.gates.report import canonical_digest

    return canonical_digest(report)


@dataclass(frozen=True)
class Evidence:
    """One stage's gate outcome for one version."""

    stage: str
    passed: bool
    digest: str
    summary: str
    report: dict[str, Any]


@dataclass(frozen=True)
class Approval:
    """A second person's approval of a version for a stack, bound to the evidence they saw."""

    approver: str
    time: str
    evidence_digest: str
    stack: str
    comment: str

    def to_json(self) -> dict[str, str]:
        return {
            "approver": self.approver,
            "time": self.time,
            "evidence_digest": self.evidence_digest,
            "stack": self.stack,
            "comment": self.comment,
        }


class EvidenceStore:
    """Files under ``<state>/evidence/<service>/<sha>/``: ``<stage>.json`` and ``approval-<stack>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, service: str, sha: str) -> Path:
        path = self.root / service / sha
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save(
        self, service: str, sha: str, stage: str, passed: bool, summary: str, report: dict[str, Any]
    ) -> Evidence:
        evidence = Evidence(stage=stage, passed=passed, digest=digest(report), summary=summary, report=report)
        _write_json(
            self._dir(service, sha) / f"{stage}.json",
            {
                "stage": stage,
                "passed": passed,
                "digest": evidence.digest,
                "summary": summary,
                "report": report,
            },
        )
        return evidence

    def load(self, service: str, sha: str, stage: str) -> Evidence | None:
        path = self.root / service / sha / f"{stage}.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        report = data["report"]
        # The digest is recomputed: evidence edited on disk no longer matches its approval.
        return Evidence(
            stage=data["stage"],
            passed=bool(data["passed"]),
            digest=digest(report),
            summary=data["summary"],
            report=report,
        )

    def approve(
        self, service: str, sha: str, stack: str, approver: str, evidence: Evidence, comment: str
    ) -> Approval:
        approval = Approval(
            approver=approver,
            time=datetime.now(UTC).isoformat(timespec="seconds"),
            evidence_digest=evidence.digest,
            stack=stack,
            comment=comment,
        )
        _write_json(self._dir(service, sha) / f"approval-{stack}.json", approval.to_json())
        return approval

    def approval(self, service: str, sha: str, stack: str) -> Approval | None:
        path = self.root / service / sha / f"approval-{stack}.json"
        if not path.exists():
            return None
        return Approval(**json.loads(path.read_text(encoding="utf-8")))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(temporary, path)
