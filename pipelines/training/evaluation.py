"""The evaluation report: how well a fitted model does on rows it never saw.

The report is part of the model directory and of the package, so it holds only numbers that
follow from the manifest (no timings, no dates) and rounds them, which keeps its bytes
reproducible. The registry points the SageMaker model package's ``ModelMetrics`` at it, and the
pipeline's Evaluate step writes the same format. Every number comes from scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_DIGITS = 6


def evaluate(
    estimator: Any,
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    output: dict[str, Any],
    group_by: tuple[str, ...] | list[str],
) -> dict[str, Any]:
    """Held-out metrics overall and per value of each ``group_by`` column, for the schema's task."""
    task = output.get("task", "binary_classification")
    if task == "regression":
        return _regression(estimator, features, labels, group_by)
    if task == "multiclass_classification":
        return _multiclass(estimator, features, labels, output, group_by)
    return _binary(estimator, features, labels, output, group_by)


class _Served:
    """The estimator as the endpoint will answer: through the contract's ``predict(estimator, frame)``.

    The evaluation report must judge what is served, so a service with its own ``predict`` is
    evaluated through it (its result stands for ``predict_proba`` of a classifier and ``predict``
    of a regressor, as in the serving code).
    """

    def __init__(self, estimator: Any, predict: Callable[[Any, Any], Any]) -> None:
        self.estimator, self._predict = estimator, predict
        self.classes_ = getattr(estimator, "classes_", None)

    def predict_proba(self, frame: Any) -> Any:
        return self._predict(self.estimator, frame)

    def predict(self, frame: Any) -> Any:
        return self._predict(self.estimator, frame)


def served(estimator: Any, predict: Callable[[Any, Any], Any] | None) -> Any:
    """What the report judges: the estimator, or the service's own ``predict`` over it when it has one."""
    return estimator if predict is None else _Served(estimator, predict)


def _binary(
    estimator: Any, features: pd.DataFrame, labels: pd.Series, output: dict[str, Any], group_by: Any
) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    positive_class = output["positive_class"]
    classes = [str(value) for value in estimator.classes_]
    probabilities = np.asarray(estimator.predict_proba(features))[:, classes.index(positive_class)]
    truth = (labels.astype(str).to_numpy() == positive_class).astype(int)
    predicted = (probabilities >= 0.5).astype(int)
    report: dict[str, Any] = {
        "task": "binary_classification",
        "rows": len(truth),
        "positive_rate": _round(truth.mean()),
        "predicted_positive_rate": _round(predicted.mean()),
        "threshold": 0.5,
        "metrics": {
            "accuracy": _round(accuracy_score(truth, predicted)),
            "roc_auc": _round(roc_auc_score(truth, probabilities)),
            "log_loss": _round(log_loss(truth, probabilities, labels=[0, 1])),
            "brier": _round(brier_score_loss(truth, probabilities)),
            "precision": _round(precision_score(truth, predicted, zero_division=0)),
            "recall": _round(recall_score(truth, predicted, zero_division=0)),
            "f1": _round(f1_score(truth, predicted, zero_division=0)),
        },
        "groups": _by_group(
            features,
            group_by,
            truth,
            predicted,
            lambda truth, predicted: {
                "accuracy": _round(accuracy_score(truth, predicted)),
                "predicted_positive_rate": _round(predicted.mean()),
            },
        ),
    }
    return report


def _multiclass(
    estimator: Any, features: pd.DataFrame, labels: pd.Series, output: dict[str, Any], group_by: Any
) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    classes = [str(value) for value in estimator.classes_]
    probabilities = np.asarray(estimator.predict_proba(features))
    truth = labels.astype(str).to_numpy()
    predicted = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
    report: dict[str, Any] = {
        "task": "multiclass_classification",
        "rows": len(truth),
        "classes": classes,
        "metrics": {
            "accuracy": _round(accuracy_score(truth, predicted)),
            "macro_f1": _round(f1_score(truth, predicted, average="macro", labels=classes, zero_division=0)),
            "log_loss": _round(log_loss(truth, probabilities, labels=classes)),
        },
        "groups": _by_group(
            features,
            group_by,
            truth,
            predicted,
            lambda truth, predicted: {"accuracy": _round(accuracy_score(truth, predicted))},
        ),
    }
    return report


def _regression(estimator: Any, features: pd.DataFrame, labels: pd.Series, group_by: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    truth = labels.to_numpy(dtype=float)
    predicted = np.asarray(estimator.predict(features), dtype=float)
    report: dict[str, Any] = {
        "task": "regression",
        "rows": len(truth),
        "label_mean": _round(truth.mean()),
        "prediction_mean": _round(predicted.mean()),
        "metrics": {
            "rmse": _round(root_mean_squared_error(truth, predicted)),
            "mae": _round(mean_absolute_error(truth, predicted)),
            "r2": _round(r2_score(truth, predicted)),
        },
        "groups": _by_group(
            features,
            group_by,
            truth,
            predicted,
            lambda truth, predicted: {"mae": _round(mean_absolute_error(truth, predicted))},
        ),
    }
    return report


def _by_group(
    features: pd.DataFrame,
    group_by: Any,
    truth: np.ndarray,
    predicted: np.ndarray,
    metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per value of each ``group_by`` column, its row count and the task's ``metrics`` on its rows.

    Every task reports its groups this way; only which metrics a slice gets differs.
    """
    return {
        column: {
            str(value): {
                "rows": int((values == value).sum()),
                **metrics(truth[values == value], predicted[values == value]),
            }
            for value in sorted(set(values.tolist()))
        }
        for column, values in _groups(features, group_by)
    }


def _groups(features: pd.DataFrame, group_by: Any) -> list[tuple[str, np.ndarray]]:
    """Each sensitive column's values as strings (missing as ``missing``)."""
    return [
        (
            column,
            features[column].astype(object).where(features[column].notna(), "missing").astype(str).to_numpy(),
        )
        for column in group_by
    ]


def _round(value: Any) -> float:
    return round(float(value), _DIGITS)
