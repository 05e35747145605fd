"""Model metrics and fairness gaps as pure functions of labels, scores and slices.

Nothing here loads a model: the model gate scores the data with the candidate (and the baseline)
and hands the arrays over, so every number can be tested on synthetic scores and checked
against scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

LOG_LOSS_EPSILON = 1e-15
"""Scores are clipped to [ε, 1 − ε] before the logarithm, as scikit-learn does, so a confident
wrong answer costs about 34.5 instead of infinity."""


def _arrays(y_true: ArrayLike, y_score: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    truth = np.asarray(y_true, dtype=np.float64)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.shape != score.shape or truth.ndim != 1 or truth.size == 0:
        raise ValueError("y_true and y_score must be non-empty 1-d arrays of the same length")
    return truth, score


def accuracy(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    truth, score = _arrays(y_true, y_score)
    return float(np.mean((score >= threshold) == (truth == 1)))


def f1(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    """F1 of the positive class; 0 when there are no true or predicted positives."""
    truth, score = _arrays(y_true, y_score)
    predicted = score >= threshold
    actual = truth == 1
    true_positives = float(np.sum(predicted & actual))
    denominator = float(np.sum(predicted) + np.sum(actual))
    return 2 * true_positives / denominator if denominator else 0.0


def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve by the rank-sum (Mann–Whitney) form, ties counted as half."""
    from scipy.stats import rankdata

    truth, score = _arrays(y_true, y_score)
    positives = truth == 1
    n_pos = int(positives.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes in y_true")
    ranks = rankdata(score)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y_true: ArrayLike, y_score: ArrayLike) -> float:
    truth, score = _arrays(y_true, y_score)
    clipped = np.clip(score, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
    return float(-np.mean(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped)))


def brier(y_true: ArrayLike, y_score: ArrayLike) -> float:
    truth, score = _arrays(y_true, y_score)
    return float(np.mean((score - truth) ** 2))


def expected_calibration_error(y_true: ArrayLike, y_score: ArrayLike, bins: int = 10) -> float:
    """Σ over equal-width score bins of (bin share) × |mean score − positive rate|.

    Bins are right-closed except the first, which also holds a score of exactly 0.
    """
    truth, score = _arrays(y_true, y_score)
    index = np.clip(np.ceil(score * bins).astype(np.int64) - 1, 0, bins - 1)
    score_sums = np.bincount(index, weights=score, minlength=bins)
    truth_sums = np.bincount(index, weights=truth, minlength=bins)
    return float(np.sum(np.abs(score_sums - truth_sums)) / truth.size)


METRICS = ("accuracy", "roc_auc", "f1", "log_loss", "brier", "ece")


def classification_metrics(
    y_true: ArrayLike, y_score: ArrayLike, *, threshold: float = 0.5, calibration_bins: int = 10
) -> dict[str, float]:
    """Every metric the model gate knows, by name."""
    return {
        "accuracy": accuracy(y_true, y_score, threshold),
        "roc_auc": roc_auc(y_true, y_score),
        "f1": f1(y_true, y_score, threshold),
        "log_loss": log_loss(y_true, y_score),
        "brier": brier(y_true, y_score),
        "ece": expected_calibration_error(y_true, y_score, calibration_bins),
    }


@dataclass(frozen=True)
class SliceRates:
    """Rates of one slice (one value of a sensitive column)."""

    value: str
    rows: int
    positives: int
    positive_rate: float
    """Share of the slice predicted positive (demographic parity compares these)."""
    true_positive_rate: float | None
    """Share of the slice's actual positives predicted positive (equal opportunity); ``None``
    without actual positives."""

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
    truth, score = _arrays(y_true, y_score)
    labels = np.array(["<missing>" if value is None else str(value) for value in groups], dtype=object)
    if labels.size != truth.size:
        raise ValueError("groups must have one value per row")
    predicted = score >= threshold
    rates = []
    for value in sorted(set(labels.tolist())):
        member = labels == value
        actual = member & (truth == 1)
        positives = int(actual.sum())
        rates.append(
            SliceRates(
                value=value,
                rows=int(member.sum()),
                positives=positives,
                positive_rate=float(predicted[member].mean()),
                true_positive_rate=float(predicted[actual].mean()) if positives else None,
            )
        )
    return rates


@dataclass(frozen=True)
class FairnessGaps:
    """The largest gaps between the comparable slices of one sensitive column."""

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
