"""Confidence sequences: bounds that hold at every look at once, so the judge may look every interval.

A confidence sequence at level α is a sequence of intervals that contains the true value at
*all* times with probability at least 1 − α (Robbins 1970; Howard, Ramdas, McAuliffe, Sekhon,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of Statistics 2021).
Re-running a fixed-horizon test after every interval has no such guarantee; its error rate grows
with the number of looks.

Everything the canary judge counts is a Bernoulli stream: a request failed or not, a label was
right or not, a request was slower than a latency or not, a prediction fell in a bin or not. For
one Bernoulli stream this module uses Robbins' beta-binomial mixture martingale

    M_t(p) = B(a + S_t, b + t − S_t) / B(a, b) / (p^S_t (1 − p)^(t − S_t)),

the likelihood ratio of a Beta(a, b) mixture of alternatives against the mean p, with S_t
successes in t trials. Under the true p it is a nonnegative martingale with M_0 = 1, so by
Ville's inequality it ever reaches 1/α with probability at most α, whatever the stopping rule:
``{p : M_t(p) < 1/α}`` is a confidence sequence, exact for any sample size (no normal
approximation), and as narrow as the usual normal-mixture boundary while staying valid for rare
events, where a plug-in variance is not (see docs/canary-analysis.md for the measurements).

A difference of two means (canary − baseline) uses the asymptotic confidence sequences of
Waudby-Smith, Arnold, Wu, Wang, Ramdas ("Time-uniform central limit theory and asymptotic
confidence sequences", Annals of Statistics 2024) in their randomized-experiment form: Robbins'
normal-mixture boundary tuned for a planned sample size, on both arms' observations together, with
the arms' variances added. Each arm's part is its score (Wilson) distance at that boundary rather
than a plug-in σ̂ times it, which collapses to zero on an arm that has seen no failure yet; the
two distances add in quadrature as the variances do (Newcombe, "Interval estimation for the
difference between independent proportions", Statistics in Medicine 1998). This one is valid
asymptotically, not exactly: the judge's minimum sample keeps it away from tiny counts.

A quantile needs no union over candidate values (Howard & Ramdas, "Sequential estimation of
quantiles with applications to A/B-testing and best-arm identification", Bernoulli 2022): below
the true q-quantile lies exactly a share q of requests, so one Bernoulli(q) stream, at the unknown
quantile itself, bounds which counts below any latency are plausible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

PRIOR = (0.5, 0.5)
"""The mixture's Beta prior over alternatives (Jeffreys'): mass near 0 and 1, where error rates
and tail shares live, so rare events are bounded as tightly as common ones."""


@dataclass(frozen=True)
class Bounds:
    """A value's estimate and its confidence-sequence bounds at one time."""

    estimate: float
    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not self.lower <= self.upper:
            raise ValueError(f"bounds out of order: {self.lower} > {self.upper}")


def _log_mixture(successes: float, trials: float, p: float) -> float:
    """log M_t(p): how much the mixture of alternatives out-bets the mean ``p`` on these counts."""
    a, b = PRIOR
    failures = trials - successes
    log_ratio = _log_beta(a + successes, b + failures) - _log_beta(a, b)
    if successes:
        log_ratio -= successes * math.log(p)
    if failures:
        log_ratio -= failures * math.log1p(-p)
    return log_ratio


def _log_beta(x: float, y: float) -> float:
    return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)


def _root(f: Callable[[float], float], low: float, high: float) -> float:
    """Where the continuous ``f`` crosses zero between ``low`` and ``high`` (it changes sign there).

    The Illinois variant of regula falsi: bracketing like bisection, converging like the secant
    method; pure Python, because the judge solves a few dozen of these per interval.
    """
    f_low, f_high = f(low), f(high)
    side = 0
    for _ in range(200):
        x = (low * f_high - high * f_low) / (f_high - f_low)
        f_x = f(x)
        if f_x == 0 or abs(high - low) <= 1e-12 * max(1.0, abs(x)):
            return x
        if (f_x > 0) == (f_high > 0):
            high, f_high = x, f_x
            if side == -1:
                f_low /= 2
            side = -1
        else:
            low, f_low = x, f_x
            if side == 1:
                f_high /= 2
            side = 1
    return x


@lru_cache(maxsize=65536)
def proportion(successes: int, trials: int, alpha: float) -> Bounds:
    """The confidence sequence at level ``alpha`` for a Bernoulli mean, read at ``successes`` of ``trials``.

    Before any trial every mean is plausible: ``[0, 1]`` around an estimate of 0.
    """
    if not 0 <= successes <= trials:
        raise ValueError(f"successes ({successes}) must be between 0 and trials ({trials})")
    if trials == 0:
        return Bounds(0.0, 0.0, 1.0)
    level = math.log(1 / alpha)
    estimate = successes / trials
    constant = _log_beta(PRIOR[0] + successes, PRIOR[1] + trials - successes) - _log_beta(*PRIOR) - level
    lower = upper = None
    if successes:
        # log M as a function of u = log p, below the estimate: convex and decreasing.
        lower = _newton(
            lambda u: constant - successes * u - (trials - successes) * math.log1p(-math.exp(u)),
            lambda u: -successes + (trials - successes) / math.expm1(-u),
        )
    if successes < trials:
        # log M as a function of v = log(1 − p), above the estimate: convex and decreasing.
        upper = _newton(
            lambda v: constant - (trials - successes) * v - successes * math.log1p(-math.exp(v)),
            lambda v: -(trials - successes) + successes / math.expm1(-v),
        )
    return Bounds(
        estimate,
        0.0 if lower is None else min(math.exp(lower), estimate),
        1.0 if upper is None else max(-math.expm1(upper), estimate),
    )


def _newton(f: Callable[[float], float], slope: Callable[[float], float]) -> float | None:
    """The zero of a convex, decreasing ``f`` on (−∞, 0) (a log-probability), or None if it has none there.

    Newton's method from far left, where ``f`` is all but linear: on a convex function each step
    lands short of the zero, so the iterates climb to it without overshooting.
    """
    x = math.log(1e-300)
    if f(x) <= 0:
        return None
    for _ in range(100):
        step = f(x) / slope(x)
        x -= step
        if abs(step) <= 1e-12 * max(1.0, abs(x)):
            break
    return x


def multiplier(t: float, alpha: float, planned: float) -> float:
    """The normal-mixture boundary in standard errors: the half-width is this times σ̂/√t.

    Robbins' Gaussian mixture as tuned by Waudby-Smith et al. (2024): with
    ρ² = (−2 log α + log(−2 log α + 1)) / t*, the width is tightest near the ``planned`` sample
    size t* and grows only like √log t after it,

        √(2 (tρ² + 1) / (tρ²) · log(√(tρ² + 1) / α)).
    """
    log_alpha = math.log(alpha)
    rho2 = (-2 * log_alpha + math.log(-2 * log_alpha + 1)) / planned
    x = t * rho2
    return math.sqrt(2 * (x + 1) / x * (math.log(math.sqrt(x + 1)) - log_alpha))


def _score(successes: int, trials: int, z: float) -> Bounds:
    """The means within ``z`` of their own standard error of the estimate (Wilson's score bounds)."""
    estimate = successes / trials
    z2 = z * z
    centre = (estimate + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(estimate * (1 - estimate) / trials + z2 / (4 * trials * trials))
    return Bounds(estimate, min(max(0.0, centre - half), estimate), max(min(1.0, centre + half), estimate))


def difference(first: tuple[int, int], second: tuple[int, int], alpha: float, planned: float) -> Bounds:
    """An asymptotic confidence sequence at ``alpha`` for ``mean(first) − mean(second)``.

    Each arm is ``(successes, trials)``. The randomized-experiment form of Waudby-Smith et al.:
    the variances of the two arms add, and the boundary runs on both arms' trials together,
    ``multiplier(n₁ + n₂, alpha, planned)``. Each arm's distance to its bounds is its score
    (Wilson) distance at that multiplier rather than a plug-in σ̂·z, which collapses to zero on an
    arm without failures; the distances add in quadrature (Newcombe's hybrid score method). An
    arm without trials leaves the difference anywhere in [−1, 1].
    """
    (x, n), (y, m) = first, second
    if n == 0 or m == 0:
        estimate = (x / n if n else 0.0) - (y / m if m else 0.0)
        return Bounds(estimate, -1.0, 1.0)
    z = multiplier(n + m, alpha, planned)
    one, two = _score(x, n, z), _score(y, m, z)
    estimate = one.estimate - two.estimate
    below = math.hypot(one.estimate - one.lower, two.upper - two.estimate)
    above = math.hypot(one.upper - one.estimate, two.estimate - two.lower)
    return Bounds(estimate, max(-1.0, estimate - below), min(1.0, estimate + above))


def plausible_counts(trials: int, share: float, alpha: float) -> tuple[float, float]:
    """The counts of a Bernoulli(``share``) stream its sequence at ``alpha`` does not reject after ``trials``.

    Read at the true ``share``-quantile of latency, the stream is "this request was at most that
    slow": with probability 1 − α, at every time, the number of requests at or below the true
    quantile lies inside the returned ``[low, high]``. ``low`` may be −inf and ``high`` +inf when
    no count on that side is rejected yet.
    """
    if not 0 < share < 1:
        raise ValueError(f"share = {share}: strictly between 0 and 1")
    if trials == 0:
        return -math.inf, math.inf
    level = math.log(1 / alpha)

    def excess(count: float) -> float:
        return _log_mixture(count, trials, share) - level

    centre = trials * share
    low = -math.inf if excess(0.0) <= 0 else _root(excess, 0.0, centre)
    high = math.inf if excess(float(trials)) <= 0 else _root(excess, centre, float(trials))
    return low, high
