"""Data validation: the current table against the reference's profile (schema + fingerprint).

One check per column and rule, each naming its column: columns and dtypes, missing share against
the reference, values outside the schema's range or categories, columns that became constant,
skew against the fingerprint (PSI), and label leakage; plus duplicate rows for the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import BadInputError
from pipelines.gates.checks import Check, at_most
from pipelines.gates.columns import ColumnValues, prepare
from pipelines.gates.frames import Kind, RowHasher, Table, as_table, workers
from pipelines.gates.policy import DataPolicy
from pipelines.gates.profile import OTHER, ColumnProfile, Profile
from pipelines.gates.report import GateReport
from pipelines.gates.statistics import psi, sorted_bin_shares

if TYPE_CHECKING:
    import polars as pl


def validate_data(
    profile: Profile,
    current: Table | pl.DataFrame,
    policy: DataPolicy,
    *,
    label: str | None = None,
    subject: dict[str, Any] | None = None,
) -> GateReport:
    """Every data check of ``current`` against ``profile``; ``label`` enables the leakage checks."""
    from concurrent.futures import ThreadPoolExecutor

    table = as_table(current)
    if label is not None and label not in table.columns:
        raise BadInputError(
            f"label column {label!r} is not in the current data (columns: {', '.join(table.columns)})"
        )
    rows = RowHasher(table.height)

    def check_column(position: int, name: str) -> list[Check]:
        series = table.column(name)
        rows.add(series, position)
        expected = profile.column(name)
        return [] if expected is None else column_checks(expected, prepare(series), policy)

    with ThreadPoolExecutor(max_workers=workers()) as pool:
        per_column = list(pool.map(check_column, range(len(table.columns)), table.columns))
    return data_report(
        profile, table, per_column, rows.duplicate_share(), policy, label=label, subject=subject
    )


def data_report(
    profile: Profile,
    current: Table,
    per_column: list[list[Check]],
    duplicates: float,
    policy: DataPolicy,
    *,
    label: str | None,
    subject: dict[str, Any] | None,
) -> GateReport:
    """The data report: column-set checks, every column's checks, duplicates and leakage."""
    checks: list[Check] = list(_column_set(profile, current.columns))
    checks += [check for column in per_column for check in column]
    checks.append(
        at_most(
            "data.duplicates",
            None,
            "share",
            duplicates,
            policy.max_duplicate_share,
            f"{duplicates:.2%} of rows repeat an earlier row (reference: {profile.duplicate_share:.2%})",
        )
    )
    if label is not None:
        from pipelines.gates.leakage import leakage_checks

        checks.extend(leakage_checks(current.frame(), label, policy))
    return GateReport(gate="data", checks=tuple(checks), subject=subject or {})


def _column_set(profile: Profile, columns: list[str]) -> list[Check]:
    """A failing check for every schema column the current data lacks and every extra one."""
    checks = [
        Check("data.columns", name, "schema", None, None, None, False, "column of the schema is missing")
        for name in profile.names
        if name not in columns
    ]
    checks += [
        Check("data.columns", name, "schema", None, None, None, False, "column is not in the schema")
        for name in columns
        if name not in profile.names
    ]
    return checks


def column_checks(expected: ColumnProfile, column: ColumnValues, policy: DataPolicy) -> list[Check]:
    """The data checks of one prepared current column against its schema entry."""
    name = expected.name
    kind = column.kind
    missing = column.missing / max(column.rows, 1)
    if kind is not expected.kind:
        if missing >= 1.0 or expected.missing_share >= 1.0:
            # A side without a single value has no dtype of its own: an all-empty CSV column reads
            # as String whatever it held. What is wrong with it is its missing share, not its type.
            side = "the current data" if missing >= 1.0 else "the reference"
            untyped = Check(
                "data.dtype",
                name,
                "schema",
                None,
                None,
                None,
                None,
                f"not compared: {side} has no non-missing values in this column "
                f"(read as {column.dtype}, the schema has {expected.dtype})",
            )
            return [untyped, _missing_check(expected, missing, policy)]
        return [
            Check(
                "data.dtype",
                name,
                "schema",
                None,
                None,
                None,
                False,
                f"dtype {column.dtype} is {kind.value}, the schema has {expected.dtype} ({expected.kind.value}); "
                "mixed or mistyped values?",
            )
        ]
    checks = [Check("data.dtype", name, "schema", None, None, None, True, f"{column.dtype} ({kind.value})")]
    checks.append(_missing_check(expected, missing, policy))
    if missing >= 1.0:
        return checks
    if kind is Kind.NUMERIC:
        checks.extend(_numeric_checks(expected, column.sorted, policy))
    else:
        checks.extend(_categorical_checks(expected, column.counts, policy))
    return checks


def _missing_check(expected: ColumnProfile, missing: float, policy: DataPolicy) -> Check:
    """The column's missing share against the reference's plus the policy's allowed increase."""
    allowed = min(expected.missing_share + policy.max_missing_increase, 1.0)
    return at_most(
        "data.missing",
        expected.name,
        "share",
        missing,
        allowed,
        f"{missing:.2%} missing (reference {expected.missing_share:.2%}, "
        f"allowed increase {policy.max_missing_increase:.2%})",
    )


def _numeric_checks(expected: ColumnProfile, values: Any, policy: DataPolicy) -> list[Check]:
    import numpy as np

    name = expected.name
    if values.size == 0:
        return []
    low, high = float(values[0]), float(values[-1])
    checks = [_constant(name, low == high, expected.minimum == expected.maximum, f"every value is {low:g}")]
    if expected.minimum is None or expected.maximum is None:
        return checks
    below = int(np.searchsorted(values, expected.minimum, side="left"))
    above = values.size - int(np.searchsorted(values, expected.maximum, side="right"))
    outside = (below + above) / values.size
    checks.append(
        at_most(
            "data.range",
            name,
            "share",
            outside,
            policy.max_out_of_range_share,
            f"{outside:.3%} outside the schema's [{expected.minimum:g}, {expected.maximum:g}] "
            f"(current [{low:g}, {high:g}])",
        )
    )
    edges = np.asarray(expected.edges, dtype=np.float64)
    skew = psi(np.asarray(expected.shares), sorted_bin_shares(values, edges))
    checks.append(
        at_most(
            "data.skew",
            name,
            "psi",
            skew,
            policy.max_skew_psi,
            f"PSI {skew:.4f} against the training fingerprint's {edges.size + 1} decile bins",
        )
    )
    return checks


def _categorical_checks(expected: ColumnProfile, counts: pl.DataFrame, policy: DataPolicy) -> list[Check]:
    import numpy as np

    name = expected.name
    checks = [
        _constant(
            name,
            counts.height <= 1,
            expected.distinct <= 1,
            f"every value is {counts['value'][0]!r}" if counts.height else "no values",
        )
    ]
    total = max(int(counts["count"].sum()), 1)
    by_value = dict(zip(counts["value"].to_list(), counts["count"].to_list(), strict=True))
    known = [by_value.pop(category, 0) / total for category in expected.categories]
    unknown = sum(by_value.values()) / total
    if expected.closed_domain:
        new = sorted(by_value, key=lambda value: -by_value[value])[:5]
        checks.append(
            at_most(
                "data.domain",
                name,
                "share",
                unknown,
                policy.max_out_of_domain_share,
                f"{unknown:.3%} of values are not among the schema's {len(expected.categories)} categories"
                + (f" (e.g. {', '.join(repr(value) for value in new)})" if new else ""),
            )
        )
    else:
        checks.append(
            Check(
                "data.domain",
                name,
                "share",
                unknown,
                None,
                None,
                None,
                f"open domain: the reference has {expected.distinct} categories, the schema keeps the "
                f"{len(expected.categories)} most frequent; {unknown:.3%} of values are outside them",
            )
        )
    skew = psi(np.asarray(expected.shares), np.asarray([*known, unknown]))
    checks.append(
        at_most(
            "data.skew",
            name,
            "psi",
            skew,
            policy.max_skew_psi,
            f"PSI {skew:.4f} against the training fingerprint's category shares "
            f"({len(expected.categories)} categories + {OTHER})",
        )
    )
    return checks


def _constant(name: str, constant_now: bool, constant_before: bool, what: str) -> Check:
    """A column that became constant carries no information; one that always was is only noted."""
    if constant_now and not constant_before:
        return Check(
            "data.constant", name, "distinct", 1.0, None, None, False, f"column became constant: {what}"
        )
    if constant_now:
        return Check(
            "data.constant", name, "distinct", 1.0, None, None, True, f"constant in the reference too: {what}"
        )
    return Check("data.constant", name, "distinct", None, None, None, True, "more than one distinct value")
