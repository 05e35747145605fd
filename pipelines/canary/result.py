"""What one check of one interval found: the estimate, its bounds, what they were held to, and why."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Breach = Literal["relative", "absolute"]


@dataclass(frozen=True)
class CheckResult:
    """One check on all the evidence so far, with the numbers that decided it.

    ``estimate``, ``lower`` and ``upper`` are the compared quantity and its confidence-sequence
    bounds: the canary against the baseline when ``relative`` (canary − baseline; for latency the
    canary's p99 over the baseline's, minus one), else the canary's own value. ``None`` bounds are
    unbounded on that side. ``canary_lower`` and ``canary_upper`` bound the canary's own value
    (``canary``), which the absolute guardrail (``threshold``) is judged on.
    """

    name: str
    """``error-rate``, ``p99-latency``, ``live-accuracy``, ``prediction-drift`` or ``agreement``."""
    guardrail: str
    """The setting it enforces, e.g. ``max_5xx_rate`` (``min_agreement`` for agreement)."""
    alarm: str
    """The alarm (``infra.naming.GUARDRAILS``) a breach sets; drift and agreement ride on ``live-accuracy``."""
    estimate: float | None
    lower: float | None
    upper: float | None
    tolerance: float | None
    """How much worse than the baseline the canary may be (``None``: no relative part)."""
    threshold: float | None
    """The absolute guardrail."""
    samples: dict[str, int] = field(default_factory=dict)
    """``{"canary": n, "baseline": m}``: the observations behind the bounds (requests, labels, pairs)."""
    alpha: float = 0.0
    """This check's share of the analysis's α (Bonferroni); 0 for a check outside the budget."""
    passed: bool = True
    evaluated: bool = False
    """False while there is too little data to judge (a minimum sample) or no guardrail; such a check passes."""
    detail: str = ""
    canary: float | None = None
    """The canary's own value (error rate, p99 in ms, accuracy, JS distance, agreement)."""
    baseline: float | None = None
    canary_lower: float | None = None
    canary_upper: float | None = None
    relative: bool = False
    breach: Breach | None = None
    """Which part failed: worse than the baseline beyond ``tolerance``, or beyond ``threshold`` itself."""
    cleared: bool = False
    """The bounds show the canary no worse than its tolerance (what early promotion needs)."""

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "guardrail": self.guardrail,
            "alarm": self.alarm,
            "estimate": _number(self.estimate),
            "lower": _number(self.lower),
            "upper": _number(self.upper),
            "relative": self.relative,
            "tolerance": self.tolerance,
            "threshold": self.threshold,
            "canary": _number(self.canary),
            "canary_lower": _number(self.canary_lower),
            "canary_upper": _number(self.canary_upper),
            "baseline": _number(self.baseline),
            "samples": dict(self.samples),
            "alpha": float(f"{self.alpha:.6g}"),
            "passed": self.passed,
            "evaluated": self.evaluated,
            "breach": self.breach,
            "cleared": self.cleared,
            "detail": self.detail,
        }


def _number(value: float | None) -> float | None:
    """JSON has no infinity: an unbounded side is ``null``."""
    return None if value is None or not math.isfinite(value) else round(value, 6)
