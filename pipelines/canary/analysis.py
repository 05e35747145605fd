"""The anytime-valid canary judge: one interval at a time, every decision explained with its numbers.

The controller owns the clock and the metrics: every ``interval_seconds`` it reads a
``CanaryWindow`` for the interval that just ended and calls ``step``. The analysis keeps the
running totals of both variants since it started, and every check reads a confidence sequence
over all of them (``pipelines.canary.sequences``), so looking after every interval costs nothing:
the chance of ever rolling back a canary that is no worse than its guardrails stays below the
policy's ``alpha``, split evenly across the checks the analysis runs (Bonferroni).

Per interval, in this order:

* ``rollback`` when any check shows a breach (none can before its minimum sample);
* ``pause`` when the interval's own canary traffic is below ``min_requests``: it does not count
  toward the bake and is never a failure (its data still joins the totals);
* ``promote`` when ``iterations`` counted intervals have passed, or earlier with
  ``early_promotion`` once every evaluated check has cleared (and live accuracy, when labels are
  expected, or agreement in shadow mode has been evaluated);
* ``continue`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from infra.config import Guardrails
from pipelines.canary import checks
from pipelines.canary.phases import Phase, Verdict
from pipelines.canary.policy import AnalysisPolicy
from pipelines.canary.result import CheckResult
from pipelines.metrics.stats import Agreement, CanaryWindow, VariantStats

Mode = Literal["canary", "shadow"]


@dataclass(frozen=True)
class Decision:
    """The outcome of one interval: the verdict, where the analysis stands, and why."""

    verdict: Verdict
    phase: Phase
    interval: int
    """1-based number of the interval this decision closes."""
    iterations: int
    """Counted (not paused) intervals so far."""
    checks: tuple[CheckResult, ...]
    reason: str
    window: CanaryWindow | None = None

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if not check.passed)

    @property
    def breached(self) -> CheckResult | None:
        """The first failing check of a rollback, in the order the checks run."""
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
            "reason": self.reason,
            "breached": None if breached is None else breached.name,
            "alarm": self.alarm,
            "checks": [check.to_json() for check in self.checks],
            "window": None if self.window is None else self.window.to_json(),
        }


class CanaryAnalysis:
    """The judge of one bake: feed it windows with ``step``; read ``phase`` and ``decisions``.

    After a terminal phase ``step`` returns the final decision again, so a resumed controller
    cannot change the outcome.
    """

    def __init__(
        self,
        policy: AnalysisPolicy,
        guardrails: Guardrails,
        *,
        tolerance: float | None = None,
        mode: Mode = "canary",
    ) -> None:
        """``tolerance``: a regression service's live tolerance, so live accuracy reads as the share
        of predictions within it of their labels (``None`` for a classifier). ``mode="shadow"``:
        the canary is a shadow answering mirrored requests; agreement replaces live accuracy."""
        if mode not in ("canary", "shadow"):
            raise ValueError(f"mode = {mode!r}: 'canary' or 'shadow'")
        self.policy = policy
        self.guardrails = guardrails
        self.tolerance = tolerance
        self.mode = mode
        self.phase = Phase.INITIALIZED
        self.interval = 0
        self.iterations = 0
        self.paused = 0
        self.baseline = VariantStats()
        self.canary = VariantStats()
        self.agreement: Agreement | None = None
        self.decisions: list[Decision] = []

    @property
    def budgeted(self) -> tuple[str, ...]:
        """The checks that share α: those with a guardrail to enforce in this mode.

        Fixed when the analysis starts (never by what the data shows), so the shares add up to
        ``alpha`` over the whole bake.
        """
        if self.mode == "shadow":
            quality = ("agreement",) if self.policy.min_agreement is not None else ()
            return ("error-rate", "p99-latency", "prediction-drift", *quality)
        accuracy = ("live-accuracy",) if self.guardrails.min_live_accuracy is not None else ()
        return ("error-rate", "p99-latency", *accuracy, "prediction-drift")

    @property
    def share(self) -> float:
        """Each budgeted check's share of α."""
        return self.policy.alpha / len(self.budgeted)

    def step(self, window: CanaryWindow) -> Decision:
        """Analyse one more interval and say what to do."""
        if self.phase.finished:
            return self.decisions[-1]
        self.interval += 1
        self.phase = Phase.PROGRESSING
        self.baseline = self.baseline.merged(window.baseline)
        if window.canary is not None:
            self.canary = self.canary.merged(window.canary)
        if window.agreement is not None:
            self.agreement = window.agreement.merged(self.agreement or Agreement())
        traffic = 0 if window.canary is None else window.canary.invocations
        results = self._checks()
        failures = [check for check in results if not check.passed]
        if failures:
            self.phase = Phase.FAILED
            first = failures[0]
            also = "".join(f"; also {check.guardrail}: {check.detail}" for check in failures[1:])
            return self._decide(
                Verdict.ROLLBACK,
                results,
                f"interval {self.interval}: {first.guardrail} breached ({first.name}, {first.breach} part): "
                f"{first.detail}{also}",
                window,
            )
        if traffic < self.policy.min_requests:
            self.paused += 1
            return self._decide(
                Verdict.PAUSE,
                results,
                f"interval {self.interval}: paused, {traffic} canary requests < {self.policy.min_requests}; "
                f"the interval does not count toward the bake ({self.iterations}/{self.policy.iterations})",
                window,
            )
        self.iterations += 1
        if self.iterations >= self.policy.iterations:
            self.phase = Phase.SUCCEEDED
            return self._decide(
                Verdict.PROMOTE,
                results,
                f"interval {self.interval}: the bake ended ({self.iterations}/{self.policy.iterations} "
                f"counted intervals, {self.paused} paused) without a breach; promote",
                window,
            )
        if self.policy.early_promotion and self._cleared(results):
            self.phase = Phase.SUCCEEDED
            return self._decide(
                Verdict.PROMOTE,
                results,
                f"interval {self.interval}: every check shows the canary no worse than allowed "
                f"({self.iterations}/{self.policy.iterations} counted intervals); promote early",
                window,
            )
        return self._decide(
            Verdict.CONTINUE,
            results,
            f"interval {self.interval}: no breach shown ({self.iterations}/{self.policy.iterations})",
            window,
        )

    def _checks(self) -> tuple[CheckResult, ...]:
        budgeted, share, policy = self.budgeted, self.share, self.policy
        canary, baseline, guardrails = self.canary, self.baseline, self.guardrails

        def alpha(name: str) -> float:
            return share if name in budgeted else 0.0

        errors = checks.error_rate(
            canary,
            baseline,
            guardrails,
            alpha("error-rate"),
            policy.min_requests,
            planned=2 * policy.iterations * policy.min_requests,
        )
        latency = checks.p99_latency(canary, baseline, guardrails, alpha("p99-latency"), policy.min_requests)
        drift = checks.prediction_drift(
            canary, baseline, guardrails, alpha("prediction-drift"), policy.min_requests
        )
        if self.mode == "shadow":
            agreement = checks.agreement(
                self.agreement, policy.min_agreement, alpha("agreement"), policy.min_requests
            )
            return errors, latency, drift, agreement
        accuracy = checks.live_accuracy(
            canary,
            baseline,
            guardrails,
            alpha("live-accuracy"),
            policy.min_labels,
            planned=2 * policy.iterations * policy.min_labels,
            tolerance=self.tolerance,
        )
        return errors, latency, accuracy, drift

    def _cleared(self, results: tuple[CheckResult, ...]) -> bool:
        """Early promotion: every evaluated check cleared, and the quality check judged at all."""
        quality = {"live-accuracy", "agreement"} & set(self.budgeted)
        return all(check.cleared for check in results if check.evaluated) and all(
            check.evaluated for check in results if check.name in quality
        )

    def _decide(
        self, verdict: Verdict, results: tuple[CheckResult, ...], reason: str, window: CanaryWindow
    ) -> Decision:
        decision = Decision(
            verdict=verdict,
            phase=self.phase,
            interval=self.interval,
            iterations=self.iterations,
            checks=results,
            reason=reason,
            window=window,
        )
        self.decisions.append(decision)
        return decision
