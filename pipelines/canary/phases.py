"""The states of one canary analysis and the verdicts it hands the controller."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Where a canary analysis stands. Only ``step`` moves it, one interval at a time."""

    INITIALIZED = "initialized"
    """Created, no interval analysed yet."""
    PROGRESSING = "progressing"
    """Analysing: at least one interval seen, neither enough passes to promote nor enough failures to
    roll back."""
    SUCCEEDED = "succeeded"
    """Terminal: the canary passed the required number of intervals; the controller keeps it."""
    FAILED = "failed"
    """Terminal: the failure threshold was reached; the controller rolls back to the baseline."""

    @property
    def finished(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class Verdict(StrEnum):
    """What the controller should do after an interval."""

    CONTINUE = "continue"
    """Keep baking: analyse another interval."""
    PROMOTE = "promote"
    """The canary is healthy: finish the rollout and keep the new version."""
    ROLLBACK = "rollback"
    """A guardrail was breached: roll back to the baseline version now."""
