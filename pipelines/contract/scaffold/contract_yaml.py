"""A new service's ``service.yaml``: every key of the contract, commented."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from pipelines.contract.scaffold.names import PLACEHOLDER, placeholder_snapshot
from pipelines.contract.tasks import DEFAULT_RULES, Task

if TYPE_CHECKING:
    from pipelines.contract.scaffold.bounds import Baseline
    from pipelines.contract.scaffold.infer import DataSummary

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_string(value: str) -> str:
    """A YAML scalar that reads back as exactly this string (JSON's quoting where plain would not)."""
    if _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


def yaml_number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


COMMENT_COLUMN = 32


def _c(text: str, comment: str) -> str:
    """A line with its comment, comments aligned where the line leaves room."""
    return f"{text.ljust(COMMENT_COLUMN - 1)} # {comment}"


def flow_rule(rule: dict[str, float | bool]) -> str:
    """A metric rule in YAML flow style, e.g. ``{min: 0.8, maxRegression: 0.01}``."""
    parts = [
        f"{key}: {'true' if value is True else 'false' if value is False else yaml_number(value)}"
        for key, value in rule.items()
    ]
    return "{" + ", ".join(parts) + "}"


HYPERPARAMETERS: dict[bool, list[tuple[str, str, str]]] = {
    True: [
        ("classifier", "logistic_regression", "or hist_gradient_boosting (for large data)"),
        ("c", "1.0", "logistic_regression: inverse regularisation strength"),
        ("max_iter", "300", "the solver's iterations, or boosting rounds"),
        ("learning_rate", "0.1", "hist_gradient_boosting"),
        ("max_leaf_nodes", "31", "hist_gradient_boosting"),
        ("l2_regularization", "0.0", "hist_gradient_boosting"),
        ("max_categories", "50", "one-hot columns per category feature; rarer values pooled"),
    ],
    False: [
        ("regressor", "ridge", "or hist_gradient_boosting (for large data)"),
        ("alpha", "1.0", "ridge: L2 penalty"),
        ("learning_rate", "0.1", "hist_gradient_boosting"),
        ("max_iter", "300", "hist_gradient_boosting: boosting rounds"),
        ("max_leaf_nodes", "31", "hist_gradient_boosting"),
        ("l2_regularization", "0.0", "hist_gradient_boosting"),
        ("max_categories", "50", "one-hot columns per category feature; rarer values pooled"),
    ],
}


def render_contract(
    name: str,
    task: Task,
    data: DataSummary | None,
    bounds: dict[str, dict[str, float | bool]] | None = None,
    baseline: Baseline | None = None,
) -> str:
    """``service.yaml``: every key of the contract, commented; placeholders where no data said."""
    lines = [
        f"# The contract of {name}, written by `modelrail service new`: it is the team's to edit.",
        '# Keys: the README\'s "The service contract: bring your own model" section. The platform',
        "# reads this file and the modules it names (model.py) only.",
        f"name: {name}",
        _c('description: ""', "one sentence: what the model predicts, for whom"),
        f"task: {task.value}",
    ]
    if data is None:
        lines += _placeholder_body(name, task)
    else:
        lines += _data_body(task, data)
    lines += [
        _c("train: model:train", "model.py's train(frame, hyperparameters) -> fitted estimator"),
        _c("# predict: model:predict", "optional: predict(estimator, frame) -> the served values"),
        _c("hyperparameters:", "defaults handed to train(); a training manifest overrides them"),
    ]
    lines += [
        _c(f"  {key}: {value}", comment) for key, value, comment in HYPERPARAMETERS[task.is_classification]
    ]
    if task is Task.regression:
        lines += _tolerance_lines(data)
    lines += _metrics_lines(task, bounds, baseline)
    return "\n".join(lines) + "\n"


def _placeholder_body(name: str, task: Task) -> list[str]:
    lines = [
        f"# {PLACEHOLDER}: written without data, so the loader refuses this contract until every",
        f"# {PLACEHOLDER} below is replaced by the snapshot's facts. (`modelrail service new NAME --task",
        "# TASK --data FILE --label COLUMN` reads them all off a CSV snapshot.)",
        _c(f"label: {PLACEHOLDER}-label", "the column the model predicts"),
    ]
    if task is Task.binary:
        lines += [
            _c(f'classes: ["{PLACEHOLDER}-no", "{PLACEHOLDER}-yes"]', "every label value"),
            _c(f'positiveClass: "{PLACEHOLDER}-yes"', "the class whose probability is served and judged"),
        ]
    elif task is Task.multiclass:
        lines += [
            _c(f'classes: ["{PLACEHOLDER}-a", "{PLACEHOLDER}-b", "{PLACEHOLDER}-c"]', "every label value")
        ]
    lines += [
        _c("features:", "in file order: the order of positional (CSV) invocations"),
        _c(
            f"  - {{name: {PLACEHOLDER}-feature, type: number}}",
            "number (a float, missing as NaN) or category",
        ),
        _c("sensitive: []", "features the fairness checks compare slices of, e.g. [sex]"),
        "data:",
        _c("  snapshots:", "oldest first; a default training run uses the last"),
        _c(f"    - path: {placeholder_snapshot(name)}", "relative to the project root, or absolute"),
        _c(f"      sha256: {PLACEHOLDER}", "`sha256sum FILE`; training refuses any other bytes"),
        "  format:",
        _c("    header: true", "the first line names the columns"),
    ]
    return lines


def _data_body(task: Task, data: DataSummary) -> list[str]:
    lines = [_c(f"label: {yaml_string(data.label)}", "the column the model predicts")]
    if task.is_classification:
        assert data.classes is not None
        classes = ", ".join(yaml_string(value) for value in data.classes)
        lines.append(_c(f"classes: [{classes}]", "every label value in the snapshot"))
        if task is Task.binary:
            assert data.positive_class is not None
            lines.append(
                _c(
                    f"positiveClass: {yaml_string(data.positive_class)}",
                    "the class whose probability is served and judged",
                )
            )
    lines.append(_c("features:", "in file order: the order of positional (CSV) invocations"))
    lines.append("  # number: read as a float (missing as NaN); category: a string (missing as null)")
    lines += [f"  - {{name: {yaml_string(column)}, type: {kind}}}" for column, kind in data.features]
    lines += [
        _c("sensitive: []", "features the fairness checks compare slices of, e.g. [sex]"),
        "data:",
        _c("  snapshots:", "oldest first; a default training run uses the last"),
        f"    - path: {yaml_string(data.path)}",
        f"      sha256: {data.sha256}",
        "  format:",
        _c("    header: true", "the first line names the columns"),
    ]
    if data.na_values:
        markers = ", ".join(yaml_string(value) for value in data.na_values)
        lines.append(_c(f"    naValues: [{markers}]", "besides empty fields, these mean missing"))
    return lines


def _tolerance_lines(data: DataSummary | None) -> list[str]:
    if data is None:
        return [
            _c(
                f"liveTolerance: {PLACEHOLDER}",
                "a live prediction this close to its delayed label counts as correct (label units)",
            )
        ]
    assert data.live_tolerance is not None and data.label_std is not None
    return [
        _c(
            f"liveTolerance: {yaml_number(data.live_tolerance)}",
            "a live prediction this close to its delayed label counts as correct",
        ),
        _c("", f"(half the label's standard deviation, {data.label_std:.4g})"),
    ]


def _metrics_lines(
    task: Task, bounds: dict[str, dict[str, float | bool]] | None, baseline: Baseline | None
) -> list[str]:
    if not bounds or baseline is None:
        return [
            _c("metrics:", "per stage, over the task's defaults; `null` drops a metric"),
            f"  # The defaults of {task.value}, against the production baseline:",
            *(f"  #   {metric}: {flow_rule(rule)}" for metric, rule in DEFAULT_RULES[task].items()),
            "  # Add absolute bounds once you know what the model reaches, e.g. `{min: 0.8}`.",
            "  candidate: {}",
            "  production: {}",
        ]
    lines = [
        _c("metrics:", "per stage, over the task's defaults; `null` drops a metric"),
        "  # Absolute bounds from one fit of model.py (seed 0) when this file was written: a little on",
        "  # the safe side of the worse of its scores on the rows training held out and on the snapshot.",
        "  # Tighten them (production first) as the model matures.",
    ]
    for metric in bounds:
        held, whole = baseline.held_out.get(metric), baseline.snapshot.get(metric)
        scores = ", ".join(
            f"{value:.4f} {where}"
            for value, where in ((held, "held out"), (whole, "on the snapshot"))
            if value is not None
        )
        lines.append(f"  #   {metric}: {scores}")
    for stage in ("candidate", "production"):
        lines.append(f"  {stage}:")
        lines += [f"    {metric}: {flow_rule(rule)}" for metric, rule in bounds.items()]
    return lines
