"""The data gate on Adult: random halves pass; each controlled defect fails on its own column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.errors import BadInputError
from pipelines.gates.policy import load_policy
from pipelines.gates.profile import infer_profile, load_profile, save_profile
from pipelines.gates.validation import validate_data
from tests.unit.gates.conftest import halves

POLICY = load_policy(stage="candidate").data


def failing(report: object) -> set[tuple[str, str | None]]:
    return {(c.name, c.column) for c in report.failures}  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [11, 12])
def test_two_random_halves_of_adult_pass_with_the_label(adult: pl.DataFrame, seed: int) -> None:
    reference, current = halves(adult, seed)
    report = validate_data(infer_profile(reference), current, POLICY, label="income")
    assert report.passed, [c.to_json() for c in report.failures]
    leakage = [c for c in report.checks if c.name == "data.leakage"]
    assert len(leakage) == 14 and all(c.passed for c in leakage)


def test_a_leaked_label_column_is_caught_by_name(adult: pl.DataFrame) -> None:
    _, current = halves(adult, 13)
    leaked = current.with_columns((pl.col("income") == ">50K").cast(pl.Int64).alias("target_copy"))
    report = validate_data(infer_profile(leaked), leaked, POLICY, label="income")
    [check] = [c for c in report.failures if c.name == "data.leakage"]
    assert check.column == "target_copy" and check.method == "function_of_label"


def test_a_noisy_numeric_proxy_of_the_label_is_caught_by_its_auc(adult: pl.DataFrame) -> None:
    rng = np.random.default_rng(0)
    noise = pl.Series(rng.normal(0, 0.05, adult.height))
    leaked = adult.with_columns(((pl.col("income") == ">50K").cast(pl.Float64) + noise).alias("score"))
    report = validate_data(infer_profile(leaked), leaked, POLICY, label="income")
    [check] = [c for c in report.failures if c.name == "data.leakage"]
    assert (check.column, check.method) == ("score", "roc_auc")
    assert check.statistic is not None and check.statistic >= 0.99


def test_injected_missing_values_fail_on_their_column(adult: pl.DataFrame) -> None:
    reference, current = halves(adult, 14)
    holes = pl.Series(np.random.default_rng(1).random(current.height) < 0.2)
    damaged = current.with_columns(
        pl.when(holes).then(None).otherwise(pl.col("hours-per-week")).alias("hours-per-week")
    )
    report = validate_data(infer_profile(reference), damaged, POLICY)
    assert failing(report) == {("data.missing", "hours-per-week")}
    check = report.failures[0]
    assert check.statistic is not None and 0.17 < check.statistic < 0.23


def test_values_outside_the_schema_fail_range_and_domain(adult: pl.DataFrame) -> None:
    reference, current = halves(adult, 15)
    damaged = current.with_columns(
        pl.when(pl.int_range(pl.len()) < 100).then(pl.lit(150)).otherwise(pl.col("age")).alias("age"),
        pl.when(pl.int_range(pl.len()) < 100).then(pl.lit("Martian")).otherwise(pl.col("race")).alias("race"),
    )
    report = validate_data(infer_profile(reference), damaged, POLICY)
    assert {("data.range", "age"), ("data.domain", "race")} <= failing(report)
    domain = next(c for c in report.failures if c.name == "data.domain")
    assert "'Martian'" in domain.detail


def test_a_column_that_became_constant_fails(adult: pl.DataFrame) -> None:
    reference, current = halves(adult, 16)
    report = validate_data(
        infer_profile(reference), current.with_columns(pl.lit("Male").alias("sex")), POLICY
    )
    assert ("data.constant", "sex") in failing(report)


def test_duplicated_rows_fail_the_table(adult: pl.DataFrame) -> None:
    reference, current = halves(adult, 17)
    doubled = pl.concat([current, current.head(2000)])
    report = validate_data(infer_profile(reference), doubled, POLICY)
    assert ("data.duplicates", None) in failing(report)


def test_skew_against_the_training_fingerprint_names_the_column(adult: pl.DataFrame) -> None:
    reference, current = halves(adult, 18)
    older = current.with_columns(pl.col("age") + 15)
    report = validate_data(infer_profile(reference), older, POLICY)
    assert ("data.skew", "age") in failing(report)


def test_missing_extra_and_mistyped_columns_are_reported_by_name(adult: pl.DataFrame) -> None:
    reference, current = halves(adult, 19)
    changed = current.drop("education").with_columns(
        pl.lit("x").alias("surprise"), pl.col("age").cast(pl.String).alias("age")
    )
    report = validate_data(infer_profile(reference), changed, POLICY)
    assert {("data.columns", "education"), ("data.columns", "surprise"), ("data.dtype", "age")} <= failing(
        report
    )


def test_an_all_missing_column_fails_its_missing_check_only(adult: pl.DataFrame) -> None:
    reference, current = halves(adult, 20)
    empty = current.with_columns(pl.lit(None, dtype=pl.Int64).alias("capital-gain"))
    report = validate_data(infer_profile(reference), empty, POLICY)
    assert failing(report) == {("data.missing", "capital-gain")}


def test_a_pinned_schema_round_trips_and_validates_the_same_way(adult: pl.DataFrame, tmp_path: Path) -> None:
    reference, current = halves(adult, 21)
    profile = infer_profile(reference)
    for name in ("schema.yaml", "schema.json"):
        save_profile(profile, tmp_path / name)
        assert load_profile(tmp_path / name) == profile
    assert validate_data(load_profile(tmp_path / "schema.yaml"), current, POLICY).passed


def test_a_broken_schema_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("rows: many\nduplicate_share: 0\ncolumns: []\n", encoding="utf-8")
    with pytest.raises(BadInputError) as caught:
        load_profile(path)
    assert any("rows" in detail and '"many"' in detail for detail in caught.value.details)


def test_a_label_that_is_not_there_is_bad_input(adult: pl.DataFrame) -> None:
    with pytest.raises(BadInputError, match="'salary'"):
        validate_data(infer_profile(adult), adult, POLICY, label="salary")
