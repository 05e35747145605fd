"""Label leakage for a regression label (split at its median) and a multiclass one (one class
against the rest), told the task or inferring it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.contract.tasks import Task
from pipelines.gates.checks import Check
from pipelines.gates.combined import data_and_drift
from pipelines.gates.leakage import CLASS_LIMIT, leakage_checks
from pipelines.gates.policy import load_policy
from tests.unit.gates.conftest import REPO

POLICY = load_policy(stage="candidate")
DIABETES = REPO / "data" / "diabetes" / "diabetes.csv"


@pytest.fixture(scope="module")
def diabetes() -> pl.DataFrame:
    from pipelines.gates.frames import read_frame

    return read_frame(DIABETES)


def leaks(checks: list[Check]) -> dict[str | None, Check]:
    return {c.column: c for c in checks}


@pytest.mark.parametrize("task", [Task.regression, None])
def test_a_regression_label_is_split_at_its_median_and_honest_features_pass(
    diabetes: pl.DataFrame, task: Task | None
) -> None:
    assert diabetes["progression"].n_unique() > CLASS_LIMIT  # inferred as a number, not 200 classes
    checks = leakage_checks(diabetes, "progression", POLICY.data, task=task)
    assert len(checks) == len(diabetes.columns) - 1
    assert all(c.passed for c in checks), [c.to_json() for c in checks if not c.passed]
    assert {c.method for c in checks} == {"roc_auc"}  # no function-of-label test for a number
    assert all("above its median (140.5)" in c.detail for c in checks)


def test_a_copy_and_a_noisy_proxy_of_a_regression_label_are_caught(diabetes: pl.DataFrame) -> None:
    noise = pl.Series(np.random.default_rng(0).normal(0, 1.0, diabetes.height))
    leaked = diabetes.with_columns(
        (pl.col("progression") * 2 + 1).alias("doubled"), (pl.col("progression") + noise).alias("measured")
    )
    checks = leaks(leakage_checks(leaked, "progression", POLICY.data, task=Task.regression))
    failed = {column for column, check in checks.items() if check.passed is False}
    assert failed == {"doubled", "measured"}
    assert checks["doubled"].statistic == 1.0


def test_a_regression_label_is_judged_as_its_task_in_the_stage_pass(diabetes: pl.DataFrame) -> None:
    """Told the task, the combined data gate does not mistake a small sample's label for classes."""
    sample = diabetes.head(15).with_columns(pl.col("bmi").alias("bmi_copy"))
    assert sample["progression"].n_unique() <= CLASS_LIMIT
    data, _ = data_and_drift(sample, sample, POLICY, label="progression", task=Task.regression)
    methods = {c.method for c in data.checks if c.name == "data.leakage"}
    assert methods == {"roc_auc"}
    inferred, _ = data_and_drift(sample, sample, POLICY, label="progression")
    assert "function_of_label" in {c.method for c in inferred.checks if c.name == "data.leakage"}


def test_a_multiclass_label_is_checked_one_class_against_the_rest() -> None:
    rng = np.random.default_rng(1)
    species = rng.choice(["setosa", "versicolor", "virginica"], 600)
    honest = rng.normal(0, 1, species.size)
    # Gives setosa away (its rows score far above the others) but says nothing about the other two.
    telltale = np.where(species == "setosa", 10.0, 0.0) + rng.normal(0, 1, species.size)
    frame = pl.DataFrame({"honest": honest, "telltale": telltale, "species": species})
    checks = leaks(leakage_checks(frame, "species", POLICY.data))
    assert checks["honest"].passed is True
    telltale_check = checks["telltale"]
    assert telltale_check.passed is False and telltale_check.method == "roc_auc"
    assert "class 'setosa' against the rest" in telltale_check.detail


def test_a_multiclass_label_re_encoded_is_a_function_of_the_label() -> None:
    species = np.random.default_rng(2).choice(["a", "b", "c"], 300)
    codes = np.searchsorted(["a", "b", "c"], species)
    frame = pl.DataFrame({"code": codes, "species": species})
    [check] = leakage_checks(frame, "species", POLICY.data, task=Task.multiclass)
    assert (check.column, check.method, check.passed) == ("code", "function_of_label", False)
