"""The promotion controller: one path for promotions and rollbacks, journaled step by step.

A promotion pins the target version in the stack file, previews, runs the stack update and,
while the endpoint bakes the canary, analyses canary against baseline. Then it checks what the
endpoint really runs: SageMaker can roll an update back and the provider still report success.
Only a rollout that provably holds is recorded as promoted; anything else reverts the stack
file to the previous version, refreshes the stack and says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infra.config import Service, StackConfig, load_stack_file
from pipelines.errors import ModelrailError, RefusedError, RolledBackError
from pipelines.metrics.source import MetricsSource
from pipelines.promotion import stackfile
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.evidence import Approval, EvidenceStore
from pipelines.promotion.journal import Journal, Step, unfinished
from pipelines.promotion.lock import PromotionLock
from pipelines.promotion.ports import LineageSink, VersionInfo, VersionStore
from pipelines.promotion.stages import Stage, check_transition
from pipelines.runners.base import EndpointInspector, EndpointState, Preview, StackRunner

TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollingBack"})
FAILED_STATES = frozenset({"Failed", "UpdateRollbackFailed", "RollingBack", "OutOfService"})

Progress = Callable[[str, dict[str, Any]], None]


def _quiet(_event: str, _fields: dict[str, Any]) -> None:
    """The default progress callback: say nothing."""


@dataclass(frozen=True)
class Timeouts:
    """How long the controller waits for an endpoint to settle after an update."""

    verify_seconds: float = 900.0
    poll_seconds: float = 1.0


@dataclass
class Outcome:
    """The result of one promotion or rollback, as reported to the user (and in ``--json``)."""

    kind: str
    outcome: str
    service: str
    stack: str
    version: str
    previous: str
    reason: str = ""
    journal: str = ""
    preview: Preview | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    endpoint: EndpointState | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "outcome": self.outcome,
            "service": self.service,
            "stack": self.stack,
            "version": self.version,
            "previous": self.previous,
            "reason": self.reason,
            "journal": self.journal,
            "preview": None if self.preview is None else self.preview.to_json(),
            "analysis": self.decisions,
            "endpoint": None if self.endpoint is None else self.endpoint.to_json(),
        }


@dataclass
class Controller:
    """Promotes, rolls back and resumes on one stack. Build it with ``pipelines.promotion.wiring``."""

    stack: str
    stack_path: Path
    project_dir: Path
    runner: StackRunner
    endpoints: EndpointInspector
    registry: VersionStore
    evidence: EvidenceStore
    audit: AuditLog
    lineage: LineageSink
    state_dir: Path
    metrics: MetricsSource | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    analysis_interval_seconds: float | None = None
    """Length of one canary-analysis interval; by default a quarter of the bake (1 to 60 s)."""
    min_requests: int = 100
    """Canary requests an interval needs to count (lower for the sandbox's modest traffic)."""
    min_labels: int = 100
    """Labels each side needs before live accuracy is judged."""
    progress: Progress = _quiet

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / "journal" / self.stack

    @property
    def lock_dir(self) -> Path:
        return self.state_dir / "locks"

    def config(self) -> StackConfig:
        return load_stack_file(self.stack_path)

    def service_config(self, service: str) -> Service:
        """The service's stack config, or a refusal that lists the services the stack has."""
        try:
            return self.config().service(service)
        except KeyError as error:
            raise RefusedError(f"{self.stack_path}: {error.args[0]}") from None

    # ----------------------------------------------------------------- promotion

    def promote(
        self,
        service: str,
        version: str,
        actor: str,
        *,
        confirm: Callable[[Preview], bool] | None = None,
    ) -> Outcome:
        """Promote ``version`` of ``service`` on this stack; refuse, roll back or record it."""
        self.service_config(service)
        config = self.config()
        info = self.registry.get_version(service, version)
        previous = stackfile.pinned_version(self.stack_path, service) or ""
        if previous == info.sha:
            return Outcome("promote", "unchanged", service, self.stack, info.sha, previous, "already serving")
        self.check_eligible(config, info)
        message = f"modelrail: promote {service} {info.sha[:12]} by {actor}"
        return self._roll(service, info, previous, actor, kind="promote", message=message, confirm=confirm)

    def rollback(self, service: str, actor: str, *, to: str | None = None) -> Outcome:
        """Return the service to the last version that was stable on this stack (or ``to``)."""
        self.service_config(service)
        current = stackfile.pinned_version(self.stack_path, service) or ""
        target = to or self.last_stable(service, excluding=current)
        if target is None:
            raise RefusedError(
                f"no earlier stable version of {service} on stack {self.stack} to roll back to",
                details=["a rollback target is a version this stack served after a verified promotion"],
            )
        info = self.registry.get_version(service, target)
        if info.sha not in self.stable_versions(service):
            raise RefusedError(
                f"{info.sha[:12]} never served {service} stably on stack {self.stack}",
                details=[
                    f"stable versions here: {', '.join(v[:12] for v in self.stable_versions(service)) or 'none'}"
                ],
            )
        if info.sha == current:
            return Outcome("rollback", "unchanged", service, self.stack, info.sha, current, "already serving")
        message = f"modelrail: rollback {service} to {info.sha[:12]} by {actor}"
        return self._roll(service, info, current, actor, kind="rollback", message=message, confirm=None)

    def check_eligible(self, config: StackConfig, info: VersionInfo) -> None:
        """Refuse a version the stack may not run yet, with the reason and the way forward."""
        stage = Stage(info.stage)
        if stage in (Stage.EXPERIMENTAL, Stage.ARCHIVED):
            raise RefusedError(
                f"{info.service} {info.sha[:12]} is {stage}; only candidates and production versions are promoted",
                details=["run the candidate gates first: `modelrail qualify --stage candidate`"],
            )
        if not config.platform.approval_required:
            evidence = self.evidence.load(info.service, info.sha, "candidate")
            if evidence is None or not evidence.passed:
                raise RefusedError(f"{info.sha[:12]} has no passing candidate-stage gate report")
            return
        evidence = self.evidence.load(info.service, info.sha, "production")
        if evidence is None or not evidence.passed:
            raise RefusedError(
                f"stack {self.stack} serves production: {info.sha[:12]} needs passing production-stage gates",
                details=["run `modelrail qualify --stage production`"],
            )
        approval = self.evidence.approval(info.service, info.sha, self.stack)
        if approval is None:
            raise RefusedError(
                f"stack {self.stack} needs a second person's approval of {info.sha[:12]}",
                details=[
                    f"`modelrail approve --service {info.service} --version {info.sha[:12]} --stack {self.stack}`"
                ],
            )
        if approval.evidence_digest != evidence.digest:
            raise RefusedError(
                f"the approval of {info.sha[:12]} by {approval.approver} is void: the gate evidence changed since",
                details=[
                    f"approved evidence {approval.evidence_digest[:12]}, current evidence {evidence.digest[:12]}",
                    "ask for a new approval of the current evidence",
                ],
            )

    def _roll(
        self,
        service: str,
        info: VersionInfo,
        previous: str,
        actor: str,
        *,
        kind: str,
        message: str,
        confirm: Callable[[Preview], bool] | None,
    ) -> Outcome:
        with PromotionLock(self.lock_dir, service=service, stack=self.stack, owner=actor, operation=kind):
            journal = Journal.begin(
                self.journal_dir,
                kind=kind,
                service=service,
                stack=self.stack,
                version=info.sha,
                previous=previous,
                actor=actor,
                message=message,
            )
            outcome = Outcome(kind, "", service, self.stack, info.sha, previous, journal=journal.id)
            self.progress(
                "begun", {"journal": journal.id, "kind": kind, "version": info.sha, "previous": previous}
            )
            previous_text = stackfile.write_pin(self.stack_path, service, info.sha)
            journal.write(Step.PINNED, previous_text=previous_text)
            self.progress("pinned", {"path": str(self.stack_path)})
            try:
                return self._apply(journal, outcome, info, previous_text, actor, message, confirm)
            except (RolledBackError, KeyboardInterrupt):
                raise
            except Exception as error:
                # Anything unexpected after the pin: put the file back so the stack never points at a
                # version that is not running; the journal and the audit log say what happened.
                stackfile.restore(self.stack_path, previous_text)
                self._refresh_quietly()
                reason = (
                    error.message if isinstance(error, ModelrailError) else f"{type(error).__name__}: {error}"
                )
                self._finish(journal, outcome, "failed", reason, actor)
                raise

    def _apply(
        self,
        journal: Journal,
        outcome: Outcome,
        info: VersionInfo,
        previous_text: str,
        actor: str,
        message: str,
        confirm: Callable[[Preview], bool] | None,
    ) -> Outcome:
        """Preview, confirm, update while baking, verify; revert and raise when the rollout does not hold."""
        service = outcome.service
        outcome.preview = self.runner.preview()
        self.progress("previewed", {"preview": outcome.preview.to_json()})
        if confirm is not None and not confirm(outcome.preview):
            stackfile.restore(self.stack_path, previous_text)
            return self._finish(journal, outcome, "aborted", "declined at the preview", actor)
        journal.write(Step.UPDATE_STARTED)
        self.progress("update_started", {"message": message})
        outputs, breach, update_error = self._update_and_bake(service, message, outcome)
        journal.write(Step.UPDATE_FINISHED, outputs=outputs, error=update_error)
        state = self._settle(service)
        outcome.endpoint = state
        expected = self.endpoints.expected_config(service, info.sha, outputs)
        failure = breach or update_error or self._verify_failure(state, expected)
        if failure:
            self.progress("reverting", {"reason": failure})
            stackfile.restore(self.stack_path, previous_text)
            self._refresh_quietly()
            self._finish(journal, outcome, "rolled_back" if breach else "failed", failure, actor)
            raise RolledBackError(
                f"{outcome.kind} of {service} {info.sha[:12]} on {self.stack} did not hold: {failure}",
                details=[
                    f"the stack file pins {outcome.previous[:12] or 'no version'} again; "
                    f"the endpoint runs {state.config_name or 'nothing'}"
                ],
            )
        journal.write(Step.VERIFIED, endpoint=state.to_json())
        self.progress("verified", {"endpoint": state.to_json()})
        self._record_success(journal, outcome, info, actor)
        return outcome

    def _update_and_bake(
        self, service: str, message: str, outcome: Outcome
    ) -> tuple[dict[str, Any], str, str]:
        """Run the stack update; while it runs, analyse the canary. Return (outputs, breach, error)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stack-update") as pool:
            update: Future[dict[str, Any]] = pool.submit(self.runner.up, message)
            breach = self._bake(service, update, outcome)
            try:
                outputs = update.result()
            except ModelrailError as error:
                detail = "; ".join(error.details)
                return {}, breach, f"{error.message}{': ' + detail if detail else ''}"
        return outputs, breach, ""

    def _bake(self, service: str, update: Future[dict[str, Any]], outcome: Outcome) -> str:
        """Canary analysis while the update bakes; on a breach, trip the alarm. Returns the breach reason."""
        config = self.service_config(service)
        if self.metrics is None or config.deployment.strategy == "all_at_once":
            return ""
        from pipelines.canary.analysis import CanaryAnalysis
        from pipelines.canary.phases import Verdict
        from pipelines.canary.policy import AnalysisPolicy

        bake = float(config.deployment.bake_seconds)
        interval = self.analysis_interval_seconds or max(1.0, min(60.0, bake / 4))
        policy = replace(
            AnalysisPolicy.for_bake(bake, interval),
            min_requests=self.min_requests,
            min_labels=self.min_labels,
        )
        analysis = CanaryAnalysis(policy, config.guardrails)
        start = time.time()
        done = threading.Event()
        update.add_done_callback(lambda _: done.set())
        while not done.wait(interval):
            end = time.time()
            decision = analysis.step(self.metrics.window(service, start, end))
            start = end
            outcome.decisions.append(decision.to_json())
            self.progress("analysis", decision.to_json())
            if decision.verdict is Verdict.ROLLBACK:
                breached = decision.breached
                guardrail = decision.alarm or "live-accuracy"
                value = (
                    float(breached.canary) if breached is not None and breached.canary is not None else 0.0
                )
                self.metrics.breach(service, guardrail, value, decision.reason)
                return f"canary analysis: {decision.reason}"
            if decision.verdict is Verdict.PROMOTE:
                return ""
        return ""

    def _settle(self, service: str) -> EndpointState:
        """Wait until the endpoint leaves its transitional states (or the timeout passes)."""
        deadline = time.monotonic() + self.timeouts.verify_seconds
        state = self.endpoints.describe(service)
        while state.status in TRANSITIONAL and time.monotonic() < deadline:
            time.sleep(self.timeouts.poll_seconds)
            state = self.endpoints.describe(service)
        return state

    @staticmethod
    def _verify_failure(state: EndpointState, expected: str) -> str:
        """Why the endpoint does not provably run the expected configuration, or '' when it does."""
        if state.status in FAILED_STATES:
            reason = f": {state.failure_reason}" if state.failure_reason else ""
            return f"the endpoint is {state.status}{reason}"
        if state.status != "InService":
            return f"the endpoint is still {state.status} after the verification timeout"
        if state.config_name != expected:
            reason = f" ({state.failure_reason})" if state.failure_reason else ""
            return (
                f"the endpoint is InService on {state.config_name}, not {expected}: "
                f"the update was rolled back{reason}"
            )
        return ""

    def _refresh_quietly(self) -> None:
        try:
            self.runner.refresh()
        except ModelrailError as error:
            self.progress("refresh_failed", {"error": error.message})

    def _record_success(self, journal: Journal, outcome: Outcome, info: VersionInfo, actor: str) -> None:
        config = self.config()
        if config.platform.approval_required and Stage(info.stage) is Stage.CANDIDATE:
            check_transition(Stage.CANDIDATE, Stage.PRODUCTION, version=info.sha)
            self.registry.set_stage(info.service, info.sha, str(Stage.PRODUCTION), actor)
        journal.write(Step.RECORDED)
        outcome.outcome = "promoted" if outcome.kind == "promote" else "rolled_back"
        self._finish(journal, outcome, outcome.outcome, "", actor)

    def _finish(self, journal: Journal, outcome: Outcome, result: str, reason: str, actor: str) -> Outcome:
        """Write the audit entry and lineage event (once per journal), then close the journal."""
        outcome.outcome, outcome.reason = result, reason
        if not any(entry.get("journal") == journal.id for entry in self.audit.entries()):
            self.audit.append(
                f"{outcome.kind}:{result}",
                actor=actor,
                service=outcome.service,
                stack=self.stack,
                version=outcome.version,
                previous=outcome.previous,
                reason=reason,
                journal=journal.id,
                analysis=[d.get("reason") for d in outcome.decisions],
            )
            self.lineage.record(
                f"{outcome.kind}:{result}",
                service=outcome.service,
                version=outcome.version,
                stack=self.stack,
                actor=actor,
                payload={"previous": outcome.previous, "reason": reason, "journal": journal.id},
            )
        journal.write(Step.DONE, outcome=result, reason=reason)
        self.progress("done", {"outcome": result, "reason": reason})
        return outcome

    # ----------------------------------------------------------------- gates and approval

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
        if passed and stage == "candidate" and Stage(info.stage) is Stage.EXPERIMENTAL:
            check_transition(Stage.EXPERIMENTAL, Stage.CANDIDATE, version=info.sha)
            self.registry.set_stage(service, info.sha, str(Stage.CANDIDATE), actor)
        result = "passed" if passed else "refused"
        self.audit.append(
            f"gates:{result}",
            actor=actor,
            service=service,
            stack=self.stack,
            version=info.sha,
            stage=stage,
            evidence=evidence.digest,
            reason="" if passed else summary,
        )
        self.lineage.record(
            f"gates:{result}",
            service=service,
            version=info.sha,
            stack=self.stack,
            actor=actor,
            payload={"stage": stage, "evidence": evidence.digest, "summary": summary},
        )
        return self.registry.get_version(service, info.sha)

    def approve(self, service: str, version: str, approver: str, comment: str = "") -> Approval:
        """Approve a version for this stack: never by its registrant, always bound to its evidence."""
        info = self.registry.get_version(service, version)
        if _same_person(approver, info.registrant):
            raise RefusedError(
                f"{approver} registered {info.sha[:12]} and cannot approve it (four eyes)",
                details=["a second person approves: `modelrail approve --as SOMEONE_ELSE`"],
            )
        evidence = self.evidence.load(service, info.sha, "production")
        if evidence is None or not evidence.passed:
            raise RefusedError(
                f"{info.sha[:12]} has no passing production-stage gate report to approve",
                details=["run `modelrail qualify --stage production` first"],
            )
        approval = self.evidence.approve(service, info.sha, self.stack, approver, evidence, comment)
        self.registry.approve(
            service, info.sha, approver, f"{self.stack}: evidence {evidence.digest[:12]}; {comment}"
        )
        self.audit.append(
            "approve",
            actor=approver,
            service=service,
            stack=self.stack,
            version=info.sha,
            evidence=evidence.digest,
            comment=comment,
        )
        self.lineage.record(
            "approve",
            service=service,
            version=info.sha,
            stack=self.stack,
            actor=approver,
            payload={"evidence": evidence.digest, "comment": comment},
        )
        return approval

    # ----------------------------------------------------------------- history

    def stable_versions(self, service: str) -> list[str]:
        """Versions that served ``service`` here after a verified promotion or rollback, oldest first."""
        versions: list[str] = []
        for entry in self.audit.entries():
            if entry.get("service") == service and entry["action"] in (
                "promote:promoted",
                "rollback:rolled_back",
            ):
                versions.append(entry["version"])
        return versions

    def last_stable(self, service: str, *, excluding: str) -> str | None:
        """The most recent stable version other than ``excluding``."""
        for version in reversed(self.stable_versions(service)):
            if version != excluding:
                return version
        return None

    # ----------------------------------------------------------------- resume

    def resume(self, actor: str) -> list[Outcome]:
        """Converge every promotion a crash left unfinished on this stack: forward if it held, else back."""
        outcomes = []
        for journal in unfinished(self.journal_dir):
            outcomes.append(self._resume_one(journal, actor))
        return outcomes

    def _resume_one(self, journal: Journal, actor: str) -> Outcome:
        head = journal.header
        service, version, previous = head["service"], head["version"], head["previous"]
        outcome = Outcome(head["kind"], "", service, self.stack, version, previous, journal=journal.id)
        with PromotionLock(self.lock_dir, service=service, stack=self.stack, owner=actor, operation="resume"):
            if not journal.has(Step.PINNED):
                return self._finish(
                    journal, outcome, "aborted", "interrupted before the stack file changed", actor
                )
            previous_text = journal.get(Step.PINNED)["previous_text"]
            if not journal.has(Step.UPDATE_STARTED):
                stackfile.restore(self.stack_path, previous_text)
                return self._finish(journal, outcome, "aborted", "interrupted before the stack update", actor)
            if journal.has(Step.VERIFIED):
                info = self.registry.get_version(service, version)
                if not journal.has(Step.RECORDED):
                    self._record_success(journal, outcome, info, head["actor"])
                    return outcome
                outcome.outcome = "promoted" if outcome.kind == "promote" else "rolled_back"
                return self._finish(journal, outcome, outcome.outcome, "", head["actor"])
            self._refresh_quietly()
            outputs = self._outputs_quietly()
            state = self._settle(service)
            outcome.endpoint = state
            failure = self._verify_failure(state, self.endpoints.expected_config(service, version, outputs))
            if failure:
                stackfile.restore(self.stack_path, previous_text)
                self._refresh_quietly()
                return self._finish(journal, outcome, "failed", f"interrupted mid-update; {failure}", actor)
            journal.write(Step.VERIFIED, endpoint=state.to_json())
            self._record_success(journal, outcome, self.registry.get_version(service, version), head["actor"])
            return outcome

    def _outputs_quietly(self) -> dict[str, Any]:
        try:
            return self.runner.outputs()
        except ModelrailError:
            return {}


def _same_person(first: str, second: str) -> bool:
    """Identities compare without case or surrounding space (``Alice@X`` is ``alice@x``)."""
    return first.strip().casefold() == second.strip().casefold()
