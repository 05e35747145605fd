"""The learning tasks a service may declare, and the metrics the gates hold each one to by default.

The defaults are change thresholds against the production baseline only: what counts as good
enough in absolute terms depends on the problem, so a service sets its own ``min``/``max`` per
stage in its contract (``metrics.candidate``/``metrics.production``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Task(StrEnum):
    """What the model predicts."""

    binary = "binary_classification"
    """One of two classes, with the probability of the declared positive class."""
    multiclass = "multiclass_classification"
    """One of three or more classes, with a probability per class."""
    regression = "regression"
    """A number."""

    @property
    def is_classification(self) -> bool:
        return self is not Task.regression


Direction = Literal["higher_is_better", "lower_is_better"]

METRIC_DIRECTIONS: dict[Task, dict[str, Direction]] = {
    Task.binary: {
        "accuracy": "higher_is_better",
        "roc_auc": "higher_is_better",
        "f1": "higher_is_better",
        "log_loss": "lower_is_better",
        "brier": "lower_is_better",
        "ece": "lower_is_better",
    },
    Task.multiclass: {
        "accuracy": "higher_is_better",
        "macro_f1": "higher_is_better",
        "log_loss": "lower_is_better",
        "ece": "lower_is_better",
    },
    Task.regression: {
        "rmse": "lower_is_better",
        "mae": "lower_is_better",
        "r2": "higher_is_better",
    },
}
"""Every metric the model gate computes for a task, with the way that is better.

``ece`` is the expected calibration error: of the positive class for a binary model, and the
largest one-vs-rest error over the classes with enough rows for a multiclass one.
"""

ALL_METRICS: tuple[str, ...] = tuple(sorted({name for names in METRIC_DIRECTIONS.values() for name in names}))

DEFAULT_RULES: dict[Task, dict[str, dict[str, float | bool]]] = {
    Task.binary: {
        "accuracy": {"maxRegression": 0.01},
        "roc_auc": {"maxRegression": 0.01},
        "f1": {"maxRegression": 0.02},
        "log_loss": {"maxRegression": 0.05, "relative": True},
        "brier": {"maxRegression": 0.05, "relative": True},
        "ece": {"max": 0.05},
    },
    Task.multiclass: {
        "accuracy": {"maxRegression": 0.01},
        "macro_f1": {"maxRegression": 0.02},
        "log_loss": {"maxRegression": 0.05, "relative": True},
        "ece": {"max": 0.1},
    },
    Task.regression: {
        "rmse": {"maxRegression": 0.05, "relative": True},
        "mae": {"maxRegression": 0.05, "relative": True},
        "r2": {"min": 0.0, "maxRegression": 0.02},
    },
}
"""The rules every service of a task starts from (YAML key spelling, as in a policy file)."""
