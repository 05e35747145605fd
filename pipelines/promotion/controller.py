"""The promotion controller: promotions, rollbacks, patches and resumes of one stack.

Everything is decided under the promotion lock, and journaled before it is acted on. The
controller chooses and checks the target, then hands the rollout to the state machine in
``pipelines.promotion.rollout`` with the adapters of the service's runtime (the table in
``pipelines.runtimes.table``: one stack may mix SageMaker and KServe services). ``modelrail
resume`` enters the same machine wherever a crash or a failed dependency stopped it
(``pipelines.promotion.resume``). Gate evidence and approvals are ``pipelines.promotion.approvals``;
every event is recorded through one ``EventRecorder``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import Service, StackConfig, load_stack_file
from pipelines.errors import LockedError, RefusedError
from pipelines.promotion import stackfile
from pipelines.promotion.approvals import Approvals
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.audit_copy import catch_up
from pipelines.promotion.bake import needs_analysis
from pipelines.promotion.eligibility import Kind, check_eligible
from pipelines.promotion.events import Event, EventRecorder, Notifier, Silent
from pipelines.promotion.evidence import Approval, EvidenceStore
from pipelines.promotion.journal import Journal, unfinished
from pipelines.promotion.lock import PromotionLock
from pipelines.promotion.phases import SERVING_ACTIONS, Phase, Result
from pipelines.promotion.ports import LineageSink, VersionInfo, VersionStore
from pipelines.promotion.rollout import LockLostError, Outcome, Rollout
from pipelines.promotion.watch import EndpointWatch
from pipelines.runners.base import Preview, StackRunner
from pipelines.runtimes.ports import RuntimeAdapters

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
class Controller:
    """Promotes, rolls back and resumes on one stack. Build it with ``pipelines.promotion.wiring``."""

    stack: str
    stack_path: Path
    project_dir: Path
    runner: StackRunner
    adapters: Mapping[str, RuntimeAdapters]
    """The adapters of each runtime the stack's services use, by runtime name."""
    registry: VersionStore
    evidence: EvidenceStore
    audit: AuditLog
    lineage: LineageSink
    state_dir: Path
    notifier: Notifier = field(default_factory=Silent)
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
    def events(self) -> EventRecorder:
        """The one way this stack's events are recorded (audit, lineage, notification)."""
        return EventRecorder(self.stack, self.audit, self.lineage, self.notifier)

    @property
    def approvals(self) -> Approvals:
        return Approvals(self.stack, self.registry, self.evidence, self.events)

    def config(self) -> StackConfig:
        return load_stack_file(self.stack_path)

    def service_config(self, service: str) -> Service:
        """The service's stack config, or a refusal that lists the services the stack has."""
        try:
            return self.config().service(service)
        except KeyError as error:
            raise RefusedError(f"{self.stack_path}: {error.args[0]}") from None

    def adapters_for(self, service: str) -> RuntimeAdapters:
        """The adapters of the service's runtime (``runtime`` in its stack entry)."""
        runtime = self.service_config(service).runtime
        try:
            return self.adapters[runtime]
        except KeyError:
            bound = ", ".join(sorted(self.adapters)) or "none"
            raise RefusedError(
                f"{self.stack_path}: {service} runs on {runtime!r}, which this controller has no "
                f"adapters for (bound: {bound})"
            ) from None

    def watch_for(self, service: str) -> EndpointWatch:
        """What the service's endpoint really runs, and waiting for it to settle."""
        return EndpointWatch(self.runner, self.adapters_for(service).endpoints, self.timeouts, self.progress)

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

    def emit_patch(self, service: str, version: str, actor: str, target: Path) -> Outcome:
        """Write the promotion as a git patch instead of applying it (GitOps), and audit that.

        The version is checked exactly as a promotion checks it; the patch's sha256 goes into the
        audit entry, so what CI later applies can be matched to what was emitted and by whom.
        """
        info = self.registry.get_version(service, version)
        self.check_eligible(self.config(), info)
        previous = stackfile.pinned_version(self.stack_path, service) or ""
        config = self.service_config(service)
        stepped = len(self.adapters_for(service).traffic_steps(config)) > 1
        if previous and previous != info.sha and (stepped or config.deployment.shadowed):
            how = (
                f"progression {list(config.deployment.phases)} starts with a shadow phase, its own stack "
                "update judged before any user traffic moves"
                if config.deployment.shadowed
                else f"{config.deployment.strategy} rollout is a stack update per traffic step with the "
                "canary judged between them"
            )
            raise RefusedError(
                f"{service} runs on {config.runtime}, whose {how}: a patch would ship all traffic at "
                "once, unjudged",
                details=[f"promote it with `modelrail promote --service {service} --stack {self.stack}`"],
            )
        self.audit.ensure_appendable()  # the patch is only written when its record can be
        patch = stackfile.git_patch(
            self.stack_path, self.project_dir, service, info.sha, self.capacity_floor(service)
        )
        target.write_text(patch, encoding="utf-8")
        sha256 = hashlib.sha256(patch.encode("utf-8")).hexdigest()
        reason = f"wrote {target.name}: apply it with `git apply`, review, merge; CI runs the update"
        self.events.record(
            Event(
                f"promote:{Result.PATCH_EMITTED}",
                actor,
                service,
                info.sha,
                audit={"previous": previous, "patch": str(target), "patch_sha256": sha256, "reason": reason},
            )
        )
        return Outcome("promote", str(Result.PATCH_EMITTED), service, self.stack, info.sha, previous, reason)

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
        """Under the lock: read the pin, choose and check the target, then run the rollout's phases."""
        with PromotionLock(
            self.lock_dir, service=service, stack=self.stack, owner=actor, operation=kind
        ) as lock:
            self._refuse_interrupted(service)
            previous = stackfile.pinned_version(self.stack_path, service) or ""
            info = choose(previous)
            self.check_eligible(self.config(), info, kind)
            config, adapters = self.service_config(service), self.adapters_for(service)
            watch = self.watch_for(service)
            shadowed = (
                kind == "promote" and bool(previous) and info.sha != previous and config.deployment.shadowed
            )
            if shadowed and adapters.metrics is None:
                raise RefusedError(
                    f"{service}'s progression {list(config.deployment.phases)} starts with a shadow phase, "
                    f"which is judged on live metrics, and none can be read on {config.runtime} here",
                    details=["declare a progression without shadow, or give the runtime a metrics source"],
                )
            canary = shadowed or (
                kind == "promote" and needs_analysis(config, adapters.metrics, previous, info.sha)
            )
            drift = (
                watch.not_serving(service, previous) if previous and (info.sha == previous or canary) else ""
            )
            if info.sha == previous and not drift:
                return Outcome(
                    kind, str(Result.UNCHANGED), service, self.stack, info.sha, previous, "already serving"
                )
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
            reconcile = drift if info.sha == previous else ""
            # Only a promotion with a baseline goes through the progression; a first deployment, a
            # reconcile and a rollback (to a version that served here) take all traffic at once.
            progression = kind == "promote" and bool(previous) and not reconcile
            shadow = progression and shadowed
            # Journaled before the pin is written: a crash between the two still has the text to restore.
            previous_text = self.stack_path.read_text(encoding="utf-8")
            journal = Journal.begin(
                self.journal_dir,
                kind=kind,
                service=service,
                stack=self.stack,
                version=info.sha,
                previous=previous,
                actor=actor,
                message=message,
                reconcile=reconcile,
                previous_text=previous_text,
                shadow=shadow,
            )
            self.progress(
                "begun", {"journal": journal.id, "kind": kind, "version": info.sha, "previous": previous}
            )
            rollout = Rollout(
                self,
                adapters,
                journal,
                Outcome(kind, "", service, self.stack, info.sha, previous, journal=journal.id),
                actor,
                _renewer(lock),
                confirm=confirm,
                previous_text=previous_text,
                floor=floor,
                steps=adapters.traffic_steps(config) if progression else (None,),
                shadow=shadow,
            )
            return rollout.run(Phase.PINNING)

    def capacity_floor(self, service: str) -> int | None:
        """The ``instanceCountFloor`` a rollout of ``service`` pins along with its version.

        The provider never sets ``RetainAllVariantProperties``, so a blue/green update starts
        the new fleet at the configuration's initial count, ``instanceCount``, however far
        autoscaling has taken the old one: a fleet of 12 would take its traffic on 2. The count
        the endpoint runs now (``DescribeEndpoint``) becomes the floor the new configuration
        starts at (``Service.capacity_floor``: None when ``instanceCount`` is enough already).
        """
        running = self.adapters_for(service).endpoints.describe(service).instance_count
        return self.service_config(service).capacity_floor(running)

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
        """Store a stage's gate report as evidence (``Approvals.record_gates``)."""
        return self.approvals.record_gates(
            service, version, stage, passed=passed, summary=summary, report=report, actor=actor
        )

    def approve(self, service: str, version: str, approver: str, comment: str = "") -> Approval:
        """Approve a version for this stack as a second person (``Approvals.approve``)."""
        return self.approvals.approve(service, version, approver, comment)

    # ----------------------------------------------------------------- history

    def stable_versions(self, service: str) -> list[str]:
        """Versions that served ``service`` here after a verified promotion or rollback, oldest first."""
        return [
            entry["version"]
            for entry in self.audit.entries()
            if entry.get("service") == service and entry["action"] in SERVING_ACTIONS
        ]

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


def _renewer(lock: PromotionLock) -> Callable[[], None]:
    """Keep the lock while a long rollout bakes (its expiry would otherwise let a second one in)."""

    def renew() -> None:
        try:
            lock.renew()
        except LockedError as error:
            raise LockLostError(error.message, details=error.details) from None

    return renew
