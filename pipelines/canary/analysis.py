"""Flagger-style canary analysis: one interval at a time, every decision explained with its numbers.

The controller owns the clock and the metrics: every ``interval_seconds`` it reads a
``CanaryWindow`` for the interval that just ended and calls ``step``. The analysis keeps the
running totals of both variants since it started, so each test sees all the evidence so far
(a regression that is borderline in one interval is clear after two), while the interval's own
traffic decides whether the interval counts at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import Guardrails
from pipelines.canary import checks
from pipelines.canary.checks import CheckResult
from pipelines.canary.phases import Phase, Verdict
from pipelines.canary.policy import AnalysisPolicy
from pipelines.metrics.stats import CanaryWindow, VariantStats


@dataclass(frozen=True)
class Decision:
    """The outcome of one interval: the verdict, where the analysis stands, and why."""

    verdict: Verdict
    phase: Phase
    interval: int
    """1-based number of the interval this decision closes."""
    iterations: int
    """Passing intervals so far."""
    failed_checks: int
    """Failing intervals so far."""
    checks: tuple[CheckResult, ...]
    reason: str
    window: CanaryWindow | None = None

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if not check.passed)

    @property
    def breached(self) -> CheckResult | None:
        """The first failing check of a rollback (checks run errors, latency, accuracy, drift)."""
        if self.verdict is not Verdict.ROLLBACK:
            return None
        failures = self.failures
        return failures[0] if failures else None

    @property
    def alarm(self) -> str | None:
        """The alarm to set on rollback (one of ``infra.naming.GUARDRAILS``), for ``TrafficRouter.abort``."""
        breached = self.breached
        return None if breached is None else breached.alarm

    def to_json(self) -> dict[str, object]:
        breached = self.breached
        return {
            "verdict": self.verdict.value,
            "phase": self.phase.value,
            "interval": self.interval,
            "iterations": self.iterations,
            "failed_checks": self.failed_checks,
            "reason": self.reason,
            "breached": None if breached is None else breached.name,
            "alarm": self.alarm,
            "checks": [check.to_json() for check in self.checks],
            "window": None if self.window is None else self.window.to_json(),
        }


class CanaryAnalysis:
    """The analysis state machine for one canary: feed it windows with ``step``; read ``phase``.

    Per interval: too little canary traffic → the interval does not count (``continue``); any
    failing check → one more failure, ``rollback`` at the failure threshold; all checks passing →
    one more iteration, ``promote`` at the required count. After a terminal phase ``step``
    returns the final decision again, so a resumed controller cannot change the outcome.
    """

    def __init__(
        self, policy: AnalysisPolicy, guardrails: Guardrails, *, tolerance: float | None = None
    ) -> None:
        """``tolerance``: a regression service's live tolerance, so live accuracy reads as the share
        of predictions within it of their labels (``None`` for a classifier)."""
        self.policy = policy
        self.guardrails = guardrails
        self.tolerance = tolerance
        self.phase = Phase.INITIALIZED
        self.interval = 0
        self.iterations = 0
        self.failed_checks = 0
        self.baseline = VariantStats()
        self.canary = VariantStats()
        self.decisions: list[Decision] = []

    def step(self, window: CanaryWindow) -> Decision:
        """Analyse one more interval and say what to do."""
        if self.phase.finished:
            return self.decisions[-1]
        self.interval += 1
        self.phase = Phase.PROGRESSING
        self.baseline = self.baseline.merged(window.baseline)
        interval_traffic = 0 if window.canary is None else window.canary.invocations
        if window.canary is not None:
            self.canary = self.canary.merged(window.canary)
        results = self._checks()
        if interval_traffic < self.policy.min_requests:
            return self._decide(
                Verdict.CONTINUE,
                results,
                f"interval {self.interval}: waiting for traffic, {interval_traffic} canary requests "
                f"< {self.policy.min_requests}; the interval does not count",
                window,
            )
        failures = [check for check in results if not check.passed]
        if failures:
            self.failed_checks += 1
            summary = "; ".join(f"{check.name}: {check.detail}" for check in failures)
            if self.failed_checks >= self.policy.failure_threshold:
                self.phase = Phase.FAILED
                return self._decide(
                    Verdict.ROLLBACK,
                    results,
                    f"interval {self.interval}: {failures[0].guardrail} breached "
                    f"({self.failed_checks}/{self.policy.failure_threshold} failed intervals): {summary}",
                    window,
                )
            return self._decide(
                Verdict.CONTINUE,
                results,
                f"interval {self.interval}: failed ({self.failed_checks}/{self.policy.failure_threshold} "
                f"failed intervals): {summary}",
                window,
            )
        self.iterations += 1
        if self.iterations >= self.policy.iterations:
            self.phase = Phase.SUCCEEDED
            return self._decide(
                Verdict.PROMOTE,
                results,
                f"interval {self.interval}: {self.iterations}/{self.policy.iterations} intervals passed "
                "every check; promote",
                window,
            )
        return self._decide(
            Verdict.CONTINUE,
            results,
            f"interval {self.interval}: every check passed ({self.iterations}/{self.policy.iterations})",
            window,
        )

    def _checks(self) -> tuple[CheckResult, ...]:
        alpha, guardrails = self.policy.alpha, self.guardrails
        return (
            checks.error_rate(self.canary, self.baseline, guardrails, alpha),
            checks.p99_latency(self.canary, self.baseline, guardrails, alpha),
            checks.live_accuracy(
                self.canary,
                self.baseline,
                guardrails,
                alpha,
                self.policy.min_labels,
                tolerance=self.tolerance,
            ),
            checks.prediction_drift(self.canary, self.baseline, guardrails, alpha, self.policy.min_requests),
        )

    def _decide(
        self, verdict: Verdict, results: tuple[CheckResult, ...], reason: str, window: CanaryWindow
    ) -> Decision:
        decision = Decision(
            verdict=verdict,
            phase=self.phase,
            interval=self.interval,
            iterations=self.iterations,
            failed_checks=self.failed_checks,
            checks=results,
            reason=reason,
            window=window,
        )
        self.decisions.append(decision)
        return decision
