"""The UCI Adult data as the gates see it, plus helpers to split and perturb it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.contract.load import load_contract

REPO = Path(__file__).resolve().parents[3]
ADULT = REPO / "data" / "adult" / "adult.data"
COLUMNS = load_contract("adult-income", REPO).data.format.columns or ()
"""The columns of ``adult.data`` in file order, as the service's contract declares them."""

NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
"""Every numeric column of the raw data (the model does not use ``fnlwgt``; the gates check it)."""


@pytest.fixture(scope="session")
def adult() -> pl.DataFrame:
    """All 32,561 rows, ``?`` as missing, numbers as Int64 and categories as strings."""
    frame = pl.read_csv(
        ADULT, has_header=False, new_columns=list(COLUMNS), schema_overrides=dict.fromkeys(COLUMNS, pl.String)
    )
    frame = frame.with_columns(pl.all().str.strip_chars().replace("?", None))
    return frame.with_columns(pl.col(NUMERIC).cast(pl.Int64))


def halves(frame: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two random halves of ``frame``: the same distribution, so no gate may fail on them."""
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
    middle = shuffled.height // 2
    return shuffled.head(middle), shuffled.tail(shuffled.height - middle)
