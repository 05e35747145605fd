"""Model versus baseline, in the manner of TFX's Evaluator: absolute bounds, bounded regressions
against the production baseline, and fairness gaps per sensitive column, for every task.

``evaluate_model`` works on arrays (labels, the candidate's predictions, the baseline's, the
sensitive columns), so it is independent of how the packages were fetched and scored. What the
arrays hold depends on the task the package's schema declares (``ModelOutput``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from pipelines.contract.tasks import Task
from pipelines.errors import BadInputError
from pipelines.gates.checks import Check
from pipelines.gates.metrics import (
    binary_metrics,
    fairness_gaps,
    multiclass_metrics,
    regression_metrics,
    slice_gaps,
)
from pipelines.gates.policy import MetricRule, ModelPolicy, metric_direction
from pipelines.gates.report import GateReport

NO_BASELINE_NOTE = (
    "first version: there is no production baseline, so only the absolute bounds and the fairness "
    "gaps were checked; the change thresholds apply from the next version on"
)


@dataclass(frozen=True)
class ModelOutput:
    """What a package's model predicts: the ``output`` section of its ``schema.json``."""

    task: Task
    label: str | None = None
    """The predicted column; ``None`` in schemas written before the contract (its label applies)."""
    classes: tuple[str, ...] = ()
    """Classification: the classes, in the order of ``predict_proba``'s columns."""
    positive_class: str | None = None
    """Binary: the class whose probability is judged."""

    @classmethod
    def from_schema(cls, output: Mapping[str, Any]) -> ModelOutput:
        """Read a schema's output; one without ``task`` is a binary classifier (older packages)."""
        name = output.get("task", Task.binary.value)
        try:
            task = Task(name)
        except ValueError:
            allowed = ", ".join(task.value for task in Task)
            raise BadInputError(f"schema.json output.task = {name!r}: allowed: {allowed}") from None
        classes = tuple(str(value) for value in output.get("classes") or ())
        positive = output.get("positive_class")
        if task is Task.binary and (len(classes) != 2 or positive not in classes):
            raise BadInputError(
                f"schema.json output: a binary classifier needs two classes and a positive_class "
                f"among them; it has classes {list(classes)} and positive_class {positive!r}"
            )
        if task is Task.multiclass and len(classes) < 3:
            raise BadInputError(
                f"schema.json output: a multiclass classifier needs at least three classes; "
                f"it has {list(classes)}"
            )
        return cls(task=task, label=output.get("label"), classes=classes, positive_class=positive)


def evaluate_model(
    y_true: ArrayLike,
    candidate: ArrayLike,
    rules: Mapping[str, MetricRule],
    policy: ModelPolicy,
    *,
    output: ModelOutput,
    sensitive: Mapping[str, Sequence[Any]] | None = None,
    sensitive_columns: Sequence[str] = (),
    baseline: ArrayLike | None = None,
    subject: dict[str, Any] | None = None,
) -> GateReport:
    """Checks of the candidate's metrics, their change against the baseline, and fairness.

    Per ``output.task``: binary, ``y_true`` is 1 for the positive class and 0 otherwise and the
    predictions are the positive class's probability; multiclass, ``y_true`` holds the classes
    and the predictions are probability matrices in ``output.classes`` order; regression, both
    are numbers. ``rules`` are the metric rules to apply (``pipelines.gates.policy.stage_rules``),
    every one a metric of the task. ``sensitive_columns`` are compared by slice; one missing from
    ``sensitive`` (the data) fails by name.
    """
    candidate_metrics, candidate_detail = task_metrics(output, y_true, candidate, policy)
    unknown = sorted(set(rules) - set(candidate_metrics))
    if unknown:
        raise ValueError(
            f"rules for {', '.join(unknown)}: not metrics of {output.task.value} "
            f"({', '.join(candidate_metrics)}); stage_rules refuses them"
        )
    baseline_metrics, baseline_detail = (
        (None, {}) if baseline is None else task_metrics(output, y_true, baseline, policy)
    )
    checks: list[Check] = []
    for name, rule in rules.items():
        checks.extend(_metric_checks(name, rule, candidate_metrics[name], baseline_metrics))
    notes: tuple[str, ...] = ()
    if baseline_metrics is None:
        notes = (NO_BASELINE_NOTE,)
        checks.append(Check("model.baseline", None, None, None, None, None, None, NO_BASELINE_NOTE))
    data = sensitive or {}
    checks.extend(_absent(sensitive_columns, data))
    present = {column: data[column] for column in sensitive_columns if column in data}
    checks.extend(_fairness(output, y_true, candidate, present, policy))
    details = {
        key: {"candidate": value, "baseline": baseline_detail.get(key)}
        for key, value in candidate_detail.items()
    }
    return GateReport(
        gate="model",
        checks=tuple(checks),
        subject={
            **(subject or {}),
            "task": output.task.value,
            "metrics": {"candidate": candidate_metrics, "baseline": baseline_metrics},
            **details,
        },
        notes=notes,
    )


def task_metrics(
    output: ModelOutput, y_true: ArrayLike, predictions: ArrayLike, policy: ModelPolicy
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Every metric of the task by name, and what else the report shows about them.

    The second part is ``{"calibration_by_class": {...}}`` for a multiclass model (each class's
    one-vs-rest calibration error; ``ece`` is the largest) and empty otherwise.
    """
    if output.task is Task.regression:
        return regression_metrics(y_true, predictions), {}
    if output.task is Task.multiclass:
        values, by_class = multiclass_metrics(
            np.asarray(y_true),
            predictions,
            output.classes,
            calibration_bins=policy.calibration_bins,
            min_class_rows=policy.min_class_rows,
        )
        return values, {"calibration_by_class": by_class}
    return binary_metrics(
        y_true, predictions, threshold=policy.decision_threshold, calibration_bins=policy.calibration_bins
    ), {}


def _metric_checks(
    name: str, rule: MetricRule, value: float | None, baseline: Mapping[str, float | None] | None
) -> list[Check]:
    if value is None:
        return [
            _undefined(
                "model.metric",
                name,
                f"{name} is not defined on the evaluation rows (e.g. one class only, or too few rows)",
            )
        ]
    checks = []
    if rule.min is not None:
        checks.append(_bound(name, value, rule.min, value >= rule.min, f"at least {rule.min:g} required"))
    if rule.max is not None:
        checks.append(_bound(name, value, rule.max, value <= rule.max, f"at most {rule.max:g} allowed"))
    if baseline is not None and rule.max_regression is not None:
        before = baseline[name]
        if before is None:
            checks.append(
                _undefined(
                    "model.regression",
                    name,
                    f"{name} of the baseline is not defined on the evaluation rows: not compared",
                )
            )
        else:
            checks.append(
                _regression(
                    name, value, before, rule.max_regression, rule.relative, metric_direction(name, rule)
                )
            )
    return checks


def _undefined(check: str, name: str, detail: str) -> Check:
    """An informational check: metric ``name`` could not be computed, so nothing was judged."""
    return Check(check, None, name, None, None, None, None, detail)


def _bound(name: str, value: float, bound: float, passed: bool, wording: str) -> Check:
    """The metric against one bound of its rule (``min`` or ``max``); ``wording`` says which."""
    return Check("model.metric", None, name, value, None, bound, passed, f"{name} {value:.4f}, {wording}")


def _regression(
    name: str, value: float, baseline: float, allowed: float, relative: bool, direction: str
) -> Check:
    """How much worse than the baseline the candidate is, in the metric's worse direction."""
    worse_by = baseline - value if direction == "higher_is_better" else value - baseline
    threshold = allowed * abs(baseline) if relative else allowed
    bound = f"{allowed:.1%} of the baseline" if relative else f"{allowed:g}"
    return Check(
        "model.regression",
        None,
        name,
        worse_by,
        None,
        threshold,
        worse_by <= threshold,
        f"{name} {value:.4f} vs baseline {baseline:.4f} ({direction.replace('_', ' ')}); "
        f"may be worse by at most {bound}",
    )


def _absent(columns: Sequence[str], data: Mapping[str, Sequence[Any]]) -> list[Check]:
    return [
        Check(
            "model.fairness",
            column,
            None,
            None,
            None,
            None,
            False,
            "sensitive column is not in the evaluation data",
        )
        for column in columns
        if column not in data
    ]


def _fairness(
    output: ModelOutput,
    y_true: ArrayLike,
    predictions: ArrayLike,
    sensitive: Mapping[str, Sequence[Any]],
    policy: ModelPolicy,
) -> list[Check]:
    """Binary: demographic parity and equal opportunity; multiclass: the accuracy gap; regression:
    the gap in mean absolute error."""
    if not sensitive:
        return []
    if output.task is Task.binary:
        return _binary_fairness(y_true, predictions, sensitive, policy)
    fairness = policy.fairness
    if output.task is Task.multiclass:
        classes = np.asarray(output.classes, dtype=object)
        predicted: Any = classes[np.asarray(predictions).argmax(axis=1)].astype(str)
        metric, bound, what = "accuracy", fairness.max_accuracy_difference, "accuracy"
    else:
        predicted = np.asarray(predictions, dtype=np.float64)
        metric, bound, what = "mae", fairness.max_mae_difference, "mean absolute error"
    checks = []
    for gap in slice_gaps(
        metric, np.asarray(y_true), predicted, sensitive, min_slice_size=fairness.min_slice_size
    ):
        skipped = f"; too small to compare: {', '.join(gap.skipped)}" if gap.skipped else ""
        scores = ", ".join(f"{s.value} {s.score:.3f}" for s in gap.slices)
        unbounded = " (no bound set: reported only)" if bound is None else ""
        if gap.difference is None:
            passed, detail = None, f"fewer than two comparable slices ({scores}){skipped}"
        else:
            passed = None if bound is None else gap.difference <= bound
            detail = f"{what} by slice: {scores}{skipped}{unbounded}"
        checks.append(
            Check(
                "model.fairness",
                gap.column,
                f"{metric}_difference",
                gap.difference,
                None,
                bound,
                passed,
                detail,
            )
        )
    return checks


def _binary_fairness(
    y_true: ArrayLike, scores: ArrayLike, sensitive: Mapping[str, Sequence[Any]], policy: ModelPolicy
) -> list[Check]:
    fairness = policy.fairness
    checks = []
    for gaps in fairness_gaps(
        y_true, scores, sensitive, threshold=policy.decision_threshold, min_slice_size=fairness.min_slice_size
    ):
        skipped = f"; too small to compare: {', '.join(gaps.skipped)}" if gaps.skipped else ""
        for method, gap, bound, rate in (
            (
                "demographic_parity_difference",
                gaps.demographic_parity_difference,
                fairness.max_demographic_parity_difference,
                "positive_rate",
            ),
            (
                "equal_opportunity_difference",
                gaps.equal_opportunity_difference,
                fairness.max_equal_opportunity_difference,
                "true_positive_rate",
            ),
        ):
            rates = ", ".join(
                f"{s.value} {getattr(s, rate):.3f}" for s in gaps.slices if getattr(s, rate) is not None
            )
            if gap is None:
                checks.append(
                    Check(
                        "model.fairness",
                        gaps.column,
                        method,
                        None,
                        None,
                        bound,
                        None,
                        f"fewer than two comparable slices ({rates}){skipped}",
                    )
                )
            else:
                checks.append(
                    Check(
                        "model.fairness",
                        gaps.column,
                        method,
                        gap,
                        None,
                        bound,
                        gap <= bound,
                        f"{rate.replace('_', ' ')} by slice: {rates}{skipped}",
                    )
                )
    return checks
