"""One promotion or rollback as a state machine: ``Phase`` by ``Phase``, journaled step by step.

A rollout pins the target version in the stack file, previews, and runs the stack update. On a
runtime that shifts traffic itself during one update (SageMaker's blue/green) the canary is
analysed while the update runs; on one the controller shifts step by step (KServe's
``canaryTrafficPercent``) each traffic step is its own stack update, and the canary bakes under
analysis between them. Then what the endpoint really runs decides: SageMaker can roll an update
back while the provider reports success, and a rollout can outlive its update, so a failed ``up``
decides nothing by itself (``EndpointWatch.verdict``). Only a rollout that provably holds, and
whose canary analysis finished, is recorded as promoted; anything else goes through the one
revert path (``Phase.REVERTING``), which puts the previous version back and says why.

Every phase journals what it did before the next acts on it, so ``modelrail resume`` enters the
same machine at the phase the journal implies (``pipelines.promotion.resume``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.dependencies import DependencyUnavailableError
from pipelines.errors import (
    InterruptedByUserError,
    LockedError,
    ModelrailError,
    RolledBackError,
    RolloutInProgressError,
)
from pipelines.promotion import stackfile
from pipelines.promotion.bake import Bake, analysis_policy, needs_analysis
from pipelines.promotion.events import Event
from pipelines.promotion.journal import Journal, Step
from pipelines.promotion.phases import Phase, Result
from pipelines.promotion.watch import FAILED_STATES, EndpointWatch
from pipelines.registry.stages import Stage, check_transition
from pipelines.runners.base import EndpointState, Preview
from pipelines.runtimes.ports import RuntimeAdapters

if TYPE_CHECKING:
    from pipelines.promotion.controller import Controller


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


class LockLostError(LockedError):
    """The promotion lock lapsed and another operation took it: stop without touching anything."""


@dataclass
class Rollout:
    """One journaled rollout of one service; ``run`` moves it from a phase to ``Phase.DONE``."""

    controller: Controller
    adapters: RuntimeAdapters
    journal: Journal
    outcome: Outcome
    actor: str
    renew: Callable[[], None]
    confirm: Callable[[Preview], bool] | None = None
    previous_text: str = ""
    """The stack file before the pin (journaled with ``begun``): what the revert writes back."""
    floor: int | None = None
    steps: tuple[int | None, ...] = (None,)
    """The canary shares this rollout pins, one stack update each (``RuntimeAdapters.traffic_steps``)."""
    shadow: bool = False
    """The progression starts with a shadow phase: its own stack update and bake before any user
    traffic moves (``DeploymentPolicy.progression``)."""
    step: int = 0
    bake: Bake | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    update_error: str = ""
    breach: str = ""
    known: EndpointState | None = None
    """The endpoint's state just observed, handed to the revert so it need not wait again."""
    decision: tuple[Result, str] = (Result.FAILED, "")
    held: bool = True
    """False once the rollout is decided not to hold (``run`` raises ``RolledBackError`` at the end)."""

    @property
    def service(self) -> str:
        return self.outcome.service

    @property
    def watch(self) -> EndpointWatch:
        return self.controller.watch_for(self.service)

    @property
    def message(self) -> str:
        return str(self.journal.header["message"])

    @property
    def shadowing(self) -> bool:
        """Whether the rollout is (still) in its shadow phase."""
        return self.shadow and not self.journal.has(Step.SHADOW_PASSED)

    def run(self, phase: Phase) -> Outcome:
        """Move through the phases from ``phase``; revert whatever did not hold, then raise for it."""
        handlers: dict[Phase, Callable[[], Phase]] = {
            Phase.PINNING: self._pin,
            Phase.PREVIEWING: self._preview,
            Phase.UPDATING: self._update,
            Phase.SHADOWING: self._shadow,
            Phase.BAKING: self._bake,
            Phase.SHIFTING: self._shift,
            Phase.VERIFYING: self._verify,
            Phase.REVERTING: self._revert,
            Phase.RECORDING: self._record,
        }
        try:
            while phase is not Phase.DONE:
                phase = handlers[phase]()
        except (InterruptedByUserError, KeyboardInterrupt):
            if self.journal.has(Step.PINNED) and not self.journal.has(Step.UPDATE_STARTED):
                self.decide(Result.ABORTED, "interrupted by Ctrl-C")  # nothing deployed: undo the pin
                self._revert()
            raise  # mid-rollout: `modelrail resume` watches it to its end or rolls it back
        except (RolledBackError, LockLostError, RolloutInProgressError):
            raise  # recorded already, another operation holds the lock now, or left to resume
        except Exception as error:
            if self.journal.has(Step.VERIFIED) or self.journal.has(Step.DECIDED):
                raise  # only recording is left, and the journal says what: `modelrail resume` does it
            # Anything unexpected after the pin: the previous version back in the stack file and on
            # the endpoint, then recorded. If that needs the failed dependency too, the journal keeps
            # the decision for `modelrail resume`.
            self.decide(Result.FAILED, _reason(error))
            self._revert()
            if isinstance(error, DependencyUnavailableError):
                raise self._did_not_hold() from error
            raise
        if not self.held:
            raise self._did_not_hold()
        return self.outcome

    def decide(self, result: Result, reason: str, *, known: EndpointState | None = None) -> None:
        """The rollout ends as ``result``; anything but an abort before the update did not hold."""
        self.decision, self.known = (result, reason), known
        self.held = result is Result.ABORTED and not self.journal.has(Step.UPDATE_STARTED)

    # ----------------------------------------------------------------- the phases

    def _pin(self) -> Phase:
        """The target for users, or, for a shadow phase, the previous version with the target as shadow."""
        path, version = self.controller.stack_path, self.outcome.version
        if self.shadowing:
            stackfile.write_pin(path, self.service, self.outcome.previous, floor=self.floor, shadow=version)
        else:
            stackfile.write_pin(path, self.service, version, floor=self.floor, canary=self.steps[0])
        self.journal.write(Step.PINNED, previous_text=self.previous_text)
        self.controller.progress("pinned", {"path": str(path), "instance_count_floor": self.floor})
        return Phase.PREVIEWING

    def _preview(self) -> Phase:
        self.outcome.preview = self.controller.runner.preview()
        self.controller.progress("previewed", {"preview": self.outcome.preview.to_json()})
        if self.confirm is not None and not self.confirm(self.outcome.preview):
            self.decide(Result.ABORTED, "declined at the preview")
            return Phase.REVERTING
        return Phase.UPDATING

    def _update(self) -> Phase:
        """A phase's first update: the shadow's, or the canary's, analysed alongside it where the
        runtime shifts traffic itself."""
        controller, config = self.controller, self.controller.service_config(self.service)
        shadowing = self.shadowing
        policy = None
        if shadowing or needs_analysis(
            config, self.adapters.metrics, self.outcome.previous, self.outcome.version
        ):
            policy = analysis_policy(
                config.deployment,
                interval=controller.analysis_interval_seconds,
                min_requests=controller.min_requests,
                min_labels=controller.min_labels,
                shadow=shadowing,
            )
        self.bake = Bake.begin(
            self.journal,
            config=config,
            metrics=self.adapters.metrics,
            router=self.adapters.router,
            policy=policy,
            decisions=self.outcome.decisions,
            progress=controller.progress,
            shadow=shadowing,
        )
        controller.progress("update_started", {"message": self.message, "shadow": shadowing})
        if shadowing:  # the shadow bakes after this update; users stay on the previous version
            then = self._apply_step(Phase.SHADOWING)
            if self.update_error:  # nothing of the candidate's reached users: no verdict to wait for
                self.decide(Result.FAILED, f"the shadow phase's update failed: {self.update_error}")
                return Phase.REVERTING
            return then
        if len(self.steps) > 1:  # the canary bakes after this update, before the next
            return self._apply_step(Phase.BAKING)
        update = self.watch.start_update(self.message)
        over = self.watch.rollout_over(
            self.service, update, self.deadline, watch_endpoint=self.bake.analysis is not None
        )
        try:
            self.breach = self.bake.watch(over, self.renew)
        except (InterruptedByUserError, KeyboardInterrupt):
            raise  # the rollout goes on without us; `modelrail resume` watches it or rolls it back
        except Exception:
            with suppress(Exception):  # whatever went wrong, the previous version goes back once it ends
                self.watch.finish_update(update, self.renew)
            raise
        self.outputs, self.update_error = self._finish_update(
            lambda: self.watch.finish_update(update, self.renew)
        )
        return Phase.VERIFYING

    def _shadow(self) -> Phase:
        """The shadow answers its mirrored share: check that it does, judge it against production on
        the same requests, then pin the candidate for the progression's user traffic."""
        service, version, previous = self.service, self.outcome.version, self.outcome.previous
        state = self.watch.settle(service, self.deadline())
        self.watch.require_settled(service, state, "the shadow stays as it is")
        problem = self.watch.shadow_problem(service, state, previous, version)
        if problem:
            self.decide(Result.FAILED, f"the shadow phase did not hold: {problem}", known=state)
            return Phase.REVERTING
        if not self._judge("the shadow"):
            return Phase.REVERTING
        self.journal.write(Step.SHADOW_PASSED)
        self.controller.progress("shadow_passed", {"message": f"{version[:12]} passed its shadow phase"})
        stackfile.write_pin(
            self.controller.stack_path, service, version, floor=self.floor, canary=self.steps[0]
        )
        return Phase.UPDATING

    def _bake(self) -> Phase:
        """The canary serves its share: check that it does, then judge it for the bake."""
        assert self.bake is not None
        share = self.steps[self.step]
        state = self.watch.settle(self.service, self.deadline())
        self.watch.require_settled(self.service, state, "the canary's share stays as it is")
        check = self.adapters.step_check
        problem = check(self.service, self.outcome.version, share) if check is not None and share else ""
        if not problem and state.status in FAILED_STATES:
            problem = f"the endpoint is {state.status}: {state.failure_reason}"
        if problem:
            self.decide(Result.FAILED, f"the canary step to {share}% did not hold: {problem}", known=state)
            return Phase.REVERTING
        if not self._judge(f"the canary's {share}%"):
            return Phase.REVERTING
        self.step += 1
        return Phase.SHIFTING

    def _judge(self, what: str) -> bool:
        """Bake under analysis until it has a verdict (or the rollout's bound); False once a revert
        is decided: a breach, or no verdict at all (no runtime rollback stands behind this bake)."""
        assert self.bake is not None
        bake = self.bake
        bake.start = max(bake.start, time.time())  # windows of what is judged, not of the update
        config = self.controller.service_config(self.service)
        seconds = config.deployment.shadow.bake_seconds if bake.shadow else config.deployment.bake_seconds
        ends = bake.start + float(seconds)
        bound = self.controller.timeouts.rollout_seconds
        # A shadow's bound counts from its bake: its update ran a whole blue/green of its own first.
        origin = bake.start if bake.shadow else bake.began
        limit = origin + float(config.deployment.max_execution_seconds if bound is None else bound)

        def baked(wait: float) -> bool:
            """Over after the bake when nothing is analysed; else once the analysis has its verdict,
            or at the rollout's bound (``maxExecutionSeconds``): a quiet canary waits for traffic."""
            if bake.analysis is None or bake.metrics is None:
                time.sleep(max(0.0, min(wait, ends - time.time())))
                return time.time() >= ends
            if bake.analysis.phase.finished:
                return True
            time.sleep(max(0.0, min(wait, limit - time.time())))
            return time.time() >= limit

        self.breach = bake.watch(baked, self.renew)
        if self.breach:
            self.decide(Result.ROLLED_BACK, self.breach)
            return False
        if not bake.judged:
            last = bake.analysis.decisions[-1].reason if bake.analysis and bake.analysis.decisions else ""
            self.decide(
                Result.FAILED,
                f"{what} had no verdict within the rollout's {limit - origin:g} s"
                + (f" ({last})" if last else ""),
            )
            return False
        return True

    def _shift(self) -> Phase:
        """Pin the next traffic step and apply it; bake again unless it is the last."""
        share = self.steps[self.step]
        if share is not None and self.bake is not None:
            self.bake.next_step()
        self.journal.write(Step.SHIFTED, percent=share)
        self.controller.progress("shifting", {"message": f"{share or 100}% of traffic"})
        stackfile.write_pin(
            self.controller.stack_path, self.service, self.outcome.version, floor=self.floor, canary=share
        )
        return self._apply_step(Phase.VERIFYING if share is None else Phase.BAKING)

    def _verify(self) -> Phase:
        """Every update ended: judge what the endpoint runs once it has settled."""
        service, version = self.service, self.outcome.version
        self.journal.write(Step.UPDATE_FINISHED, outputs=self.outputs, error=self.update_error)
        state = self.watch.settle(service, self.deadline())
        self.watch.require_settled(service, state, "nothing was decided or reverted")
        self.outcome.endpoint = state
        failure, unrecorded, note = self.breach, False, ""
        if not failure:
            failure, unrecorded = self.watch.verdict(service, version, state, self.outputs, self.update_error)
        if unrecorded and not failure:
            failure, state, note = self.watch.record_rollout(
                service, version, self.update_error, self.message, self.renew
            )
            self.outcome.endpoint = state
        if failure:
            self.decide(Result.ROLLED_BACK if self.breach else Result.FAILED, failure, known=state)
            return Phase.REVERTING
        self.journal.write(Step.VERIFIED, endpoint=state.to_json(), note=note)
        self.controller.progress("verified", {"endpoint": state.to_json()})
        return Phase.RECORDING

    def _record(self) -> Phase:
        """Registry stage, then the audit log and lineage; each step idempotent, so resume can redo it."""
        controller, service, version = self.controller, self.service, self.outcome.version
        current = Stage(controller.registry.get_version(service, version).stage)
        if controller.config().platform.approval_required and current is Stage.CANDIDATE:
            check_transition(Stage.CANDIDATE, Stage.PRODUCTION, version=version)
            controller.registry.set_stage(service, version, str(Stage.PRODUCTION), self.actor)
        if not self.journal.has(Step.RECORDED):
            self.journal.write(Step.RECORDED)
        reconciled = self.journal.header.get("reconcile")
        note = self.journal.get(Step.VERIFIED).get("note", "") if self.journal.has(Step.VERIFIED) else ""
        reason = "; ".join(part for part in (f"reconciled: {reconciled}" if reconciled else "", note) if part)
        self._finish(Result.PROMOTED if self.outcome.kind == "promote" else Result.ROLLED_BACK, reason)
        return Phase.DONE

    def _revert(self) -> Phase:
        """The one revert path: the previous version back in the stack file and on the endpoint.

        Before the update started only the stack file changed, and only it goes back. After, the
        decision is journaled first (a resume finishes it), then the stack file is restored and,
        when the endpoint does not serve the previous version any more (the rollout completed
        unwatched, a canary step moved traffic, the sandbox lost it), the stack update runs again.
        Idempotent from the decision on.
        """
        result, reason = self.decision
        if not self.journal.has(Step.UPDATE_STARTED):
            if self.previous_text:  # the pin may be written even if ``pinned`` is not journaled yet
                stackfile.restore(self.controller.stack_path, self.previous_text)
            self._finish(result, reason)
            return Phase.DONE
        if self.journal.has(Step.DECIDED):
            decided = self.journal.get(Step.DECIDED)
            result, reason = Result(decided["outcome"]), decided["reason"]
        else:
            self.journal.write(Step.DECIDED, outcome=str(result), reason=reason)
        self.controller.progress("reverting", {"reason": reason})
        stackfile.restore(self.controller.stack_path, self.previous_text)
        self.outcome.endpoint, problem = self.watch.restore(
            self.service, self.outcome.previous, self.outcome.version, self.renew, self.known
        )
        self._finish(result, f"{reason}; {problem}" if problem else reason)
        return Phase.DONE

    # ----------------------------------------------------------------- helpers

    def _apply_step(self, then: Phase) -> Phase:
        """Run one stack update of a stepped rollout; a failed one is judged like any other."""
        self.outputs, self.update_error = self._finish_update(
            lambda: self.watch.run_update(self.message, self.renew)
        )
        return Phase.VERIFYING if self.update_error else then

    @staticmethod
    def _finish_update(wait: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], str]:
        """An update's outputs, or its error as text: a failed ``up`` is not yet a verdict."""
        try:
            return wait(), ""
        except DependencyUnavailableError:
            raise  # not a verdict on the rollout: the controller could not see it
        except ModelrailError as error:
            detail = "; ".join(error.details)
            return {}, f"{error.message}{': ' + detail if detail else ''}"

    def deadline(self) -> float:
        """Until when the endpoint may stay transitional (``EndpointWatch.deadline``)."""
        began = self.bake.began if self.bake is not None else time.time()
        return self.watch.deadline(began, self.controller.service_config(self.service))

    def _finish(self, result: Result, reason: str) -> None:
        """Record the outcome through the one event path (once per journal), then close the journal."""
        outcome = self.outcome
        outcome.outcome, outcome.reason = str(result), reason
        self.controller.events.record(
            Event(
                f"{outcome.kind}:{result}",
                self.actor,
                outcome.service,
                outcome.version,
                audit={
                    "previous": outcome.previous,
                    "reason": reason,
                    "analysis": [d.get("reason") for d in outcome.decisions],
                },
                lineage={"previous": outcome.previous, "reason": reason},
                journal=self.journal.id,
            )
        )
        self.journal.write(Step.DONE, outcome=str(result), reason=reason)
        self.controller.progress("done", {"outcome": str(result), "reason": reason})

    def _did_not_hold(self) -> RolledBackError:
        outcome = self.outcome
        state = outcome.endpoint
        running = state.config_name if state is not None and state.config_name else "nothing"
        return RolledBackError(
            f"{outcome.kind} of {outcome.service} {outcome.version[:12]} on {outcome.stack} did not hold: "
            f"{self.decision[1]}",
            details=[
                f"the stack file pins {outcome.previous[:12] or 'no version'} again; the endpoint runs {running}"
            ],
        )


def _reason(error: Exception) -> str:
    if isinstance(error, DependencyUnavailableError):
        return error.condition
    if isinstance(error, ModelrailError):
        return error.message
    return f"{type(error).__name__}: {error}"
