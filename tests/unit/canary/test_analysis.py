"""The canary analysis, stepped one interval at a time against fake windows."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.config import Guardrails
from pipelines.canary import AnalysisPolicy, CanaryAnalysis, Phase, Verdict
from pipelines.metrics import VariantStats
from tests.unit.canary.fakes import variant, window

GUARDRAILS = Guardrails(
    max_5xx_rate=0.02, p99_latency_ms=150.0, min_live_accuracy=0.8, max_prediction_drift=0.1
)
POLICY = AnalysisPolicy(interval_seconds=60, iterations=3, failure_threshold=1, min_requests=100)


def analysis(policy: AnalysisPolicy = POLICY, guardrails: Guardrails = GUARDRAILS) -> CanaryAnalysis:
    return CanaryAnalysis(policy, guardrails)


def test_a_healthy_canary_is_promoted_after_the_required_passing_intervals() -> None:
    canary = analysis()
    assert canary.phase.value == "initialized"
    verdicts = [canary.step(window(variant(2000, seed=i), index=i)).verdict for i in range(3)]
    assert verdicts == [Verdict.CONTINUE, Verdict.CONTINUE, Verdict.PROMOTE]
    assert canary.phase is Phase.SUCCEEDED
    assert canary.decisions[-1].iterations == 3
    assert all(check.passed for check in canary.decisions[-1].checks)


def test_the_phase_is_progressing_between_the_first_interval_and_a_verdict() -> None:
    canary = analysis()
    decision = canary.step(window(variant(2000)))
    assert decision.phase is Phase.PROGRESSING
    assert decision.reason == "interval 1: every check passed (1/3)"


def test_five_more_points_of_errors_roll_back_on_the_error_rate_guardrail() -> None:
    decision = analysis().step(window(variant(2000, error_rate=0.055)))
    assert decision.verdict is Verdict.ROLLBACK
    assert decision.phase is Phase.FAILED
    assert decision.breached is not None and decision.breached.name == "error-rate"
    assert decision.alarm == "5xx-rate"
    assert decision.breached.canary == pytest.approx(0.055)
    assert decision.breached.baseline == pytest.approx(0.005)
    assert decision.breached.threshold == 0.02
    assert "5.50%" in decision.reason and "0.50%" in decision.reason and "2.00%" in decision.reason


def test_a_doubled_latency_rolls_back_on_the_p99_guardrail() -> None:
    decision = analysis().step(window(variant(2000, latency_median_ms=100.0)))
    assert decision.verdict is Verdict.ROLLBACK
    breached = decision.breached
    assert breached is not None and breached.name == "p99-latency" and decision.alarm == "p99-latency"
    assert breached.canary is not None and breached.baseline is not None
    assert breached.canary > 150.0 > breached.baseline
    assert breached.p_value is not None and breached.p_value < POLICY.alpha


def test_five_points_less_accuracy_rolls_back_on_the_live_accuracy_guardrail() -> None:
    baseline = variant(6000, accuracy=0.84, seed=7)
    decision = analysis().step(window(variant(3000, accuracy=0.79), baseline))
    assert decision.verdict is Verdict.ROLLBACK
    assert decision.breached is not None and decision.breached.name == "live-accuracy"
    assert decision.breached.canary == pytest.approx(0.79, abs=0.001)
    assert decision.alarm == "live-accuracy"


def test_shifted_predictions_roll_back_on_drift_through_the_quality_alarm() -> None:
    decision = analysis().step(window(variant(2000, positive_share=0.7)))
    assert decision.verdict is Verdict.ROLLBACK
    breached = decision.breached
    assert breached is not None and breached.name == "prediction-drift"
    assert breached.alarm == "live-accuracy"
    assert breached.canary is not None and breached.canary > 0.1


def test_a_canary_as_bad_as_its_baseline_is_not_blamed_for_it() -> None:
    """Both fleets beyond the error guardrail (a shared incident): not significant, so no rollback."""
    baseline = variant(6000, error_rate=0.04, seed=3)
    decision = analysis().step(window(variant(2000, error_rate=0.04), baseline))
    error_check = decision.checks[0]
    assert error_check.canary is not None and error_check.canary > GUARDRAILS.max_5xx_rate
    assert error_check.passed
    assert "not significant" in error_check.detail
    assert decision.verdict is Verdict.CONTINUE


def test_a_quiet_interval_neither_passes_nor_fails() -> None:
    canary = analysis()
    decision = canary.step(window(variant(50, error_rate=0.2)))
    assert decision.verdict is Verdict.CONTINUE
    assert (decision.iterations, decision.failed_checks) == (0, 0)
    assert "waiting for traffic" in decision.reason


def test_without_canary_traffic_the_analysis_waits() -> None:
    decision = analysis().step(window(None))
    assert decision.verdict is Verdict.CONTINUE
    assert "0 canary requests" in decision.reason


def test_the_failure_threshold_counts_failing_intervals() -> None:
    canary = analysis(dataclasses.replace(POLICY, failure_threshold=2))
    first = canary.step(window(variant(2000, error_rate=0.1), index=0))
    assert (first.verdict, first.failed_checks) == (Verdict.CONTINUE, 1)
    second = canary.step(window(variant(2000, error_rate=0.1, seed=1), index=1))
    assert (second.verdict, second.failed_checks) == (Verdict.ROLLBACK, 2)


def test_a_finished_analysis_repeats_its_verdict() -> None:
    canary = analysis()
    final = canary.step(window(variant(2000, error_rate=0.1)))
    again = canary.step(window(variant(2000)))
    assert again is final
    assert canary.interval == 1


def test_accuracy_waits_for_enough_labels() -> None:
    few_labels = dataclasses.replace(variant(2000, accuracy=0.5), labelled=20, correct=10)
    decision = analysis().step(window(few_labels))
    accuracy = next(check for check in decision.checks if check.name == "live-accuracy")
    assert accuracy.passed and not accuracy.evaluated
    assert "20 canary labels < 100" in accuracy.detail


def test_no_accuracy_guardrail_skips_the_accuracy_check() -> None:
    guardrails = GUARDRAILS.model_copy(update={"min_live_accuracy": None})
    decision = analysis(guardrails=guardrails).step(window(variant(2000, accuracy=0.1)))
    accuracy = next(check for check in decision.checks if check.name == "live-accuracy")
    assert accuracy.passed and not accuracy.evaluated
    assert decision.verdict is Verdict.CONTINUE


def test_without_a_baseline_the_canary_is_tested_against_the_guardrail_itself() -> None:
    decision = analysis().step(window(variant(2000, error_rate=0.06), baseline=VariantStats()))
    assert decision.verdict is Verdict.ROLLBACK
    assert decision.breached is not None
    assert "tested against the guardrail itself" in decision.breached.detail


def test_evidence_accumulates_across_intervals() -> None:
    """A regression too small to be significant in one interval becomes significant over two."""
    policy = dataclasses.replace(POLICY, iterations=5)
    canary = analysis(policy)
    first = canary.step(
        window(variant(300, error_rate=0.03), baseline=variant(900, error_rate=0.012, seed=5))
    )
    assert first.verdict is Verdict.CONTINUE
    assert first.checks[0].passed, "one interval of 300 requests is not enough evidence"
    decisions = [first]
    for i in range(1, 5):
        decisions.append(
            canary.step(
                window(
                    variant(300, seed=i, error_rate=0.03), baseline=variant(900, error_rate=0.012, seed=5 + i)
                )
            )
        )
        if decisions[-1].verdict is not Verdict.CONTINUE:
            break
    assert decisions[-1].verdict is Verdict.ROLLBACK
    p_values = [d.checks[0].p_value for d in decisions]
    assert p_values[0] is not None and p_values[-1] is not None and p_values[-1] < p_values[0]


def test_every_check_is_explained_with_its_numbers() -> None:
    decision = analysis().step(window(variant(2000)))
    payload = decision.to_json()
    checks = payload["checks"]
    assert isinstance(checks, list) and [c["name"] for c in checks] == [
        "error-rate",
        "p99-latency",
        "live-accuracy",
        "prediction-drift",
    ]
    for check in checks:
        assert set(check) >= {"name", "guardrail", "canary", "baseline", "threshold", "passed", "detail"}
        assert check["canary"] is not None and check["threshold"] is not None
        assert any(ch.isdigit() for ch in check["detail"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval_seconds", 0),
        ("iterations", 0),
        ("failure_threshold", 0),
        ("min_requests", 0),
        ("alpha", 0.7),
    ],
)
def test_a_policy_names_its_bad_knob(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field} = {value}"):
        overrides: dict[str, Any] = {field: value}
        dataclasses.replace(POLICY, **overrides)


def test_a_policy_for_a_bake_time_counts_its_intervals() -> None:
    assert AnalysisPolicy.for_bake(600, interval_seconds=60).iterations == 10
    assert AnalysisPolicy.for_bake(20, interval_seconds=60).iterations == 1


def test_a_regression_canary_judges_the_share_within_its_tolerance() -> None:
    canary = CanaryAnalysis(POLICY, GUARDRAILS, tolerance=60.0)
    decision = canary.step(window(variant(2000)))
    [live] = [check for check in decision.checks if check.name == "live-accuracy"]
    assert "share within ±60" in live.detail
    [plain] = [c for c in analysis().step(window(variant(2000))).checks if c.name == "live-accuracy"]
    assert "within ±" not in plain.detail
