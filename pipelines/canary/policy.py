"""How a canary analysis runs: its interval, the length of its bake, its minimum samples and its α."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class AnalysisPolicy:
    """The judge's knobs. Plain values only: the controller journals ``asdict(policy)`` and rebuilds it.

    The checks are confidence sequences, valid however often they are read, so there is no
    failure count: one interval that shows a breach with the confidence ``1 − alpha`` is enough,
    and the chance that a canary no worse than its guardrails is ever rolled back stays below
    ``alpha`` over the whole bake.
    """

    interval_seconds: float = 60.0
    """Length of one analysis interval."""
    iterations: int = 5
    """Counted intervals in the bake: promote once that many have passed without a breach."""
    min_requests: int = 100
    """Minimum canary sample per decision: an interval with fewer canary requests of its own pauses
    (it does not count toward the bake), and no check can fail before the canary has this many."""
    min_labels: int = 100
    """Labels each side needs before live accuracy is judged."""
    alpha: float = 0.01
    """The chance of a false rollback over the whole analysis, split across its checks."""
    early_promotion: bool = False
    """Promote before the bake ends once every check's bound shows the canary no worse than allowed."""
    min_agreement: float | None = None
    """Shadow mode: the smallest share of mirrored requests on which the shadow must agree with
    production (``None``: agreement is not judged)."""

    def __post_init__(self) -> None:
        problems = []
        if not (self.interval_seconds > 0 and math.isfinite(self.interval_seconds)):
            problems.append(f"interval_seconds = {self.interval_seconds}: a positive number of seconds")
        if self.iterations < 1:
            problems.append(f"iterations = {self.iterations}: at least 1")
        if self.min_requests < 1:
            problems.append(f"min_requests = {self.min_requests}: at least 1")
        if self.min_labels < 1:
            problems.append(f"min_labels = {self.min_labels}: at least 1")
        if not 0 < self.alpha < 0.5:
            problems.append(f"alpha = {self.alpha}: between 0 and 0.5 (exclusive)")
        if self.min_agreement is not None and not 0 <= self.min_agreement <= 1:
            problems.append(f"min_agreement = {self.min_agreement}: between 0 and 1")
        if problems:
            raise ValueError("invalid analysis policy: " + "; ".join(problems))

    @classmethod
    def for_bake(cls, bake_seconds: float, interval_seconds: float = 60.0) -> AnalysisPolicy:
        """A policy whose counted intervals add up to the deployment's bake time (at least one).

        Change the other knobs with ``dataclasses.replace``.
        """
        iterations = max(1, int(bake_seconds // interval_seconds))
        return cls(interval_seconds=interval_seconds, iterations=iterations)

    @staticmethod
    def interval_for(bake_seconds: float) -> float:
        """The default interval of a bake: a quarter of it, between 1 and 60 seconds (at least four
        looks per bake, at most a minute of traffic per look)."""
        return max(1.0, min(60.0, bake_seconds / 4))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AnalysisPolicy:
        """A journaled policy again. Keys of an earlier judge (its ``failure_threshold``) are
        dropped, so a rollout journaled before an upgrade still resumes."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})
