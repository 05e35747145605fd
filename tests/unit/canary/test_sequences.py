"""The confidence sequences hold at every look at once; repeating a fixed-horizon interval does not.

Each coverage test streams simulated data, reads the sequence after every batch, and counts the
runs in which the true value ever left it. At α = 0.1 and a few hundred runs, a sequence that
only held at a fixed horizon would leave in far more than a tenth of them (the naive interval in
the first test does, on the very same streams).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.canary import sequences
from pipelines.canary.checks import p99_bounds
from pipelines.metrics import LatencyHistogram

ALPHA = 0.1
RUNS, LOOKS, BATCH = 200, 20, 100


def _bernoulli_totals(rng: np.random.Generator, p: float, batch: int = BATCH) -> np.ndarray:
    """Successes after each look of one run: the running totals the judge reads."""
    return np.cumsum(rng.binomial(batch, p, LOOKS))


@pytest.mark.parametrize("p", [0.01, 0.3])
def test_a_bernoulli_mean_leaves_its_sequence_in_at_most_alpha_of_the_runs_but_not_a_peeked_interval(
    p: float,
) -> None:
    rng = np.random.default_rng(7)
    z = 1.6449  # the fixed-horizon two-sided 90% interval, re-read after every batch
    left = naive_left = 0
    for _ in range(RUNS):
        totals = _bernoulli_totals(rng, p)
        trials = BATCH * np.arange(1, LOOKS + 1)
        bounds = [sequences.proportion(int(x), int(n), ALPHA) for x, n in zip(totals, trials, strict=True)]
        left += any(not b.lower <= p <= b.upper for b in bounds)
        wald = [
            (b.estimate, z * math.sqrt(max(b.estimate * (1 - b.estimate), 1e-12) / n))
            for b, n in zip(bounds, trials, strict=True)
        ]
        naive_left += any(abs(estimate - p) > half for estimate, half in wald)
    assert left / RUNS <= ALPHA
    assert naive_left / RUNS > 2 * ALPHA, "peeking at a fixed-horizon interval must show its inflated error"


def test_a_difference_at_the_tolerance_leaves_its_sequence_in_at_most_alpha_of_the_runs() -> None:
    """The asymptotic sequence of canary − baseline, with rare errors on a quarter of the traffic."""
    rng = np.random.default_rng(11)
    canary_rate, baseline_rate = 0.008, 0.003
    truth = canary_rate - baseline_rate
    left = 0
    for _ in range(RUNS):
        canary, baseline = (
            _bernoulli_totals(rng, canary_rate),
            _bernoulli_totals(rng, baseline_rate, 3 * BATCH),
        )
        for look in range(LOOKS):
            n = BATCH * (look + 1)
            bounds = sequences.difference((int(canary[look]), n), (int(baseline[look]), 3 * n), ALPHA, 2000)
            if not bounds.lower <= truth <= bounds.upper:
                left += 1
                break
    assert left / RUNS <= ALPHA


def test_the_p99_leaves_its_histogram_sequence_in_at_most_alpha_of_the_runs() -> None:
    rng = np.random.default_rng(13)
    median, sigma = 60.0, 0.4
    truth = median * math.exp(sigma * 2.3263479)  # the lognormal's 99th percentile
    left = 0
    for _ in range(RUNS):
        histogram = LatencyHistogram()
        for _look in range(LOOKS):
            histogram = histogram.merged(LatencyHistogram.of(rng.lognormal(math.log(median), sigma, 200)))
            lower, upper = p99_bounds(histogram, ALPHA)
            if not lower < truth <= upper:
                left += 1
                break
    assert left / RUNS <= ALPHA


def test_the_p99_bounds_close_in_on_it_as_requests_arrive() -> None:
    rng = np.random.default_rng(17)
    few = LatencyHistogram.of(rng.lognormal(math.log(60), 0.4, 300))
    many = few.merged(LatencyHistogram.of(rng.lognormal(math.log(60), 0.4, 30000)))
    (few_lower, few_upper), (many_lower, many_upper) = p99_bounds(few, 0.01), p99_bounds(many, 0.01)
    assert few_lower <= many_lower < 152 < many_upper <= few_upper
    assert (many_lower, many_upper) == (140, 160), "within one bucket of the true 152 ms on either side"
    fifty_at_20_ms = LatencyHistogram.of([20.0] * 50)
    assert p99_bounds(fifty_at_20_ms, 0.01) == (15, math.inf), (
        "every request above 15 ms shows the p99 above it; 50 requests cannot show 1% of them slower than anything"
    )


def test_the_boundary_is_tightest_near_its_planned_sample_and_wider_than_a_fixed_horizon_one() -> None:
    planned, alpha = 2000, 0.01
    at_plan = sequences.multiplier(planned, alpha, planned)
    assert sequences.multiplier(planned / 10, alpha, planned) > at_plan
    assert sequences.multiplier(planned * 10, alpha, planned) > at_plan
    assert at_plan > 2.576, "the price of looking at any time: wider than the 99% normal quantile"
    assert sequences.multiplier(planned * 100, alpha, planned) < 1.2 * at_plan, "it grows like √log t"


def test_a_rare_event_gets_an_upper_bound_from_zero_successes_and_a_lower_bound_of_zero() -> None:
    none_yet = sequences.proportion(0, 1000, 0.01)
    assert none_yet.lower == 0.0 and 0 < none_yet.upper < 0.01
    assert sequences.proportion(0, 10000, 0.01).upper < none_yet.upper / 5
    assert sequences.proportion(0, 0, 0.01) == sequences.Bounds(0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="between 0 and trials"):
        sequences.proportion(5, 3, 0.01)


def test_a_difference_without_data_on_one_side_is_unbounded() -> None:
    assert sequences.difference((3, 100), (0, 0), 0.01, 2000) == sequences.Bounds(0.03, -1.0, 1.0)


def test_the_plausible_counts_of_a_share_surround_its_expected_count() -> None:
    low, high = sequences.plausible_counts(10000, 0.99, 0.01)
    assert low < 9900 < high
    assert 9900 - low == pytest.approx(high - 9900, rel=0.25), "nearly symmetric with this many trials"
    assert sequences.plausible_counts(0, 0.99, 0.01) == (-math.inf, math.inf)
