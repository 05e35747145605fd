"""The canary benchmark's peers and its command: the old judge kept exactly, Kayenta's classifier, a tiny run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from benchmarks.peers.fixed_horizon import FixedHorizonAnalysis, FixedHorizonPolicy
from benchmarks.peers.kayenta import KayentaAnalysis, Metric, classify, hodges_lehmann
from infra.config import Guardrails
from pipelines.metrics import PREDICTION_BINS, CanaryWindow, LatencyHistogram, VariantStats


def variant(
    requests: int,
    *,
    error_rate: float = 0.005,
    median_ms: float = 60.0,
    accuracy: float = 0.85,
    positives: float = 0.3,
) -> VariantStats:
    """One interval with exact counts and lognormal latencies at evenly spaced quantiles (no randomness)."""
    errors = round(requests * error_rate)
    answered = requests - errors
    quantiles = (np.arange(answered) + 0.5) / answered
    latency = LatencyHistogram.of(median_ms * np.exp(0.4 * norm.ppf(quantiles)))
    predictions = [0] * PREDICTION_BINS
    predictions[1], predictions[8] = answered - round(answered * positives), round(answered * positives)
    return VariantStats.from_histogram(
        invocations=requests,
        errors_4xx=0,
        errors_5xx=errors,
        latency=latency,
        predictions=tuple(predictions),
        labelled=answered,
        correct=round(answered * accuracy),
    )


BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "canary_bench.py"
GUARDRAILS = Guardrails(
    max_5xx_rate=0.02, p99_latency_ms=200.0, min_live_accuracy=0.825, max_prediction_drift=0.1
)
CANARIES = {
    "healthy": [variant(1500)] * 3,
    "errors": [variant(1500, error_rate=0.04)],
    "small-errors": [variant(120, error_rate=0.025), variant(1500, error_rate=0.04)],
    "latency": [variant(1500), variant(1500, median_ms=130.0)],
    "accuracy": [variant(1500, accuracy=0.84), variant(1500, accuracy=0.78)],
    "drift": [variant(1500, positives=0.6)],
    "quiet": [variant(50, error_rate=0.2), variant(1500), variant(1500), variant(1500)],
}
OLD_JUDGE: dict[str, list[tuple[str, str | None, tuple[float | None, ...]]]] = {
    # What pipelines.canary decided on these windows before issue 15 (AnalysisPolicy(iterations=3)):
    # verdict, breached check, and the p-values of error rate, p99, accuracy and drift.
    "healthy": [
        ("continue", None, (0.416308, 0.219648, 0.497494, 0.979184)),
        ("continue", None, (0.382512, 0.137037, 0.496457, 0.970565)),
        ("promote", None, (0.357158, 0.0901979, 0.49566, 0.963953)),
    ],
    "errors": [("rollback", "error-rate", (1.77519e-24, 0.27888, 0.50247, 0.994866))],
    "small-errors": [
        ("continue", None, (0.00151959, 0.336523, 0.45503, 0.98577)),
        ("rollback", "error-rate", (8.80071e-37, 0.238652, 0.490969, 0.998408)),
    ],
    "latency": [
        ("continue", None, (0.416308, 0.219648, 0.497494, 0.979184)),
        ("rollback", "p99-latency", (0.382512, 9.66903e-266, 0.496457, 0.970565)),
    ],
    "accuracy": [
        ("continue", None, (0.416308, 0.219648, 0.173218, 0.979184)),
        ("rollback", "live-accuracy", (0.382512, 0.137037, 1.27229e-07, 0.970565)),
    ],
    "drift": [("rollback", "prediction-drift", (0.416308, 0.219648, 0.497494, 1.91407e-95))],
    "quiet": [
        ("continue", None, (7.062e-61, 0.682205, None, None)),
        ("continue", None, (0.000689781, 0.223699, 0.497432, 0.977934)),
        ("continue", None, (0.00736287, 0.136013, 0.496377, 0.969395)),
        ("promote", None, (0.0168929, 0.0886852, 0.495582, 0.962887)),
    ],
}


@pytest.mark.parametrize("case", sorted(CANARIES))
def test_the_fixed_horizon_peer_decides_as_the_old_judge_did(case: str) -> None:
    judge = FixedHorizonAnalysis(FixedHorizonPolicy(iterations=3), GUARDRAILS)
    decided = []
    for index, canary in enumerate(CANARIES[case]):
        window = CanaryWindow(
            start=60.0 * index, end=60.0 * (index + 1), baseline=variant(4500, median_ms=58.0), canary=canary
        )
        decision = judge.step(window)
        breached = decision.breached
        decided.append((decision.verdict, None if breached is None else breached.name))
        expected = OLD_JUDGE[case][index][2]
        assert [check.p_value for check in decision.checks] == [
            None if p is None else pytest.approx(p, rel=1e-5) for p in expected
        ]
    assert decided == [(verdict, breached) for verdict, breached, _ in OLD_JUDGE[case]]


LATENCY = Metric("latency", "increase")
ACCURACY = Metric("accuracy", "decrease")


def test_kayenta_flags_a_clear_shift_in_its_direction_only() -> None:
    rng = np.random.default_rng(7)
    baseline = rng.lognormal(np.log(60), 0.4, 3000)
    assert classify(baseline, baseline * 1.5, LATENCY) == "High"
    assert classify(baseline, baseline / 1.5, LATENCY) == "Pass"  # faster is not a failure
    accuracy = rng.normal(0.85, 0.02, 60)
    assert classify(accuracy, accuracy - 0.05, ACCURACY) == "Low"


def test_kayenta_passes_an_identical_sample_a_constant_one_and_says_when_there_is_no_data() -> None:
    sample = np.random.default_rng(8).lognormal(np.log(60), 0.4, 500)
    assert classify(sample, sample[::-1].copy(), LATENCY) == "Pass"
    assert classify(np.zeros(50), np.zeros(60), LATENCY) == "Pass"
    assert classify(sample, np.full(3, np.nan), LATENCY) == "Nodata"


def test_the_hodges_lehmann_estimate_is_the_median_pairwise_difference_at_either_size() -> None:
    rng = np.random.default_rng(9)
    small_x, small_y = rng.normal(5, 1, 40), rng.normal(3, 1, 30)
    assert hodges_lehmann(small_x, small_y) == pytest.approx(
        float(np.median(np.subtract.outer(small_x, small_y)))
    )
    big_x, big_y = rng.normal(5, 1, 2500), rng.normal(3, 1, 2000)
    exact = float(np.median(np.subtract.outer(big_x, big_y)))
    assert hodges_lehmann(big_x, big_y) == pytest.approx(exact, abs=1e-4)


def test_the_kayenta_stage_fails_at_the_first_interval_a_metric_is_classified_and_else_promotes() -> None:
    rng = np.random.default_rng(10)
    healthy, slow = KayentaAnalysis((LATENCY,), iterations=3), KayentaAnalysis((LATENCY,), iterations=3)
    verdicts = []
    for _ in range(3):
        baseline = rng.lognormal(np.log(60), 0.4, 1000)
        verdicts.append(healthy.step({"latency": (baseline, baseline[::-1].copy())}))
        slow.step({"latency": (baseline, baseline * 2)})
    assert verdicts == ["continue", "continue", "promote"]
    assert (slow.verdict, slow.interval, slow.breached, slow.scores) == ("rollback", 1, "latency", [0.0])


def _bench(*args: str) -> str:
    """The benchmark as a command, the way the README runs it."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--runs-scale", "0.003", "--workers", "1", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_the_benchmark_prints_all_three_judges_and_the_goals() -> None:
    out = _bench()
    for text in (
        "new:",
        "current:",
        "kayenta:",
        "A/A (false rollbacks)",
        "errors ×5 (clear)",
        "goal: false rollbacks",
    ):
        assert text in out
    report = json.loads(_bench("--json"))
    assert set(report["judges"]) == {"new", "current", "kayenta"}
    assert report["setup"]["aa_runs"] == 3 and report["setup"]["regression_runs"] == 1
    false_rollbacks = report["judges"]["current"]["false_rollbacks"]
    assert (
        false_rollbacks["runs"] == 3
        and 0.0 <= false_rollbacks["ci95"][0] <= false_rollbacks["ci95"][1] <= 1.0
    )
