"""``modelrail resume``: converge what a crash or a failed dependency left unfinished.

One journal at a time, under the promotion lock, from the last step it recorded:

* before the update started: put the stack file back; nothing else changed (``aborted``);
* a decision was journaled (the rollout did not hold): finish putting the previous version
  back, on the stack file and on the endpoint, and record it;
* verified: finish recording (registry stage, audit log and its bucket copy, lineage);
* mid-rollout: rebuild the canary analysis from the journal. An update nobody saw return (or
  one that failed) is judged by what the endpoint's configuration serves, not by stack outputs
  that may still name the previous configuration. A rollback verdict trips the alarm again; a
  rollout still running is watched to its end, the analysis going on from the last journaled
  interval. A rollout that completed while nobody watched, before the analysis
  reached a verdict, cannot be judged any more: it is rolled back. Only a rollout that provably
  holds and was judged is recorded as promoted; an endpoint still transitional when the wait
  is over is left as it is, journal and all, for the next ``resume``.

Then every service whose endpoint does not serve its pinned version is reconciled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.errors import RolledBackError
from pipelines.promotion import stackfile
from pipelines.promotion.bake import Bake
from pipelines.promotion.journal import Journal, Step
from pipelines.promotion.lock import PromotionLock

if TYPE_CHECKING:
    from pipelines.promotion.controller import Controller, Outcome


def resume_journal(controller: Controller, journal: Journal, actor: str) -> Outcome:
    """Finish one unfinished journal forward, or undo it; returns what it came to."""
    from pipelines.promotion.controller import Outcome, _renewer
    from pipelines.promotion.watch import TRANSITIONAL

    head = journal.header
    service, version, previous = head["service"], head["version"], head["previous"]
    outcome = Outcome(head["kind"], "", service, controller.stack, version, previous, journal=journal.id)
    lock_dir, stack = controller.lock_dir, controller.stack
    with PromotionLock(lock_dir, service=service, stack=stack, owner=actor, operation="resume") as lock:
        renew = _renewer(lock)
        if not journal.has(Step.PINNED):
            return controller._finish(
                journal, outcome, "aborted", "interrupted before the stack file changed", actor
            )
        previous_text = journal.get(Step.PINNED)["previous_text"]
        if not journal.has(Step.UPDATE_STARTED):
            stackfile.restore(controller.stack_path, previous_text)
            return controller._finish(
                journal, outcome, "aborted", "interrupted before the stack update", actor
            )
        config = controller.service_config(service)
        bake = Bake.restore(
            journal,
            config=config,
            metrics=controller.metrics,
            decisions=outcome.decisions,
            progress=controller.progress,
        )
        if journal.has(Step.DECIDED):
            decided = journal.get(Step.DECIDED)
            return controller._fail(
                journal, outcome, decided["outcome"], decided["reason"], previous_text, actor, renew
            )
        if journal.has(Step.VERIFIED):
            controller._record_success(
                journal, outcome, controller.registry.get_version(service, version), head["actor"]
            )
            return outcome

        watched = journal.has(Step.UPDATE_FINISHED)  # the rollout ended while a controller watched it

        def until() -> float:
            return controller.watch.deadline(bake.began, config)

        controller.watch.refresh_quietly()
        if not watched and (bake.breach() or controller.endpoints.describe(service).status in TRANSITIONAL):
            controller.progress("watching", {"journal": journal.id, "intervals": len(outcome.decisions)})
            over = controller.watch.rollout_over(service, None, until)
            watched = not bake.watch(over, renew) and bake.can_watch
        state = controller.watch.settle(service, until())
        controller.watch.require_settled(service, state, "nothing was decided or reverted")
        outcome.endpoint = state
        if bake.breach():
            return controller._fail(
                journal, outcome, "rolled_back", bake.breach(), previous_text, actor, renew, known=state
            )
        # Outputs only of an update that was seen to return: otherwise they may name the previous
        # configuration still, and the endpoint's own configuration decides (``EndpointWatch.verdict``).
        finished = journal.get(Step.UPDATE_FINISHED) if journal.has(Step.UPDATE_FINISHED) else {}
        outputs = (finished.get("outputs") or controller.watch.outputs_quietly()) if finished else None
        update_error = str(finished.get("error") or "")
        failure, unrecorded = controller.watch.verdict(service, version, state, outputs, update_error)
        note = ""
        if unrecorded and not failure and (bake.judged or watched):
            failure, state, note = controller.watch.record_rollout(
                service, version, update_error, head["message"], renew
            )
            outcome.endpoint = state
        if failure:
            reason = f"interrupted mid-update; {failure}"
            return controller._fail(
                journal, outcome, "failed", reason, previous_text, actor, renew, known=state
            )
        if not (bake.judged or watched):
            reason = (
                f"the rollout completed while nobody watched its canary: the analysis stopped after "
                f"{len(outcome.decisions)} interval(s) without a verdict, so the bake cannot be judged any more"
            )
            return controller._fail(
                journal, outcome, "rolled_back", reason, previous_text, actor, renew, known=state
            )
        journal.write(Step.VERIFIED, endpoint=state.to_json(), note=note)
        controller._record_success(
            journal, outcome, controller.registry.get_version(service, version), head["actor"]
        )
        return outcome


def reconcile_serving(controller: Controller, actor: str) -> list[Outcome]:
    """Deploy the pinned version again wherever the endpoint does not serve it (a lost sandbox, say)."""
    from pipelines.promotion.controller import Outcome

    outcomes = []
    for name, service in sorted(controller.config().services.items()):
        pinned = service.model_version
        if pinned is None or service.runtime != "sagemaker" or not controller.watch.not_serving(name, pinned):
            continue
        try:
            outcomes.append(controller.promote(name, pinned, actor))
        except RolledBackError as error:
            outcomes.append(
                Outcome("promote", "failed", name, controller.stack, pinned, pinned, error.message)
            )
    return outcomes
