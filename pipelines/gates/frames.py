"""Reading the gates' input tables (CSV or Parquet) and sorting their columns into kinds.

A ``Table`` hands out one column at a time. Parquet columns are decoded only when asked for, so
the gates hold a few columns in memory rather than two whole tables; CSV has no such layout and is
read at once. Every way a file can be unusable ends in a ``BadInputError`` naming the file and
what is allowed, so the CLI exits 2 with a sentence instead of a traceback. That includes a CSV
row with more or fewer fields than the header (a file cut mid-row, a blank line): polars would pad
a short row with nulls, so the gates would judge values that were never written.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import BadInputError

if TYPE_CHECKING:
    import polars as pl

SUFFIXES = (".csv", ".parquet", ".pq")
CSV_NULLS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL"]
"""Cells read as missing in CSV input (Parquet carries its own nulls)."""


class Kind(StrEnum):
    """How the gates treat a column."""

    NUMERIC = "numeric"
    """Integers and floats (temporal columns are compared as their physical integers)."""
    CATEGORICAL = "categorical"
    """Strings, categoricals, enums and booleans."""


class Table:
    """The columns of one input table, each loaded on demand."""

    def __init__(self, schema: dict[str, pl.DataType], height: int, load: Callable[[str], pl.Series]) -> None:
        self.schema = schema
        self.height = height
        self._load = load

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Table:
        """A table over a frame already in memory (CSV input, tests, the model gate's data)."""
        return cls(dict(frame.schema), frame.height, frame.get_column)

    @property
    def columns(self) -> list[str]:
        return list(self.schema)

    def column(self, name: str) -> pl.Series:
        """One column, decoded now; the caller drops it when done."""
        return self._load(name)

    def frame(self, columns: list[str] | None = None) -> pl.DataFrame:
        """Several columns as one frame (for the few checks that need rows, e.g. leakage)."""
        import polars as pl

        return pl.DataFrame([self.column(name) for name in (columns or self.columns)])


def as_table(data: Table | pl.DataFrame) -> Table:
    """Accept a frame wherever a table is expected."""
    return data if isinstance(data, Table) else Table.from_frame(data)


class RowHasher:
    """Duplicate rows counted from per-column hashes, without holding the table.

    Each column is hashed with its position as the seed and the hashes are XORed together, so
    columns can be added in any order, from any thread. Equal rows always get equal hashes; two
    different rows collide with probability about 2^-64, negligible for duplicate shares.
    """

    def __init__(self, height: int) -> None:
        import threading

        import numpy as np

        self._hashes = np.zeros(height, dtype=np.uint64)
        self._lock = threading.Lock()

    def add(self, series: pl.Series, position: int) -> None:
        hashes = series.hash(seed=position).to_numpy()
        with self._lock:
            self._hashes ^= hashes

    def duplicate_share(self) -> float:
        """Share of rows that repeat an earlier row."""
        import polars as pl

        distinct = pl.Series(self._hashes).n_unique()
        return (self._hashes.size - distinct) / max(self._hashes.size, 1)


def open_table(path: Path, *, role: str = "input") -> Table:
    """Open a CSV (header row required) or Parquet file as a ``Table``."""
    if path.is_file() and path.suffix.lower() in (".parquet", ".pq"):
        return _parquet_table(path, role)
    return Table.from_frame(read_frame(path, role=role))


def _parquet_table(path: Path, role: str) -> Table:
    import polars as pl
    from polars.exceptions import PolarsError

    try:
        schema = dict(pl.read_parquet_schema(path))
        height = int(pl.scan_parquet(path).select(pl.len()).collect().item())
    except (PolarsError, OSError, ValueError) as error:
        raise BadInputError(f"{role} file {path} cannot be read as parquet: {_first_line(error)}") from error
    if not schema:
        raise BadInputError(f"{role} file {path} has no columns")
    if height == 0:
        raise BadInputError(f"{role} file {path} has no rows; the gates need at least one row of data")

    def load(name: str) -> pl.Series:
        try:
            return pl.read_parquet(path, columns=[name]).to_series().rechunk()
        except (PolarsError, OSError, ValueError) as error:
            raise BadInputError(
                f"{role} file {path}: column {name!r} cannot be read: {_first_line(error)}"
            ) from error

    return Table(schema, height, load)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_frame(path: Path, *, role: str = "input") -> pl.DataFrame:
    """Read a CSV (with a header row) or Parquet file; refuse empty and unreadable files."""
    import polars as pl
    from polars.exceptions import PolarsError

    if not path.is_file():
        raise BadInputError(f"{role} file {path} does not exist (expected a .csv or .parquet file)")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BadInputError(
            f"{role} file {path}: unsupported extension {suffix or '(none)'!r}; allowed: {', '.join(SUFFIXES)}"
        )
    try:
        frame = _read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
    except UnicodeDecodeError as error:
        raise _not_utf8(path, role) from error
    except (PolarsError, OSError, ValueError) as error:
        if "utf-8" in str(error).lower() or "utf8" in str(error).lower():
            raise _not_utf8(path, role) from error
        if suffix == ".csv" and _MORE_FIELDS in str(error):
            check_field_counts(path, role=role)
        raise BadInputError(
            f"{role} file {path} cannot be read as {suffix[1:]}: {_first_line(error)}"
        ) from error
    if suffix == ".csv" and frame.width > 1 and frame.get_column(frame.columns[-1]).null_count():
        # A row with too few fields has a null in the last column; only then can one be ragged.
        check_field_counts(path, role=role)
    if frame.width == 0:
        raise BadInputError(f"{role} file {path} has no columns; a header row naming the columns is required")
    if frame.height == 0:
        raise BadInputError(f"{role} file {path} has no rows; the gates need at least one row of data")
    return frame


def _read_csv(path: Path) -> pl.DataFrame:
    """CSV with dtypes inferred from the first 10,000 rows, or from every row if that fails.

    A column whose type changes after row 10,000 (numbers, then text) would otherwise fail to
    parse; reading it again with full inference makes it a text column, which the schema check
    then reports against the reference's dtype.
    """
    import polars as pl
    from polars.exceptions import ComputeError

    try:
        return pl.read_csv(path, null_values=CSV_NULLS, infer_schema_length=10_000, encoding="utf8")
    except ComputeError as error:
        if "utf" in str(error).lower() or _MORE_FIELDS in str(error):
            raise
        return pl.read_csv(path, null_values=CSV_NULLS, infer_schema_length=None, encoding="utf8")


_MORE_FIELDS = "more fields than defined"
"""How polars says a CSV row is longer than the header (it names no line, hence the scan)."""
RAGGED_SHOWN = 5
"""Ragged lines listed by number in the error; the rest are counted."""


def check_field_counts(
    path: Path,
    *,
    role: str,
    fields: int | None = None,
    layout: str | None = None,
    skip_blank: bool = False,
    skipinitialspace: bool = False,
) -> None:
    """Refuse a CSV file in which a row has more or fewer fields than it should (``BadInputError``).

    With ``fields=None`` the first line is the header and sets the count; otherwise the file has
    no header and every row must have ``fields`` fields (``layout`` says whose format that is, for
    the message). Blank lines count as rows of no fields unless ``skip_blank`` (polars reads one
    as a row of nulls; pandas skips it). Fields are counted as the standard library's CSV parser
    counts them (a quoted comma or newline stays inside its field); line numbers are the file's
    physical lines, the header being line 1.
    """
    try:
        scan = _unquoted_field_counts(path, fields, skip_blank)
        if scan is None:
            scan = _quoted_field_counts(path, fields, skip_blank, skipinitialspace, role)
    except UnicodeDecodeError as error:
        raise _not_utf8(path, role) from error
    except OSError as error:
        raise BadInputError(f"{role} file {path} cannot be read: {_first_line(error)}") from error
    expected, shown, ragged = scan
    if not shown or expected is None:
        return
    first_line, count = shown[0]
    found = "is blank" if count == 0 else f"has {count} field{'s' if count != 1 else ''}"
    wanted = layout or "the header (line 1) names"
    more = ""
    if ragged > 1:
        listed = ", ".join(str(number) for number, _ in shown[1:])
        more = f"; {ragged - 1} more ragged line(s): {listed}{', ...' if ragged > len(shown) else ''}"
    raise BadInputError(
        f"{role} file {path}: line {first_line} {found}, but {wanted} {expected} columns{more}. "
        f"Every row needs exactly {expected} comma-separated fields (an empty field is a missing value); "
        "is the file cut short, or was a row written with a missing or extra separator?"
    )


_Scan = tuple[int | None, list[tuple[int, int]], int]
"""The expected field count, the first ragged (line, fields) pairs, and how many lines are ragged."""
_SCAN_CHUNK = 1 << 24


def _unquoted_field_counts(path: Path, fields: int | None, skip_blank: bool) -> _Scan | None:
    """Fields per line as separators + 1, vectorised; ``None`` as soon as a quote appears.

    Without quotes every comma separates and every newline ends a row, so this is exact and
    several times faster than the ``csv`` module (it matters only for big files with nulls).
    """
    import numpy as np

    expected, ragged, line = fields, 0, 1
    shown: list[tuple[int, int]] = []
    carry = b""
    with path.open("rb") as handle:
        while True:
            block = handle.read(_SCAN_CHUNK)
            data = carry + block
            if not block:
                if not data:
                    break
                data += b"\n"  # the last line without its newline
            end = data.rfind(b"\n") + 1
            data, carry = data[:end], data[end:]
            if not data:
                continue
            raw = np.frombuffer(data, dtype=np.uint8)
            if (raw == ord('"')).any():
                return None
            ends = np.flatnonzero(raw == ord("\n"))
            starts = np.concatenate(([0], ends[:-1] + 1))
            commas = np.flatnonzero(raw == ord(","))
            counts = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
            lengths = ends - starts - (raw[np.maximum(ends - 1, 0)] == ord("\r"))
            counts[lengths <= 0] = 0  # a blank line is a row of no fields, as the csv module reads it
            if expected is None:
                expected = int(counts[0])
                counts[0] = expected
            wrong = counts != expected
            if skip_blank:
                wrong &= counts != 0
            bad = np.flatnonzero(wrong)
            ragged += bad.size
            shown += [(line + int(i), int(counts[i])) for i in bad[: RAGGED_SHOWN - len(shown)]]
            line += ends.size
            if not block:
                break
    return expected, shown, ragged


def _quoted_field_counts(
    path: Path, fields: int | None, skip_blank: bool, skipinitialspace: bool, role: str
) -> _Scan:
    """Fields per row by the standard CSV parser: quoted commas and newlines stay in their field."""
    import csv

    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # polars has no field size limit
    expected, ragged, line = fields, 0, 1
    shown: list[tuple[int, int]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, skipinitialspace=skipinitialspace)
        try:
            for record in reader:
                if expected is None:
                    expected = len(record)
                elif len(record) != expected and not (skip_blank and not record):
                    ragged += 1
                    if len(shown) < RAGGED_SHOWN:
                        shown.append((line, len(record)))
                line = reader.line_num + 1
        except csv.Error as error:
            raise BadInputError(f"{role} file {path}: line {line} is not valid CSV: {error}") from None
    return expected, shown, ragged


def _not_utf8(path: Path, role: str) -> BadInputError:
    return BadInputError(
        f"{role} file {path} is not UTF-8 text; re-encode it as UTF-8 "
        f"(for example `iconv -f latin1 -t utf-8 {path.name}`) or supply Parquet"
    )


def column_kind(dtype: pl.DataType) -> Kind:
    """The kind the gates use for a polars dtype."""
    if dtype.is_numeric() or dtype.is_temporal():
        return Kind.NUMERIC
    return Kind.CATEGORICAL


def numeric_values(series: pl.Series) -> pl.Series:
    """A numeric or temporal series as float64 (temporal values as their physical integers)."""
    import polars as pl

    if series.dtype.is_temporal():
        series = series.to_physical()
    return series.cast(pl.Float64)


def workers() -> int:
    """Threads for per-column work: one per core (numpy and polars release the GIL)."""
    import os

    return max(os.cpu_count() or 1, 1)
