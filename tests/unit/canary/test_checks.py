"""Each check on its own: which part fails, what the baseline excuses, and what it waits for."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from infra.config import Guardrails
from pipelines.canary import CheckResult, checks
from pipelines.metrics import Agreement, VariantStats
from tests.unit.canary.fakes import variant

GUARDRAILS = Guardrails(
    max_5xx_rate=0.02, p99_latency_ms=150.0, min_live_accuracy=0.8, max_prediction_drift=0.1
)
ALPHA, MINIMUM, PLANNED = 0.0025, 100, 1000


def _errors(canary: VariantStats, baseline: VariantStats) -> CheckResult:
    return checks.error_rate(canary, baseline, GUARDRAILS, ALPHA, MINIMUM, planned=PLANNED)


def test_an_error_rate_worse_than_the_baseline_beyond_its_tolerance_fails_the_relative_part() -> None:
    """1.8% against 0.5%: below the 2% guardrail, but 1.3 points worse with a 0.5-point tolerance."""
    result = _errors(variant(20000, error_rate=0.018), variant(60000, error_rate=0.005, seed=1))
    assert (result.passed, result.breach, result.relative) == (False, "relative", True)
    assert result.estimate == pytest.approx(0.013)
    assert result.lower is not None and result.upper is not None and result.estimate is not None
    assert GUARDRAILS.error_rate_tolerance < result.lower < result.estimate < result.upper
    assert result.canary == pytest.approx(0.018) and result.baseline == pytest.approx(0.005)
    assert result.samples == {"canary": 20000, "baseline": 60000}
    assert result.alpha == ALPHA
    assert "worse than the baseline beyond the tolerance (α=0.00125)" in result.detail


def test_without_baseline_traffic_the_absolute_part_alone_decides() -> None:
    result = _errors(variant(2000, error_rate=0.06), VariantStats())
    assert (result.passed, result.breach, result.relative) == (False, "absolute", False)
    assert result.canary_lower is not None and result.canary_lower > GUARDRAILS.max_5xx_rate
    assert result.estimate == result.canary and result.lower == result.canary_lower
    assert "the guardrail alone decides" in result.detail


def test_a_canary_as_bad_as_a_struggling_baseline_is_not_blamed_for_it() -> None:
    """A shared incident: both fleets at 4%, twice the guardrail; the canary is no worse than the baseline."""
    result = _errors(variant(4000, error_rate=0.04), variant(12000, error_rate=0.04, seed=3))
    assert result.canary_lower is not None and result.canary_lower > GUARDRAILS.max_5xx_rate
    assert result.passed and result.breach is None
    assert "so is the baseline: not the canary's fault" in result.detail


def test_the_same_canary_beside_a_healthy_baseline_fails_both_ways() -> None:
    result = _errors(variant(4000, error_rate=0.04), variant(12000, error_rate=0.005, seed=3))
    assert result.breach == "relative", "the relative part is reported first"
    assert result.canary_lower is not None and result.canary_lower > GUARDRAILS.max_5xx_rate


def test_no_part_can_fail_below_the_minimum_sample() -> None:
    every_request_failed = _errors(variant(99, error_rate=1.0), variant(6000))
    assert every_request_failed.passed and not every_request_failed.evaluated
    assert every_request_failed.lower is None and every_request_failed.upper is None
    assert "99 canary requests < 100" in every_request_failed.detail
    assert not _errors(variant(100, error_rate=1.0), variant(6000)).passed


def test_a_twin_of_the_baseline_with_plenty_of_traffic_is_cleared() -> None:
    result = _errors(variant(40000, error_rate=0.005), variant(120000, error_rate=0.005, seed=2))
    assert result.passed and result.cleared
    assert result.upper is not None and result.upper <= GUARDRAILS.error_rate_tolerance


def test_a_doubled_latency_is_beyond_the_guardrail_with_its_bound() -> None:
    result = checks.p99_latency(
        variant(2000, latency_median_ms=100.0), variant(6000), GUARDRAILS, ALPHA, MINIMUM
    )
    assert (result.passed, result.breach) == (False, "absolute")
    assert result.canary_lower is not None and result.canary_lower >= GUARDRAILS.p99_latency_ms
    assert result.canary is not None and result.baseline is not None
    assert result.canary > result.canary_lower and result.baseline < GUARDRAILS.p99_latency_ms
    assert result.relative and result.estimate == pytest.approx(result.canary / result.baseline - 1)


def test_a_slower_canary_well_inside_a_loose_guardrail_fails_the_relative_part() -> None:
    loose = GUARDRAILS.model_copy(update={"p99_latency_ms": 5000.0})
    result = checks.p99_latency(variant(8000, latency_median_ms=100.0), variant(24000), loose, ALPHA, MINIMUM)
    assert (result.passed, result.breach) == (False, "relative")
    assert result.lower is not None and result.lower > loose.latency_tolerance
    assert "worse than the baseline beyond the tolerance" in result.detail


def test_without_a_latency_histogram_the_point_values_judge_outside_the_guarantee() -> None:
    """CloudWatch gives p99 point values only: no bounds, both conditions needed, never cleared."""
    canary = VariantStats(invocations=2000, errors_5xx=2, latency_p99_ms=400.0)
    baseline = VariantStats(invocations=6000, errors_5xx=6, latency_p99_ms=100.0)
    result = checks.p99_latency(canary, baseline, GUARDRAILS, ALPHA, MINIMUM)
    assert result.evaluated and not result.passed and not result.cleared
    assert (result.lower, result.upper) == (None, None)
    assert "outside the anytime-valid guarantee" in result.detail
    as_slow_as_the_baseline = dataclasses.replace(baseline, latency_p99_ms=380.0)
    assert checks.p99_latency(canary, as_slow_as_the_baseline, GUARDRAILS, ALPHA, MINIMUM).passed


def test_live_accuracy_waits_for_labels_and_names_what_a_regressor_counts() -> None:
    few_labels = dataclasses.replace(variant(2000, accuracy=0.5), labelled=99, correct=40)
    waiting = checks.live_accuracy(few_labels, variant(6000), GUARDRAILS, ALPHA, 100, planned=PLANNED)
    assert waiting.passed and not waiting.evaluated and "99 canary labels < 100" in waiting.detail
    worse = checks.live_accuracy(
        variant(3000, accuracy=0.7),
        variant(9000, seed=4),
        GUARDRAILS,
        ALPHA,
        100,
        planned=PLANNED,
        tolerance=60,
    )
    assert not worse.passed and worse.detail.startswith(f"share within ±60 {worse.canary:.2%} [")
    assert worse.upper is not None and worse.upper < -GUARDRAILS.accuracy_tolerance
    none = checks.live_accuracy(
        variant(3000, accuracy=0.1),
        variant(9000),
        GUARDRAILS.model_copy(update={"min_live_accuracy": None}),
        ALPHA,
        100,
        planned=PLANNED,
    )
    assert none.passed and not none.evaluated and "min_live_accuracy is null" in none.detail


def test_shifted_predictions_are_shown_beyond_the_drift_guardrail() -> None:
    result = checks.prediction_drift(
        variant(2000, positive_share=0.7), variant(6000), GUARDRAILS, ALPHA, MINIMUM
    )
    assert (result.passed, result.breach, result.alarm) == (False, "relative", "live-accuracy")
    assert result.lower is not None and result.upper is not None and result.estimate is not None
    assert GUARDRAILS.max_prediction_drift < result.lower <= result.estimate <= result.upper


def test_twin_predictions_are_never_shown_to_drift() -> None:
    result = checks.prediction_drift(variant(2000), variant(6000, seed=9), GUARDRAILS, ALPHA, MINIMUM)
    assert result.passed and result.lower == 0.0 and result.estimate == 0.0


def test_the_distance_inequalities_behind_the_drift_bounds_hold() -> None:
    """TV²/(2 ln 2) ≤ JS ≤ TV and Δ/(4 ln 2) ≤ JS ≤ Δ/2 (JS divergence in bits) on random histograms."""
    rng = np.random.default_rng(5)
    for _ in range(500):
        p, q = (tuple(int(c) for c in rng.integers(0, 50, 10) * (rng.random(10) < 0.7)) for _ in "pq")
        if not sum(p) or not sum(q):
            continue
        a, b = np.array(p) / sum(p), np.array(q) / sum(q)
        js = checks.js_distance(p, q) ** 2
        tv = np.abs(a - b).sum() / 2
        with np.errstate(invalid="ignore"):
            triangular = np.nansum((a - b) ** 2 / (a + b))
        assert tv**2 / (2 * math.log(2)) <= js + 1e-12 and js <= tv + 1e-12
        assert triangular / (4 * math.log(2)) <= js + 1e-12 and js <= triangular / 2 + 1e-12


def test_agreement_below_its_minimum_fails_once_its_upper_bound_is_below_it() -> None:
    low = checks.agreement(Agreement(paired=1000, agreed=700), 0.8, ALPHA, MINIMUM)
    assert (low.passed, low.breach, low.alarm, low.guardrail) == (
        False,
        "absolute",
        "live-accuracy",
        "min_agreement",
    )
    assert low.upper is not None and low.upper < 0.8
    assert low.samples == {"canary": 1000, "baseline": 1000}
    close = checks.agreement(Agreement(paired=200, agreed=150), 0.8, ALPHA, MINIMUM)
    assert close.passed and not close.cleared, "75% of 200 pairs does not show it below 80%"
    assert checks.agreement(Agreement(paired=5000, agreed=4750), 0.8, ALPHA, MINIMUM).cleared
    waiting = checks.agreement(Agreement(paired=99, agreed=0), 0.8, ALPHA, MINIMUM)
    assert waiting.passed and not waiting.evaluated
    unpaired = checks.agreement(None, 0.8, ALPHA, MINIMUM)
    assert not unpaired.evaluated and "does not pair" in unpaired.detail


def test_a_check_reports_every_field_in_json() -> None:
    payload = _errors(variant(2000), variant(6000)).to_json()
    assert set(payload) >= {
        "name", "guardrail", "alarm", "estimate", "lower", "upper", "tolerance", "threshold",
        "samples", "alpha", "passed", "evaluated", "detail", "canary",
    }  # fmt: skip
    unbounded = checks.p99_latency(variant(150), variant(6000), GUARDRAILS, ALPHA, MINIMUM).to_json()
    assert unbounded["canary_upper"] is None, "an unbounded side is null, never Infinity"
