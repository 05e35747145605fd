"""``modelrail service new``: a service's contract, training module and test, passing out of the box.

A team starts from files the platform already accepts: ``services/<name>/service.yaml`` (the
contract, commented), ``services/<name>/model.py`` (a scikit-learn pipeline built only from types
the serving loader trusts) and ``tests/services/test_<name>.py`` (it trains the service on its
snapshot and holds the model to the contract's metric rules, as ``gate model`` does). The test
lives under ``tests/`` rather than in the service's folder because every module of that folder
may travel in the package (``code/service/``), and ``tests/`` is where pytest looks.

Given a CSV snapshot, the contract is read off it: the features and their types, the classes,
the live tolerance, the fingerprint. The model is then fitted once, through the trainer, the
packager and the model gate themselves, and the contract's absolute metric bounds are set a
little on the safe side of what it reached, so the first ``gate model`` passes and a clearly
worse model does not.
Without a snapshot, the data section is a marked placeholder that the loader refuses until it
is filled in.

Everything is written in a scratch project first and checked there (the contract loaded by
``read_contract``, the model trained, packaged and gated); only then are the files moved into
the project, so a failure at any step leaves the project as it was.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contract.load import CONTRACT_FILE, SERVICES_DIR, ContractError, read_contract
from pipelines.contract.model import NAME_PATTERN, slug
from pipelines.contract.tasks import DEFAULT_RULES, METRIC_DIRECTIONS, Task
from pipelines.errors import BadInputError, RefusedError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.contract.model import ServiceContract

PLACEHOLDER = "FILL-IN"
"""Marks what a contract written without data still needs; where the schema allows, it is a
value the loader refuses, so the contract cannot be used until it is filled in."""

MODEL_FILE = "model.py"
TESTS_DIR = Path("tests") / "services"
MISSING_MARKERS = ("?",)
"""Strings that mean a missing value when a column is otherwise all numbers (e.g. UCI's ``?``)."""
MARGIN = 0.05
"""An absolute bound sits this share of the baseline's value below (or above) what it reached."""
CALIBRATION_MARGIN = 0.5
"""Calibration error is noisy on a few hundred rows: its bound leaves half its value again."""
ID_LIKE_ROWS = 20
"""A category column distinct on every one of at least this many rows looks like an identifier."""


def service_test_path(name: str) -> Path:
    """Where the service's test goes, relative to the project root."""
    return TESTS_DIR / f"test_{slug(name)}.py"


def check_name(name: str) -> None:
    """Refuse a name the contract (and the stack schema) would refuse."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise RefusedError(
            f"service name {name!r} is invalid",
            details=[
                "service names are DNS-safe: lowercase letters, digits and '-', starting with a letter, "
                "ending with a letter or digit, at most 32 characters"
            ],
        )


def parse_task(text: str) -> Task:
    """The task a ``--task`` names; refused with the allowed ones otherwise."""
    try:
        return Task(text)
    except ValueError:
        allowed = ", ".join(task.value for task in Task)
        raise RefusedError(f"--task {text!r}: unknown task; allowed: {allowed}") from None


def existing_files(name: str, root: Path) -> list[Path]:
    """What of the service's files the project already has (any one means the name is taken)."""
    return [path for path in (root / SERVICES_DIR / name, root / service_test_path(name)) if path.exists()]


# --- reading a snapshot ------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSummary:
    """What a CSV snapshot says about the service it trains."""

    path: str
    """The snapshot as the contract names it: relative to the project root inside it, else absolute."""
    file: Path
    sha256: str
    label: str
    features: tuple[tuple[str, str], ...]
    """``(name, "number" | "category")`` in file order, the label left out."""
    na_values: tuple[str, ...]
    classes: tuple[str, ...] | None
    positive_class: str | None
    live_tolerance: float | None
    label_std: float | None
    rows: int
    warnings: tuple[str, ...] = ()


def infer_data(
    path: Path, *, label: str, task: Task, root: Path, positive_class: str | None = None
) -> DataSummary:
    """Read a CSV snapshot with a header: features and their types, classes or tolerance, fingerprint."""
    import pandas as pd

    from pipelines.gates.frames import check_field_counts
    from pipelines.training.manifest import fingerprint

    if not path.is_file():
        raise BadInputError(f"--data {path}: no such file")
    header = _header(path)
    empty = [index + 1 for index, column in enumerate(header) if not column.strip()]
    if empty:
        raise BadInputError(
            f"--data {path}: the header has unnamed column(s) at position(s) {', '.join(map(str, empty))}",
            details=["every column needs a name in the first line"],
        )
    doubled = sorted({column for column in header if header.count(column) > 1})
    if doubled:
        raise BadInputError(f"--data {path}: the header names {', '.join(doubled)} more than once")
    if label not in header:
        raise BadInputError(
            f"--label {label!r}: not a column of {path}; its header has: {', '.join(header[:30])}",
            details=["the first line of the file must name the columns"],
        )
    if len(header) < 2:
        raise BadInputError(f"--data {path}: only the label column {label!r}; a model needs features")
    check_field_counts(path, role="data", skip_blank=True)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise BadInputError(f"--data {path}: cannot read it as CSV: {error}") from None
    na_values = _missing_markers(frame)
    if na_values:
        frame = frame.replace(dict.fromkeys(na_values, None))
    features = tuple((column, _column_type(frame[column])) for column in header if column != label)
    labels = frame[label].dropna().astype(str).str.strip()
    if labels.empty:
        raise BadInputError(f"--data {path}: column {label!r} has no values")
    classes, positive, tolerance, spread = _label_facts(
        labels, task=task, label=label, path=path, positive_class=positive_class
    )
    warnings = [
        f"{column}: a different value on every row, like an identifier; if it is one, "
        "remove it from the contract's features"
        for column, kind in features
        if kind == "category" and len(frame) >= ID_LIKE_ROWS and frame[column].nunique() == len(frame)
    ]
    return DataSummary(
        path=_snapshot_reference(path, root),
        file=path.resolve(),
        sha256=fingerprint(path),
        label=label,
        features=features,
        na_values=na_values,
        classes=classes,
        positive_class=positive,
        live_tolerance=tolerance,
        label_std=spread,
        rows=len(labels),
        warnings=tuple(warnings),
    )


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"--data {path}: cannot read it as UTF-8 CSV: {error}") from None
    if not header:
        raise BadInputError(f"--data {path}: the file is empty; it needs a header line and rows")
    return header


def _missing_markers(frame: pd.DataFrame) -> tuple[str, ...]:
    """Markers that stand for missing values: the only non-numbers in an otherwise numeric column."""
    import pandas as pd

    found = set()
    for column in frame.columns:
        values = frame[column].dropna().str.strip()
        odd = set(values[pd.to_numeric(values, errors="coerce").isna()])
        if odd and odd <= set(MISSING_MARKERS) and len(odd) < values.nunique():
            found |= odd
    return tuple(sorted(found))


def _column_type(values: pd.Series) -> str:
    import pandas as pd

    present = values.dropna()
    if present.empty:
        return "category"
    return "number" if bool(pd.to_numeric(present, errors="coerce").notna().all()) else "category"


def _label_facts(
    labels: pd.Series, *, task: Task, label: str, path: Path, positive_class: str | None
) -> tuple[tuple[str, ...] | None, str | None, float | None, float | None]:
    """Classes and positive class (classification), or tolerance and spread (regression)."""
    import pandas as pd

    if positive_class is not None and task is not Task.binary:
        raise BadInputError(f"--positive-class is for binary_classification, not {task.value}")
    if task is Task.regression:
        numbers = pd.to_numeric(labels, errors="coerce")
        if numbers.isna().any():
            raise RefusedError(
                f"--task regression: column {label!r} of {path} has the non-numeric value "
                f"{labels[numbers.isna()].iloc[0]!r}; a regression label is a number",
                details=["a label with a few values is a classification task"],
            )
        spread = float(numbers.std())
        if not spread > 0:
            raise RefusedError(f"--data {path}: column {label!r} has one value only; nothing to predict")
        return None, None, round_significant(spread / 2, "nearest"), spread
    classes = tuple(sorted(set(labels)))
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    if task is Task.binary and len(classes) != 2:
        hint = "use multiclass_classification" if len(classes) > 2 else "a classifier needs two classes"
        raise RefusedError(
            f"--task binary_classification: column {label!r} of {path} has {len(classes)} "
            f"value(s) ({shown}); a binary classifier needs exactly 2",
            details=[hint],
        )
    if task is Task.multiclass and len(classes) < 3:
        raise RefusedError(
            f"--task multiclass_classification: column {label!r} of {path} has {len(classes)} "
            f"value(s) ({shown}); a multiclass classifier needs at least 3",
            details=["two classes: use binary_classification"],
        )
    if task is Task.multiclass:
        return classes, None, None, None
    if positive_class is None:
        return classes, classes[-1], None, None
    if positive_class not in classes:
        raise RefusedError(
            f"--positive-class {positive_class!r}: not a value of column {label!r}; "
            f"its values are {', '.join(classes)}"
        )
    return classes, positive_class, None, None


def _snapshot_reference(path: Path, root: Path) -> str:
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


ROUNDING: dict[str, Callable[[float], int]] = {"down": math.floor, "up": math.ceil, "nearest": round}


def round_significant(value: float, way: str, digits: int = 2) -> float:
    """``value`` at ``digits`` significant digits, rounded ``down``, ``up`` or to the ``nearest``."""
    if value == 0 or not math.isfinite(value):
        return value
    exponent = math.floor(math.log10(abs(value))) - (digits - 1)
    rounded = ROUNDING[way](value / 10**exponent)
    return float(round(rounded * 10**exponent, max(0, -exponent)))


# --- the baseline fit and the bounds it sets ---------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """How the generated model did when it was fitted once, seed 0, on the snapshot."""

    held_out: dict[str, float | None]
    """The model gate's metrics on the rows the trainer held out of fitting."""
    snapshot: dict[str, float | None]
    """The model gate's metrics on the whole snapshot (what ``gate model --data SNAPSHOT`` sees)."""
    live_accuracy: float
    """What the canary's live-accuracy check would count on the held-out rows: accuracy, or for
    regression the share of predictions within the live tolerance."""

    def worst(self, metric: str, direction: str) -> float | None:
        values = [
            value
            for value in (self.held_out.get(metric), self.snapshot.get(metric))
            if value is not None and math.isfinite(value)
        ]
        if not values:
            return None
        return min(values) if direction == "higher_is_better" else max(values)


def metric_bounds(task: Task, baseline: Baseline) -> dict[str, dict[str, float | bool]]:
    """Per metric: the task's default rule with an absolute bound a little on the safe side of the
    worse of the baseline's two scores (a calibration bound never tighter than the default)."""
    rules: dict[str, dict[str, float | bool]] = {}
    for metric, direction in METRIC_DIRECTIONS[task].items():
        rule: dict[str, float | bool] = dict(DEFAULT_RULES[task].get(metric, {}))
        worst = baseline.worst(metric, direction)
        if worst is None:
            continue
        if direction == "higher_is_better":
            rule["min"] = round_significant(worst - MARGIN * abs(worst), "down")
        else:
            margin = CALIBRATION_MARGIN if metric == "ece" else MARGIN
            bound = round_significant(worst + margin * abs(worst), "up")
            default = DEFAULT_RULES[task].get(metric, {}).get("max")
            rule["max"] = max(bound, float(default)) if metric == "ece" and default is not None else bound
        rules[metric] = {key: rule[key] for key in ("min", "max", "maxRegression", "relative") if key in rule}
    return rules


def live_accuracy_floor(baseline: Baseline) -> float:
    """``guardrails.minLiveAccuracy`` for a new stack entry: a tenth below the baseline's count on
    rows it never saw, so live traffic of the quality the model showed does not trip the canary."""
    return round_significant(baseline.live_accuracy * 0.9, "down")


def fit_baseline(contract: ServiceContract, data_file: Path, root: Path, scratch: Path) -> Baseline:
    """Train, package and gate the service once, as the platform's commands would.

    The model is trained on the whole snapshot, as ``modelrail train`` trains it; the model gate
    then scores it on the snapshot and on the rows the trainer held out from fitting.
    """
    import numpy as np

    from pipelines.gates.policy import load_policy
    from pipelines.gates.versions import model_gate, predictions, read_evaluation_data
    from pipelines.packaging.build import build_package
    from pipelines.packaging.load import load_package
    from pipelines.training.manifest import TrainingManifest
    from pipelines.training.trainer import train

    snapshot = contract.latest_snapshot
    manifest = TrainingManifest(
        service=contract.name, data_uri=snapshot.path, data_sha256=snapshot.sha256, code_git_sha="unknown"
    )
    train(manifest, scratch / "model", root=root, data_path=data_file)
    built = build_package(contract.name, scratch / "model", scratch / "model.tar.gz", root=root)
    package = load_package(built.path)
    policy = load_policy(stage="candidate")
    held = held_out_rows(contract, data_file, root, manifest)

    def metrics(rows: pd.DataFrame) -> dict[str, float | None]:
        return dict(model_gate(contract, package, None, rows, policy).subject["metrics"]["candidate"])

    held_out = metrics(held)
    if contract.task is Task.regression:
        assert contract.live_tolerance is not None  # the loader requires it for regression
        errors = np.abs(predictions(package, held) - held[contract.label].to_numpy(dtype=float))
        live = float(np.mean(errors <= contract.live_tolerance))
    else:
        live = float(held_out["accuracy"] or 0.0)
    return Baseline(
        held_out=held_out,
        snapshot=metrics(read_evaluation_data(contract, data_file, root)),
        live_accuracy=live,
    )


def held_out_rows(contract: ServiceContract, data_file: Path, root: Path, manifest: Any) -> pd.DataFrame:
    """The rows the trainer held out of fitting: its split, with the manifest's fraction and seed."""
    from sklearn.model_selection import train_test_split

    from pipelines.contract.data import read_data

    frame = read_data(contract, data_file, root)
    labels = frame[contract.label]
    stratify = labels if contract.task.is_classification and labels.value_counts().min() >= 2 else None
    _, held = train_test_split(
        frame,
        test_size=manifest.hyperparameters.test_fraction,
        stratify=stratify,
        random_state=manifest.seed,
    )
    rows: pd.DataFrame = held.reset_index(drop=True)
    return rows


def failing_metric_checks(contract: ServiceContract, data_file: Path, root: Path, scratch: Path) -> list[str]:
    """The model gate's failing metric checks, per stage, of the model ``fit_baseline`` packaged."""
    from pipelines.gates.policy import load_policy
    from pipelines.gates.versions import model_gate, read_evaluation_data
    from pipelines.packaging.load import load_package

    package = load_package(scratch / "model.tar.gz")
    rows = read_evaluation_data(contract, data_file, root)
    failed = []
    for stage in ("candidate", "production"):
        report = model_gate(contract, package, None, rows, load_policy(stage=stage))
        failed += [f"{stage}: {check.detail}" for check in report.checks if check.failed]
    return failed


# --- rendering ---------------------------------------------------------------------------------

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


MODEL_DOCSTRING = '''"""The training function of {name}: one scikit-learn pipeline, preprocessing included.

Written by `modelrail service new`; it is the team's to change. The served artifact takes raw
rows: median-impute and scale the numbers, constant-impute and one-hot encode the categories
(the rarest values pooled; a value unseen in training never fails a prediction), then
{what}. Every type in it is one the serving loader trusts, and every random choice is
seeded, so fitting is deterministic.
"""
'''

MODEL_COMMON = '''
from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field


def preprocess(frame: pd.DataFrame, max_categories: int) -> Any:
    """Numbers imputed and scaled, categories imputed and one-hot encoded (the contract's reader
    gives numbers as floats and categories as strings)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [column for column in frame.columns if pd.api.types.is_float_dtype(frame[column])]
    categorical = [column for column in frame.columns if column not in numeric]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        encode = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=max_categories, sparse_output=False
        )
        parts.append(
            (
                "categorical",
                Pipeline(
                    [("impute", SimpleImputer(strategy="constant", fill_value="missing")), ("onehot", encode)]
                ),
                categorical,
            )
        )
    return ColumnTransformer(parts)
'''

MODEL_CLASSIFIER = '''

class Parameters(BaseModel):
    """This service's hyperparameters (the contract's defaults, overridden by a manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classifier: Literal["logistic_regression", "hist_gradient_boosting"]
    learning_rate: float = Field(gt=0, le=1)
    max_iter: int = Field(ge=1, le=10000)
    max_leaf_nodes: int = Field(ge=2, le=1024)
    l2_regularization: float = Field(ge=0)
    c: float = Field(gt=0)
    max_categories: int = Field(ge=2)
    seed: int


def train(frame: pd.DataFrame, hyperparameters: dict[str, Any]) -> Any:
    """Fit the pipeline on the training rows (``frame.attrs`` names the label and the features)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    hp = Parameters.model_validate(hyperparameters)
    label, features = frame.attrs["label"], frame.attrs["features"]
    x = frame[features]
    model: Any
    if hp.classifier == "logistic_regression":
        model = LogisticRegression(C=hp.c, max_iter=hp.max_iter, random_state=hp.seed)
    else:
        model = HistGradientBoostingClassifier(
            learning_rate=hp.learning_rate,
            max_iter=hp.max_iter,
            max_leaf_nodes=hp.max_leaf_nodes,
            l2_regularization=hp.l2_regularization,
            early_stopping=False,
            random_state=hp.seed,
        )
    pipeline = Pipeline([("preprocess", preprocess(x, hp.max_categories)), ("classifier", model)])
    return pipeline.fit(x, frame[label])
'''

MODEL_REGRESSOR = '''

class Parameters(BaseModel):
    """This service's hyperparameters (the contract's defaults, overridden by a manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    regressor: Literal["ridge", "hist_gradient_boosting"]
    alpha: float = Field(ge=0)
    learning_rate: float = Field(gt=0, le=1)
    max_iter: int = Field(ge=1, le=10000)
    max_leaf_nodes: int = Field(ge=2, le=1024)
    l2_regularization: float = Field(ge=0)
    max_categories: int = Field(ge=2)
    seed: int


def train(frame: pd.DataFrame, hyperparameters: dict[str, Any]) -> Any:
    """Fit the pipeline on the training rows (``frame.attrs`` names the label and the features)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    hp = Parameters.model_validate(hyperparameters)
    label, features = frame.attrs["label"], frame.attrs["features"]
    x = frame[features]
    model: Any
    if hp.regressor == "ridge":
        model = Ridge(alpha=hp.alpha)
    else:
        model = HistGradientBoostingRegressor(
            learning_rate=hp.learning_rate,
            max_iter=hp.max_iter,
            max_leaf_nodes=hp.max_leaf_nodes,
            l2_regularization=hp.l2_regularization,
            early_stopping=False,
            random_state=hp.seed,
        )
    pipeline = Pipeline([("preprocess", preprocess(x, hp.max_categories)), ("regressor", model)])
    return pipeline.fit(x, frame[label])
'''


def render_model(name: str, task: Task) -> str:
    """``model.py``: the training function the contract names."""
    what = "a classifier" if task.is_classification else "a regressor"
    body = MODEL_CLASSIFIER if task.is_classification else MODEL_REGRESSOR
    return MODEL_DOCSTRING.format(name=name, what=what) + MODEL_COMMON + body


TEST_TEMPLATE = '''"""{name} trains on its contract's latest snapshot and meets its contract's metric rules.

Written by `modelrail service new`. The model is trained, packaged and judged by the model gate
on the snapshot as `modelrail gate model --data SNAPSHOT --stage STAGE` judges it, for both
stages; a change to model.py, its hyperparameters or the data that breaks a rule fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.contract.data import snapshot_path
from pipelines.contract.load import load_contract
from pipelines.gates.policy import load_policy
from pipelines.gates.versions import model_gate, read_evaluation_data
from pipelines.packaging.build import build_package
from pipelines.packaging.load import load_package
from pipelines.training.trainer import default_manifest, train

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "{name}"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("{slug}")
    train(default_manifest(SERVICE, ROOT), out / "model", root=ROOT)
    return build_package(SERVICE, out / "model", out / "model.tar.gz", root=ROOT).path


@pytest.mark.parametrize("stage", ["candidate", "production"])
def test_the_model_meets_its_metric_rules(package: Path, stage: str) -> None:
    contract = load_contract(SERVICE, ROOT)
    rows = read_evaluation_data(contract, snapshot_path(contract.latest_snapshot, ROOT), ROOT)
    report = model_gate(contract, load_package(package), None, rows, load_policy(stage=stage))
    metrics = [check for check in report.checks if check.name == "model.metric"]
    assert metrics, "the contract's rules judged no metric"
    assert not [check.detail for check in metrics if check.failed]
'''


def render_test(name: str) -> str:
    """``tests/services/test_<name>.py``: the service's own test."""
    return TEST_TEMPLATE.format(name=name, slug=slug(name))


# --- the scratch project and the move into place -----------------------------------------------


@dataclass
class Scaffold:
    """A service's files, written and checked in a scratch project, not yet in the project."""

    name: str
    task: Task
    scratch: Path
    data: DataSummary | None = None
    baseline: Baseline | None = None
    bounds: dict[str, dict[str, float | bool]] = field(default_factory=dict)
    files: dict[Path, str] = field(default_factory=dict)
    """Relative to the project root: the text of every file the service adds."""

    @property
    def placeholder(self) -> bool:
        return self.data is None


def build(
    name: str,
    task: Task,
    *,
    root: Path,
    data: DataSummary | None,
    progress: Callable[[str], None] = lambda _message: None,
) -> Scaffold:
    """Write the service into a scratch project and check it there; the caller discards ``scratch``."""
    scratch = Path(tempfile.mkdtemp(prefix=f"modelrail-service-new-{name}-"))
    try:
        scaffold = Scaffold(name=name, task=task, scratch=scratch, data=data)
        folder = scratch / "project" / SERVICES_DIR / name
        folder.mkdir(parents=True)
        (folder / MODEL_FILE).write_text(render_model(name, task), encoding="utf-8")
        contract_file = folder / CONTRACT_FILE
        contract_file.write_text(render_contract(name, task, data), encoding="utf-8")
        if data is None:
            _check_placeholders(contract_file)
        else:
            contract = read_contract(contract_file, root=scratch / "project")
            progress(f"fitting model.py once on {data.rows} rows to set the metric bounds")
            scaffold.baseline = fit_baseline(contract, data.file, scratch / "project", scratch / "fit")
            scaffold.bounds = metric_bounds(task, scaffold.baseline)
            contract_file.write_text(
                render_contract(name, task, data, scaffold.bounds, scaffold.baseline), encoding="utf-8"
            )
            final = read_contract(contract_file, root=scratch / "project")
            failed = failing_metric_checks(final, data.file, scratch / "project", scratch / "fit")
            if failed:
                raise RefusedError(
                    f"{name}: the generated model does not pass the model gate it was written for",
                    details=failed,
                )
        scaffold.files = {
            Path(SERVICES_DIR) / name / CONTRACT_FILE: contract_file.read_text(encoding="utf-8"),
            Path(SERVICES_DIR) / name / MODEL_FILE: (folder / MODEL_FILE).read_text(encoding="utf-8"),
            service_test_path(name): render_test(name),
        }
        return scaffold
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _check_placeholders(path: Path) -> None:
    """A placeholder contract must be refused for its placeholders, and for nothing else."""
    try:
        read_contract(path)
    except ContractError as error:
        others = [str(issue) for issue in error.issues if PLACEHOLDER not in str(issue.value)]
        if others:
            raise RefusedError(
                f"{path}: the generated contract is wrong beyond its placeholders", details=others
            ) from None
        return
    raise RefusedError(f"{path}: the generated placeholder contract loads; the loader should refuse it")


def install(scaffold: Scaffold, root: Path, stack_writes: Sequence[tuple[Path, str]]) -> list[Path]:
    """Move the service's files into the project and write the stack files, or change nothing.

    The service's folder appears in one rename; the test and each stack file replace atomically.
    Should any step fail, the steps before it are undone in reverse, so the project is as it was.
    """
    from pipelines.promotion.stackfile import restore

    taken = existing_files(scaffold.name, root)
    if taken:
        raise RefusedError(f"{taken[0]}: already exists; nothing written")
    undo: list[Callable[[], object]] = []
    written: list[Path] = []
    try:
        folder = root / SERVICES_DIR / scaffold.name
        _make_dirs(folder.parent, undo)
        staging = Path(tempfile.mkdtemp(prefix=f".{scaffold.name}.", dir=folder.parent))
        undo.append(partial(shutil.rmtree, staging, ignore_errors=True))
        for relative, text in scaffold.files.items():
            if relative.parts[:2] == (SERVICES_DIR, scaffold.name):
                (staging / relative.name).write_text(text, encoding="utf-8")
        staging.chmod(0o755)
        staging.rename(folder)
        undo[-1] = partial(shutil.rmtree, folder, ignore_errors=True)
        written.append(folder)

        test = root / service_test_path(scaffold.name)
        if _make_dirs(test.parent, undo):
            (test.parent / "__init__.py").write_text("", encoding="utf-8")  # the tests are a package
        temporary = test.with_name(f".{test.name}.{os.getpid()}.tmp")
        undo.append(partial(temporary.unlink, missing_ok=True))
        temporary.write_text(scaffold.files[service_test_path(scaffold.name)], encoding="utf-8")
        os.replace(temporary, test)
        undo.append(partial(test.unlink, missing_ok=True))
        written.append(test)

        for path, text in stack_writes:
            before = path.read_text(encoding="utf-8")
            restore(path, text)
            undo.append(partial(restore, path, before))
            written.append(path)
    except BaseException:
        for step in reversed(undo):
            with contextlib.suppress(OSError):
                step()
        raise
    return written


def _make_dirs(folder: Path, undo: list[Callable[[], object]]) -> bool:
    """Create ``folder`` and its missing parents, each removed again by ``undo``; whether it was new."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    for path in reversed(missing):
        path.mkdir()
        undo.append(partial(shutil.rmtree, path, ignore_errors=True))
    return bool(missing)


def placeholder_snapshot(name: str) -> str:
    """The snapshot path a contract written without data names, until it is filled in."""
    return f"data/{name}/{PLACEHOLDER}.csv"


def next_commands(name: str, *, stack: str | None, snapshot: str) -> list[str]:
    """The governed path from here to serving, with each command's real flags."""
    target = stack or "local"
    version = "<package id>"
    model, tarball = f"build/{name}/model", f"build/{name}/model.tar.gz"
    steps = [] if stack else [f"modelrail service add {name} --stack {target}"]
    return [
        *steps,
        f"pytest {service_test_path(name).as_posix()}",
        f"modelrail train    --service {name} --out {model}",
        f"modelrail package  --service {name} --model-dir {model} --out {tarball}",
        f"modelrail register --service {name} --package {tarball} --stack {target} --as you@example.com",
        f"modelrail qualify  --service {name} --version {version} --stack {target} --stage candidate "
        f"--reference {snapshot} --data {snapshot} --as you@example.com",
        f"modelrail qualify  --service {name} --version {version} --stack {target} --stage production "
        f"--reference {snapshot} --data {snapshot} --as you@example.com",
        f"modelrail approve  --service {name} --version {version} --stack {target} "
        '--as reviewer@example.com --comment "gates reviewed"',
        f"modelrail promote  --service {name} --version {version} --stack {target} --yes --as you@example.com",
        f"modelrail status   --stack {target}",
    ]


def describe(scaffold: Scaffold) -> dict[str, Any]:
    """The scaffold's facts for ``--json`` and the summary on screen."""
    data = scaffold.data
    return {
        "service": scaffold.name,
        "task": scaffold.task.value,
        "placeholder": scaffold.placeholder,
        "files": [path.as_posix() for path in scaffold.files],
        "data": None
        if data is None
        else {
            "path": data.path,
            "sha256": data.sha256,
            "rows": data.rows,
            "features": [{"name": column, "type": kind} for column, kind in data.features],
            "na_values": list(data.na_values),
            "classes": None if data.classes is None else list(data.classes),
            "positive_class": data.positive_class,
            "live_tolerance": data.live_tolerance,
        },
        "baseline": None
        if scaffold.baseline is None
        else {
            "held_out": scaffold.baseline.held_out,
            "snapshot": scaffold.baseline.snapshot,
            "live_accuracy": scaffold.baseline.live_accuracy,
        },
        "metrics": scaffold.bounds,
        "warnings": [] if data is None else list(data.warnings),
    }
