"""How a canary analysis runs: its interval, how many passes promote, how many failures roll back."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AnalysisPolicy:
    """Flagger's analysis knobs, plus the significance level of the statistical checks.

    A check fails only when the canary is beyond its guardrail *and* worse than the baseline
    with a one-sided p-value below ``alpha``, so noise alone rarely fails a healthy canary and
    a failure threshold of 1 is safe: real regressions roll back at the first interval that
    shows them clearly.
    """

    interval_seconds: float = 60.0
    """Length of one analysis interval."""
    iterations: int = 5
    """Passing intervals needed to promote."""
    failure_threshold: int = 1
    """Failing intervals that roll back (Flagger's ``threshold``)."""
    min_requests: int = 100
    """Canary requests an interval needs to count; quieter intervals neither pass nor fail."""
    min_labels: int = 100
    """Labels each side needs before live accuracy is judged."""
    alpha: float = 0.0005
    """One-sided significance level of every check's test against the baseline."""

    def __post_init__(self) -> None:
        problems = []
        if not (self.interval_seconds > 0 and math.isfinite(self.interval_seconds)):
            problems.append(f"interval_seconds = {self.interval_seconds}: a positive number of seconds")
        if self.iterations < 1:
            problems.append(f"iterations = {self.iterations}: at least 1")
        if self.failure_threshold < 1:
            problems.append(f"failure_threshold = {self.failure_threshold}: at least 1")
        if self.min_requests < 1:
            problems.append(f"min_requests = {self.min_requests}: at least 1")
        if self.min_labels < 1:
            problems.append(f"min_labels = {self.min_labels}: at least 1")
        if not 0 < self.alpha < 0.5:
            problems.append(f"alpha = {self.alpha}: between 0 and 0.5 (exclusive)")
        if problems:
            raise ValueError("invalid analysis policy: " + "; ".join(problems))

    @classmethod
    def for_bake(cls, bake_seconds: float, interval_seconds: float = 60.0) -> AnalysisPolicy:
        """A policy whose passing intervals add up to the deployment's bake time (at least one).

        Change the other knobs with ``dataclasses.replace``.
        """
        iterations = max(1, int(bake_seconds // interval_seconds))
        return cls(interval_seconds=interval_seconds, iterations=iterations)
