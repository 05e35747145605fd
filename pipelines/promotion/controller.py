"""The promotion controller: one path for promotions and rollbacks, journaled step by step.

A promotion pins the target version in the stack file, previews, runs the stack update and,
while the endpoint bakes the canary, analyses canary against baseline. Then it checks what the
endpoint really runs: SageMaker can roll an update back and the provider still report success,
and a rollout can outlive the update (the provider waits 60 minutes), so a failed ``up`` decides
nothing by itself: the endpoint is watched until it settles and judged by what its configuration
serves (``EndpointWatch.verdict``), and one that never settles is left to ``modelrail resume``.
Only a rollout that provably holds, and whose canary analysis finished, is recorded as promoted;
anything else puts the previous version back (stack file and endpoint) and says why.

Everything is decided under the promotion lock, and journaled before it is acted on, so
``modelrail resume`` can converge from wherever a crash or a failed dependency stopped it
(``pipelines.promotion.resume``). The canary analysis is in ``pipelines.promotion.bake``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import Service, StackConfig, load_stack_file
from pipelines.dependencies import DependencyUnavailableError
from pipelines.errors import (
    InterruptedByUserError,
    LockedError,
    ModelrailError,
    RefusedError,
    RolledBackError,
    RolloutInProgressError,
)
from pipelines.metrics.source import MetricsSource
from pipelines.promotion import stackfile
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.audit_copy import catch_up
from pipelines.promotion.bake import Bake, analysis_policy, needs_analysis
from pipelines.promotion.eligibility import Kind, check_eligible
from pipelines.promotion.evidence import Approval, EvidenceStore
from pipelines.promotion.journal import Journal, Step, unfinished
from pipelines.promotion.lock import PromotionLock
from pipelines.promotion.ports import LineageSink, VersionInfo, VersionStore
from pipelines.promotion.stages import Stage, check_transition
from pipelines.promotion.watch import EndpointWatch
from pipelines.runners.base import EndpointInspector, EndpointState, Preview, StackRunner

Progress = Callable[[str, dict[str, Any]], None]


def _quiet(_event: str, _fields: dict[str, Any]) -> None:
    """The default progress callback: say nothing."""


@dataclass(frozen=True)
class Timeouts:
    """How long the controller waits for an endpoint to settle after an update."""

    verify_seconds: float = 900.0
    """How long the endpoint may stay transitional once the update has ended (and its rollout's
    bound has passed, see ``rollout_seconds``)."""
    poll_seconds: float = 1.0
    rollout_seconds: float | None = None
    """How long a rollout may run from the start of its update; None: the service's
    ``deployment.maxExecutionSeconds``, after which SageMaker rolls the deployment back itself."""


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

    @property
    def watch(self) -> EndpointWatch:
        """What the endpoint really runs, and waiting for it to settle."""
        return EndpointWatch(self.runner, self.endpoints, self.timeouts, self.progress)

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
        """Promote ``version`` of ``service`` on this stack; refuse, roll back or record it.

        Promoting the pinned version again changes nothing while the endpoint serves it, and
        reconciles the endpoint (deploys it again) when it does not.
        """
        self.service_config(service)
        info = self.registry.get_version(service, version)
        return self._roll(service, actor, kind="promote", choose=lambda _current: info, confirm=confirm)

    def rollback(self, service: str, actor: str, *, to: str | None = None) -> Outcome:
        """Return the service to the last version that was stable on this stack (or ``to``)."""
        self.service_config(service)

        def choose(current: str) -> VersionInfo:
            target = to or self.last_stable(service, excluding=current)
            if target is None:
                raise RefusedError(
                    f"no earlier stable version of {service} on stack {self.stack} to roll back to",
                    details=["a rollback target is a version this stack served after a verified promotion"],
                )
            return self.registry.get_version(service, target)

        return self._roll(service, actor, kind="rollback", choose=choose, confirm=None)

    def check_eligible(self, config: StackConfig, info: VersionInfo, kind: Kind = "promote") -> None:
        """Refuse a version the stack may not run (by promotion or rollback), with the way forward."""
        check_eligible(
            stack=self.stack,
            config=config,
            info=info,
            evidence=self.evidence,
            kind=kind,
            stable=self.stable_versions(info.service),
        )

    def _roll(
        self,
        service: str,
        actor: str,
        *,
        kind: Kind,
        choose: Callable[[str], VersionInfo],
        confirm: Callable[[Preview], bool] | None,
    ) -> Outcome:
        """Under the lock: read the pin, choose and check the target, then pin, update and bake it."""
        with PromotionLock(
            self.lock_dir, service=service, stack=self.stack, owner=actor, operation=kind
        ) as lock:
            self._refuse_interrupted(service)
            previous = stackfile.pinned_version(self.stack_path, service) or ""
            info = choose(previous)
            self.check_eligible(self.config(), info, kind)
            config = self.service_config(service)
            canary = kind == "promote" and needs_analysis(config, self.metrics, previous, info.sha)
            drift = (
                self.watch.not_serving(service, previous)
                if previous and (info.sha == previous or canary)
                else ""
            )
            if info.sha == previous and not drift:
                return Outcome(kind, "unchanged", service, self.stack, info.sha, previous, "already serving")
            if drift and info.sha != previous:
                raise RefusedError(
                    f"the endpoint of {service} on {self.stack} does not serve the pinned "
                    f"{previous[:12]} ({drift}), which a canary needs as its baseline",
                    details=[
                        "reconcile it first: `modelrail promote --service "
                        f"{service} --version {previous[:12]} --stack {self.stack}`"
                    ],
                )
            self.audit.ensure_appendable()  # a log that cannot record the outcome stops the rollout first
            floor = self.capacity_floor(service)
            target = f"to {info.sha[:12]}" if kind == "rollback" else info.sha[:12]
            message = f"modelrail: {kind} {service} {target} by {actor}"
            journal = Journal.begin(
                self.journal_dir,
                kind=kind,
                service=service,
                stack=self.stack,
                version=info.sha,
                previous=previous,
                actor=actor,
                message=message,
                reconcile=drift if info.sha == previous else "",
            )
            outcome = Outcome(kind, "", service, self.stack, info.sha, previous, journal=journal.id)
            self.progress(
                "begun", {"journal": journal.id, "kind": kind, "version": info.sha, "previous": previous}
            )
            previous_text = stackfile.write_pin(self.stack_path, service, info.sha, floor=floor)
            journal.write(Step.PINNED, previous_text=previous_text)
            self.progress("pinned", {"path": str(self.stack_path), "instance_count_floor": floor})
            renew = _renewer(lock)
            try:
                return self._apply(journal, outcome, info, previous_text, actor, message, confirm, renew)
            except (InterruptedByUserError, KeyboardInterrupt):
                if not journal.has(Step.UPDATE_STARTED):  # nothing deployed yet: undo the pin now
                    stackfile.restore(self.stack_path, previous_text)
                    self._finish(journal, outcome, "aborted", "interrupted by Ctrl-C", actor)
                raise  # mid-rollout: `modelrail resume` watches it to its end or rolls it back
            except (RolledBackError, LockLostError, RolloutInProgressError):
                raise  # recorded already, another operation holds the lock now, or left to resume
            except Exception as error:
                if journal.has(Step.VERIFIED) or journal.has(Step.DECIDED):
                    raise  # only recording is left, and the journal says what: `modelrail resume` does it
                reason = (
                    error.condition
                    if isinstance(error, DependencyUnavailableError)
                    else error.message
                    if isinstance(error, ModelrailError)
                    else f"{type(error).__name__}: {error}"
                )
                # Anything unexpected after the pin: the previous version back in the stack file and
                # on the endpoint, then recorded. If that needs the failed dependency too, the journal
                # keeps the decision for `modelrail resume`.
                self._fail(journal, outcome, "failed", reason, previous_text, actor, renew)
                if isinstance(error, DependencyUnavailableError):
                    raise RolledBackError(
                        f"{kind} of {service} {info.sha[:12]} on {self.stack} did not hold: {reason}",
                        details=_where(outcome),
                    ) from error
                raise

    def capacity_floor(self, service: str) -> int | None:
        """The ``instanceCountFloor`` a rollout of ``service`` pins along with its version.

        The provider never sets ``RetainAllVariantProperties``, so a blue/green update starts
        the new fleet at the configuration's initial count, ``instanceCount``, however far
        autoscaling has taken the old one: a fleet of 12 would take its traffic on 2. The count
        the endpoint runs now (``DescribeEndpoint``) becomes the floor the new configuration
        starts at (``Service.capacity_floor``: None when ``instanceCount`` is enough already).
        """
        return self.service_config(service).capacity_floor(self.endpoints.describe(service).instance_count)

    def _refuse_interrupted(self, service: str) -> None:
        """An interrupted promotion of the service must be finished (or undone) before the next one."""
        for journal in unfinished(self.journal_dir):
            head = journal.header
            if head["service"] == service:
                raise LockedError(
                    f"the {head['kind']} of {service} {head['version'][:12]} by {head['actor']} on stack "
                    f"{self.stack} was interrupted at '{journal.last_step}'",
                    details=[f"finish or undo it first: `modelrail resume --stack {self.stack}`"],
                )

    def _apply(
        self,
        journal: Journal,
        outcome: Outcome,
        info: VersionInfo,
        previous_text: str,
        actor: str,
        message: str,
        confirm: Callable[[Preview], bool] | None,
        renew: Callable[[], None],
    ) -> Outcome:
        """Preview, confirm, update while baking, verify; revert and raise when the rollout does not hold."""
        service = outcome.service
        outcome.preview = self.runner.preview()
        self.progress("previewed", {"preview": outcome.preview.to_json()})
        if confirm is not None and not confirm(outcome.preview):
            stackfile.restore(self.stack_path, previous_text)
            return self._finish(journal, outcome, "aborted", "declined at the preview", actor)
        config = self.service_config(service)
        policy = None
        if needs_analysis(config, self.metrics, outcome.previous, info.sha):
            policy = analysis_policy(
                config,
                interval=self.analysis_interval_seconds,
                min_requests=self.min_requests,
                min_labels=self.min_labels,
            )
        bake = Bake.begin(
            journal,
            config=config,
            metrics=self.metrics,
            policy=policy,
            decisions=outcome.decisions,
            progress=self.progress,
        )
        self.progress("update_started", {"message": message})

        def until() -> float:
            return self.watch.deadline(bake.began, config)

        outputs, breach, update_error = self._update_and_bake(service, message, bake, until, renew)
        journal.write(Step.UPDATE_FINISHED, outputs=outputs, error=update_error)
        state = self.watch.settle(service, until())
        self.watch.require_settled(service, state, "nothing was decided or reverted")
        outcome.endpoint = state
        failure, unrecorded, note = breach, False, ""
        if not failure:
            failure, unrecorded = self.watch.verdict(service, info.sha, state, outputs, update_error)
        if unrecorded and not failure:
            failure, state, note = self.watch.record_rollout(service, info.sha, update_error, message, renew)
            outcome.endpoint = state
        if failure:
            result = "rolled_back" if breach else "failed"
            self._fail(journal, outcome, result, failure, previous_text, actor, renew, known=state)
            raise RolledBackError(
                f"{outcome.kind} of {service} {info.sha[:12]} on {self.stack} did not hold: {failure}",
                details=_where(outcome),
            )
        journal.write(Step.VERIFIED, endpoint=state.to_json(), note=note)
        self.progress("verified", {"endpoint": state.to_json()})
        self._record_success(journal, outcome, info, actor)
        return outcome

    def _update_and_bake(
        self,
        service: str,
        message: str,
        bake: Bake,
        until: Callable[[], float],
        renew: Callable[[], None],
    ) -> tuple[dict[str, Any], str, str]:
        """Run the stack update; until the endpoint settles, analyse the canary. (outputs, breach, error)."""
        update = self.watch.start_update(message)
        over = self.watch.rollout_over(service, update, until, watch_endpoint=bake.analysis is not None)
        try:
            breach = bake.watch(over, renew)
        except (InterruptedByUserError, KeyboardInterrupt):
            raise  # the rollout goes on without us; `modelrail resume` watches it or rolls it back
        except Exception:
            with suppress(Exception):  # whatever went wrong, the previous version goes back once it ends
                self.watch.finish_update(update, renew)
            raise
        try:
            outputs = self.watch.finish_update(update, renew)
        except DependencyUnavailableError:
            raise  # not a verdict on the rollout: the controller could not see it
        except ModelrailError as error:
            detail = "; ".join(error.details)
            return {}, breach, f"{error.message}{': ' + detail if detail else ''}"
        return outputs, breach, ""

    def _record_success(self, journal: Journal, outcome: Outcome, info: VersionInfo, actor: str) -> None:
        """Registry stage, then the audit log and lineage; each step idempotent, so resume can redo it."""
        config = self.config()
        current = Stage(self.registry.get_version(info.service, info.sha).stage)
        if config.platform.approval_required and current is Stage.CANDIDATE:
            check_transition(Stage.CANDIDATE, Stage.PRODUCTION, version=info.sha)
            self.registry.set_stage(info.service, info.sha, str(Stage.PRODUCTION), actor)
        if not journal.has(Step.RECORDED):
            journal.write(Step.RECORDED)
        result = "promoted" if outcome.kind == "promote" else "rolled_back"
        reconciled = journal.header.get("reconcile")
        note = journal.get(Step.VERIFIED).get("note", "") if journal.has(Step.VERIFIED) else ""
        reason = "; ".join(part for part in (f"reconciled: {reconciled}" if reconciled else "", note) if part)
        self._finish(journal, outcome, result, reason, actor)

    def _fail(
        self,
        journal: Journal,
        outcome: Outcome,
        result: str,
        reason: str,
        previous_text: str,
        actor: str,
        renew: Callable[[], None],
        *,
        known: EndpointState | None = None,
    ) -> Outcome:
        """The rollout did not hold: decide (journaled), put the previous version back, record it.

        The previous version goes back into the stack file and onto the endpoint: when the
        endpoint does not serve it any more (the rollout completed unwatched, the sandbox lost it),
        the stack update runs again to deploy it. ``known`` is the endpoint's state just observed.
        Idempotent from the decision on, for resume.
        """
        if journal.has(Step.DECIDED):
            decided = journal.get(Step.DECIDED)
            result, reason = decided["outcome"], decided["reason"]
        else:
            journal.write(Step.DECIDED, outcome=result, reason=reason)
        self.progress("reverting", {"reason": reason})
        stackfile.restore(self.stack_path, previous_text)
        outcome.endpoint, problem = self.watch.restore(
            outcome.service, outcome.previous, outcome.version, renew, known
        )
        return self._finish(journal, outcome, result, f"{reason}; {problem}" if problem else reason, actor)

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
        else:
            catch_up(self.audit)  # the entry is there; its bucket copy may lag behind it
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
        """Converge the stack to one story after a crash or a dependency failure.

        Every promotion left unfinished is finished forward if it provably held and was judged,
        else undone. Then every service whose endpoint does not serve its pinned version is
        reconciled, and a bucket copy of the audit log that lags the local log catches up.
        """
        from pipelines.promotion.resume import reconcile_serving, resume_journal

        repaired = self.audit.repair_torn_tail()  # a crash mid-append leaves a torn last line
        if repaired:
            self.progress("audit_repaired", {"reason": repaired})
        outcomes = [resume_journal(self, journal, actor) for journal in unfinished(self.journal_dir)]
        outcomes += reconcile_serving(self, actor)
        catch_up(self.audit)
        return outcomes


def _where(outcome: Outcome) -> list[str]:
    """Where a rollout that did not hold left things, for the error's details."""
    state = outcome.endpoint
    running = state.config_name if state is not None and state.config_name else "nothing"
    return [f"the stack file pins {outcome.previous[:12] or 'no version'} again; the endpoint runs {running}"]


class LockLostError(LockedError):
    """The promotion lock lapsed and another operation took it: stop without touching anything."""


def _renewer(lock: PromotionLock) -> Callable[[], None]:
    """Keep the lock while a long rollout bakes (its expiry would otherwise let a second one in)."""

    def renew() -> None:
        try:
            lock.renew()
        except LockedError as error:
            raise LockLostError(error.message, details=error.details) from None

    return renew


def _same_person(first: str, second: str) -> bool:
    """One person or bot by ``pipelines.identity.same_identity``: case, width, invisibles ignored."""
    from pipelines.identity import same_identity

    return same_identity(first, second)
