"""The statistical tests behind the checks: one-sided, on counts, robust to small samples.

Each returns a p-value for "the canary is worse", so a check can demand both a guardrail
breach and evidence that it is not noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def proportion_greater(x1: int, n1: int, x2: int, n2: int) -> float:
    """p-value of the pooled two-proportion z-test for ``x1/n1 > x2/n2`` (1.0 when undecidable)."""
    from scipy.stats import norm

    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return float(norm.sf(z))


def binomial_greater(k: int, n: int, p0: float) -> float:
    """p-value of the exact binomial test for a true rate above ``p0`` given ``k`` of ``n``."""
    from scipy.stats import binom

    if n == 0:
        return 1.0
    return float(binom.sf(k - 1, n, p0))


def binomial_less(k: int, n: int, p0: float) -> float:
    """p-value of the exact binomial test for a true rate below ``p0`` given ``k`` of ``n``."""
    from scipy.stats import binom

    if n == 0:
        return 1.0
    return float(binom.cdf(k, n, p0))


def js_distance(p: Sequence[int], q: Sequence[int]) -> float | None:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count histograms; ``None`` if one is empty."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    a, b = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if a.sum() == 0 or b.sum() == 0:
        return None
    return float(jensenshannon(a / a.sum(), b / b.sum(), base=2))


def histograms_differ(p: Sequence[int], q: Sequence[int]) -> float:
    """p-value of the chi-square test of homogeneity between two count histograms.

    Bins empty on both sides are dropped; with fewer than two bins left the histograms cannot
    differ and the p-value is 1.
    """
    import numpy as np
    from scipy.stats import chi2_contingency

    table = np.asarray([p, q], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)
