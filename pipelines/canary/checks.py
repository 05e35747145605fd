"""One check per guardrail, each on confidence sequences over all the evidence so far.

A check has up to two parts, each with half of the check's share of α:

* relative: the canary is worse than the baseline by more than the guardrail's tolerance, with
  that confidence (the bound on canary − baseline lies beyond the tolerance);
* absolute: the canary is beyond the absolute guardrail with that confidence, while the
  baseline's own estimate is within it. A baseline that looks beyond the guardrail too (a
  shared incident, a struggling dependency) is not the canary's fault; the relative part still
  judges the canary against it.

Without baseline data the absolute part alone decides. No part can fail before its minimum
sample. A check without enough data, or without a guardrail, says so and passes with
``evaluated=False``. ``cleared`` is the other direction, for early promotion: the relative bound
(or, without a baseline, the absolute one) shows the canary no worse than allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from infra.config import Guardrails
from pipelines.canary import sequences
from pipelines.canary.result import CheckResult
from pipelines.canary.sequences import Bounds
from pipelines.metrics.stats import Agreement, LatencyHistogram, VariantStats

P99 = 0.99
"""The quantile the latency guardrail is set on."""

_GUARDRAIL_AND_ALARM = {
    "error-rate": ("max_5xx_rate", "5xx-rate"),
    "p99-latency": ("p99_latency_ms", "p99-latency"),
    "live-accuracy": ("min_live_accuracy", "live-accuracy"),
    "prediction-drift": ("max_prediction_drift", "live-accuracy"),
    "agreement": ("min_agreement", "live-accuracy"),
}


def _check(name: str, **fields: Any) -> CheckResult:
    guardrail, alarm = _GUARDRAIL_AND_ALARM[name]
    return CheckResult(name=name, guardrail=guardrail, alarm=alarm, **fields)


def _not_evaluated(name: str, why: str, threshold: float | None = None) -> CheckResult:
    """A check that cannot judge at all: it passes and says why."""
    return _check(
        name, estimate=None, lower=None, upper=None, tolerance=None, threshold=threshold, detail=why
    )


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "∞" if math.isinf(value) else f"{value:.1f} ms"


@dataclass(frozen=True)
class _Counts:
    """One side of a proportion: ``hits`` of ``trials`` (errors of requests, correct of labelled…)."""

    hits: int
    trials: int

    @property
    def pair(self) -> tuple[int, int]:
        return self.hits, self.trials

    @property
    def share(self) -> float:
        return self.hits / self.trials


def _oriented(bounds: Bounds, higher_is_worse: bool) -> tuple[float, float]:
    """The least bad and the worst value the bounds allow, on a scale where larger is worse."""
    return (bounds.lower, bounds.upper) if higher_is_worse else (-bounds.upper, -bounds.lower)


def _outcome(breach: str | None, beyond: bool, cleared: bool, alpha: float) -> str:
    if breach == "relative":
        return f"worse than the baseline beyond the tolerance (α={alpha:.3g})"
    if breach == "absolute":
        return f"beyond the guardrail while the baseline is within it (α={alpha:.3g})"
    if beyond:
        return "beyond the guardrail, but so is the baseline: not the canary's fault"
    return "no worse than allowed" if cleared else "no breach shown"


def _rate_check(
    name: str,
    canary: _Counts,
    baseline: _Counts,
    *,
    threshold: float,
    tolerance: float,
    higher_is_worse: bool,
    alpha: float,
    minimum: int,
    planned: float,
    measure: str,
    unit: str,
) -> CheckResult:
    """A proportion against its guardrail (absolute part) and against the baseline (relative part).

    The absolute part reads the canary's exact sequence; the relative part the asymptotic one of
    the difference, tuned for ``planned`` observations of both arms together.
    """
    samples = {"canary": canary.trials, "baseline": baseline.trials}
    if canary.trials < minimum:
        return _waiting(
            name, f"{canary.trials} canary {unit} < {minimum}", threshold, tolerance, samples, alpha
        )
    part = alpha / 2
    own = sequences.proportion(*canary.pair, part)
    least, most = _oriented(own, higher_is_worse)
    limit = threshold if higher_is_worse else -threshold
    base = baseline.share if baseline.trials >= minimum else None
    beyond = least > limit
    absolute = beyond and (base is None or (base if higher_is_worse else -base) <= limit)
    compared, relative, cleared = own, False, most <= limit
    words = f"{measure} {_pct(own.estimate)} [{_pct(own.lower)}, {_pct(own.upper)}] ({canary.trials} {unit})"
    if base is None:
        words += f"; too little baseline data ({baseline.trials} {unit}): the guardrail alone decides"
    else:
        compared = sequences.difference(canary.pair, baseline.pair, part, planned)
        least, most = _oriented(compared, higher_is_worse)
        relative, cleared = least > tolerance, most <= tolerance
        words += (
            f" vs baseline {_pct(base)} ({baseline.trials} {unit}): difference {_pct(compared.estimate, True)} "
            f"[{_pct(compared.lower, True)}, {_pct(compared.upper, True)}], tolerance "
            f"{'+' if higher_is_worse else '−'}{tolerance:.2%}"
        )
    breach = "relative" if relative else "absolute" if absolute else None
    return _check(
        name,
        estimate=compared.estimate,
        lower=compared.lower,
        upper=compared.upper,
        tolerance=tolerance,
        threshold=threshold,
        samples=samples,
        alpha=alpha,
        passed=breach is None,
        evaluated=True,
        detail=f"{words}; guardrail {_pct(threshold)}: {_outcome(breach, beyond, cleared, part)}",
        canary=own.estimate,
        baseline=base,
        canary_lower=own.lower,
        canary_upper=own.upper,
        relative=base is not None,
        breach=breach,
        cleared=cleared,
    )


def _waiting(
    name: str,
    why: str,
    threshold: float | None,
    tolerance: float | None,
    samples: dict[str, int],
    alpha: float,
) -> CheckResult:
    """A check below its minimum sample: it passes, and says what it waits for."""
    return _check(
        name,
        estimate=None,
        lower=None,
        upper=None,
        tolerance=tolerance,
        threshold=threshold,
        samples=samples,
        alpha=alpha,
        detail=f"waiting for data: {why}",
    )


def error_rate(
    canary: VariantStats,
    baseline: VariantStats,
    guardrails: Guardrails,
    alpha: float,
    minimum: int,
    *,
    planned: float,
) -> CheckResult:
    """5xx share of invocations: above ``max_5xx_rate``, or above the baseline's by ``error_rate_tolerance``."""
    return _rate_check(
        "error-rate",
        _Counts(canary.errors_5xx, canary.invocations),
        _Counts(baseline.errors_5xx, baseline.invocations),
        threshold=guardrails.max_5xx_rate,
        tolerance=guardrails.error_rate_tolerance,
        higher_is_worse=True,
        alpha=alpha,
        minimum=minimum,
        planned=planned,
        measure="5xx rate",
        unit="requests",
    )


def live_accuracy(
    canary: VariantStats,
    baseline: VariantStats,
    guardrails: Guardrails,
    alpha: float,
    min_labels: int,
    *,
    planned: float,
    tolerance: float | None = None,
) -> CheckResult:
    """Accuracy on delayed labels: below ``min_live_accuracy``, or below the baseline's by ``accuracy_tolerance``.

    For a regression service (``tolerance``: its schema's ``output.tolerance``) a label is correct
    when the prediction is within ``tolerance`` of it, so the share judged is the share within
    ±tolerance; the detail names what is counted.
    """
    threshold = guardrails.min_live_accuracy
    if threshold is None:
        return _not_evaluated("live-accuracy", "no accuracy guardrail (min_live_accuracy is null)")
    measure = "accuracy" if tolerance is None else f"share within ±{tolerance:g}"
    return _rate_check(
        "live-accuracy",
        _Counts(canary.correct, canary.labelled),
        _Counts(baseline.correct, baseline.labelled),
        threshold=threshold,
        tolerance=guardrails.accuracy_tolerance,
        higher_is_worse=False,
        alpha=alpha,
        minimum=min_labels,
        planned=planned,
        measure=measure,
        unit="labels",
    )


def agreement(
    pairs: Agreement | None, min_agreement: float | None, alpha: float, minimum: int
) -> CheckResult:
    """Shadow mode: the share of mirrored requests on which the shadow agreed with production.

    Rolls back when the upper bound is below ``min_agreement``. Agreement is a comparison in
    itself, so the check's whole share of α goes to this one part.
    """
    if min_agreement is None:
        return _not_evaluated("agreement", "no agreement guardrail (min_agreement is null)")
    if pairs is None:
        return _not_evaluated(
            "agreement",
            "the metrics source does not pair production's and the shadow's answers",
            min_agreement,
        )
    samples = {"canary": pairs.paired, "baseline": pairs.paired}
    if pairs.paired < minimum:
        return _waiting(
            "agreement", f"{pairs.paired} paired answers < {minimum}", min_agreement, None, samples, alpha
        )
    bounds = sequences.proportion(pairs.agreed, pairs.paired, alpha)
    breached, cleared = bounds.upper < min_agreement, bounds.lower >= min_agreement
    outcome = (
        f"below it (α={alpha:.3g})" if breached else "no worse than allowed" if cleared else "no breach shown"
    )
    return _check(
        "agreement",
        estimate=bounds.estimate,
        lower=bounds.lower,
        upper=bounds.upper,
        tolerance=None,
        threshold=min_agreement,
        samples=samples,
        alpha=alpha,
        passed=not breached,
        evaluated=True,
        detail=f"agreement with production {_pct(bounds.estimate)} [{_pct(bounds.lower)}, "
        f"{_pct(bounds.upper)}] on {pairs.paired} mirrored requests; minimum {_pct(min_agreement)}: {outcome}",
        canary=bounds.estimate,
        canary_lower=bounds.lower,
        canary_upper=bounds.upper,
        breach="absolute" if breached else None,
        cleared=cleared,
    )


def p99_bounds(histogram: LatencyHistogram, alpha: float) -> tuple[float, float]:
    """A confidence sequence at ``alpha`` for the p99, at the histogram's resolution: ``(lower, upper)``.

    Howard & Ramdas' fixed-quantile sequence: with probability 1 − α, at every time, the count of
    requests at or below the true p99 is a plausible count of a Bernoulli(0.99) stream. A bucket
    bound with fewer requests at or below it than plausible lies below the true p99 (the p99 is
    above ``lower``); one with more lies at or above it (the p99 is at most ``upper``). ``lower``
    is 0 and ``upper`` +inf where no bucket bound is shown yet.
    """
    low, high = sequences.plausible_counts(histogram.total, P99, alpha)
    lower, upper, seen = 0.0, math.inf, 0
    for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
        seen += count
        if seen < low:
            lower = bound
        if seen > high:
            upper = min(upper, bound)
    return lower, upper


def p99_latency(
    canary: VariantStats, baseline: VariantStats, guardrails: Guardrails, alpha: float, minimum: int
) -> CheckResult:
    """p99 model latency: above ``p99_latency_ms``, or above the baseline's by ``latency_tolerance`` (a share).

    The absolute part reads the canary's p99 sequence; the relative part compares the canary's
    lower bound with ``1 + tolerance`` times the baseline's upper bound, each arm's sequence at
    half the part's α (a union bound). Without latency histograms (CloudWatch reports p99 point
    values) no bound exists: see ``_p99_points``.
    """
    threshold, tolerance = guardrails.p99_latency_ms, guardrails.latency_tolerance
    ours, theirs = canary.latency_histogram, baseline.latency_histogram
    if ours is None:
        return _p99_points(canary, baseline, threshold, tolerance, alpha, minimum)
    samples = {"canary": ours.total, "baseline": 0 if theirs is None else theirs.total}
    p99 = ours.quantile(P99)
    if p99 is None or ours.total < minimum:
        return _waiting(
            "p99-latency", f"{ours.total} canary latencies < {minimum}", threshold, tolerance, samples, alpha
        )
    part = alpha / 2
    own_lower, own_upper = p99_bounds(ours, part)
    base = theirs.quantile(P99) if theirs is not None and theirs.total >= minimum else None
    beyond = own_lower >= threshold  # the p99 lies above its lower bound
    absolute = beyond and (base is None or base <= threshold)
    estimate, lower, upper = p99, own_lower, own_upper
    relative, cleared = False, own_upper <= threshold
    words = f"p99 {_ms(p99)}, above {_ms(own_lower)} and at most {_ms(own_upper)} ({ours.total} requests)"
    if theirs is None or base is None:
        words += (
            f"; too little baseline latency ({samples['baseline']} requests): the guardrail alone decides"
        )
    else:
        canary_lower, canary_upper = p99_bounds(ours, part / 2)
        base_lower, base_upper = p99_bounds(theirs, part / 2)
        estimate = p99 / base - 1
        lower = canary_lower / base_upper - 1
        upper = canary_upper / base_lower - 1 if base_lower > 0 else math.inf
        relative, cleared = lower > tolerance, upper <= tolerance
        words += (
            f" vs baseline {_ms(base)} [{_ms(base_lower)}, {_ms(base_upper)}] ({theirs.total} requests): "
            f"{_pct(estimate, True)} [{_pct(lower, True)}, {_pct(upper, True)}], tolerance +{tolerance:.0%}"
        )
    breach = "relative" if relative else "absolute" if absolute else None
    return _check(
        "p99-latency",
        estimate=estimate,
        lower=lower,
        upper=_finite(upper),
        tolerance=tolerance,
        threshold=threshold,
        samples=samples,
        alpha=alpha,
        passed=breach is None,
        evaluated=True,
        detail=f"{words}; guardrail {_ms(threshold)}: {_outcome(breach, beyond, cleared, part)}",
        canary=p99,
        baseline=base,
        canary_lower=own_lower,
        canary_upper=_finite(own_upper),
        relative=base is not None,
        breach=breach,
        cleared=cleared,
    )


def _finite(value: float) -> float | None:
    """An unbounded side is ``None`` (JSON has no infinity)."""
    return None if math.isinf(value) else value


def _p99_points(
    canary: VariantStats,
    baseline: VariantStats,
    threshold: float,
    tolerance: float,
    alpha: float,
    minimum: int,
) -> CheckResult:
    """The p99 check from point values alone, outside the anytime-valid guarantee.

    A point p99 carries no bound, so this check fails only on both counts at once: beyond the
    guardrail and slower than the baseline beyond the tolerance. It is never ``cleared``, so a
    source without histograms never promotes early. (On SageMaker the endpoint's own p99 alarm
    watches the same numbers and rolls the deployment back by itself.)
    """
    p99, base = canary.latency_p99_ms, baseline.latency_p99_ms
    samples = {"canary": canary.invocations, "baseline": baseline.invocations}
    if p99 is None or canary.invocations < minimum:
        return _waiting(
            "p99-latency",
            f"{canary.invocations} canary requests < {minimum}",
            threshold,
            tolerance,
            samples,
            alpha,
        )
    breached = p99 > threshold and (base is None or p99 > (1 + tolerance) * base)
    return _check(
        "p99-latency",
        estimate=p99 if base is None else p99 / base - 1,
        lower=None,
        upper=None,
        tolerance=tolerance,
        threshold=threshold,
        samples=samples,
        alpha=alpha,
        passed=not breached,
        evaluated=True,
        detail=f"p99 {_ms(p99)} vs baseline {_ms(base)}, tolerance +{tolerance:.0%}, guardrail "
        f"{_ms(threshold)}: {'beyond both' if breached else 'no breach'} (point values: the source has no "
        "latency histogram, so this check is outside the anytime-valid guarantee)",
        canary=p99,
        baseline=base,
        relative=base is not None,
        breach="absolute" if breached else None,
    )


def prediction_drift(
    canary: VariantStats, baseline: VariantStats, guardrails: Guardrails, alpha: float, minimum: int
) -> CheckResult:
    """Jensen-Shannon distance (base 2) between the prediction histograms against ``max_prediction_drift``.

    The bounds come from each bin's share on each side (one exact sequence per bin and side, a
    union bound: α/20 each over ten bins). The gaps between the sides' bounds bound the
    total-variation distance TV and the triangular discrimination Δ = Σ (p − q)² / (p + q) from
    below, the box's corners from above, and for the JS divergence in bits

        TV² / (2 ln 2) ≤ JS ≤ TV  (Pinsker through the midpoint; Lin 1991),
        Δ / (4 ln 2) ≤ JS ≤ Δ / 2  (Topsøe 2000),

    so the distance, the divergence's square root, lies between the best of each side. Rolls back
    when the lower bound exceeds the guardrail; the check is relative by nature (the canary's
    predictions against the baseline's), so the guardrail is also its tolerance.
    """
    threshold = guardrails.max_prediction_drift
    ours, theirs = canary.prediction_histogram, baseline.prediction_histogram
    n, m = sum(ours), sum(theirs)
    samples = {"canary": n, "baseline": m}
    if n < minimum or m < minimum:
        why = f"{n} canary and {m} baseline predictions (need {minimum} each)"
        return _waiting("prediction-drift", why, threshold, threshold, samples, alpha)
    per_bin = alpha / (2 * len(ours))
    tv_low = tv_high = tri_low = tri_high = 0.0
    for x, y in zip(ours, theirs, strict=True):
        p, q = sequences.proportion(x, n, per_bin), sequences.proportion(y, m, per_bin)
        gap = max(0.0, p.lower - q.upper, q.lower - p.upper)
        tv_low += gap / 2
        tv_high += max(p.upper - q.lower, q.upper - p.lower) / 2
        if gap:
            tri_low += gap * gap / (p.upper + q.upper)
        tri_high += max(_triangular(a, b) for a in (p.lower, p.upper) for b in (q.lower, q.upper))
    ln2 = math.log(2)
    lower = math.sqrt(max(tv_low * tv_low / (2 * ln2), tri_low / (4 * ln2)))
    upper = math.sqrt(min(1.0, tv_high, tri_high / 2))
    distance = js_distance(ours, theirs)
    breached, cleared = lower > threshold, upper <= threshold
    outcome = (
        f"beyond it (α={alpha:.3g})"
        if breached
        else "no worse than allowed"
        if cleared
        else "no breach shown"
    )
    return _check(
        "prediction-drift",
        estimate=distance,
        lower=lower,
        upper=upper,
        tolerance=threshold,
        threshold=threshold,
        samples=samples,
        alpha=alpha,
        passed=not breached,
        evaluated=True,
        detail=f"JS distance {distance:.3f} [{lower:.3f}, {upper:.3f}] between the prediction histograms "
        f"({n} canary, {m} baseline predictions), guardrail {threshold:.3f}: {outcome}",
        canary=distance,
        canary_lower=lower,
        canary_upper=upper,
        relative=True,
        breach="relative" if breached else None,
        cleared=cleared,
    )


def _triangular(p: float, q: float) -> float:
    """One bin's term of the triangular discrimination, (p − q)² / (p + q); 0 where both are 0."""
    return (p - q) ** 2 / (p + q) if p + q > 0 else 0.0


def js_distance(p: tuple[int, ...], q: tuple[int, ...]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two non-empty count histograms."""
    n, m = sum(p), sum(q)
    divergence = 0.0
    for x, y in zip(p, q, strict=True):
        a, b = x / n, y / m
        mid = (a + b) / 2
        if a:
            divergence += a * math.log2(a / mid) / 2
        if b:
            divergence += b * math.log2(b / mid) / 2
    return math.sqrt(max(0.0, divergence))
