"""``modelrail resume``: converge what a crash or a failed dependency left unfinished.

One journal at a time, under the promotion lock, the rollout's state machine
(``pipelines.promotion.rollout``) is entered at the phase its last journaled step implies:

* before the update started: put the stack file back; nothing else changed (``aborted``);
* a decision was journaled (the rollout did not hold): finish the revert and record it;
* verified: finish recording (registry stage, audit log and its bucket copy, lineage);
* mid-rollout: rebuild the canary analysis from the journal. An update nobody saw return (or
  one that failed) is judged by what the endpoint's configuration serves, not by stack outputs
  that may still name the previous configuration. A rollback verdict aborts the canary again; a
  rollout still running is watched to its end, the analysis going on from the last journaled
  interval. A rollout that completed while nobody watched, before the analysis reached a
  verdict, cannot be judged any more: it is rolled back, and so is a stepped (KServe) rollout
  stopped between its steps, and a progression stopped in its shadow phase (which moved no user
  traffic: the shadow comes off). Only a rollout that provably holds and was judged is recorded as
  promoted; an endpoint still transitional when the wait is over is left as it is, journal and
  all, for the next ``resume``.

Then every service whose endpoint does not serve its pinned version is reconciled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.errors import RolledBackError
from pipelines.promotion.bake import Bake
from pipelines.promotion.journal import Journal, Step
from pipelines.promotion.lock import PromotionLock
from pipelines.promotion.phases import Phase, Result
from pipelines.promotion.rollout import Outcome, Rollout

if TYPE_CHECKING:
    from pipelines.promotion.controller import Controller


def resume_journal(controller: Controller, journal: Journal, actor: str) -> Outcome:
    """Finish one unfinished journal forward, or undo it; returns what it came to."""
    from pipelines.promotion.controller import _renewer

    head = journal.header
    service, version, previous = head["service"], head["version"], head["previous"]
    outcome = Outcome(head["kind"], "", service, controller.stack, version, previous, journal=journal.id)
    lock_dir, stack = controller.lock_dir, controller.stack
    with PromotionLock(lock_dir, service=service, stack=stack, owner=actor, operation="resume") as lock:
        rollout = Rollout(
            controller,
            controller.adapters_for(service),
            journal,
            outcome,
            actor,
            _renewer(lock),
            previous_text=_previous_text(journal),
            shadow=bool(head.get("shadow")),
        )
        try:
            return rollout.run(_entry(controller, rollout))
        except RolledBackError:
            return rollout.outcome  # reverted and recorded: resume reports it, it does not fail


def _previous_text(journal: Journal) -> str:
    """The stack file before the pin: journaled with ``begun`` (and, in older journals, only with
    ``pinned``); '' when neither has it, and then the file was never touched."""
    if journal.header.get("previous_text"):
        return str(journal.header["previous_text"])
    return str(journal.get(Step.PINNED)["previous_text"]) if journal.has(Step.PINNED) else ""


def _entry(controller: Controller, rollout: Rollout) -> Phase:
    """The phase a resumed rollout enters, from what its journal says happened."""
    journal = rollout.journal
    if not journal.has(Step.PINNED):  # the pin may be written already: the revert restores the text
        rollout.decide(Result.ABORTED, "interrupted while pinning: the stack file is back as it was")
        return Phase.REVERTING
    if not journal.has(Step.UPDATE_STARTED):
        rollout.decide(Result.ABORTED, "interrupted before the stack update")
        return Phase.REVERTING
    service = rollout.service
    config = controller.service_config(service)
    rollout.bake = bake = Bake.restore(
        journal,
        config=config,
        metrics=rollout.adapters.metrics,
        router=rollout.adapters.router,
        decisions=rollout.outcome.decisions,
        progress=controller.progress,
    )
    if journal.has(Step.DECIDED):
        return Phase.REVERTING
    if journal.has(Step.VERIFIED):
        rollout.actor = str(journal.header["actor"])
        return Phase.RECORDING
    if bake.shadow:  # no user traffic moved yet: the shadow comes off, a new promotion starts over
        breach = bake.breach()
        when = "after its shadow phase passed" if journal.has(Step.SHADOW_PASSED) else "in its shadow phase"
        reason = breach or f"interrupted {when}, before any user traffic moved"
        rollout.decide(Result.ROLLED_BACK if breach else Result.FAILED, reason)
        return Phase.REVERTING
    return _judge_interrupted(controller, rollout, bake)


def _judge_interrupted(controller: Controller, rollout: Rollout, bake: Bake) -> Phase:
    """A rollout interrupted mid-update: watch it to its end if it still runs, then judge it."""
    from pipelines.promotion.watch import TRANSITIONAL

    journal, service, version = rollout.journal, rollout.service, rollout.outcome.version
    watch = rollout.watch
    watched = journal.has(Step.UPDATE_FINISHED)  # the rollout ended while a controller watched it
    until = rollout.deadline
    watch.refresh_quietly()
    endpoints = rollout.adapters.endpoints
    if not watched and (bake.breach() or endpoints.describe(service).status in TRANSITIONAL):
        controller.progress("watching", {"journal": journal.id, "intervals": len(rollout.outcome.decisions)})
        over = watch.rollout_over(service, None, until)
        watched = not bake.watch(over, rollout.renew) and bake.can_watch
    state = watch.settle(service, until())
    watch.require_settled(service, state, "nothing was decided or reverted")
    rollout.outcome.endpoint = state
    if bake.breach():
        rollout.decide(Result.ROLLED_BACK, bake.breach(), known=state)
        return Phase.REVERTING
    # Outputs only of an update that was seen to return: otherwise they may name the previous
    # configuration still, and the endpoint's own configuration decides (``EndpointWatch.verdict``).
    finished = journal.get(Step.UPDATE_FINISHED) if journal.has(Step.UPDATE_FINISHED) else {}
    outputs = (finished.get("outputs") or watch.outputs_quietly()) if finished else None
    update_error = str(finished.get("error") or "")
    failure, unrecorded = watch.verdict(service, version, state, outputs, update_error)
    note = ""
    if unrecorded and not failure and (bake.judged or watched):
        failure, state, note = watch.record_rollout(
            service, version, update_error, str(journal.header["message"]), rollout.renew
        )
        rollout.outcome.endpoint = state
    if failure:
        rollout.decide(Result.FAILED, f"interrupted mid-update; {failure}", known=state)
        return Phase.REVERTING
    if not (bake.judged or watched):
        reason = (
            f"the rollout completed while nobody watched its canary: the analysis stopped after "
            f"{len(rollout.outcome.decisions)} interval(s) without a verdict, so the bake cannot be "
            "judged any more"
        )
        rollout.decide(Result.ROLLED_BACK, reason, known=state)
        return Phase.REVERTING
    journal.write(Step.VERIFIED, endpoint=state.to_json(), note=note)
    rollout.actor = str(journal.header["actor"])
    return Phase.RECORDING


def reconcile_serving(controller: Controller, actor: str) -> list[Outcome]:
    """Deploy the pinned version again wherever the endpoint does not serve it (a lost sandbox, say)."""
    outcomes = []
    for name, service in sorted(controller.config().services.items()):
        pinned = service.model_version
        if pinned is None or service.runtime not in controller.adapters:
            continue
        if not controller.watch_for(name).not_serving(name, pinned):
            continue
        try:
            outcomes.append(controller.promote(name, pinned, actor))
        except RolledBackError as error:
            outcomes.append(
                Outcome("promote", str(Result.FAILED), name, controller.stack, pinned, pinned, error.message)
            )
    return outcomes
