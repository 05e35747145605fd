"""One pass over the columns gives exactly the reports of the data and drift gates run apart."""

from __future__ import annotations

import polars as pl

from pipelines.gates.combined import data_and_drift
from pipelines.gates.drift import detect_drift
from pipelines.gates.policy import load_policy
from pipelines.gates.profile import infer_profile
from pipelines.gates.validation import validate_data
from tests.unit.gates.conftest import halves

POLICY = load_policy(stage="candidate")


def test_the_combined_pass_equals_the_separate_gates(adult: pl.DataFrame) -> None:
    reference, current = halves(adult, 41)
    current = current.drop("education").with_columns(pl.col("age") + 5, pl.lit(1).alias("extra"))
    data, drift = data_and_drift(reference, current, POLICY, label="income")
    assert (
        data.to_json()
        == validate_data(
            infer_profile(reference, max_categories=POLICY.data.max_categories),
            current,
            POLICY.data,
            label="income",
        ).to_json()
    )
    assert drift.to_json() == detect_drift(reference, current, POLICY.drift).to_json()
    assert ("drift.wasserstein", "age") in {(c.name, c.column) for c in drift.failures}
    assert {("data.columns", "education"), ("data.columns", "extra")} <= {
        (c.name, c.column) for c in data.failures
    }
