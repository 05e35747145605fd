"""Gate evidence and approvals: what makes a version a candidate, and a second person's sign-off.

A stage's gate report is stored as evidence (``EvidenceStore``), and a passing candidate-stage
report moves an experimental version to candidate. An approval is never by the version's
registrant (four eyes, by ``pipelines.identity.same_identity``) and always binds to the digest
of a passing production-stage report. Both are recorded through the controller's one
``EventRecorder``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.errors import RefusedError
from pipelines.promotion.events import Event, EventRecorder
from pipelines.promotion.evidence import Approval, EvidenceStore
from pipelines.promotion.ports import VersionInfo, VersionStore
from pipelines.registry.stages import Stage, check_transition


@dataclass
class Approvals:
    """Evidence and approvals of one stack."""

    stack: str
    registry: VersionStore
    evidence: EvidenceStore
    events: EventRecorder

    def record_gates(
        self,
        service: str,
        version: str,
        stage: str,
        *,
        passed: bool,
        summary: str,
        report: dict[str, Any],
        actor: str,
    ) -> VersionInfo:
        """Store a stage's gate report as evidence; a passing candidate gate makes a candidate."""
        info = self.registry.get_version(service, version)
        evidence = self.evidence.save(service, info.sha, stage, passed, summary, report)
        if passed and Stage(stage) is Stage.CANDIDATE and Stage(info.stage) is Stage.EXPERIMENTAL:
            check_transition(Stage.EXPERIMENTAL, Stage.CANDIDATE, version=info.sha)
            self.registry.set_stage(service, info.sha, str(Stage.CANDIDATE), actor)
        self.events.record(
            Event(
                f"gates:{'passed' if passed else 'refused'}",
                actor,
                service,
                info.sha,
                audit={"stage": stage, "evidence": evidence.digest, "reason": "" if passed else summary},
                lineage={"stage": stage, "evidence": evidence.digest, "summary": summary},
            )
        )
        return self.registry.get_version(service, info.sha)

    def approve(self, service: str, version: str, approver: str, comment: str = "") -> Approval:
        """Approve a version for this stack: never by its registrant, always bound to its evidence."""
        from pipelines.identity import same_identity

        info = self.registry.get_version(service, version)
        if same_identity(approver, info.registrant):
            raise RefusedError(
                f"{approver} registered {info.sha[:12]} and cannot approve it (four eyes)",
                details=["a second person approves: `modelrail approve --as SOMEONE_ELSE`"],
            )
        evidence = self.evidence.load(service, info.sha, str(Stage.PRODUCTION))
        if evidence is None or not evidence.passed:
            raise RefusedError(
                f"{info.sha[:12]} has no passing production-stage gate report to approve",
                details=["run `modelrail qualify --stage production` first"],
            )
        approval = self.evidence.approve(service, info.sha, self.stack, approver, evidence, comment)
        self.registry.approve(
            service, info.sha, approver, f"{self.stack}: evidence {evidence.digest[:12]}; {comment}"
        )
        self.events.record(
            Event(
                "approve",
                approver,
                service,
                info.sha,
                audit={"evidence": evidence.digest, "comment": comment},
            )
        )
        return approval
