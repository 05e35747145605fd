"""Distribution-shift statistics, computed from sorted samples and category counts.

Numeric columns are sorted once per sample; the two sorted samples are merged (a linear merge of
two sorted runs), and the Kolmogorov–Smirnov statistic, the Wasserstein distance and the PSI bin
counts all come from that merge and from binary searches in the sorted reference. The results
equal ``scipy.stats.ks_2samp``, ``scipy.stats.wasserstein_distance``,
``scipy.stats.chi2_contingency`` and ``scipy.spatial.distance.jensenshannon`` (base 2); the
property tests in ``tests/unit/gates`` hold them to that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PSI_EPSILON = 1e-4
"""Floor for a bin's share in PSI, so an empty bin gives a large but finite term.

Without it one empty bin makes PSI infinite. 1e-4 is the value evidently and most PSI write-ups
use: an empty bin against a 10% bin then contributes about 0.45, enough to fail the default 0.2.
"""

PSI_BINS = 10
"""Reference-quantile bins for numeric PSI (deciles)."""

SCIPY_EXACT_KS_MAX_N = 10_000
"""``ks_2samp(method="auto")`` uses the exact distribution up to this sample size, then Smirnov's
asymptotic one; the p-value here follows the same switch so that it equals scipy's."""

SWEEP_CHUNK = 1 << 20
"""Merged values processed per step when sweeping the two CDFs (bounds the temporaries)."""

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NumericShift:
    """Shift statistics of one numeric column, reference versus current."""

    ks_statistic: float
    ks_p_value: float
    wasserstein: float
    """Wasserstein-1 distance in the column's own units."""
    wasserstein_normed: float
    """``wasserstein`` divided by the reference's standard deviation (population, ddof=0);
    equal to ``wasserstein`` when the reference is constant."""
    psi: float


def numeric_shift(
    reference_sorted: FloatArray, current_sorted: FloatArray, bins: int = PSI_BINS
) -> NumericShift:
    """KS, Wasserstein and PSI of two non-empty sorted samples, from one merge."""
    n_ref = reference_sorted.shape[0]
    n_cur = current_sorted.shape[0]
    if n_ref == 0 or n_cur == 0:
        raise ValueError("numeric_shift needs two non-empty samples")
    ks, wasserstein = _cdf_gap_sweep(reference_sorted, current_sorted)
    std = float(np.std(reference_sorted))
    return NumericShift(
        ks_statistic=ks,
        ks_p_value=ks_p_value(ks, n_ref, n_cur, reference_sorted, current_sorted),
        wasserstein=wasserstein,
        wasserstein_normed=wasserstein / std if std > 0 else wasserstein,
        psi=psi(*quantile_bin_shares(reference_sorted, current_sorted, bins)),
    )


def _cdf_gap_sweep(reference_sorted: FloatArray, current_sorted: FloatArray) -> tuple[float, float]:
    """KS statistic and Wasserstein distance from one merge of the two sorted samples.

    The stable sort of the concatenation is a linear merge of two sorted runs (timsort). At the
    k-th merged value, after r reference values, the gap between the empirical CDFs is
    ``|r/n_ref − (k−r)/n_cur| = |r·(n_ref+n_cur) − k·n_ref| / (n_ref·n_cur)``; the numerator is
    an integer, computed exactly in int64, so the sweep divides once at the end. Inside a run of
    equal values the step to the next value is 0, so only a run's last element (where the gap is
    the right-continuous CDF gap at that value) counts: that is what KS (the largest gap) and
    Wasserstein (the gap integrated over the steps) both use. Chunks keep the temporaries small.

    The integral is a numpy sum of products rather than ``np.dot``: BLAS would split a long dot
    product over its own threads, which spin on the cores the column workers need, and would
    make the last digits depend on the BLAS thread count.
    """
    n_ref = reference_sorted.shape[0]
    n_cur = current_sorted.shape[0]
    total = n_ref + n_cur
    both = np.concatenate([reference_sorted, current_sorted])
    order = np.argsort(both, kind="stable")
    refs_so_far = np.cumsum(order < n_ref, dtype=np.int64)
    merged = both[order]
    del order, both
    largest_gap = 0.0
    area = 0.0
    for start in range(0, total - 1, SWEEP_CHUNK):
        stop = min(start + SWEEP_CHUNK, total - 1)
        numerators = refs_so_far[start:stop] * total
        numerators -= np.arange(start + 1, stop + 1, dtype=np.int64) * n_ref
        np.abs(numerators, out=numerators)
        gaps = numerators.astype(np.float64)
        steps = np.diff(merged[start : stop + 1])
        largest_gap = max(largest_gap, float(np.max(gaps, where=steps > 0, initial=0.0)))
        area += float(np.multiply(gaps, steps, out=gaps).sum())
    scale = float(n_ref) * float(n_cur)
    return largest_gap / scale, area / scale


def ks_p_value(
    statistic: float, n_ref: int, n_cur: int, reference_sorted: FloatArray, current_sorted: FloatArray
) -> float:
    """The two-sided KS p-value as ``scipy.stats.ks_2samp(method="auto")`` computes it.

    Small samples use scipy's exact distribution (cheap at that size); large ones Smirnov's
    asymptotic distribution ``kstwo.sf(D, round(n·m/(n+m)))``, see ``kstwo_sf``.
    """
    from scipy import stats

    if max(n_ref, n_cur) <= SCIPY_EXACT_KS_MAX_N:
        return float(stats.ks_2samp(reference_sorted, current_sorted).pvalue)
    larger, smaller = sorted((float(n_ref), float(n_cur)), reverse=True)
    return kstwo_sf(statistic, int(np.round(larger * smaller / (larger + smaller))))


def kstwo_sf(statistic: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(statistic, n)``, with scipy's slow branch vectorised.

    For ``2.2 ≤ n·D² < 370`` (p-values from about 0.02 down to 1e-160) scipy returns
    ``2·smirnov(n, D)``, summing n terms one by one: over half a second at n = 500,000, which is
    where a column that drifts a little lands. The same sum, in log space with numpy, takes
    milliseconds; everywhere else scipy is fast and is called as is.
    """
    from scipy import stats

    spread = n * statistic * statistic
    if n > 140 and 0.0 < statistic < 0.5 and 1.0 < n * statistic < n - 1 and 2.2 <= spread < 370.0:
        return float(np.clip(2.0 * smirnov_sf(n, statistic), 0.0, 1.0))
    return float(np.clip(stats.kstwo.sf(statistic, n), 0.0, 1.0))


def smirnov_sf(n: int, x: float) -> float:
    """One-sided Smirnov ``P(D⁺ₙ ≥ x)`` by the Birnbaum–Tingey sum, equal to ``scipy.special.smirnov``.

    ``x · Σ_{j=0}^{⌊n(1−x)⌋} C(n, j) (1 − x − j/n)^{n−j} (x + j/n)^{j−1}``, each term in logs.
    """
    from scipy.special import gammaln

    j = np.arange(0, int(np.floor(n * (1.0 - x))) + 1, dtype=np.float64)
    remaining = 1.0 - x - j / n
    with np.errstate(divide="ignore"):
        log_terms = (
            gammaln(n + 1.0)
            - gammaln(j + 1.0)
            - gammaln(n - j + 1.0)
            + (n - j) * np.log(np.maximum(remaining, 0.0))
            + (j - 1.0) * np.log(x + j / n)
        )
    return float(x * np.exp(log_terms).sum())


def quantile_edges(reference_sorted: FloatArray, bins: int) -> FloatArray:
    """Interior bin edges at the reference's quantiles (linear interpolation, like ``np.quantile``).

    Repeated edges (a discrete column) collapse, so a column with few values gets fewer bins.
    """
    n = reference_sorted.shape[0]
    positions = (n - 1) * np.arange(1, bins) / bins
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    fraction = positions - low
    edges = reference_sorted[low] + (reference_sorted[high] - reference_sorted[low]) * fraction
    return np.unique(edges)


def quantile_bin_shares(
    reference_sorted: FloatArray, current_sorted: FloatArray, bins: int
) -> tuple[FloatArray, FloatArray]:
    """Shares of each sample in the reference-quantile bins ``(-inf, e1], (e1, e2], …, (ek, inf)``."""
    edges = quantile_edges(reference_sorted, bins)
    return (
        sorted_bin_shares(reference_sorted, edges),
        sorted_bin_shares(current_sorted, edges),
    )


def sorted_bin_shares(values_sorted: FloatArray, edges: FloatArray) -> FloatArray:
    """Shares of a sorted sample in the bins cut at ``edges`` (right-closed), by binary search."""
    cuts = np.searchsorted(values_sorted, edges, side="right")
    counts = np.diff(np.concatenate([[0], cuts, [values_sorted.shape[0]]]))
    return np.asarray(counts / values_sorted.shape[0], dtype=np.float64)


def psi(reference_shares: FloatArray, current_shares: FloatArray) -> float:
    """Population stability index ``Σ (c − r)·ln(c / r)``, each share floored at ``PSI_EPSILON``."""
    ref = np.maximum(reference_shares, PSI_EPSILON)
    cur = np.maximum(current_shares, PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


@dataclass(frozen=True)
class CategoricalShift:
    """Shift statistics of one categorical column, reference versus current."""

    chi2_statistic: float
    chi2_p_value: float
    jensenshannon: float
    psi: float


def categorical_shift(
    reference_counts: NDArray[np.int64], current_counts: NDArray[np.int64]
) -> CategoricalShift:
    """Chi-square, Jensen–Shannon (base 2) and PSI from aligned per-category counts.

    Categories absent from both samples are dropped first, as ``chi2_contingency`` requires
    non-zero expected counts. Chi-square is scipy's own ``chi2_contingency`` on the 2×k table
    (Yates' correction when k = 2, as scipy applies it by default).
    """
    from scipy import stats
    from scipy.spatial import distance

    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    present = (ref + cur) > 0
    ref, cur = ref[present], cur[present]
    if ref.sum() == 0 or cur.sum() == 0:
        raise ValueError("categorical_shift needs two non-empty samples")
    ref_shares = ref / ref.sum()
    cur_shares = cur / cur.sum()
    if ref.shape[0] < 2:
        chi2, p_value = 0.0, 1.0
    else:
        result = stats.chi2_contingency(np.vstack([ref, cur]))
        chi2, p_value = float(result.statistic), float(result.pvalue)
    return CategoricalShift(
        chi2_statistic=chi2,
        chi2_p_value=p_value,
        jensenshannon=float(distance.jensenshannon(ref_shares, cur_shares, base=2)),
        psi=psi(ref_shares, cur_shares),
    )
