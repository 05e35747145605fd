"""Reading the gates' input tables (CSV or Parquet) and sorting their columns into kinds.

A ``Table`` hands out one column at a time. Parquet columns are decoded only when asked for, so
the gates hold a few columns in memory rather than two whole tables; CSV has no such layout and is
read at once. Every way a file can be unusable ends in a ``BadInputError`` naming the file and
what is allowed, so the CLI exits 2 with a sentence instead of a traceback.
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
        raise BadInputError(
            f"{role} file {path} cannot be read as {suffix[1:]}: {_first_line(error)}"
        ) from error
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
        if "utf" in str(error).lower():
            raise
        return pl.read_csv(path, null_values=CSV_NULLS, infer_schema_length=None, encoding="utf8")


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
