"""The one rule that says whether a version may be deployed on a stack, by promotion or rollback.

Every deployment goes through ``check_eligible``: the stage rule first (experimental and
archived versions never run anywhere), then what the kind of deployment needs on top. A
promotion needs the stage's passing gate evidence and, where the stack requires it, a second
person's approval bound to that evidence. A rollback needs a version that served this stack
stably before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from infra.config import StackConfig
from pipelines.errors import RefusedError
from pipelines.promotion.evidence import EvidenceStore
from pipelines.promotion.ports import VersionInfo
from pipelines.registry.stages import Stage, stage_named

Kind = Literal["promote", "rollback"]

NEVER_DEPLOYED = {
    Stage.EXPERIMENTAL: "run the candidate gates first: `modelrail qualify --stage candidate`",
    Stage.ARCHIVED: "archived versions are kept for lineage only; deploy a current version instead",
}
"""Stages that no stack ever runs, and the way forward from each."""


def check_eligible(
    *,
    stack: str,
    config: StackConfig,
    info: VersionInfo,
    evidence: EvidenceStore,
    kind: Kind,
    stable: Sequence[str],
) -> None:
    """Refuse ``info`` on ``stack`` unless it may be deployed there by ``kind``, saying why and what to do.

    ``stable`` are the versions that served the service here after a verified rollout.
    """
    stage = stage_named(info.stage, where=f"{info.service} {info.sha[:12]} in the {stack} registry")
    if stage in NEVER_DEPLOYED:
        raise RefusedError(
            f"{info.service} {info.sha[:12]} is {stage}; only candidates and production versions are "
            f"deployed (refused {'the rollback' if kind == 'rollback' else 'the promotion'})",
            details=[NEVER_DEPLOYED[stage]],
        )
    if kind == "rollback":
        if info.sha not in stable:
            raise RefusedError(
                f"{info.sha[:12]} never served {info.service} stably on stack {stack}",
                details=[f"stable versions here: {', '.join(v[:12] for v in stable) or 'none'}"],
            )
        return
    if not config.platform.approval_required:
        candidate = evidence.load(info.service, info.sha, "candidate")
        if candidate is None or not candidate.passed:
            raise RefusedError(f"{info.sha[:12]} has no passing candidate-stage gate report")
        return
    production = evidence.load(info.service, info.sha, "production")
    if production is None or not production.passed:
        raise RefusedError(
            f"stack {stack} serves production: {info.sha[:12]} needs passing production-stage gates",
            details=["run `modelrail qualify --stage production`"],
        )
    approval = evidence.approval(info.service, info.sha, stack)
    if approval is None:
        raise RefusedError(
            f"stack {stack} needs a second person's approval of {info.sha[:12]}",
            details=[
                f"`modelrail approve --service {info.service} --version {info.sha[:12]} --stack {stack}`"
            ],
        )
    if approval.evidence_digest != production.digest:
        raise RefusedError(
            f"the approval of {info.sha[:12]} by {approval.approver} is void: the gate evidence changed since",
            details=[
                f"approved evidence {approval.evidence_digest[:12]}, current evidence {production.digest[:12]}",
                "ask for a new approval of the current evidence",
            ],
        )
