"""Gate policy: which gates a stage runs and every threshold they use, as typed YAML.

A policy file is validated like the stack config: frozen models, camelCase keys, unknown keys
refused, and every problem reported at once with the file, the key path, the bad value and what is
allowed. ``policies/candidate.yaml`` and ``policies/production.yaml`` are the shipped defaults;
``--policy FILE`` replaces them.

A policy holds what is the platform's to decide, for every service alike. How good a model must
be is the service's: its contract's ``metrics.<stage>`` over its task's defaults
(``ServiceContract.metric_rules``). A policy's ``model.metrics`` overrides those rules field by
field (``stage_rules``), so the shipped policies leave it empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from infra.config import ConfigIssue
from pipelines.contract.tasks import ALL_METRICS, METRIC_DIRECTIONS, Direction, Task
from pipelines.errors import BadInputError
from pipelines.registry.stages import GATED_STAGES, Stage

POLICY_DIR = Path(__file__).resolve().parent / "policies"
GateName = Literal["data", "drift", "model", "repro", "latency"]
NATURAL_DIRECTION: dict[str, Direction] = {
    name: direction for directions in METRIC_DIRECTIONS.values() for name, direction in directions.items()
}
"""Which way each metric is better; a name means the same metric (and direction) in every task."""


def _known_metric(name: str) -> str:
    if name not in ALL_METRICS:
        raise PydanticCustomError(
            "unknown_metric",
            "not a metric the model gate computes; allowed: {allowed}",
            {"allowed": ", ".join(ALL_METRICS)},
        )
    return name


def _gated_stage(value: Any) -> Any:
    """A stage that has gates, as the enum member (the strict models take members, not strings)."""
    if isinstance(value, str) and value in GATED_STAGES:
        return Stage(value)
    raise PydanticCustomError(
        "ungated_stage",
        "not a stage that gates qualify a version for; allowed: {allowed}",
        {"allowed": ", ".join(GATED_STAGES)},
    )


GatedStage = Annotated[Stage, BeforeValidator(_gated_stage)]
"""``candidate`` or ``production``: the stages a policy's gates stand in front of."""

MetricName = Annotated[str, AfterValidator(_known_metric)]
"""A metric of some task; whether it is one of the service's task is checked when the gate runs."""

Share = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


STRICT_YAML = ConfigDict(
    frozen=True,
    strict=True,
    extra="forbid",
    alias_generator=to_camel,
    populate_by_name=True,
    use_attribute_docstrings=True,
)
"""How a document people write in YAML is read: a policy here, a service contract in
``pipelines.contract.model``, one config so the two cannot come to read YAML differently.

Frozen, camelCase in YAML, strict about unknown keys and about types. Strict as the stack config
is: a boolean is never a number and a number never a string, so ``requests: true`` or
``p99Ms: "2000"`` is refused rather than read as 1 or 2000.
"""


class _Model(BaseModel):
    """A policy's parts, read as ``STRICT_YAML`` says."""

    model_config = STRICT_YAML


class DataPolicy(_Model):
    """Thresholds of the data-validation gate."""

    max_missing_increase: Share = 0.02
    """Largest increase of a column's missing share over the reference (absolute, 0.02 = 2 points)."""
    max_duplicate_share: Share = 0.05
    """Largest share of rows that repeat an earlier row."""
    max_out_of_domain_share: Share = 0.001
    """Largest share of a categorical column's values outside the schema's allowed categories."""
    max_out_of_range_share: Share = 0.001
    """Largest share of a numeric column's values outside the schema's [min, max]."""
    leakage_auc: Annotated[float, Field(ge=0.5, le=1)] = 0.99
    """A feature whose single-feature ROC AUC for the label reaches this is flagged as leakage."""
    max_skew_psi: NonNegative = 0.2
    """Largest PSI between the current data and the training fingerprint, per column."""
    max_categories: Annotated[int, Field(ge=2, le=100_000)] = 200
    """Categories kept per column in the schema and fingerprint; rarer ones are pooled as other."""


class NumericDrift(_Model):
    """Effect-size thresholds for numeric columns; ``null`` makes a statistic informational."""

    wasserstein: NonNegative | None = 0.1
    """Wasserstein distance divided by the reference's standard deviation."""
    psi: NonNegative | None = 0.2
    """PSI on reference-decile bins."""
    ks: Share | None = None
    """KS statistic D; informational by default (its p-value flags any shift at large n)."""


class CategoricalDrift(_Model):
    """Effect-size thresholds for categorical columns; ``null`` makes a statistic informational."""

    jensenshannon: Share | None = 0.1
    """Jensen–Shannon distance (base 2) between the category shares."""
    psi: NonNegative | None = 0.2
    """PSI on the category shares."""


class ColumnDrift(_Model):
    """Per-column overrides of the drift thresholds."""

    ignore: bool = False
    """Leave the column out of the drift gate (an id, a timestamp)."""
    wasserstein: NonNegative | None = None
    psi: NonNegative | None = None
    ks: Share | None = None
    jensenshannon: Share | None = None


class DriftPolicy(_Model):
    """Thresholds of the drift gate."""

    numeric: NumericDrift = NumericDrift()
    categorical: CategoricalDrift = CategoricalDrift()
    max_drifted_share: Share = 0.5
    """The gate also fails when more than this share of the compared columns drifted."""
    psi_bins: Annotated[int, Field(ge=2, le=100)] = 10
    max_categories: Annotated[int, Field(ge=2, le=100_000)] = 200
    """Most frequent reference categories compared one by one; the rest are pooled as other."""
    columns: dict[str, ColumnDrift] = {}
    """Overrides by column name."""


class MetricRule(_Model):
    """Bounds on one model metric: absolute, and as a change against the production baseline."""

    min: float | None = None
    """The candidate's value must be at least this."""
    max: float | None = None
    """The candidate's value must be at most this."""
    max_regression: NonNegative | None = None
    """How far the candidate may fall behind the baseline, in the metric's worse direction."""
    relative: bool = False
    """``maxRegression`` is a fraction of the baseline's value instead of an absolute amount."""
    direction: Direction | None = None
    """Which way is better; defaults to the metric's own (``NATURAL_DIRECTION``)."""

    def overridden_by(self, override: MetricRule) -> MetricRule:
        """This rule with every field ``override`` sets (in its file) taking that value."""
        return self.model_copy(update=override.model_dump(exclude_unset=True))


class FairnessPolicy(_Model):
    """Largest allowed gaps between the slices of each sensitive column, per task.

    A binary model is held to demographic parity and equal opportunity, a multiclass one to the
    gap in accuracy, a regression model to the gap in mean absolute error.
    """

    sensitive_columns: Annotated[tuple[str, ...], Strict(False)] | None = None
    """Columns whose slices are compared; ``null`` takes the service contract's ``sensitive``."""
    max_demographic_parity_difference: Share = 0.25
    """Binary: largest gap in positive-prediction rate between two slices of a sensitive column."""
    max_equal_opportunity_difference: Share = 0.2
    """Binary: largest gap in true-positive rate between two slices of a sensitive column."""
    max_accuracy_difference: Share | None = 0.1
    """Multiclass: largest gap in accuracy between two slices; ``null`` reports it without a verdict."""
    max_mae_difference: NonNegative | None = None
    """Regression: largest gap in mean absolute error between two slices, in the label's units.
    ``null`` (the default) reports it without a verdict: no bound suits every label's scale."""
    min_slice_size: Annotated[int, Field(ge=1)] = 100
    """Slices with fewer rows (or, for equal opportunity, fewer actual positives than half this)
    are listed but not compared: their rates are noise."""


class ModelPolicy(_Model):
    """Thresholds of the model-versus-baseline gate."""

    decision_threshold: Share = 0.5
    """Binary: the probability at or above which a prediction is the positive class (accuracy,
    F1, fairness)."""
    calibration_bins: Annotated[int, Field(ge=2, le=100)] = 10
    min_class_rows: Annotated[int, Field(ge=1)] = 30
    """Multiclass: a class's one-vs-rest calibration error counts towards ``ece`` only when this
    many evaluation rows have the class."""
    metrics: dict[MetricName, MetricRule | None] = {}
    """Overrides of the service's rules for this stage, field by field; a metric the service has
    no rule for is added, ``null`` drops one. Each must be a metric of the service's task."""
    fairness: FairnessPolicy = FairnessPolicy()


class ReproPolicy(_Model):
    """How a retrained candidate is compared with the registered one."""

    prediction_tolerance: NonNegative = 1e-9
    """Largest difference in prediction when the package hashes differ: in probability for a
    classifier (any class), in units of the label's standard deviation for a regression model."""
    rows: Annotated[int, Field(ge=1)] = 2000
    """Rows of the evaluation data scored by both packages."""


class LatencyPolicy(_Model):
    """Load driven against the candidate in the serving code, and its budget."""

    requests: Annotated[int, Field(ge=10)] = 400
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    rows_per_request: Annotated[int, Field(ge=1, le=10_000)] = 1
    warmup_requests: Annotated[int, Field(ge=0)] = 20
    p50_ms: Annotated[float, Field(gt=0)] | None = None
    """Median budget in ms; ``null`` reports the median without a verdict."""
    p99_ms: Annotated[float, Field(gt=0)] | None = None
    """99th-percentile budget in ms; ``null`` takes the service's ``guardrails.p99LatencyMs``."""
    min_throughput_rps: Annotated[float, Field(gt=0)] | None = None
    max_memory_mb: Annotated[float, Field(gt=0)] = 1024
    """Peak resident memory of the serving process."""


class GatePolicy(_Model):
    """Everything one stage's gates check."""

    stage: GatedStage
    gates: Annotated[tuple[GateName, ...], Strict(False)] = ("data", "drift", "model", "repro", "latency")
    """The gates the stage runs, in order."""
    data: DataPolicy = DataPolicy()
    drift: DriftPolicy = DriftPolicy()
    model: ModelPolicy = ModelPolicy()
    repro: ReproPolicy = ReproPolicy()
    latency: LatencyPolicy = LatencyPolicy()
    _source: str = PrivateAttr(default="the gate policy")

    @property
    def source(self) -> str:
        """The file the policy was read from, for errors found when a gate runs."""
        return self._source

    @model_validator(mode="after")
    def _gates_unique(self) -> GatePolicy:
        if len(set(self.gates)) != len(self.gates):
            raise ValueError("each gate may appear once in `gates`")
        return self

    def digest(self) -> str:
        """sha256 of the policy's canonical JSON: reports name the exact thresholds they used."""
        from pipelines.gates.report import canonical_digest

        return canonical_digest(self.model_dump(mode="json", by_alias=True))


class PolicyError(BadInputError):
    """A policy file that is missing, not YAML, or breaks the schema; lists every problem."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        super().__init__(
            f"{source}: {len(issues)} problem(s) in the gate policy",
            details=[str(issue) for issue in issues],
        )
        self.issues = issues


def default_policy_path(stage: str) -> Path:
    """The shipped policy of a stage: ``pipelines/gates/policies/<stage>.yaml``."""
    if stage not in GATED_STAGES:
        raise BadInputError(f"unknown stage {stage!r}; allowed: {', '.join(GATED_STAGES)}")
    return POLICY_DIR / f"{stage}.yaml"


def load_policy(path: Path | None = None, *, stage: str = "candidate") -> GatePolicy:
    """Read and validate a policy file (the stage's shipped default when ``path`` is None)."""
    from pipelines.yamlfile import read_yaml_file

    path = path or default_policy_path(stage)
    source = str(path)
    document = read_yaml_file(path, "policy file")
    if not isinstance(document, dict):
        issue = ConfigIssue(source, "<document>", type(document).__name__, "a mapping with a `stage:` key")
        raise PolicyError(source, [issue])
    return parse_policy(document, source=source)


def parse_policy(document: dict[str, Any], *, source: str) -> GatePolicy:
    """Validate a policy mapping; raises ``PolicyError`` listing every problem."""
    try:
        policy = GatePolicy.model_validate(document)
    except ValidationError as error:
        issues = [
            ConfigIssue(
                source,
                ".".join(str(part) for part in item["loc"] if part != "[key]") or "<document>",
                item.get("input"),
                _allowed(item),
            )
            for item in error.errors()
        ]
        raise PolicyError(source, issues) from None
    policy._source = source
    return policy


def _allowed(item: Any) -> str:
    if item["type"] == "extra_forbidden":
        parent = _model_at(tuple(item["loc"][:-1]))
        if parent is not None:
            names = sorted(field.alias or name for name, field in parent.model_fields.items())
            return "unknown key; allowed keys: " + ", ".join(names)
        return "unknown key"
    if item["type"] == "missing":
        return "required key is missing"
    message = str(item["msg"])
    return message[0].lower() + message[1:]


def _model_at(loc: tuple[Any, ...]) -> type[_Model] | None:
    """The policy model a pydantic error location points into (dict keys are stepped over)."""
    current: Any = GatePolicy
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, _Model):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap_optional(current)
    return current if isinstance(current, type) and issubclass(current, _Model) else None


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` for ``X | None`` (a rule that may be ``null``); any other annotation as it is."""
    members = get_args(annotation)
    if len(members) == 2 and type(None) in members:
        return next(member for member in members if member is not type(None))
    return annotation


def metric_direction(name: str, rule: MetricRule) -> Direction:
    """The rule's direction, or the metric's natural one."""
    return rule.direction or NATURAL_DIRECTION[name]


def stage_rules(
    policy: GatePolicy, task: Task, service_rules: Mapping[str, MetricRule]
) -> dict[str, MetricRule]:
    """The metric rules the model gate applies: the service's, overridden by the policy's.

    ``service_rules`` is ``contract.metric_rules(policy.stage)``. A policy naming a metric the
    task does not have is refused here, where the task is known (``PolicyError`` naming the
    file, ``model.metrics.<name>`` and the task's metrics).
    """
    allowed = METRIC_DIRECTIONS[task]
    issues = [
        ConfigIssue(
            policy.source,
            f"model.metrics.{name}",
            name,
            f"not a metric of {task.value}; allowed: {', '.join(allowed)}",
        )
        for name in policy.model.metrics
        if name not in allowed
    ]
    if issues:
        raise PolicyError(policy.source, issues)
    return overridden(service_rules, policy.model.metrics)


def overridden(
    rules: Mapping[str, MetricRule], overrides: Mapping[str, MetricRule | None]
) -> dict[str, MetricRule]:
    """``rules`` with each override applied field by field; an override of ``null`` drops the metric.

    The one merge of metric rules: a contract's stage over its task's defaults, a policy file
    over the contract's.
    """
    merged = dict(rules)
    for name, override in overrides.items():
        if override is None:
            merged.pop(name, None)
        else:
            merged[name] = merged[name].overridden_by(override) if name in merged else override
    return merged
