"""Model metrics equal scikit-learn's; the model gate catches regressions and an unfair model."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from pipelines.gates.metrics import classification_metrics, fairness_gaps
from pipelines.gates.model_gate import NO_BASELINE_NOTE, evaluate_model
from pipelines.gates.policy import ModelPolicy, load_policy

POLICY = load_policy(stage="candidate").model


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 400), st.integers(0, 2**32 - 1), st.sampled_from([0.3, 0.5, 0.7]))
def test_metrics_equal_scikit_learn(size: int, seed: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, size)
    truth[:2] = [0, 1]
    # Rounded scores force ties; exact 0 and 1 exercise the clipping in log loss.
    scores = np.round(np.clip(truth * 0.3 + rng.random(size) * 0.7, 0, 1), 2)
    ours = classification_metrics(truth, scores, threshold=threshold)
    predicted = (scores >= threshold).astype(int)
    assert abs(ours["accuracy"] - sk.accuracy_score(truth, predicted)) <= 1e-12
    assert abs(ours["f1"] - sk.f1_score(truth, predicted, zero_division=0)) <= 1e-12
    assert abs(ours["roc_auc"] - sk.roc_auc_score(truth, scores)) <= 1e-9
    assert abs(ours["log_loss"] - sk.log_loss(truth, scores, labels=[0, 1])) <= 1e-9
    assert abs(ours["brier"] - sk.brier_score_loss(truth, scores)) <= 1e-12


def test_expected_calibration_error_of_a_calibrated_and_a_miscalibrated_model() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(200_000)
    calibrated = (rng.random(scores.size) < scores).astype(int)
    assert classification_metrics(calibrated, scores)["ece"] < 0.01
    overconfident = np.clip(scores * 1.6 - 0.3, 0, 1)
    ece = classification_metrics(calibrated, overconfident)["ece"]
    expected = 0.0
    for low in np.arange(10) / 10:
        member = (overconfident > low) & (overconfident <= low + 0.1) | ((low == 0) & (overconfident == 0))
        if member.any():
            expected += member.mean() * abs(overconfident[member].mean() - calibrated[member].mean())
    assert ece > 0.05 and abs(ece - expected) < 1e-9


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


def test_a_model_unfair_to_one_slice_fails_fairness_on_that_column(adult: pl.DataFrame) -> None:
    truth, scores = adult_like_scores(adult, unfair_to="Female")
    report = evaluate_model(truth, scores, POLICY, sensitive=sensitive(adult))
    failing = {(c.name, c.column, c.method) for c in report.failures}
    assert ("model.fairness", "sex", "equal_opportunity_difference") in failing
    assert {column for _, column, _ in failing if column} == {"sex"}
    check = next(c for c in report.failures if c.method == "equal_opportunity_difference")
    assert "Female" in check.detail and "Male" in check.detail


def test_a_fair_model_passes_and_the_first_version_says_it_has_no_baseline(adult: pl.DataFrame) -> None:
    truth, scores = adult_like_scores(adult, unfair_to=None)
    report = evaluate_model(truth, scores, POLICY, sensitive=sensitive(adult))
    assert report.passed, [c.to_json() for c in report.failures]
    assert report.notes == (NO_BASELINE_NOTE,)
    assert not [c for c in report.checks if c.name == "model.regression"]
    assert any(c.name == "model.baseline" and c.passed is None for c in report.checks)


def test_a_regression_against_the_baseline_fails_in_the_metrics_worse_direction(adult: pl.DataFrame) -> None:
    truth, baseline = adult_like_scores(adult, unfair_to=None, seed=1)
    rng = np.random.default_rng(2)
    candidate = np.clip(baseline + rng.normal(0, 0.25, baseline.size), 0, 1)
    report = evaluate_model(truth, candidate, POLICY, sensitive=sensitive(adult), baseline_scores=baseline)
    regressions = {c.method for c in report.failures if c.name == "model.regression"}
    assert {"accuracy", "roc_auc", "log_loss", "brier"} <= regressions
    assert report.notes == ()


def test_an_improvement_never_counts_as_a_regression(adult: pl.DataFrame) -> None:
    truth, better = adult_like_scores(adult, unfair_to=None, seed=3)
    worse = np.clip(better + np.random.default_rng(4).normal(0, 0.25, better.size), 0, 1)
    report = evaluate_model(truth, better, POLICY, sensitive=sensitive(adult), baseline_scores=worse)
    regression = [c for c in report.checks if c.name == "model.regression"]
    assert regression and all(c.passed for c in regression)
    assert all(c.statistic is not None and c.statistic < 0 for c in regression if c.method != "ece")


def test_relative_change_thresholds_scale_with_the_baseline() -> None:
    policy = ModelPolicy.model_validate(
        {
            "metrics": {"log_loss": {"maxRegression": 0.10, "relative": True}},
            "fairness": {"sensitiveColumns": []},
        }
    )
    truth = np.array([0, 1] * 500)
    baseline = np.where(truth == 1, 0.8, 0.2)
    candidate = np.where(truth == 1, 0.77, 0.23)  # log loss 0.261 vs 0.223: 17% worse
    [check] = [c for c in evaluate_model(truth, candidate, policy, baseline_scores=baseline).checks
               if c.name == "model.regression"]  # fmt: skip
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
    report = evaluate_model(truth, truth * 0.8 + 0.1, POLICY, sensitive={"sex": ["a", "b"] * 100})
    assert ("model.fairness", "race") in {(c.name, c.column) for c in report.failures}
