"""The judge stepped one interval at a time: its verdicts, what each decision carries, its error rates."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.config import Guardrails
from pipelines.canary import AnalysisPolicy, CanaryAnalysis, Phase, Verdict
from pipelines.metrics import Agreement, VariantStats
from tests.unit.canary.fakes import Fleet, simulated_bake, variant, window

GUARDRAILS = Guardrails(
    max_5xx_rate=0.02, p99_latency_ms=150.0, min_live_accuracy=0.8, max_prediction_drift=0.1
)
POLICY = AnalysisPolicy(interval_seconds=60, iterations=3, min_requests=100)
BAKE_GUARDRAILS = Guardrails(
    max_5xx_rate=0.02, p99_latency_ms=200.0, min_live_accuracy=0.825, max_prediction_drift=0.1
)
"""As ``benchmarks/canary_bench.py`` sets them for its simulated traffic."""


def analysis(policy: AnalysisPolicy = POLICY, guardrails: Guardrails = GUARDRAILS) -> CanaryAnalysis:
    return CanaryAnalysis(policy, guardrails)


def _bake(policy: AnalysisPolicy, seed: int, canary: Fleet | None = None, intervals: int = 5) -> Any:
    judge = CanaryAnalysis(policy, BAKE_GUARDRAILS)
    for each in simulated_bake(seed, canary, intervals=intervals):
        decision = judge.step(each)
        if decision.phase.finished:
            return decision
    return decision


def test_a_healthy_canary_is_promoted_when_its_bake_ends() -> None:
    canary = analysis()
    assert canary.phase is Phase.INITIALIZED
    decisions = [canary.step(window(variant(2000, seed=i), index=i)) for i in range(3)]
    assert [d.verdict for d in decisions] == [Verdict.CONTINUE, Verdict.CONTINUE, Verdict.PROMOTE]
    assert [d.phase for d in decisions] == [Phase.PROGRESSING, Phase.PROGRESSING, Phase.SUCCEEDED]
    assert decisions[0].reason == "interval 1: no breach shown (1/3)"
    assert decisions[-1].iterations == 3 and "the bake ended" in decisions[-1].reason
    assert all(check.passed for check in decisions[-1].checks)


@pytest.mark.parametrize(
    ("knobs", "check", "alarm", "guardrail"),
    [
        ({"error_rate": 0.055}, "error-rate", "5xx-rate", "max_5xx_rate"),
        ({"latency_median_ms": 100.0}, "p99-latency", "p99-latency", "p99_latency_ms"),
        ({"accuracy": 0.72}, "live-accuracy", "live-accuracy", "min_live_accuracy"),
        ({"positive_share": 0.7}, "prediction-drift", "live-accuracy", "max_prediction_drift"),
    ],
)
def test_a_clear_regression_rolls_back_at_once_naming_its_guardrail_and_alarm(
    knobs: dict[str, Any], check: str, alarm: str, guardrail: str
) -> None:
    decision = analysis().step(window(variant(2000, **knobs)))
    assert (decision.verdict, decision.phase) == (Verdict.ROLLBACK, Phase.FAILED)
    assert decision.breached is not None and decision.breached.name == check
    assert decision.alarm == alarm
    breach = decision.breached.breach
    assert decision.reason.startswith(f"interval 1: {guardrail} breached ({check}, {breach} part): ")


def test_a_quiet_interval_pauses_does_not_count_and_is_never_a_failure() -> None:
    canary = analysis()
    quiet = canary.step(window(variant(50, error_rate=0.4)))
    assert (quiet.verdict, quiet.phase, quiet.iterations) == (Verdict.PAUSE, Phase.PROGRESSING, 0)
    assert "50 canary requests < 100" in quiet.reason and "does not count" in quiet.reason
    assert all(check.passed for check in quiet.checks), "50 requests cannot show a breach"
    assert canary.step(window(None, index=1)).verdict is Verdict.PAUSE
    counted = [canary.step(window(variant(2000, seed=i), index=i)) for i in range(2, 5)]
    assert [d.iterations for d in counted] == [1, 2, 3]
    assert counted[-1].verdict is Verdict.PROMOTE and "2 paused" in counted[-1].reason


def test_a_quiet_interval_after_enough_evidence_can_still_roll_back() -> None:
    """The sequences are valid at every look, so the evidence so far decides even when this interval is quiet."""
    canary = analysis(dataclasses.replace(POLICY, min_requests=500))
    first = canary.step(window(variant(450, error_rate=0.1)))
    assert first.verdict is Verdict.PAUSE, "450 requests are below the minimum sample"
    second = canary.step(window(variant(400, error_rate=0.1, seed=1), index=1))
    assert second.verdict is Verdict.ROLLBACK and second.breached is not None
    assert second.breached.samples["canary"] == 850


def test_no_rollback_before_the_minimum_sample_however_bad() -> None:
    canary = analysis(dataclasses.replace(POLICY, min_requests=300))
    assert canary.step(window(variant(299, error_rate=1.0))).verdict is Verdict.PAUSE
    assert canary.step(window(variant(1, error_rate=1.0), index=1)).verdict is Verdict.ROLLBACK


def test_every_decision_carries_each_checks_estimate_bounds_tolerance_samples_and_alpha() -> None:
    decision = analysis().step(window(variant(2000)))
    payload = decision.to_json()
    assert set(payload) >= {
        "verdict", "phase", "interval", "iterations", "reason", "breached", "alarm", "checks", "window"
    }  # fmt: skip
    checks = payload["checks"]
    assert isinstance(checks, list)
    assert [c["name"] for c in checks] == ["error-rate", "p99-latency", "live-accuracy", "prediction-drift"]
    for check in decision.checks:
        assert check.evaluated and check.estimate is not None, check
        assert check.lower is not None and check.upper is not None
        assert check.lower <= check.estimate <= check.upper, check
        assert check.tolerance is not None and check.threshold is not None
        assert check.samples["canary"] > 0 and check.samples["baseline"] > 0
        assert any(ch.isdigit() for ch in check.detail)
    assert sum(check.alpha for check in decision.checks) == pytest.approx(POLICY.alpha), "Bonferroni"


def test_without_an_accuracy_guardrail_the_budget_is_split_three_ways() -> None:
    guardrails = GUARDRAILS.model_copy(update={"min_live_accuracy": None})
    decision = analysis(guardrails=guardrails).step(window(variant(2000, accuracy=0.1)))
    accuracy = next(check for check in decision.checks if check.name == "live-accuracy")
    assert accuracy.passed and not accuracy.evaluated and accuracy.alpha == 0
    assert [c.alpha for c in decision.checks if c.name != "live-accuracy"] == pytest.approx(
        [POLICY.alpha / 3] * 3
    )
    assert decision.verdict is Verdict.CONTINUE


def test_a_finished_analysis_repeats_its_verdict() -> None:
    canary = analysis()
    final = canary.step(window(variant(2000, error_rate=0.1)))
    assert canary.step(window(variant(2000))) is final
    assert canary.interval == 1


def test_early_promotion_needs_the_policy_and_every_check_cleared() -> None:
    """Plenty of traffic from a twin of the baseline: every bound closes within the tolerances."""
    big = [window(variant(40000, seed=i), variant(120000, seed=100 + i), index=i) for i in range(3)]
    early = analysis(dataclasses.replace(POLICY, iterations=10, early_promotion=True))
    decision = early.step(big[0])
    assert decision.verdict is Verdict.PROMOTE and decision.iterations == 1
    assert "promote early" in decision.reason and all(check.cleared for check in decision.checks)
    patient = analysis(dataclasses.replace(POLICY, iterations=10))
    assert [patient.step(each).verdict for each in big] == [Verdict.CONTINUE] * 3


def test_early_promotion_waits_for_the_labels_it_expects() -> None:
    no_labels = [
        window(variant(40000, accuracy=None), variant(120000, seed=100 + i), index=i) for i in range(2)
    ]
    early = analysis(dataclasses.replace(POLICY, iterations=10, early_promotion=True))
    decision = early.step(no_labels[0])
    accuracy = next(check for check in decision.checks if check.name == "live-accuracy")
    assert not accuracy.evaluated and decision.verdict is Verdict.CONTINUE


def test_a_shadow_is_judged_on_agreement_instead_of_live_accuracy() -> None:
    policy = dataclasses.replace(POLICY, min_agreement=0.8)
    shadow = CanaryAnalysis(policy, GUARDRAILS, mode="shadow")
    disagreeing = shadow.step(window(variant(2000), agreement=Agreement(paired=2000, agreed=1400)))
    assert [c.name for c in disagreeing.checks] == [
        "error-rate",
        "p99-latency",
        "prediction-drift",
        "agreement",
    ]
    assert disagreeing.verdict is Verdict.ROLLBACK
    assert disagreeing.breached is not None and disagreeing.breached.name == "agreement"
    assert disagreeing.alarm == "live-accuracy"
    agreeing = CanaryAnalysis(policy, GUARDRAILS, mode="shadow")
    verdicts = [
        agreeing.step(window(variant(2000, seed=i), index=i, agreement=Agreement(2000, 1900))).verdict
        for i in range(3)
    ]
    assert verdicts == [Verdict.CONTINUE, Verdict.CONTINUE, Verdict.PROMOTE]
    last = agreeing.decisions[-1].checks[-1]
    assert last.samples == {"canary": 6000, "baseline": 6000}, "agreement accumulates across intervals"
    with pytest.raises(ValueError, match="mode = 'blue'"):
        CanaryAnalysis(policy, GUARDRAILS, mode="blue")  # type: ignore[arg-type]


def test_a_regression_canary_judges_the_share_within_its_tolerance() -> None:
    decision = CanaryAnalysis(POLICY, GUARDRAILS, tolerance=60.0).step(window(variant(2000)))
    [live] = [check for check in decision.checks if check.name == "live-accuracy"]
    assert live.detail.startswith("share within ±60 ")


def test_aa_runs_with_shared_incidents_roll_back_at_most_alpha_of_the_time() -> None:
    """200 simulated A/A bakes of 5 intervals each, at α = 5% so that the bound has teeth at this size."""
    policy = AnalysisPolicy(iterations=5, alpha=0.05)
    outcomes = [_bake(policy, seed).verdict for seed in range(200)]
    assert outcomes.count(Verdict.ROLLBACK) / len(outcomes) <= policy.alpha
    assert outcomes.count(Verdict.PROMOTE) >= 0.95 * len(outcomes)


@pytest.mark.parametrize(
    ("regression", "check"),
    [
        (Fleet(error_rate=0.025), "error-rate"),
        (Fleet(latency_median_ms=120.0), "p99-latency"),
        (Fleet(accuracy=0.8), "live-accuracy"),
    ],
    ids=["errors x5", "latency x2", "accuracy -5 pts"],
)
def test_the_clear_regressions_of_the_benchmark_are_caught_within_the_bake(
    regression: Fleet, check: str
) -> None:
    policy = AnalysisPolicy(iterations=10, alpha=0.01)
    decisions = [_bake(policy, seed, regression, intervals=10) for seed in range(40)]
    caught = [d for d in decisions if d.verdict is Verdict.ROLLBACK and d.breached.name == check]
    assert len(caught) >= 0.9 * len(decisions)
    assert sorted(d.interval for d in caught)[len(caught) // 2] <= 3, "median detection within 3 intervals"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval_seconds", 0),
        ("iterations", 0),
        ("min_requests", 0),
        ("min_labels", 0),
        ("alpha", 0.7),
        ("min_agreement", 1.5),
    ],
)
def test_a_policy_names_its_bad_knob(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field} = {value}"):
        overrides: dict[str, Any] = {field: value}
        dataclasses.replace(POLICY, **overrides)


def test_a_policy_survives_the_journal_round_trip_and_has_no_failure_threshold() -> None:
    policy = AnalysisPolicy(
        iterations=7, min_requests=50, alpha=0.02, early_promotion=True, min_agreement=0.9
    )
    assert AnalysisPolicy(**dataclasses.asdict(policy)) == policy
    assert AnalysisPolicy(**dataclasses.asdict(AnalysisPolicy())) == AnalysisPolicy()
    with pytest.raises(TypeError, match="failure_threshold"):
        AnalysisPolicy(failure_threshold=1)  # type: ignore[call-arg]


def test_a_policy_for_a_bake_time_counts_its_intervals() -> None:
    assert AnalysisPolicy.for_bake(600, interval_seconds=60).iterations == 10
    assert AnalysisPolicy.for_bake(20, interval_seconds=60).iterations == 1


def test_an_empty_baseline_leaves_the_guardrails_alone_to_decide() -> None:
    decision = analysis().step(window(variant(2000, error_rate=0.06), baseline=VariantStats()))
    assert decision.verdict is Verdict.ROLLBACK
    assert decision.breached is not None and decision.breached.breach == "absolute"
    assert "the guardrail alone decides" in decision.breached.detail
