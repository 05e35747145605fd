"""The stages a model version moves through, and the one place that says which moves are legal.

The registry stores each version's stage; promotion and the gates move versions between them.
"""

from __future__ import annotations

from enum import StrEnum

from pipelines.errors import BadInputError, RefusedError


class Stage(StrEnum):
    """Where a model version stands. Stored on its registry entry and in the audit log."""

    EXPERIMENTAL = "experimental"
    """Registered: packaged, uploaded and traceable, but not yet judged by any gate."""
    CANDIDATE = "candidate"
    """Passed the candidate-stage gates (data, drift, metrics against the baseline)."""
    PRODUCTION = "production"
    """Passed the production-stage gates, approved by a second person, and rolled out somewhere."""
    ARCHIVED = "archived"
    """Superseded and no longer a rollback target; kept for lineage, never deployed again."""


TRANSITIONS: dict[Stage, dict[Stage, str]] = {
    Stage.EXPERIMENTAL: {
        Stage.CANDIDATE: "the candidate-stage gates passed",
        Stage.ARCHIVED: "withdrawn before it was ever promoted",
    },
    Stage.CANDIDATE: {
        Stage.PRODUCTION: "the production-stage gates passed, a second person approved, the rollout held",
        Stage.ARCHIVED: "withdrawn or refused",
    },
    Stage.PRODUCTION: {
        Stage.ARCHIVED: "superseded in every stack it served",
    },
    Stage.ARCHIVED: {},
}
"""Every legal move, with what it means. Anything not listed is refused."""

GATED_STAGES = (Stage.CANDIDATE, Stage.PRODUCTION)
"""The stages a version qualifies for by passing that stage's gates: each has a gate policy."""


def stage_named(value: str, *, where: str) -> Stage:
    """``value`` as a ``Stage``; a ``BadInputError`` naming ``where`` it was read, the value and the stages."""
    try:
        return Stage(value)
    except ValueError:
        allowed = ", ".join(str(stage) for stage in Stage)
        raise BadInputError(f"{where}: stage {value!r} is not a stage; allowed: {allowed}") from None


def check_transition(current: Stage, target: Stage, *, version: str) -> str:
    """Return the meaning of ``current → target``, or refuse it with the reason and what is legal."""
    if current == target:
        return f"already {target}"
    allowed = TRANSITIONS[current]
    if target not in allowed:
        legal = ", ".join(str(stage) for stage in allowed) or "none (archived versions stay archived)"
        raise RefusedError(
            f"version {version[:12]} cannot move from {current} to {target}",
            details=[f"from {current} the legal moves are: {legal}"],
        )
    return allowed[target]
