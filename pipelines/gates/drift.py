"""Drift: does the current data come from the reference's distribution, by a margin that matters?

Each column's verdict rests on effect sizes with thresholds (normalised Wasserstein and PSI for
numeric columns, Jensen–Shannon and PSI for categorical ones). KS and chi-square p-values are
reported beside them but decide nothing by default: at a million rows they call any shift, however
small, significant. The gate also fails when the share of drifted columns exceeds the policy's
bound. Columns are processed in a thread pool, one sort per numeric sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipelines.errors import BadInputError
from pipelines.gates.checks import Check
from pipelines.gates.columns import ColumnValues, prepare
from pipelines.gates.frames import Kind, Table, as_table, workers
from pipelines.gates.policy import ColumnDrift, DriftPolicy
from pipelines.gates.report import GateReport

if TYPE_CHECKING:
    import polars as pl


def detect_drift(
    reference: Table | pl.DataFrame,
    current: Table | pl.DataFrame,
    policy: DriftPolicy,
    *,
    columns: Sequence[str] | None = None,
    subject: dict[str, Any] | None = None,
) -> GateReport:
    """Drift checks for ``columns`` (default: every column of the reference not ignored by policy)."""
    from concurrent.futures import ThreadPoolExecutor

    reference, current = as_table(reference), as_table(current)
    names, absent = drift_columns(reference, current, policy, columns)

    def compare(name: str) -> list[Check]:
        return column_drift(prepare(reference.column(name)), prepare(current.column(name)), policy)

    with ThreadPoolExecutor(max_workers=workers()) as pool:
        per_column = list(pool.map(compare, names))
    return drift_report(names, per_column, absent, policy, subject)


def drift_columns(
    reference: Table, current: Table, policy: DriftPolicy, columns: Sequence[str] | None
) -> tuple[list[str], list[Check]]:
    """The columns to compare, and a failing check for each expected column the current data lacks.

    Columns named explicitly must exist on both sides (``BadInputError`` otherwise); by default
    every reference column the policy does not ignore is compared.
    """
    if columns:
        absent = [
            f"{name!r} ({'reference' if name not in reference.columns else 'current'})"
            for name in columns
            if name not in reference.columns or name not in current.columns
        ]
        if absent:
            raise BadInputError(
                f"--columns names columns the data lacks: {', '.join(absent)}; "
                f"reference columns: {', '.join(reference.columns)}"
            )
        return list(dict.fromkeys(columns)), []
    names = [name for name in reference.columns if not policy.columns.get(name, ColumnDrift()).ignore]
    missing = [
        Check("drift.columns", name, None, None, None, None, False, "column is missing from the current data")
        for name in names
        if name not in current.columns
    ]
    return [name for name in names if name in current.columns], missing


def drift_report(
    names: list[str],
    per_column: list[list[Check]],
    absent: list[Check],
    policy: DriftPolicy,
    subject: dict[str, Any] | None,
) -> GateReport:
    """The drift report: every column's checks plus the share of drifted columns."""
    drifted = [name for name, checks in zip(names, per_column, strict=True) if any(c.failed for c in checks)]
    share = len(drifted) / len(names) if names else 0.0
    share_check = Check(
        "drift.share",
        None,
        "share",
        share,
        None,
        policy.max_drifted_share,
        share <= policy.max_drifted_share,
        f"{len(drifted)} of {len(names)} columns drifted" + (f": {', '.join(drifted)}" if drifted else ""),
    )
    checks = [*absent, *(check for checks in per_column for check in checks), share_check]
    return GateReport(gate="drift", checks=tuple(checks), subject=subject or {})


def column_drift(reference: ColumnValues, current: ColumnValues, policy: DriftPolicy) -> list[Check]:
    """The drift checks of one prepared column, reference against current."""
    name = reference.name
    kind = reference.kind
    if current.kind is not kind:
        # An all-missing column has no kind of its own (CSV reads it as text): judge its emptiness.
        empty = _empty_side(name, reference.rows - reference.missing, current.rows - current.missing)
        if empty is not None:
            return empty
        return [
            Check(
                "drift.dtype",
                name,
                None,
                None,
                None,
                None,
                False,
                f"reference is {reference.dtype} ({kind.value}), current is {current.dtype}: "
                "not comparable (mixed or mistyped values?)",
            )
        ]
    override = policy.columns.get(name, ColumnDrift())
    if kind is Kind.NUMERIC:
        return _numeric(name, reference, current, policy, override)
    return _categorical(name, reference, current, policy, override)


def _empty_side(name: str, n_reference: int, n_current: int) -> list[Check] | None:
    """A defined result when a side has no values at all (an all-missing column)."""
    if n_reference and n_current:
        return None
    if not n_reference and not n_current:
        return [Check("drift.values", name, None, None, None, None, True, "no values in either table")]
    side = "current" if n_reference else "reference"
    return [
        Check(
            "drift.values", name, None, None, None, None, False, f"no non-missing values in the {side} data"
        )
    ]


def _numeric(
    name: str, reference: ColumnValues, current: ColumnValues, policy: DriftPolicy, override: ColumnDrift
) -> list[Check]:
    from pipelines.gates.statistics import numeric_shift

    ref, cur = reference.sorted, current.sorted
    empty = _empty_side(name, ref.size, cur.size)
    if empty is not None:
        return empty
    shift = numeric_shift(ref, cur, policy.psi_bins)
    sizes = f"n={ref.size:,} vs {cur.size:,}"
    return [
        _verdict(
            "drift.wasserstein",
            name,
            "wasserstein_normed",
            shift.wasserstein_normed,
            _pick(override.wasserstein, policy.numeric.wasserstein),
            f"Wasserstein distance {shift.wasserstein:.4g} = {shift.wasserstein_normed:.4f} reference std ({sizes})",
        ),
        _verdict(
            "drift.psi",
            name,
            "psi",
            shift.psi,
            _pick(override.psi, policy.numeric.psi),
            f"PSI on {policy.psi_bins} reference-quantile bins",
        ),
        _verdict(
            "drift.ks",
            name,
            "ks",
            shift.ks_statistic,
            _pick(override.ks, policy.numeric.ks),
            f"largest CDF gap {shift.ks_statistic:.4f}; the p-value is shown, the effect sizes decide",
            p_value=shift.ks_p_value,
        ),
    ]


def _categorical(
    name: str, reference: ColumnValues, current: ColumnValues, policy: DriftPolicy, override: ColumnDrift
) -> list[Check]:
    from pipelines.gates.statistics import categorical_shift

    ref_counts, cur_counts, pooled = aligned_counts(reference.counts, current.counts, policy.max_categories)
    empty = _empty_side(name, int(ref_counts.sum()), int(cur_counts.sum()))
    if empty is not None:
        return empty
    shift = categorical_shift(ref_counts, cur_counts)
    categories = f"{ref_counts.size - (1 if pooled else 0)} categories" + (
        f" + {pooled:,} rarer ones pooled" if pooled else ""
    )
    return [
        _verdict(
            "drift.jensenshannon",
            name,
            "jensenshannon",
            shift.jensenshannon,
            _pick(override.jensenshannon, policy.categorical.jensenshannon),
            f"Jensen–Shannon distance (base 2) over {categories}",
        ),
        _verdict(
            "drift.psi",
            name,
            "psi",
            shift.psi,
            _pick(override.psi, policy.categorical.psi),
            f"PSI over {categories}",
        ),
        _verdict(
            "drift.chi2",
            name,
            "chi2",
            shift.chi2_statistic,
            None,
            f"chi-square test of the category counts over {categories}; the p-value is shown, "
            "the effect sizes decide",
            p_value=shift.chi2_p_value,
        ),
    ]


def aligned_counts(
    reference: pl.DataFrame, current: pl.DataFrame, max_categories: int
) -> tuple[Any, Any, int]:
    """Per-category counts of both samples on one axis, and how many categories were pooled.

    The ``max_categories`` most frequent categories (by reference count, then current count) are
    kept; the rest, including a column of a million distinct ids, share one pooled bucket, so the
    comparison stays meaningful and its cost bounded.
    """
    import numpy as np
    import polars as pl

    ref = reference.rename({"count": "ref"})
    cur = current.rename({"count": "cur"})
    joined = (
        ref.join(cur, on="value", how="full", coalesce=True)
        .fill_null(0)
        .sort(["ref", "cur", "value"], descending=[True, True, False])
    )
    kept = joined.head(max_categories)
    rest = joined.slice(max_categories)
    ref_counts = kept["ref"].cast(pl.Int64).to_numpy()
    cur_counts = kept["cur"].cast(pl.Int64).to_numpy()
    if rest.height:
        ref_counts = np.append(ref_counts, int(rest["ref"].sum()))
        cur_counts = np.append(cur_counts, int(rest["cur"].sum()))
    return ref_counts, cur_counts, rest.height


def _pick(override: float | None, default: float | None) -> float | None:
    return override if override is not None else default


def _verdict(
    name: str,
    column: str,
    method: str,
    statistic: float,
    threshold: float | None,
    detail: str,
    *,
    p_value: float | None = None,
) -> Check:
    """A thresholded check, or an informational one when the policy sets no threshold."""
    passed = None if threshold is None else bool(statistic <= threshold)
    return Check(name, column, method, statistic, p_value, threshold, passed, detail)
