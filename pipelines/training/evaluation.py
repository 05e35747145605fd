"""The evaluation report: how well a fitted model does on rows it never saw.

The report is part of the model directory and of the package, so it holds only numbers that
follow from the manifest (no timings, no dates) and rounds them, which keeps its bytes
reproducible. The registry points the SageMaker model package's ``ModelMetrics`` at it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_DIGITS = 6


def evaluate(
    pipeline: Any,
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    positive_class: str,
    group_by: tuple[str, ...],
) -> dict[str, Any]:
    """Held-out metrics overall and per value of each ``group_by`` column."""
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

    classes = list(pipeline.classes_)
    probabilities = np.asarray(pipeline.predict_proba(features))[:, classes.index(positive_class)]
    truth = (labels.to_numpy() == positive_class).astype(int)
    predicted = (probabilities >= 0.5).astype(int)
    report: dict[str, Any] = {
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
        "groups": {},
    }
    for column in group_by:
        values = features[column].fillna("missing").to_numpy()
        report["groups"][column] = {
            str(value): {
                "rows": int((values == value).sum()),
                "accuracy": _round(accuracy_score(truth[values == value], predicted[values == value])),
                "predicted_positive_rate": _round(predicted[values == value].mean()),
            }
            for value in sorted(set(values.tolist()))
        }
    return report


def _round(value: Any) -> float:
    return round(float(value), _DIGITS)
