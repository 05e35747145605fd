"""Data validation and drift in one pass: each column is read, sorted or counted once for both.

The two gates look at the same columns of the same two tables. Running them together, one task
per column decodes the reference and current column, prepares them (``columns.prepare``), and
derives the reference's profile entry, the data checks and the drift checks from the same sorted
arrays before dropping them. The reports are identical to running ``validate_data`` and
``detect_drift`` separately, except that the leakage checks can be told the label's task (the
service contract's) instead of inferring it from the label's values.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipelines.errors import BadInputError
from pipelines.gates.checks import Check
from pipelines.gates.columns import ColumnValues, prepare
from pipelines.gates.drift import column_drift, drift_columns, drift_report
from pipelines.gates.frames import RowHasher, Table, as_table, workers
from pipelines.gates.leakage import leakage_checks
from pipelines.gates.policy import GatePolicy
from pipelines.gates.profile import ColumnProfile, Profile, profile_column
from pipelines.gates.report import GateReport
from pipelines.gates.validation import column_checks, data_report

if TYPE_CHECKING:
    import polars as pl

    from pipelines.contract.tasks import Task


def data_and_drift(
    reference: Table | pl.DataFrame,
    current: Table | pl.DataFrame,
    policy: GatePolicy,
    *,
    label: str | None = None,
    task: Task | None = None,
    profile: Profile | None = None,
    subject: dict[str, Any] | None = None,
) -> tuple[GateReport, GateReport]:
    """The data report (against ``profile``, or the reference's) and the drift report.

    ``label`` enables the leakage checks, with the label read as ``task`` says (inferred from its
    values when ``None``; see ``leakage_checks``).
    """
    from concurrent.futures import ThreadPoolExecutor

    ref, cur = as_table(reference), as_table(current)
    if label is not None and label not in cur.columns:
        raise BadInputError(
            f"label column {label!r} is not in the current data (columns: {', '.join(cur.columns)})"
        )
    drift_names, absent = drift_columns(ref, cur, policy.drift, None)
    compared = set(drift_names)
    ref_rows, cur_rows = RowHasher(ref.height), RowHasher(cur.height)
    names = list(dict.fromkeys([*ref.columns, *cur.columns]))

    def one(name: str) -> tuple[ColumnProfile | None, list[Check], list[Check]]:
        reference_values = _prepared(ref, name, ref_rows)
        current_values = _prepared(cur, name, cur_rows)
        if profile is not None:
            expected = profile.column(name)
        elif reference_values is not None:
            expected = profile_column(reference_values, policy.data.max_categories)
        else:
            expected = None
        data = (
            []
            if expected is None or current_values is None
            else column_checks(expected, current_values, policy.data)
        )
        drift = []
        if name in compared and reference_values is not None and current_values is not None:
            drift = column_drift(reference_values, current_values, policy.drift)
        return expected, data, drift

    with ThreadPoolExecutor(max_workers=workers()) as pool:
        results = dict(zip(names, pool.map(one, names), strict=True))
    if profile is None:
        columns = tuple(results[name][0] for name in ref.columns)
        profile = Profile(
            rows=ref.height,
            duplicate_share=ref_rows.duplicate_share(),
            columns=tuple(column for column in columns if column is not None),
        )
    data = data_report(
        profile,
        cur,
        [results[name][1] for name in cur.columns],
        cur_rows.duplicate_share(),
        policy.data,
        label=None,
        subject=subject,
    )
    if label is not None:
        data = replace(
            data, checks=(*data.checks, *leakage_checks(cur.frame(), label, policy.data, task=task))
        )
    drift = drift_report(
        drift_names, [results[name][2] for name in drift_names], absent, policy.drift, subject
    )
    return data, drift


def _prepared(table: Table, name: str, rows: RowHasher) -> ColumnValues | None:
    if name not in table.columns:
        return None
    series = table.column(name)
    rows.add(series, table.columns.index(name))
    return prepare(series)
