"""The states of one promotion or rollback, and the results it can end with.

``pipelines.promotion.rollout.Rollout`` moves through ``Phase`` one handler at a time; the journal
(``pipelines.promotion.journal.Step``) records what each phase did before the next one acts. A
resumed controller enters the machine at ``REVERTING`` or ``RECORDING`` when the journal has
decided; a rollout interrupted mid-update is first watched and judged by ``pipelines.promotion.resume``
(a stepped one between its steps is reverted, never carried forward).
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Where a rollout stands. Each phase's handler returns the next one."""

    PINNING = "pinning"
    """Lock held, target chosen and checked: the stack file is about to pin it (with the first
    traffic step on a runtime the controller shifts step by step). Nothing has changed yet."""
    PREVIEWING = "previewing"
    """The stack file pins the target: the stack update's preview is shown, and may be declined."""
    UPDATING = "updating"
    """The first stack update runs. On a runtime that shifts traffic itself during one update
    (SageMaker's blue/green) this is the whole rollout, canary analysis alongside."""
    SHADOWING = "shadowing"
    """The shadow phase of a progression: production serves every user, the candidate answers a
    mirrored share of the same requests, and the analysis compares the two. A failure ends the
    progression before any user traffic moves; a pass pins the candidate for the next update."""
    BAKING = "baking"
    """The canary serves its share between two stack updates (KServe's ``canaryTrafficPercent``):
    the analysis judges it for the bake, a breach takes its traffic away at once."""
    SHIFTING = "shifting"
    """The next traffic step is pinned and applied by a stack update (the last one: all traffic)."""
    VERIFYING = "verifying"
    """Every update ended: what the endpoint really runs decides, never the exit of ``up`` alone."""
    REVERTING = "reverting"
    """The rollout did not hold (or was declined or interrupted): the previous version goes back
    into the stack file and, once anything was deployed, onto the endpoint. The one revert path."""
    RECORDING = "recording"
    """It held: the registry stage, the audit log, lineage and the notification carry the outcome."""
    DONE = "done"
    """Terminal: an outcome is recorded and the journal closed; the lock is released."""


class Result(StrEnum):
    """How a promotion or rollback ended, as the audit log, lineage and ``--json`` report it."""

    PROMOTED = "promoted"
    """The target serves, verified on the endpoint, its canary judged."""
    ROLLED_BACK = "rolled_back"
    """A rollback held (kind ``rollback``), or the canary analysis rolled a promotion back."""
    FAILED = "failed"
    """The rollout did not hold for another reason (the endpoint, the update, a dependency)."""
    ABORTED = "aborted"
    """Stopped before anything was deployed: declined at the preview, or interrupted."""
    UNCHANGED = "unchanged"
    """The target already serves; nothing was done."""
    PATCH_EMITTED = "patch_emitted"
    """The pin was written as a patch for review (GitOps) instead of being applied."""


SERVING_ACTIONS = (f"promote:{Result.PROMOTED}", f"rollback:{Result.ROLLED_BACK}")
"""The audit actions after which the version they name serves, verified: the stable versions."""
