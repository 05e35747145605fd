"""The reference's profile: its schema plus a fingerprint of its distributions.

Inferred from the reference (normally the training data) in one pass, and pinnable as a YAML
file (``modelrail gate schema``), so later data can be validated against the training data
without the training data itself: dtypes, allowed categories and numeric ranges form the schema;
missing shares, decile edges with their shares and category shares form the fingerprint that
skew is measured against.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from infra.config import ConfigIssue
from pipelines.errors import BadInputError
from pipelines.gates.columns import ColumnValues, prepare
from pipelines.gates.frames import Kind, RowHasher, Table, as_table, workers
from pipelines.gates.statistics import PSI_BINS

if TYPE_CHECKING:
    import polars as pl

OTHER = "__other__"
"""The pooled bucket for categories beyond the profile's most frequent ones."""
PROFILE_FORMAT = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnProfile(_Model):
    """One column of the reference: its schema and its distribution."""

    name: str
    kind: Kind
    dtype: str
    """The polars dtype the reference was read with, e.g. ``Int64`` or ``String``."""
    missing_share: float
    minimum: float | None = None
    """Numeric columns: the smallest and largest reference values (the schema's range)."""
    maximum: float | None = None
    edges: tuple[float, ...] = ()
    """Numeric columns: interior decile edges of the reference (bins are right-closed)."""
    categories: tuple[str, ...] = ()
    """Categorical columns: the most frequent categories, most frequent first."""
    shares: tuple[float, ...] = ()
    """Share of non-missing reference values per bin (numeric) or per category followed by the
    pooled other bucket (categorical)."""
    closed_domain: bool = True
    """Categorical columns: every reference category is listed, so anything else is out of domain."""
    distinct: int = 0
    """Categorical columns: distinct non-missing values in the reference."""


class Profile(_Model):
    """The pinned schema and fingerprint of a reference table."""

    format: int = PROFILE_FORMAT
    rows: int
    duplicate_share: float
    columns: tuple[ColumnProfile, ...]

    def column(self, name: str) -> ColumnProfile | None:
        return next((column for column in self.columns if column.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


def infer_profile(
    reference: Table | pl.DataFrame, *, max_categories: int = 200, bins: int = PSI_BINS
) -> Profile:
    """Profile every column of the reference, one column per task."""
    from concurrent.futures import ThreadPoolExecutor

    table = as_table(reference)
    rows = RowHasher(table.height)

    def profile(position: int, name: str) -> ColumnProfile:
        series = table.column(name)
        rows.add(series, position)
        return profile_column(prepare(series), max_categories, bins)

    with ThreadPoolExecutor(max_workers=workers()) as pool:
        columns = tuple(pool.map(profile, range(len(table.columns)), table.columns))
    return Profile(rows=table.height, duplicate_share=rows.duplicate_share(), columns=columns)


def profile_column(column: ColumnValues, max_categories: int, bins: int = PSI_BINS) -> ColumnProfile:
    """Schema and fingerprint of one prepared reference column."""
    import numpy as np

    from pipelines.gates.statistics import quantile_edges, sorted_bin_shares

    common: dict[str, Any] = {
        "name": column.name,
        "kind": column.kind,
        "dtype": column.dtype,
        "missing_share": column.missing / max(column.rows, 1),
    }
    if column.kind is Kind.NUMERIC:
        values = column.sorted
        if values.size == 0:
            return ColumnProfile(**common)
        edges = quantile_edges(values, bins)
        return ColumnProfile(
            **common,
            minimum=float(values[0]),
            maximum=float(values[-1]),
            edges=tuple(float(edge) for edge in edges),
            shares=tuple(float(share) for share in sorted_bin_shares(values, np.asarray(edges))),
        )
    counts = column.counts
    total = max(int(counts["count"].sum()), 1)
    top = counts.head(max_categories)
    other = total - int(top["count"].sum())
    return ColumnProfile(
        **common,
        categories=tuple(str(value) for value in top["value"]),
        shares=(*(int(count) / total for count in top["count"]), other / total),
        closed_domain=counts.height <= max_categories,
        distinct=counts.height,
    )


def save_profile(profile: Profile, path: Path) -> None:
    """Write a profile as YAML (or JSON for a ``.json`` path), keys in a stable order."""
    import json

    from ruamel.yaml import YAML

    data = profile.model_dump(mode="json")
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return
    yaml = YAML(typ="safe")
    yaml.default_flow_style = None
    with path.open("w", encoding="utf-8") as handle:
        handle.write("# Pinned schema and fingerprint of the reference data (modelrail gate schema).\n")
        yaml.dump(data, handle)


def load_profile(path: Path) -> Profile:
    """Read a pinned profile; every problem is reported with the file and key path."""
    from pipelines.yamlfile import read_yaml_file

    document = read_yaml_file(path, "schema file")
    try:
        return Profile.model_validate(document)
    except ValidationError as error:
        issues = [
            ConfigIssue(
                str(path),
                ".".join(str(part) for part in item["loc"]) or "<document>",
                item.get("input"),
                str(item["msg"]),
            )
            for item in error.errors()
        ]
        raise BadInputError(
            f"schema file {path}: {len(issues)} problem(s); write it with `modelrail gate schema`",
            details=[str(issue) for issue in issues],
        ) from None
