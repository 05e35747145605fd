"""Reading a CSV snapshot: the features and their types, the label's classes or tolerance."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.contract.tasks import Task
from pipelines.errors import BadInputError, RefusedError

if TYPE_CHECKING:
    import pandas as pd

MISSING_MARKERS = ("?",)
"""Strings that mean a missing value when a column is otherwise all numbers (e.g. UCI's ``?``)."""
ID_LIKE_ROWS = 20
"""A category column distinct on every one of at least this many rows looks like an identifier."""


@dataclass(frozen=True)
class DataSummary:
    """What a CSV snapshot says about the service it trains."""

    path: str
    """The snapshot as the contract names it: relative to the project root inside it, else absolute."""
    file: Path
    sha256: str
    label: str
    features: tuple[tuple[str, str], ...]
    """``(name, "number" | "category")`` in file order, the label left out."""
    na_values: tuple[str, ...]
    classes: tuple[str, ...] | None
    positive_class: str | None
    live_tolerance: float | None
    label_std: float | None
    rows: int
    warnings: tuple[str, ...] = ()


def infer_data(
    path: Path, *, label: str, task: Task, root: Path, positive_class: str | None = None
) -> DataSummary:
    """Read a CSV snapshot with a header: features and their types, classes or tolerance, fingerprint."""
    import pandas as pd

    from pipelines.gates.frames import check_field_counts
    from pipelines.training.manifest import fingerprint

    if not path.is_file():
        raise BadInputError(f"--data {path}: no such file")
    header = _header(path)
    empty = [index + 1 for index, column in enumerate(header) if not column.strip()]
    if empty:
        raise BadInputError(
            f"--data {path}: the header has unnamed column(s) at position(s) {', '.join(map(str, empty))}",
            details=["every column needs a name in the first line"],
        )
    doubled = sorted({column for column in header if header.count(column) > 1})
    if doubled:
        raise BadInputError(f"--data {path}: the header names {', '.join(doubled)} more than once")
    if label not in header:
        raise BadInputError(
            f"--label {label!r}: not a column of {path}; its header has: {', '.join(header[:30])}",
            details=["the first line of the file must name the columns"],
        )
    if len(header) < 2:
        raise BadInputError(f"--data {path}: only the label column {label!r}; a model needs features")
    check_field_counts(path, role="data", skip_blank=True)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise BadInputError(f"--data {path}: cannot read it as CSV: {error}") from None
    na_values = _missing_markers(frame)
    if na_values:
        frame = frame.replace(dict.fromkeys(na_values, None))
    features = tuple((column, _column_type(frame[column])) for column in header if column != label)
    labels = frame[label].dropna().astype(str).str.strip()
    if labels.empty:
        raise BadInputError(f"--data {path}: column {label!r} has no values")
    classes, positive, tolerance, spread = _label_facts(
        labels, task=task, label=label, path=path, positive_class=positive_class
    )
    warnings = [
        f"{column}: a different value on every row, like an identifier; if it is one, "
        "remove it from the contract's features"
        for column, kind in features
        if kind == "category" and len(frame) >= ID_LIKE_ROWS and frame[column].nunique() == len(frame)
    ]
    return DataSummary(
        path=_snapshot_reference(path, root),
        file=path.resolve(),
        sha256=fingerprint(path),
        label=label,
        features=features,
        na_values=na_values,
        classes=classes,
        positive_class=positive,
        live_tolerance=tolerance,
        label_std=spread,
        rows=len(labels),
        warnings=tuple(warnings),
    )


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"--data {path}: cannot read it as UTF-8 CSV: {error}") from None
    if not header:
        raise BadInputError(f"--data {path}: the file is empty; it needs a header line and rows")
    return header


def _missing_markers(frame: pd.DataFrame) -> tuple[str, ...]:
    """Markers that stand for missing values: the only non-numbers in an otherwise numeric column."""
    import pandas as pd

    found = set()
    for column in frame.columns:
        values = frame[column].dropna().str.strip()
        odd = set(values[pd.to_numeric(values, errors="coerce").isna()])
        if odd and odd <= set(MISSING_MARKERS) and len(odd) < values.nunique():
            found |= odd
    return tuple(sorted(found))


def _column_type(values: pd.Series) -> str:
    import pandas as pd

    present = values.dropna()
    if present.empty:
        return "category"
    return "number" if bool(pd.to_numeric(present, errors="coerce").notna().all()) else "category"


def _label_facts(
    labels: pd.Series, *, task: Task, label: str, path: Path, positive_class: str | None
) -> tuple[tuple[str, ...] | None, str | None, float | None, float | None]:
    """Classes and positive class (classification), or tolerance and spread (regression)."""
    import pandas as pd

    if positive_class is not None and task is not Task.binary:
        raise BadInputError(f"--positive-class is for binary_classification, not {task.value}")
    if task is Task.regression:
        numbers = pd.to_numeric(labels, errors="coerce")
        if numbers.isna().any():
            raise RefusedError(
                f"--task regression: column {label!r} of {path} has the non-numeric value "
                f"{labels[numbers.isna()].iloc[0]!r}; a regression label is a number",
                details=["a label with a few values is a classification task"],
            )
        spread = float(numbers.std())
        if not spread > 0:
            raise RefusedError(f"--data {path}: column {label!r} has one value only; nothing to predict")
        return None, None, round_significant(spread / 2, "nearest"), spread
    classes = tuple(sorted(set(labels)))
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    if task is Task.binary and len(classes) != 2:
        hint = "use multiclass_classification" if len(classes) > 2 else "a classifier needs two classes"
        raise RefusedError(
            f"--task binary_classification: column {label!r} of {path} has {len(classes)} "
            f"value(s) ({shown}); a binary classifier needs exactly 2",
            details=[hint],
        )
    if task is Task.multiclass and len(classes) < 3:
        raise RefusedError(
            f"--task multiclass_classification: column {label!r} of {path} has {len(classes)} "
            f"value(s) ({shown}); a multiclass classifier needs at least 3",
            details=["two classes: use binary_classification"],
        )
    if task is Task.multiclass:
        return classes, None, None, None
    if positive_class is None:
        return classes, classes[-1], None, None
    if positive_class not in classes:
        raise RefusedError(
            f"--positive-class {positive_class!r}: not a value of column {label!r}; "
            f"its values are {', '.join(classes)}"
        )
    return classes, positive_class, None, None


def _snapshot_reference(path: Path, root: Path) -> str:
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


ROUNDING: dict[str, Callable[[float], int]] = {"down": math.floor, "up": math.ceil, "nearest": round}


def round_significant(value: float, way: str, digits: int = 2) -> float:
    """``value`` at ``digits`` significant digits, rounded ``down``, ``up`` or to the ``nearest``."""
    if value == 0 or not math.isfinite(value):
        return value
    exponent = math.floor(math.log10(abs(value))) - (digits - 1)
    rounded = ROUNDING[way](value / 10**exponent)
    return float(round(rounded * 10**exponent, max(0, -exponent)))
