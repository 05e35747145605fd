"""Model metrics equal scikit-learn's for every task; the model gate catches regressions and unfair models."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk
from sklearn.calibration import calibration_curve

from pipelines.contract.load import load_contract
from pipelines.contract.tasks import METRIC_DIRECTIONS, Task
from pipelines.gates.metrics import (
    binary_metrics,
    expected_calibration_error,
    fairness_gaps,
    multiclass_metrics,
    regression_metrics,
    slice_gaps,
)
from pipelines.gates.model_gate import NO_BASELINE_NOTE, ModelOutput, evaluate_model
from pipelines.gates.policy import MetricRule, ModelPolicy, load_policy
from pipelines.gates.report import GateReport
from tests.unit.gates.conftest import REPO

POLICY = load_policy(stage="candidate").model
ADULT_RULES = load_contract("adult-income", REPO).metric_rules("candidate")
BINARY = ModelOutput(Task.binary, "income", ("<=50K", ">50K"), ">50K")
MULTICLASS = ModelOutput(Task.multiclass, "species", ("c", "a", "b"))
REGRESSION = ModelOutput(Task.regression, "progression")
ADULT_SENSITIVE = ("sex", "race")


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 400), st.integers(0, 2**32 - 1), st.sampled_from([0.3, 0.5, 0.7]))
def test_binary_metrics_equal_scikit_learn(size: int, seed: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, size)
    truth[:2] = [0, 1]
    # Rounded scores force ties; exact 0 and 1 exercise the clipping in log loss.
    scores = np.round(np.clip(truth * 0.3 + rng.random(size) * 0.7, 0, 1), 2)
    ours = binary_metrics(truth, scores, threshold=threshold)
    predicted = (scores >= threshold).astype(int)
    assert set(ours) == set(METRIC_DIRECTIONS[Task.binary])
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted), abs=1e-12)
    assert ours["f1"] == pytest.approx(sk.f1_score(truth, predicted, zero_division=0), abs=1e-12)
    assert ours["roc_auc"] == pytest.approx(sk.roc_auc_score(truth, scores), abs=1e-12)
    assert ours["log_loss"] == pytest.approx(sk.log_loss(truth, scores, labels=[0, 1]), abs=1e-12)
    assert ours["brier"] == pytest.approx(sk.brier_score_loss(truth, scores), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 300), st.integers(0, 2**32 - 1))
def test_multiclass_metrics_equal_scikit_learn_in_any_class_order(size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = list(MULTICLASS.classes)  # not sorted: the columns follow the schema's order
    truth = np.array(classes)[rng.integers(0, 3, size)]
    truth[:3] = classes
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], size)
    ours, by_class = multiclass_metrics(truth, probabilities, classes, min_class_rows=1)
    predicted = np.array(classes)[probabilities.argmax(axis=1)]
    in_sorted_order = probabilities[:, np.argsort(classes)]
    assert set(ours) == set(METRIC_DIRECTIONS[Task.multiclass])
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted), abs=1e-12)
    assert ours["macro_f1"] == pytest.approx(
        sk.f1_score(truth, predicted, average="macro", labels=classes, zero_division=0), abs=1e-12
    )
    assert ours["log_loss"] == pytest.approx(
        sk.log_loss(truth, in_sorted_order, labels=sorted(classes)), abs=1e-12
    )
    for index, name in enumerate(classes):
        member = (truth == name).astype(int)
        assert by_class[name] == pytest.approx(expected_calibration_error(member, probabilities[:, index]))
    assert ours["ece"] == max(value for value in by_class.values() if value is not None)


def test_a_class_with_too_few_rows_has_no_calibration_error_and_does_not_count() -> None:
    truth = np.array(["a"] * 60 + ["b"] * 60 + ["c"] * 5)
    probabilities = np.tile([0.2, 0.3, 0.5], (truth.size, 1))  # c gets 0.5 with 4% of rows: miscalibrated
    values, by_class = multiclass_metrics(truth, probabilities, ["a", "b", "c"], min_class_rows=30)
    assert by_class["c"] is None and by_class["a"] is not None and by_class["b"] is not None
    assert values["ece"] == max(by_class["a"], by_class["b"])
    values, by_class = multiclass_metrics(truth, probabilities, ["a", "b", "c"], min_class_rows=200)
    assert values["ece"] is None and set(by_class.values()) == {None}


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 300), st.integers(0, 2**32 - 1))
def test_regression_metrics_equal_scikit_learn(size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.normal(150, 50, size)
    predicted = truth + rng.normal(0, 30, size)
    ours = regression_metrics(truth, predicted)
    assert set(ours) == set(METRIC_DIRECTIONS[Task.regression])
    assert ours["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(truth, predicted)), abs=1e-9)
    assert ours["mae"] == pytest.approx(sk.mean_absolute_error(truth, predicted), abs=1e-12)
    assert ours["r2"] == pytest.approx(sk.r2_score(truth, predicted), abs=1e-12)


def test_metrics_undefined_on_the_rows_are_none_not_nan() -> None:
    assert binary_metrics([1, 1, 1], [0.2, 0.6, 0.9])["roc_auc"] is None
    assert regression_metrics([3.0], [2.0])["r2"] is None


def test_expected_calibration_error_of_a_calibrated_and_a_miscalibrated_model() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(200_000)
    calibrated = (rng.random(scores.size) < scores).astype(int)
    assert expected_calibration_error(calibrated, scores) < 0.01
    overconfident = np.clip(scores * 1.6 - 0.3, 0, 1)
    ece = expected_calibration_error(calibrated, overconfident)
    expected = 0.0
    for low in np.arange(10) / 10:
        member = (overconfident > low) & (overconfident <= low + 0.1) | ((low == 0) & (overconfident == 0))
        if member.any():
            expected += member.mean() * abs(overconfident[member].mean() - calibrated[member].mean())
    assert ece > 0.05 and abs(ece - expected) < 1e-9
    # The bins and their means are scikit-learn's: the unweighted gap is calibration_curve's.
    positive_rate, mean_score = calibration_curve(calibrated, overconfident, n_bins=10)
    assert ece <= np.abs(positive_rate - mean_score).max()


def adult_like_scores(
    adult: pl.DataFrame, *, unfair_to: str | None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Adult's labels and the calibrated scores of a decent model (accuracy about 0.88, ROC AUC
    about 0.92), optionally halving one slice's scores so that its positives are missed."""
    rng = np.random.default_rng(seed)
    truth = (adult["income"] == ">50K").to_numpy().astype(int)
    signal = 2.0 * truth + rng.normal(0, 1, truth.size)
    bins = np.searchsorted(np.quantile(signal, np.linspace(0, 1, 41)[1:-1]), signal)
    scores = (np.bincount(bins, weights=truth) / np.bincount(bins))[bins]
    if unfair_to is not None:
        member = (adult["sex"] == unfair_to).to_numpy()
        scores[member] *= 0.5
    return truth, scores


def sensitive(adult: pl.DataFrame) -> dict[str, list[str | None]]:
    return {"sex": adult["sex"].to_list(), "race": adult["race"].to_list()}


def binary_gate(
    truth: np.ndarray, scores: np.ndarray, adult: pl.DataFrame, baseline: np.ndarray | None = None
) -> GateReport:
    """The model gate under adult-income's own candidate rules, comparing slices of sex and race."""
    return evaluate_model(
        truth,
        scores,
        ADULT_RULES,
        POLICY,
        output=BINARY,
        sensitive=sensitive(adult),
        sensitive_columns=ADULT_SENSITIVE,
        baseline=baseline,
    )


def test_a_model_unfair_to_one_slice_fails_fairness_on_that_column(adult: pl.DataFrame) -> None:
    truth, scores = adult_like_scores(adult, unfair_to="Female")
    report = binary_gate(truth, scores, adult)
    failing = {(c.name, c.column, c.method) for c in report.failures}
    assert ("model.fairness", "sex", "equal_opportunity_difference") in failing
    assert {column for _, column, _ in failing if column} == {"sex"}
    check = next(c for c in report.failures if c.method == "equal_opportunity_difference")
    assert "Female" in check.detail and "Male" in check.detail


def test_a_fair_model_passes_the_services_rules_and_the_first_version_says_it_has_no_baseline(
    adult: pl.DataFrame,
) -> None:
    truth, scores = adult_like_scores(adult, unfair_to=None)
    report = binary_gate(truth, scores, adult)
    assert report.passed, [c.to_json() for c in report.failures]
    assert report.notes == (NO_BASELINE_NOTE,)
    assert not [c for c in report.checks if c.name == "model.regression"]
    assert any(c.name == "model.baseline" and c.passed is None for c in report.checks)
    # The bounds are adult-income's own (its contract), not a platform default.
    accuracy = next(c for c in report.checks if c.name == "model.metric" and c.method == "accuracy")
    assert accuracy.threshold == ADULT_RULES["accuracy"].min == 0.80
    assert report.subject["task"] == "binary_classification"


def test_a_regression_against_the_baseline_fails_in_the_metrics_worse_direction(adult: pl.DataFrame) -> None:
    truth, baseline = adult_like_scores(adult, unfair_to=None, seed=1)
    rng = np.random.default_rng(2)
    candidate = np.clip(baseline + rng.normal(0, 0.25, baseline.size), 0, 1)
    report = binary_gate(truth, candidate, adult, baseline=baseline)
    regressions = {c.method for c in report.failures if c.name == "model.regression"}
    assert {"accuracy", "roc_auc", "log_loss", "brier"} <= regressions
    assert report.notes == ()


def test_an_improvement_never_counts_as_a_regression(adult: pl.DataFrame) -> None:
    truth, better = adult_like_scores(adult, unfair_to=None, seed=3)
    worse = np.clip(better + np.random.default_rng(4).normal(0, 0.25, better.size), 0, 1)
    report = binary_gate(truth, better, adult, baseline=worse)
    regression = [c for c in report.checks if c.name == "model.regression"]
    assert regression and all(c.passed for c in regression)
    assert all(c.statistic is not None and c.statistic < 0 for c in regression if c.method != "ece")


def test_relative_change_thresholds_scale_with_the_baseline() -> None:
    rules = {"log_loss": MetricRule(max_regression=0.10, relative=True)}
    truth = np.array([0, 1] * 500)
    baseline = np.where(truth == 1, 0.8, 0.2)
    candidate = np.where(truth == 1, 0.77, 0.23)  # log loss 0.261 vs 0.223: 17% worse
    report = evaluate_model(truth, candidate, rules, POLICY, output=BINARY, baseline=baseline)
    [check] = [c for c in report.checks if c.name == "model.regression"]
    assert check.threshold is not None and abs(check.threshold - 0.1 * 0.2231435513) < 1e-9
    assert check.passed is False


def test_small_slices_are_listed_but_not_compared() -> None:
    truth = np.array([1, 0] * 100 + [1, 0])
    scores = np.array([0.9, 0.1] * 100 + [0.1, 0.9])
    groups = ["big"] * 200 + ["tiny"] * 2
    [gaps] = fairness_gaps(truth, scores, {"group": groups}, min_slice_size=50)
    assert gaps.skipped == ("tiny",)
    assert gaps.demographic_parity_difference is None  # only one comparable slice


def test_a_sensitive_column_missing_from_the_data_fails_by_name() -> None:
    truth = np.array([0, 1] * 100)
    report = evaluate_model(
        truth,
        truth * 0.8 + 0.1,
        {},
        POLICY,
        output=BINARY,
        sensitive={"sex": ["a", "b"] * 100},
        sensitive_columns=ADULT_SENSITIVE,
    )
    assert ("model.fairness", "race") in {(c.name, c.column) for c in report.failures}


def test_a_multiclass_model_is_judged_on_its_metrics_and_on_the_accuracy_gap_between_slices() -> None:
    rng = np.random.default_rng(5)
    classes = np.array(MULTICLASS.classes)
    truth = classes[rng.integers(0, 3, 900)]
    group = np.array(["x", "y"])[rng.integers(0, 2, truth.size)]
    good = np.where(truth[:, None] == classes[None, :], 0.8, 0.1)
    unfair = good.copy()
    unfair[group == "y"] = np.roll(good[group == "y"], 1, axis=1)  # always wrong on slice y
    rules = {"accuracy": MetricRule(min=0.9, max_regression=0.01), "macro_f1": MetricRule(min=0.9)}
    fair = evaluate_model(
        truth,
        good,
        rules,
        POLICY,
        output=MULTICLASS,
        sensitive={"g": group.tolist()},
        sensitive_columns=["g"],
    )
    assert fair.passed, [c.to_json() for c in fair.failures]
    assert set(fair.subject["calibration_by_class"]["candidate"]) == set(MULTICLASS.classes)
    [gap] = [c for c in fair.checks if c.name == "model.fairness"]
    assert gap.method == "accuracy_difference" and gap.statistic == 0.0
    report = evaluate_model(
        truth,
        unfair,
        rules,
        POLICY,
        output=MULTICLASS,
        sensitive={"g": group.tolist()},
        sensitive_columns=["g"],
        baseline=good,
    )
    failing = {(c.name, c.method) for c in report.failures}
    wanted = {("model.metric", "accuracy"), ("model.regression", "accuracy")}
    assert wanted | {("model.fairness", "accuracy_difference")} <= failing
    [gap] = [c for c in report.failures if c.name == "model.fairness"]
    assert gap.column == "g" and gap.statistic == pytest.approx(1.0) and gap.threshold == 0.1


def test_a_regression_models_mae_gap_is_reported_and_fails_only_with_a_bound() -> None:
    rng = np.random.default_rng(6)
    truth = rng.normal(150, 50, 600)
    group = np.array(["1", "2"])[rng.integers(0, 2, truth.size)]
    predicted = truth + np.where(group == "2", 40.0, 5.0)
    [gap] = slice_gaps("mae", truth, predicted, {"sex": group.tolist()})
    assert gap.difference == pytest.approx(35.0)
    report = evaluate_model(
        truth,
        predicted,
        {"mae": MetricRule(max=50.0)},
        POLICY,
        output=REGRESSION,
        sensitive={"sex": group.tolist()},
        sensitive_columns=["sex"],
    )
    [check] = [c for c in report.checks if c.name == "model.fairness"]
    assert check.method == "mae_difference" and check.passed is None and "reported only" in check.detail
    assert report.passed
    bounded = ModelPolicy.model_validate({"fairness": {"maxMaeDifference": 10.0}})
    report = evaluate_model(
        truth,
        predicted,
        {},
        bounded,
        output=REGRESSION,
        sensitive={"sex": group.tolist()},
        sensitive_columns=["sex"],
    )
    assert [(c.name, c.column) for c in report.failures] == [("model.fairness", "sex")]


def test_rules_for_metrics_of_another_task_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="roc_auc"):
        evaluate_model([1.0, 2.0], [1.0, 2.5], {"roc_auc": MetricRule(min=0.5)}, POLICY, output=REGRESSION)
