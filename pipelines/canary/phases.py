"""The states of one canary analysis and the verdicts it hands the controller."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Where a canary analysis stands. Only ``step`` moves it, one interval at a time."""

    INITIALIZED = "initialized"
    """Created, no interval analysed yet."""
    PROGRESSING = "progressing"
    """Analysing: at least one interval seen, no breach shown and the bake not over yet."""
    SUCCEEDED = "succeeded"
    """Terminal: the bake ended without a breach (or, with early promotion, every check showed the
    canary no worse than its tolerance); the controller keeps it."""
    FAILED = "failed"
    """Terminal: a check showed a breach with the analysis's confidence; the controller rolls back."""

    @property
    def finished(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class Verdict(StrEnum):
    """What the controller should do after an interval."""

    CONTINUE = "continue"
    """Keep baking: the interval counted toward the bake, which is not over yet."""
    PAUSE = "pause"
    """The interval brought too little canary traffic to count: keep baking, it is never a failure."""
    PROMOTE = "promote"
    """The canary is healthy: finish the rollout and keep the new version."""
    ROLLBACK = "rollback"
    """A guardrail was breached: roll back to the baseline version now."""
