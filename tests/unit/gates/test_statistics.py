"""The statistics equal scipy's (and sklearn's) on random data, ties and unequal sizes included."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from scipy.spatial import distance
from sklearn.metrics import roc_auc_score

from pipelines.gates import statistics
from pipelines.gates.leakage import grouped_roc_auc
from pipelines.gates.statistics import (
    PSI_EPSILON,
    categorical_shift,
    kstwo_sf,
    numeric_shift,
    psi,
    quantile_edges,
)

# scipy warns when its exact KS distribution gives up and it falls back to the asymptotic one;
# the p-value here follows scipy's choice either way.
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp:RuntimeWarning")

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# Few distinct values force ties, which is where CDF-based statistics usually go wrong.
tied = st.integers(min_value=-5, max_value=5).map(float)
samples = st.one_of(
    arrays(np.float64, st.integers(1, 300), elements=finite),
    arrays(np.float64, st.integers(1, 300), elements=tied),
)


@settings(max_examples=150, deadline=None)
@given(samples, samples)
def test_ks_and_wasserstein_equal_scipy(reference: np.ndarray, current: np.ndarray) -> None:
    shift = numeric_shift(np.sort(reference), np.sort(current))
    expected = stats.ks_2samp(reference, current)
    assert abs(shift.ks_statistic - expected.statistic) <= 1e-9
    assert abs(shift.ks_p_value - expected.pvalue) <= 1e-9
    assert np.isclose(shift.wasserstein, stats.wasserstein_distance(reference, current), rtol=1e-9, atol=1e-9)


@settings(max_examples=6, deadline=None)
@given(st.integers(10_001, 20_000), st.integers(5_000, 20_000), st.integers(0, 2**32 - 1), st.booleans())
def test_ks_p_value_equals_scipy_in_its_asymptotic_regime(
    n_ref: int, n_cur: int, seed: int, shifted: bool
) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=n_ref)
    current = rng.normal(0.05 if shifted else 0.0, 1.0, size=n_cur)
    shift = numeric_shift(np.sort(reference), np.sort(current))
    expected = stats.ks_2samp(reference, current)
    assert abs(shift.ks_statistic - expected.statistic) <= 1e-9
    assert abs(shift.ks_p_value - expected.pvalue) <= 1e-9


def test_the_sweep_spans_several_chunks_and_still_equals_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistics, "SWEEP_CHUNK", 1000)  # runs of ties straddle the chunk borders
    rng = np.random.default_rng(7)
    reference = np.round(rng.normal(size=40_000), 2)
    current = np.round(rng.normal(0.01, 1.0, size=30_000), 2)
    shift = numeric_shift(np.sort(reference), np.sort(current))
    assert abs(shift.ks_statistic - stats.ks_2samp(reference, current).statistic) <= 1e-9
    assert np.isclose(shift.wasserstein, stats.wasserstein_distance(reference, current), rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(samples, samples)
def test_wasserstein_is_normalised_by_the_reference_std(reference: np.ndarray, current: np.ndarray) -> None:
    shift = numeric_shift(np.sort(reference), np.sort(current))
    std = np.std(reference)
    expected = shift.wasserstein / std if std > 0 else shift.wasserstein
    assert np.isclose(shift.wasserstein_normed, expected, rtol=1e-12, atol=0)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.integers(2, 500), elements=finite), st.integers(2, 20))
def test_quantile_edges_equal_numpy_quantiles(values: np.ndarray, bins: int) -> None:
    expected = np.unique(np.quantile(values, np.arange(1, bins) / bins))
    assert np.allclose(quantile_edges(np.sort(values), bins), expected, rtol=1e-12, atol=1e-9)


counts = st.lists(st.integers(0, 1000), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_chi_square_jensen_shannon_and_psi_equal_their_definitions(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 30))
    reference = np.array(data.draw(st.lists(st.integers(0, 1000), min_size=size, max_size=size)))
    current = np.array(data.draw(st.lists(st.integers(0, 1000), min_size=size, max_size=size)))
    if reference.sum() == 0 or current.sum() == 0:
        return
    shift = categorical_shift(reference, current)
    present = (reference + current) > 0
    ref, cur = reference[present], current[present]
    if ref.size >= 2:
        expected = stats.chi2_contingency(np.vstack([ref, cur]))
        assert abs(shift.chi2_statistic - expected.statistic) <= 1e-9 * max(1.0, expected.statistic)
        assert abs(shift.chi2_p_value - expected.pvalue) <= 1e-9
    p, q = ref / ref.sum(), cur / cur.sum()
    assert abs(shift.jensenshannon - distance.jensenshannon(p, q, base=2)) <= 1e-9
    p_floor, q_floor = np.maximum(p, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
    assert abs(shift.psi - float(np.sum((q_floor - p_floor) * np.log(q_floor / p_floor)))) <= 1e-9


def test_psi_of_identical_shares_is_zero_and_grows_with_the_shift() -> None:
    shares = np.array([0.25, 0.25, 0.5])
    assert psi(shares, shares) == 0.0
    assert psi(shares, np.array([0.3, 0.3, 0.4])) < psi(shares, np.array([0.5, 0.3, 0.2]))


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.float64, st.integers(2, 300), elements=st.one_of(tied, finite)),
    st.integers(0, 2**32 - 1),
)
def test_grouped_roc_auc_equals_sklearn(scores: np.ndarray, seed: int) -> None:
    labels = np.random.default_rng(seed).integers(0, 2, scores.size)
    if labels.min() == labels.max():
        return
    frame = pl.DataFrame({"x": scores, "y": labels})
    groups = frame.group_by("x").agg(pl.col("y").sum().alias("pos"), pl.len().alias("n"))
    auc = grouped_roc_auc(groups.select(pl.col("x").alias("score"), "pos", "n"))
    assert abs(auc - roc_auc_score(labels, scores)) <= 1e-9


@settings(max_examples=40, deadline=None)
@given(st.integers(141, 20_000), st.floats(2.2, 300.0))
def test_the_vectorised_smirnov_tail_equals_scipys_kstwo(n: int, spread: float) -> None:
    statistic = (spread / n) ** 0.5
    if not (statistic < 0.5 and 1.0 < n * statistic < n - 1):
        return
    assert abs(kstwo_sf(statistic, n) - stats.kstwo.sf(statistic, n)) <= 1e-12
