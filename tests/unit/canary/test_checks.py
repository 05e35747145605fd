"""The live-accuracy check names what it counts: a classifier's accuracy, a regressor's share within ±tolerance."""

from __future__ import annotations

from infra.config import Guardrails
from pipelines.canary.checks import live_accuracy
from tests.unit.canary.fakes import variant

GUARDRAILS = Guardrails(min_live_accuracy=0.8)


def test_a_regression_canary_below_the_guardrail_fails_on_its_share_within_tolerance() -> None:
    canary, baseline = variant(accuracy=0.6, seed=1), variant(6000, accuracy=0.85, seed=2)
    result = live_accuracy(canary, baseline, GUARDRAILS, 0.05, 100, tolerance=60)
    assert not result.passed and result.evaluated
    assert result.canary == canary.accuracy
    assert result.detail == (
        f"share within ±60 {canary.accuracy:.2%} vs baseline {baseline.accuracy:.2%} "
        f"(labels {canary.labelled}/{baseline.labelled}), guardrail 80.00%: beyond the guardrail "
        f"and significant (p={result.p_value:.3g} < α=0.05)"
    )


def test_a_healthy_regression_canary_passes_and_a_classifier_still_reads_accuracy() -> None:
    canary, baseline = variant(accuracy=0.86, seed=1), variant(6000, accuracy=0.85, seed=2)
    regression = live_accuracy(canary, baseline, GUARDRAILS, 0.05, 100, tolerance=2.5)
    classification = live_accuracy(canary, baseline, GUARDRAILS, 0.05, 100)
    assert regression.passed and classification.passed
    assert regression.detail.startswith(f"share within ±2.5 {canary.accuracy:.2%} vs baseline")
    assert classification.detail.startswith(f"accuracy {canary.accuracy:.2%} vs baseline")
    assert regression.detail.removeprefix("share within ±2.5") == classification.detail.removeprefix(
        "accuracy"
    )
