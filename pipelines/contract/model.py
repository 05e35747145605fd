"""The typed service contract: ``services/<name>/service.yaml``, validated like the stack config.

Frozen models, camelCase keys, unknown keys refused, strict about types, and every problem
(structure first, then the rules across fields) reported at once with the file, the key path,
the bad value and what is allowed.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict

from pipelines.contract.tasks import Task
from pipelines.gates.policy import STRICT_YAML, MetricRule

NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
"""A service name: lower-case letters, digits and dashes; it names stacks' entries, buckets and groups."""
ENTRY_POINT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
"""``module:function``; the module is a file in the service's folder (dots for sub-folders)."""
SHA256_PATTERN = r"^[0-9a-f]{64}$"

Scalar = str | int | float | bool | None


class _Model(BaseModel):
    """A contract's parts, read as a gate policy is (``STRICT_YAML``)."""

    model_config = STRICT_YAML


class Feature(_Model):
    """One input column of the model."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    type: Literal["number", "category"]
    """``number`` is read as a float (missing as NaN); ``category`` as a string (missing as null)."""


class CsvFormat(_Model):
    """How the data snapshots are written, when they are CSV."""

    header: bool = True
    """The first line names the columns. Without one, ``columns`` gives them in file order."""
    columns: Annotated[tuple[str, ...], Strict(False)] | None = None
    """Every column of a headerless file, in file order (features, label and any others)."""
    na_values: Annotated[tuple[str, ...], Strict(False)] = ()
    """Strings that mean a missing value besides the empty field, e.g. ``?``."""
    skip_initial_space: bool = False
    """Ignore spaces after each comma."""
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","


class Snapshot(_Model):
    """One training data snapshot, pinned by content."""

    path: Annotated[str, Field(min_length=1)]
    """A path relative to the project root (inside it), an absolute path, or a ``file://`` URI."""
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)]
    """sha256 of the file's bytes; training refuses data that does not match."""


class DataSpec(_Model):
    """Where the training data is and how to read it."""

    snapshots: Annotated[tuple[Snapshot, ...], Field(min_length=1), Strict(False)]
    """Oldest first; a default training run uses the last one."""
    format: CsvFormat = CsvFormat()
    reader: Annotated[str, Field(pattern=ENTRY_POINT_PATTERN)] | None = None
    """``module:function`` taking a path and returning a frame, for files CSV cannot describe;
    replaces ``format``."""


class StageMetrics(_Model):
    """Per-stage overrides of the task's default metric rules; ``null`` drops a metric."""

    candidate: dict[str, MetricRule | None] = {}
    production: dict[str, MetricRule | None] = {}


class ServiceContract(_Model):
    """Everything the platform needs to know about one model service."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    """The service's name; the same as its folder's."""
    description: str = ""
    task: Annotated[Task, Strict(False)]
    label: Annotated[str, Field(min_length=1)]
    """The column the model predicts."""
    classes: Annotated[tuple[str, ...], Strict(False)] | None = None
    """Classification: every label value, in the order of the probabilities served."""
    positive_class: str | None = None
    """Binary classification: the class whose probability is served and judged."""
    features: Annotated[tuple[Feature, ...], Field(min_length=1), Strict(False)]
    """The model's inputs, in the order positional rows (CSV invocations) give them."""
    sensitive: Annotated[tuple[str, ...], Strict(False)] = ()
    """Feature columns the fairness checks compare slices of; may be empty."""
    data: DataSpec
    train: Annotated[str, Field(pattern=ENTRY_POINT_PATTERN)]
    """``module:function(frame, hyperparameters)`` returning a fitted scikit-learn-compatible estimator."""
    predict: Annotated[str, Field(pattern=ENTRY_POINT_PATTERN)] | None = None
    """Optional ``module:function(estimator, frame)`` returning the served values, when the
    estimator's own ``predict``/``predict_proba`` is not what should be served: one number per row
    for regression, an n × classes probability matrix (schema class order) for classification.
    ``frame`` holds exactly the features, in contract order. The module (and its folder's other
    modules) travel in the package under ``code/service/``, verified by hash like every file."""
    hyperparameters: dict[str, Scalar] = {}
    """Defaults handed to the training function; a training manifest overrides them key by key."""
    metrics: StageMetrics = StageMetrics()
    live_tolerance: Annotated[float, Field(gt=0)] | None = None
    """Regression: a live prediction within this distance of its delayed label counts as correct
    for the canary's live-accuracy check."""

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @property
    def numeric_features(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features if feature.type == "number")

    @property
    def categorical_features(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features if feature.type == "category")

    @property
    def latest_snapshot(self) -> Snapshot:
        return self.data.snapshots[-1]

    def metric_rules(self, stage: str) -> dict[str, MetricRule]:
        """The task's default rules with this stage's overrides applied field by field."""
        from pipelines.contract.tasks import DEFAULT_RULES
        from pipelines.gates.policy import overridden

        defaults = {name: MetricRule.model_validate(rule) for name, rule in DEFAULT_RULES[self.task].items()}
        return overridden(defaults, getattr(self.metrics, stage))


def module_file(entry_point: str) -> str:
    """The file an entry point's module names, relative to the service's folder."""
    module = entry_point.split(":", 1)[0]
    return module.replace(".", "/") + ".py"


def slug(name: str) -> str:
    """A service name as a Python identifier (its modules are imported under this name)."""
    return re.sub(r"[^a-z0-9_]", "_", name)
