"""The one result shape every check returns, whatever the gate.

``{name, column, method, statistic, p_value, threshold, passed, detail}``: fields that do not apply
are ``None``. ``passed`` is ``None`` only for informational results (e.g. a KS p-value shown next
to the effect size that actually decides), which never fail a gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One check's verdict and the numbers behind it."""

    name: str
    """Dotted check name, e.g. ``drift.wasserstein`` or ``data.missing``."""
    column: str | None
    """The column the check looked at; ``None`` for dataset-level checks."""
    method: str | None
    """The statistic or rule used, e.g. ``ks``, ``psi``, ``share``, ``roc_auc``."""
    statistic: float | None
    """The measured value (``None`` when it could not be computed; see ``detail``)."""
    p_value: float | None
    """The test's p-value where the method has one."""
    threshold: float | None
    """The bound ``statistic`` is compared with; ``None`` for informational results."""
    passed: bool | None
    """True or False for a verdict, ``None`` for an informational result."""
    detail: str
    """One sentence a person can act on: what was compared and what was found."""

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form: non-finite floats become ``None`` so the report stays valid JSON."""
        return {
            "name": self.name,
            "column": self.column,
            "method": self.method,
            "statistic": finite_or_none(self.statistic),
            "p_value": finite_or_none(self.p_value),
            "threshold": finite_or_none(self.threshold),
            "passed": self.passed,
            "detail": self.detail,
        }

    @property
    def failed(self) -> bool:
        """True only for a verdict that failed (informational results never fail)."""
        return self.passed is False


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a plain float, or ``None`` when it is missing, NaN or infinite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def at_most(
    name: str,
    column: str | None,
    method: str,
    statistic: float,
    threshold: float,
    detail: str,
    *,
    p_value: float | None = None,
) -> Check:
    """A verdict that passes when ``statistic <= threshold``."""
    return Check(name, column, method, statistic, p_value, threshold, bool(statistic <= threshold), detail)


def at_least(
    name: str,
    column: str | None,
    method: str,
    statistic: float,
    threshold: float,
    detail: str,
) -> Check:
    """A verdict that passes when ``statistic >= threshold``."""
    return Check(name, column, method, statistic, None, threshold, bool(statistic >= threshold), detail)
