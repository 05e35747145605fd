"""Model metrics and fairness gaps as pure functions of labels, predictions and slices, per task.

Nothing here loads a model: the model gate scores the data with the candidate (and the baseline)
and hands the arrays over. Every metric is scikit-learn's own, so the gate's numbers are the ones
a team gets from ``sklearn.metrics`` on the same rows; the expected calibration error, which
scikit-learn does not define, is the row-weighted gap of ``calibration_curve``'s bins.

A metric that is not defined on the rows given (ROC AUC with one class present, R² of one row) is
``None`` rather than NaN, so the gate can say so instead of comparing NaN with a bound.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

MISSING_SLICE = "<missing>"
"""The slice of rows whose sensitive value is missing."""


def _vectors(y_true: ArrayLike, y_score: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    truth = np.asarray(y_true, dtype=np.float64)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.shape != score.shape or truth.ndim != 1 or truth.size == 0:
        raise ValueError("y_true and y_score must be non-empty 1-d arrays of the same length")
    return truth, score


def _defined(compute: Callable[[], Any]) -> float | None:
    """scikit-learn's value, or ``None`` where it warns and answers NaN or refuses the rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(compute())
        except ValueError:
            return None
    return value if np.isfinite(value) else None


def expected_calibration_error(y_true: ArrayLike, y_prob: ArrayLike, bins: int = 10) -> float:
    """Σ over equal-width probability bins of (bin's share of rows) × |mean probability − positive rate|.

    The bins and their means are ``sklearn.calibration.calibration_curve``'s (uniform strategy:
    right-closed bins, the first also holding exactly 0); only the row counts, which it does not
    return, are counted here with the same bin edges.
    """
    from sklearn.calibration import calibration_curve

    truth, prob = _vectors(y_true, y_prob)
    prob = np.clip(prob, 0.0, 1.0)
    positive_rate, mean_prob = calibration_curve(truth, prob, n_bins=bins, strategy="uniform", pos_label=1)
    counts = np.bincount(np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], prob), minlength=bins)
    counts = counts[counts > 0]
    return float(np.sum(counts * np.abs(mean_prob - positive_rate)) / truth.size)


def binary_metrics(
    y_true: ArrayLike, y_score: ArrayLike, *, threshold: float = 0.5, calibration_bins: int = 10
) -> dict[str, float | None]:
    """accuracy, roc_auc, f1, log_loss, brier and ece of the positive class's probability.

    ``y_true`` is 1 for the positive class and 0 otherwise; a score at or above ``threshold``
    predicts the positive class.
    """
    from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, log_loss, roc_auc_score

    truth, score = _vectors(y_true, y_score)
    predicted = (score >= threshold).astype(np.int64)
    return {
        "accuracy": _defined(lambda: accuracy_score(truth, predicted)),
        "roc_auc": _defined(lambda: roc_auc_score(truth, score)),
        "f1": _defined(lambda: f1_score(truth, predicted, zero_division=0)),
        "log_loss": _defined(lambda: log_loss(truth, score, labels=[0, 1])),
        "brier": _defined(lambda: brier_score_loss(truth, score, pos_label=1)),
        "ece": expected_calibration_error(truth, score, calibration_bins),
    }


def multiclass_metrics(
    y_true: Sequence[str] | ArrayLike,
    probabilities: ArrayLike,
    classes: Sequence[str],
    *,
    calibration_bins: int = 10,
    min_class_rows: int = 30,
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """accuracy, macro_f1, log_loss and ece, with each class's one-vs-rest calibration error.

    ``probabilities`` has one column per class, in ``classes`` order; the prediction is the most
    likely class. A class's calibration error is measured only when at least ``min_class_rows``
    rows have it (a positive rate from a handful of rows per bin is noise), and ``ece`` is the
    largest measured one: ``None`` when no class has enough rows.
    """
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    truth = np.asarray(y_true, dtype=object).astype(str)
    matrix = np.asarray(probabilities, dtype=np.float64)
    names = [str(name) for name in classes]
    if matrix.ndim != 2 or matrix.shape != (truth.size, len(names)) or truth.size == 0:
        raise ValueError("probabilities must have one row per label and one column per class")
    predicted = np.asarray(names, dtype=object)[matrix.argmax(axis=1)].astype(str)
    # log_loss reads the columns in sorted label order (LabelBinarizer's); the schema's order may differ.
    order = np.argsort(names)
    by_class: dict[str, float | None] = {}
    for index, name in enumerate(names):
        member = (truth == name).astype(np.int64)
        by_class[name] = (
            expected_calibration_error(member, matrix[:, index], calibration_bins)
            if member.sum() >= min_class_rows
            else None
        )
    measured = [value for value in by_class.values() if value is not None]
    values = {
        "accuracy": _defined(lambda: accuracy_score(truth, predicted)),
        "macro_f1": _defined(
            lambda: f1_score(truth, predicted, labels=names, average="macro", zero_division=0)
        ),
        "log_loss": _defined(lambda: log_loss(truth, matrix[:, order], labels=sorted(names))),
        "ece": max(measured) if measured else None,
    }
    return values, by_class


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float | None]:
    """rmse, mae and r2 of the predictions."""
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    truth, predicted = _vectors(y_true, y_pred)
    return {
        "rmse": _defined(lambda: root_mean_squared_error(truth, predicted)),
        "mae": _defined(lambda: mean_absolute_error(truth, predicted)),
        "r2": _defined(lambda: r2_score(truth, predicted)),
    }


def _slices(groups: Sequence[Any], size: int) -> NDArray[np.object_]:
    labels = np.array([MISSING_SLICE if value is None else str(value) for value in groups], dtype=object)
    if labels.size != size:
        raise ValueError("groups must have one value per row")
    return labels


@dataclass(frozen=True)
class SliceRates:
    """Rates of one slice (one value of a sensitive column) under a binary model."""

    value: str
    rows: int
    positives: int
    positive_rate: float
    """Share of the slice predicted positive (demographic parity compares these)."""
    true_positive_rate: float | None
    """Recall of the slice's actual positives (equal opportunity); ``None`` without actual positives."""

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "rows": self.rows,
            "positives": self.positives,
            "positive_rate": self.positive_rate,
            "true_positive_rate": self.true_positive_rate,
        }


def slice_rates(
    y_true: ArrayLike, y_score: ArrayLike, groups: Sequence[Any], threshold: float = 0.5
) -> list[SliceRates]:
    """Positive rate and true-positive rate per distinct value of ``groups`` (missing as ``"<missing>"``)."""
    from sklearn.metrics import recall_score

    truth, score = _vectors(y_true, y_score)
    labels = _slices(groups, truth.size)
    predicted = (score >= threshold).astype(np.int64)
    rates = []
    for value in sorted(set(labels.tolist())):
        member = labels == value
        positives = int(truth[member].sum())
        rates.append(
            SliceRates(
                value=value,
                rows=int(member.sum()),
                positives=positives,
                positive_rate=float(predicted[member].mean()),
                true_positive_rate=(
                    float(recall_score(truth[member], predicted[member], zero_division=0))
                    if positives
                    else None
                ),
            )
        )
    return rates


@dataclass(frozen=True)
class FairnessGaps:
    """The largest gaps between the comparable slices of one sensitive column (binary model)."""

    column: str
    demographic_parity_difference: float | None
    """Largest minus smallest positive rate over slices with at least ``min_slice_size`` rows."""
    equal_opportunity_difference: float | None
    """Largest minus smallest true-positive rate over slices with enough actual positives."""
    slices: tuple[SliceRates, ...]
    skipped: tuple[str, ...]
    """Slices too small to compare for demographic parity (still listed in ``slices``)."""


def fairness_gaps(
    y_true: ArrayLike,
    y_score: ArrayLike,
    sensitive: Mapping[str, Sequence[Any]],
    *,
    threshold: float = 0.5,
    min_slice_size: int = 100,
) -> list[FairnessGaps]:
    """Demographic parity and equal opportunity differences per sensitive column.

    Equal opportunity compares true-positive rates, which are only as steady as a slice's count of
    actual positives: a slice counts for it when it has at least half of ``min_slice_size``
    positives (a rate from 50 positives still has a standard error of up to 0.07).
    """
    min_positives = max(1, min_slice_size // 2)
    gaps = []
    for column, groups in sensitive.items():
        rates = slice_rates(y_true, y_score, groups, threshold)
        sized = [rate for rate in rates if rate.rows >= min_slice_size]
        with_positives = [
            rate.true_positive_rate
            for rate in sized
            if rate.positives >= min_positives and rate.true_positive_rate is not None
        ]
        positive_rates = [rate.positive_rate for rate in sized]
        gaps.append(
            FairnessGaps(
                column=column,
                demographic_parity_difference=(
                    max(positive_rates) - min(positive_rates) if len(positive_rates) >= 2 else None
                ),
                equal_opportunity_difference=(
                    max(with_positives) - min(with_positives) if len(with_positives) >= 2 else None
                ),
                slices=tuple(rates),
                skipped=tuple(rate.value for rate in rates if rate.rows < min_slice_size),
            )
        )
    return gaps


@dataclass(frozen=True)
class SliceScore:
    """One slice's value of a metric (its accuracy, or its mean absolute error)."""

    value: str
    rows: int
    score: float


@dataclass(frozen=True)
class SliceGap:
    """How far apart the slices of one sensitive column are on one metric."""

    column: str
    metric: str
    """``accuracy`` (multiclass) or ``mae`` (regression)."""
    difference: float | None
    """Largest minus smallest score over slices with at least ``min_slice_size`` rows; ``None``
    with fewer than two such slices."""
    slices: tuple[SliceScore, ...]
    skipped: tuple[str, ...]
    """Slices too small to compare (still listed in ``slices``)."""


SLICE_METRICS = ("accuracy", "mae")


def slice_gaps(
    metric: str,
    y_true: Sequence[Any] | ArrayLike,
    y_pred: Sequence[Any] | ArrayLike,
    sensitive: Mapping[str, Sequence[Any]],
    *,
    min_slice_size: int = 100,
) -> list[SliceGap]:
    """The gap in ``metric`` between the slices of each sensitive column.

    A multiclass model's fairness is the gap in accuracy (``y_pred`` the predicted classes), a
    regression model's the gap in mean absolute error (``y_pred`` the predictions): the share of
    each slice the model gets right, and how far off it is for each slice, in the label's units.
    """
    from sklearn.metrics import accuracy_score, mean_absolute_error

    if metric not in SLICE_METRICS:
        raise ValueError(f"slice metric {metric!r}; allowed: {', '.join(SLICE_METRICS)}")
    score: Callable[[Any, Any], Any] = accuracy_score if metric == "accuracy" else mean_absolute_error
    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    if truth.shape != predicted.shape or truth.ndim != 1 or truth.size == 0:
        raise ValueError("y_true and y_pred must be non-empty 1-d arrays of the same length")
    gaps = []
    for column, groups in sensitive.items():
        labels = _slices(groups, truth.size)
        slices = tuple(
            SliceScore(value, int(member.sum()), float(score(truth[member], predicted[member])))
            for value in sorted(set(labels.tolist()))
            for member in [labels == value]
        )
        sized = [item.score for item in slices if item.rows >= min_slice_size]
        gaps.append(
            SliceGap(
                column=column,
                metric=metric,
                difference=max(sized) - min(sized) if len(sized) >= 2 else None,
                slices=slices,
                skipped=tuple(item.value for item in slices if item.rows < min_slice_size),
            )
        )
    return gaps
