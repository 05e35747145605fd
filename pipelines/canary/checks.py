"""One small named check per guardrail, each comparing the canary with the baseline.

Every check fails only on two conditions together:

* the canary is beyond the guardrail (the number the alarm would watch), and
* it is worse than the baseline with a one-sided p-value below the policy's ``alpha``
  (without baseline traffic: beyond the guardrail itself with that significance).

The first condition keeps rollbacks tied to what the operator declared acceptable; the second
keeps noise, small samples and a baseline that is itself struggling from rolling back a healthy
canary. Checks that lack data say so and pass with ``evaluated=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import Guardrails
from pipelines.canary import significance
from pipelines.metrics.stats import VariantStats

P99_TAIL = 0.01
"""Share of requests that lies above the 99th percentile, by definition."""


@dataclass(frozen=True)
class CheckResult:
    """One check of one interval, with the numbers that decided it."""

    name: str
    """The check: ``error-rate``, ``p99-latency``, ``live-accuracy`` or ``prediction-drift``."""
    guardrail: str
    """The ``Guardrails`` field it enforces, e.g. ``max_5xx_rate``."""
    alarm: str
    """The alarm (``infra.naming.GUARDRAILS``) that a breach sets; drift rides on the quality alarm."""
    canary: float | None
    baseline: float | None
    threshold: float | None
    passed: bool
    evaluated: bool
    """False when there was not enough data to judge; such a check passes."""
    p_value: float | None
    detail: str

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "guardrail": self.guardrail,
            "alarm": self.alarm,
            "canary": _round(self.canary),
            "baseline": _round(self.baseline),
            "threshold": self.threshold,
            "passed": self.passed,
            "evaluated": self.evaluated,
            "p_value": None if self.p_value is None else float(f"{self.p_value:.3g}"),
            "detail": self.detail,
        }


_GUARDRAIL_AND_ALARM = {
    "error-rate": ("max_5xx_rate", "5xx-rate"),
    "p99-latency": ("p99_latency_ms", "p99-latency"),
    "live-accuracy": ("min_live_accuracy", "live-accuracy"),
    "prediction-drift": ("max_prediction_drift", "live-accuracy"),
}


def _result(
    name: str,
    threshold: float | None,
    canary: float | None,
    baseline: float | None,
    *,
    passed: bool,
    evaluated: bool,
    p_value: float | None,
    detail: str,
) -> CheckResult:
    guardrail, alarm = _GUARDRAIL_AND_ALARM[name]
    return CheckResult(
        name=name,
        guardrail=guardrail,
        alarm=alarm,
        canary=canary,
        baseline=baseline,
        threshold=threshold,
        passed=passed,
        evaluated=evaluated,
        p_value=p_value,
        detail=detail,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _verdict(beyond: bool, p_value: float, alpha: float) -> tuple[bool, str]:
    if not beyond:
        return True, "within the guardrail"
    if p_value >= alpha:
        return True, f"beyond the guardrail but not significant (p={p_value:.3g} ≥ α={alpha:g})"
    return False, f"beyond the guardrail and significant (p={p_value:.3g} < α={alpha:g})"


def error_rate(
    canary: VariantStats, baseline: VariantStats, guardrails: Guardrails, alpha: float
) -> CheckResult:
    """5xx share of invocations against ``max_5xx_rate``; two-proportion test against the baseline."""
    threshold = guardrails.max_5xx_rate
    rate, base = canary.error_rate, baseline.error_rate
    if rate is None:
        return _result(
            "error-rate",
            threshold,
            None,
            base,
            passed=True,
            evaluated=False,
            p_value=None,
            detail="no canary traffic yet",
        )
    if base is None:
        p = significance.binomial_greater(canary.errors_5xx, canary.invocations, threshold)
        versus = f"no baseline traffic, tested against the guardrail itself (n={canary.invocations})"
    else:
        p = significance.proportion_greater(
            canary.errors_5xx, canary.invocations, baseline.errors_5xx, baseline.invocations
        )
        versus = f"baseline {_pct(base)} (n={canary.invocations}/{baseline.invocations})"
    passed, why = _verdict(rate > threshold, p, alpha)
    return _result(
        "error-rate",
        threshold,
        rate,
        base,
        passed=passed,
        evaluated=True,
        p_value=p,
        detail=f"5xx rate {_pct(rate)} vs {versus}, guardrail {_pct(threshold)}: {why}",
    )


def p99_latency(
    canary: VariantStats, baseline: VariantStats, guardrails: Guardrails, alpha: float
) -> CheckResult:
    """p99 model latency against ``p99_latency_ms``.

    The test compares tails, not two noisy p99 numbers: it takes the histogram bound at or just
    above the baseline's p99 and asks whether a larger share of canary requests is slower than
    that (two-proportion test). A doubled p99 puts far more than 1% of the canary above it.
    Without histograms (CloudWatch) the point estimates are compared and the detail says so.
    """
    threshold = guardrails.p99_latency_ms
    p99, base = canary.latency_p99_ms, baseline.latency_p99_ms
    if p99 is None:
        return _result(
            "p99-latency",
            threshold,
            None,
            base,
            passed=True,
            evaluated=False,
            p_value=None,
            detail="no canary latency yet",
        )
    ours, theirs = canary.latency_histogram, baseline.latency_histogram
    if ours is None:
        worse = base is None or p99 > base
        passed = not (p99 > threshold and worse)
        return _result(
            "p99-latency",
            threshold,
            p99,
            base,
            passed=passed,
            evaluated=True,
            p_value=None,
            detail=f"p99 {_ms(p99)} vs baseline {_ms(base)}, guardrail {_ms(threshold)} "
            "(point estimates: the source has no latency histogram)",
        )
    if theirs is None or base is None or theirs.total == 0:
        cut = ours.bound_at_or_above(threshold)
        slow = ours.count_above(cut)
        p = significance.binomial_greater(slow, ours.total, P99_TAIL)
        versus = f"no baseline latency; {slow}/{ours.total} canary requests slower than {_ms(cut)}"
    else:
        cut = ours.bound_at_or_above(base)
        slow, base_slow = ours.count_above(cut), theirs.count_above(cut)
        p = significance.proportion_greater(slow, ours.total, base_slow, theirs.total)
        versus = (
            f"baseline {_ms(base)}; slower than {_ms(cut)}: canary {slow}/{ours.total}, "
            f"baseline {base_slow}/{theirs.total}"
        )
    passed, why = _verdict(p99 > threshold, p, alpha)
    return _result(
        "p99-latency",
        threshold,
        p99,
        base,
        passed=passed,
        evaluated=True,
        p_value=p,
        detail=f"p99 {_ms(p99)} vs {versus}, guardrail {_ms(threshold)}: {why}",
    )


def live_accuracy(
    canary: VariantStats,
    baseline: VariantStats,
    guardrails: Guardrails,
    alpha: float,
    min_labels: int,
    *,
    tolerance: float | None = None,
) -> CheckResult:
    """Accuracy on delayed labels against ``min_live_accuracy``; two-proportion test on the error shares.

    For a regression service (``tolerance``: its schema's ``output.tolerance``) a label is
    correct when the prediction is within ``tolerance`` of it, so the number judged is the share
    within ±tolerance; the test and the guardrail are the same, the detail names what is counted.
    """
    threshold = guardrails.min_live_accuracy
    measure = "accuracy" if tolerance is None else f"share within ±{tolerance:g}"
    acc, base = canary.accuracy, baseline.accuracy
    if threshold is None:
        return _result(
            "live-accuracy",
            threshold,
            acc,
            base,
            passed=True,
            evaluated=False,
            p_value=None,
            detail="no accuracy guardrail (min_live_accuracy is null)",
        )
    if acc is None or canary.labelled < min_labels:
        return _result(
            "live-accuracy",
            threshold,
            acc,
            base,
            passed=True,
            evaluated=False,
            p_value=None,
            detail=f"waiting for labels: {canary.labelled} canary labels < {min_labels}",
        )
    wrong = canary.labelled - canary.correct
    if base is None or baseline.labelled < min_labels:
        p = significance.binomial_greater(wrong, canary.labelled, 1 - threshold)
        versus = f"too few baseline labels ({baseline.labelled}), tested against the guardrail itself"
    else:
        base_wrong = baseline.labelled - baseline.correct
        p = significance.proportion_greater(wrong, canary.labelled, base_wrong, baseline.labelled)
        versus = f"baseline {_pct(base)} (labels {canary.labelled}/{baseline.labelled})"
    passed, why = _verdict(acc < threshold, p, alpha)
    return _result(
        "live-accuracy",
        threshold,
        acc,
        base,
        passed=passed,
        evaluated=True,
        p_value=p,
        detail=f"{measure} {_pct(acc)} vs {versus}, guardrail {_pct(threshold)}: {why}",
    )


def prediction_drift(
    canary: VariantStats, baseline: VariantStats, guardrails: Guardrails, alpha: float, min_requests: int
) -> CheckResult:
    """Jensen-Shannon distance (base 2) between prediction histograms against ``max_prediction_drift``.

    The distance of two samples from one distribution is above zero by chance; the chi-square
    test of homogeneity keeps that bias from failing a canary.
    """
    threshold = guardrails.max_prediction_drift
    if canary.predictions < min_requests or baseline.predictions < min_requests:
        return _result(
            "prediction-drift",
            threshold,
            None,
            None,
            passed=True,
            evaluated=False,
            p_value=None,
            detail=f"too few predictions to compare: canary {canary.predictions}, baseline "
            f"{baseline.predictions} (need {min_requests} each)",
        )
    distance = significance.js_distance(canary.prediction_histogram, baseline.prediction_histogram)
    assert distance is not None  # both histograms hold at least min_requests predictions
    p = significance.histograms_differ(canary.prediction_histogram, baseline.prediction_histogram)
    passed, why = _verdict(distance > threshold, p, alpha)
    return _result(
        "prediction-drift",
        threshold,
        distance,
        0.0,
        passed=passed,
        evaluated=True,
        p_value=p,
        detail=f"JS distance {distance:.3f} between prediction histograms "
        f"(n={canary.predictions}/{baseline.predictions}), guardrail {threshold:.3f}: {why}",
    )
