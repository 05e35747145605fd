"""A service's data as the contract describes it: where a snapshot is, and reading it into a frame.

One reader serves training, the gates (for files in the service's own format) and the repro
gate's retraining, so every path sees the same rows with the same types: numbers as floats,
categories as strings, the label as a declared class (classification) or a float (regression),
rows without a label left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from pipelines.contract.model import ServiceContract, Snapshot
from pipelines.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd


def snapshot_path(snapshot: Snapshot | str, root: Path) -> Path:
    """Where a snapshot's file is on this machine."""
    text = snapshot.path if isinstance(snapshot, Snapshot) else snapshot
    parsed = urlparse(text)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:
        raise BadInputError(
            f"data {text!r}: only local snapshots (a relative path or file:// URI) can be read here; "
            "pass --data PATH to a local copy"
        )
    return root / text


def read_data(contract: ServiceContract, path: Path, root: Path | None = None) -> pd.DataFrame:
    """The file's rows: the features in contract order, then the label, plus any other columns."""
    if contract.data.reader is not None:
        from pipelines.contract.load import entry_point

        frame = entry_point(contract, contract.data.reader, root)(path)
    else:
        frame = _read_csv(contract, path)
    return coerce(contract, frame, source=str(path))


def _read_csv(contract: ServiceContract, path: Path) -> pd.DataFrame:
    import pandas as pd

    from pipelines.gates.frames import check_field_counts

    fmt = contract.data.format
    if not path.is_file():
        raise BadInputError(f"{path}: no such data file")
    columns = fmt.columns
    check_field_counts(
        path,
        role="data",
        fields=None if columns is None else len(columns),
        layout=None
        if columns is None
        else f"the {contract.name} format ({columns[0]}, ..., {columns[-1]}) has",
        skip_blank=True,
        skipinitialspace=fmt.skip_initial_space,
    )
    try:
        frame: pd.DataFrame = pd.read_csv(
            path,
            header=0 if fmt.header else None,
            names=None if columns is None else list(columns),
            sep=fmt.delimiter,
            skipinitialspace=fmt.skip_initial_space,
            na_values=list(fmt.na_values),
            keep_default_na=True,
            dtype=str,
        )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise BadInputError(f"{path}: cannot read {contract.name} data: {error}") from None
    return frame


def coerce(contract: ServiceContract, frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Check and type a frame against the contract; ``BadInputError`` names the column, row and value."""
    import pandas as pd

    missing = [column for column in (*contract.feature_names, contract.label) if column not in frame.columns]
    if missing:
        raise BadInputError(
            f"{source}: no column(s) {', '.join(missing)}; the contract of {contract.name} needs "
            f"{', '.join(contract.feature_names)} and the label {contract.label!r} "
            f"(the file has: {', '.join(map(str, frame.columns[:20]))})"
        )
    frame = frame.copy()
    missing_marks = set(contract.data.format.na_values)
    if missing_marks:  # a table read without the contract's CSV options still means the same by `?`
        for column in (*contract.feature_names, contract.label):
            values = frame[column]
            if not pd.api.types.is_numeric_dtype(values):
                frame[column] = values.where(~values.astype(str).str.strip().isin(missing_marks), None)
    for column in contract.numeric_features:
        frame[column] = _numbers(frame[column], column, source)
    for column in contract.categorical_features:
        values = frame[column]
        frame[column] = values.where(values.isna(), values.astype(str).str.strip()).astype(object)
    frame = frame[frame[contract.label].notna()]
    if contract.task.is_classification:
        labels = frame[contract.label].astype(str).str.strip()
        allowed = contract.classes or ()
        bad = sorted(set(labels) - set(allowed))
        if bad:
            raise BadInputError(
                f"{source}: column {contract.label!r} has values {bad[:5]}; "
                f"the contract's classes are {', '.join(allowed)}"
            )
        frame[contract.label] = labels
    else:
        frame[contract.label] = _numbers(frame[contract.label], contract.label, source)
    others = [column for column in frame.columns if column not in (*contract.feature_names, contract.label)]
    ordered: pd.DataFrame = frame[[*contract.feature_names, contract.label, *others]].reset_index(drop=True)
    return ordered


def _numbers(values: pd.Series, column: str, source: str) -> pd.Series:
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    unparsable = values[numbers.isna() & values.notna()]
    if not unparsable.empty:
        raise BadInputError(
            f"{source}: column {column!r} has non-numeric value {unparsable.iloc[0]!r} "
            f"(row {int(unparsable.index[0]) + 1}); the contract declares it a number"
        )
    return numbers.astype("float64")
