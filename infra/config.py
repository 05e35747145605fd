"""The typed stack configuration: the single source of truth for ``stacks/Pulumi.<env>.yaml``.

One schema serves two readers through one loader, ``parse_config_map``:

* inside the Pulumi engine, ``from_pulumi_config`` hands it the stack's config as the engine
  passes it to the program;
* offline tools (``modelrail config validate``, ``plan``, ``promote``) call ``load_stack_file``,
  which reads the YAML and hands over its ``config:`` map.

Every problem is collected before anything is reported, and each names the stack file, the key
path, the bad value and what is allowed, so a user fixes a file in one pass.
"""

from __future__ import annotations

import heapq
import json
import re
import reprlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, cast, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

PROJECT = "modelrail"
"""The Pulumi project name, and so the namespace of this project's config keys."""

STACK_NAMES = ("local", "dev", "staging", "prod")
MODEL_VERSION_PATTERN = r"^[0-9a-f]{64}$"
SERVICE_NAME_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
SECRET_PLACEHOLDER = "[secret]"

PLATFORM_KEY = f"{PROJECT}:platform"
SERVICES_KEY = f"{PROJECT}:services"
ALERT_WEBHOOK_KEY = f"{PROJECT}:alertWebhookUrl"
KNOWN_PROJECT_KEYS = (PLATFORM_KEY, SERVICES_KEY, ALERT_WEBHOOK_KEY)
PASS_THROUGH_NAMESPACES = ("aws", "pulumi")
"""Config namespaces owned by the provider and the engine; modelrail only checks ``aws:region``."""

TOP_LEVEL_STACK_KEYS = (
    "config",
    "secretsprovider",
    "encryptedkey",
    "encryptionsalt",
    "environment",
)


class _Model(BaseModel):
    """Frozen, camelCase in YAML, strict about unknown keys and about types.

    Strict: a boolean is never a number (``instanceCount: true`` is not 1), a number is never a
    string and a string never a number (``bakeSeconds: "20"`` is refused), and only ``true`` and
    ``false`` are booleans. The one conversion kept is a whole number written as a float
    (``2.0``) for an integer key, which JSON Schema also counts as an integer. Schemas build on
    first use (``defer_build``), so importing this module stays cheap.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        strict=True,
        defer_build=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _whole_float_as_int(cls, value: Any, info: ValidationInfo) -> Any:
        """``2.0`` for an integer key is 2; ``2.5``, ``true`` and ``"2"`` still fail as integers."""
        if isinstance(value, float) and value.is_integer() and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _takes_int(field.annotation):
                return int(value)
        return value


def _takes_int(annotation: Any) -> bool:
    """Whether a field's type is ``int``, or ``int`` or None (and no float that ``2.0`` would fit)."""
    if annotation is int:
        return True
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    return int in options and float not in options


_M = TypeVar("_M", bound=_Model)


def _default(model: type[_M]) -> _M:
    """A nested section's all-defaults value, equal to ``model()``, built without validating.

    ``model()`` would build the section's schema while this module is imported; the defaults
    need no check, and ``defer_build`` leaves every schema to the first validation.
    """
    return cast(_M, model.model_construct())


class RetentionDays(_Model):
    """How long artifacts stay in the artifact bucket, per stage.

    Production artifacts, and the previous production version, are never expired; they are the
    rollback targets.
    """

    experimental: Annotated[int, Field(ge=1, le=3650)] = 30
    """Days an experimental (registered, ungated) artifact is kept."""
    candidate: Annotated[int, Field(ge=1, le=3650)] = 90
    """Days a candidate artifact is kept."""
    noncurrent_versions: Annotated[int, Field(ge=1, le=3650)] = 30
    """Days a noncurrent S3 object version is kept after it is overwritten or deleted."""


class Alerts(_Model):
    """Where guardrail alarms and promotion events are sent."""

    emails: Annotated[  # Strict(False): a YAML list makes the tuple; each address stays strict
        tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...], Strict(False)
    ] = ()
    """E-mail addresses subscribed to the alerts topic."""


KUBERNETES_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A Kubernetes namespace or object name (RFC 1123 label)."""
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
"""A Kubernetes resource quantity, e.g. ``500m``, ``2Gi``."""


class Kubernetes(_Model):
    """The cluster that serves the stack's ``runtime: kserve`` services.

    Name it by a kubeconfig ``context`` or by an ``eksCluster`` in ``platform.region``, one of
    the two. The ``local`` stack needs neither: the sandbox serves KServe services there.
    """

    context: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """A kubeconfig context (``kubectl config get-contexts``)."""
    eks_cluster: Annotated[str, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")] | None = None
    """An EKS cluster by name; its endpoint, CA and OIDC issuer come from ``eks:DescribeCluster``."""
    oidc_issuer: Annotated[str, Field(pattern=r"^https://[^\s]+$")] | None = None
    """The cluster's OIDC issuer URL, for IRSA (required with ``context``; read from EKS otherwise)."""
    namespace: Annotated[str, Field(pattern=KUBERNETES_NAME)] | None = None
    """The namespace of the stack's InferenceServices unless a service names its own; ``null``:
    ``modelrail-<environment>``, so two environments on one cluster never manage one namespace."""
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    """The Prometheus HTTP API the canary analysis of a KServe service queries (PromQL)."""
    prometheus_scrape_seconds: Annotated[int, Field(ge=1, le=600)] = 30
    """How often that Prometheus scrapes the predictor pods: a window is queried once one and a half
    scrapes have passed after its end, so its last requests are in."""


class Platform(_Model):
    """Settings shared by every service in one environment stack."""

    environment: Literal["local", "dev", "staging", "prod"]
    """The environment this stack deploys; must match the stack file's name."""
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    """AWS region, e.g. ``eu-west-1``."""
    retention_days: RetentionDays = _default(RetentionDays)
    """Artifact retention per stage (see below)."""
    alerts: Alerts = _default(Alerts)
    """Alert destinations (see below)."""
    approval_required: bool = False
    """Promotions need the production-stage gates and a second person's approval (always on in prod)."""
    tags: dict[
        Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]
    ] = {}
    """Extra tags on every taggable resource, next to ``service``, ``environment``, ``managed-by``."""
    kubernetes: Kubernetes = _default(Kubernetes)
    """The cluster of ``runtime: kserve`` services (see below)."""


class ShadowPhase(_Model):
    """The candidate answers a mirrored share of production requests; no user sees its answers."""

    percent: Annotated[int, Field(ge=1, le=100)] = 50
    """Share of production requests mirrored to the shadow (SageMaker's shadow variant weight)."""
    bake_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    """How long the shadow is judged against production before the progression goes on."""
    min_agreement: Annotated[float, Field(ge=0, le=1)] = 0.8
    """Smallest share of mirrored predictions on which the shadow must agree with production (the
    same label; for a regression, within the service's live tolerance)."""


class Analysis(_Model):
    """The anytime-valid judge of every bake: its error budget and when it may promote early."""

    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    """The chance of a false rollback over one bake (each phase of a progression, each KServe
    traffic step, has its own), however often it looks, split across the checks."""
    early_promotion: bool = False
    """Promote before the bake ends once every check shows the canary no worse than its tolerance."""


class DeploymentPolicy(_Model):
    """How a new model version shifts traffic (SageMaker blue/green deployment guardrails)."""

    strategy: Literal["all_at_once", "canary", "linear"] = "canary"
    """``canary``: a slice first, then the rest; ``linear``: equal steps; ``all_at_once``: one step."""
    canary_percent: Annotated[int, Field(ge=1, le=100)] = 10
    """Share of capacity that takes the canary traffic first (at most 50)."""
    linear_step_percent: Annotated[int, Field(ge=1, le=100)] = 20
    """Share of capacity shifted per step of a linear rollout (10 to 50)."""
    bake_seconds: int = 600
    """Wait between traffic shifts while the alarms watch (0 to 3600)."""
    termination_wait_seconds: Annotated[int, Field(ge=0, le=3600)] = 120
    """How long the old fleet stays up after the full shift, for a fast rollback."""
    max_execution_seconds: Annotated[int, Field(ge=600, le=14400)] = 3600
    """Upper bound on the whole blue/green deployment, above its waits (bakes and termination wait).

    600 to 14400: the bound of pulumi-aws (the Terraform provider's validator); SageMaker's API
    itself would take up to 28800.
    """
    shadow: ShadowPhase = _default(ShadowPhase)
    """The shadow phase of a ``progression`` that starts with ``shadow`` (see below)."""
    progression: (
        Annotated[  # Strict(False): a YAML list makes the tuple; each phase stays a strict literal
            tuple[Literal["shadow", "canary", "linear", "full"], ...], Strict(False)
        ]
        | None
    ) = None
    """The phases a new version goes through, each its own stack update and bake: for example
    ``[shadow, canary, full]``. ``null``: the strategy's own (``[canary, full]``, ``[linear, full]``
    or ``[full]``). Ends with ``full``; ``shadow`` comes first; the traffic phase is the strategy's.
    A shadow phase needs ``runtime: sagemaker``: KServe cannot mirror traffic."""
    analysis: Analysis = _default(Analysis)
    """How the anytime-valid judge decides each bake (see below)."""

    @property
    def phases(self) -> tuple[str, ...]:
        """The progression as declared, or the strategy's own."""
        if self.progression is not None:
            return tuple(self.progression)
        return {"canary": ("canary", "full"), "linear": ("linear", "full"), "all_at_once": ("full",)}[
            self.strategy
        ]

    @property
    def shadowed(self) -> bool:
        """Whether a new version is mirrored to as a shadow before it takes user traffic."""
        return "shadow" in self.phases

    @property
    def bakes(self) -> int:
        """How many bakes SageMaker runs: canary 2 (the canary's, then a final one), linear one per
        step (``ceil(100 / linearStepPercent)`` steps), all at once 1."""
        if self.strategy == "canary":
            return 2
        if self.strategy == "linear":
            return -(-100 // self.linear_step_percent)
        return 1

    @property
    def wait_seconds(self) -> int:
        """The rollout's waits as SageMaker runs them: every bake, then the termination wait."""
        return self.bakes * self.bake_seconds + self.termination_wait_seconds


PROVIDER_ENDPOINT_WAIT_SECONDS = 3600
"""How long the provider waits for an endpoint update: 60 minutes, fixed (terraform-provider-aws
``waitEndpointInService``, which pulumi-aws runs). A longer rollout outlives ``pulumi up``."""

FLEET_START_SECONDS = 600
"""Room left in that wait for SageMaker to start the new fleet before the first shift (an
estimate: instances usually take a few minutes); the rollout's waits get the rest."""


class Guardrails(_Model):
    """Thresholds the rollback alarms and the canary analysis enforce."""

    max_5xx_rate: Annotated[float, Field(ge=0, le=1, alias="max5xxRate")] = 0.01
    """Largest share of invocations that may fail with a 5xx error."""
    max_4xx_rate: Annotated[float, Field(ge=0, le=1, alias="max4xxRate")] = 0.05
    """Largest share of invocations rejected with a 4xx error: a new model refusing valid input."""
    p99_latency_ms: Annotated[float, Field(gt=0, le=60000, alias="p99LatencyMs")] = 500
    """Largest acceptable 99th-percentile model latency, in milliseconds."""
    min_live_accuracy: Annotated[float, Field(ge=0, le=1)] | None = 0.8
    """Smallest acceptable accuracy on delayed labels; ``null`` when labels never come back."""
    max_prediction_drift: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Largest Jensen-Shannon distance between canary and baseline prediction distributions."""
    error_rate_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.005
    """How much higher than the baseline's the canary's 5xx rate may be (absolute share)."""
    latency_tolerance: Annotated[float, Field(ge=0, le=10)] = 0.25
    """How much slower than the baseline's the canary's p99 may be (a share: 0.25 is 25% slower)."""
    accuracy_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.02
    """How much lower than the baseline's the canary's live accuracy may be (absolute share)."""


class Autoscaling(_Model):
    """Target tracking on invocations per instance."""

    min_instances: Annotated[int, Field(ge=1, le=100)] = 1
    """Fewest instances autoscaling may leave running."""
    max_instances: Annotated[int, Field(ge=1, le=100)] = 4
    """Most instances autoscaling may start."""
    target_invocations_per_instance: Annotated[int, Field(ge=1, le=100000)] = 1000
    """Invocations per instance per minute that target tracking aims for."""
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    """Seconds after a scale-in before another (SageMaker target tracking)."""
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    """Seconds after a scale-out before another (SageMaker target tracking)."""


class Resources(_Model):
    """CPU and memory of one KServe predictor pod (Kubernetes quantities)."""

    cpu: Annotated[str, Field(pattern=QUANTITY)] = "1"
    """CPU request, e.g. ``500m`` or ``1``."""
    memory: Annotated[str, Field(pattern=QUANTITY)] = "2Gi"
    """Memory request, e.g. ``2Gi``."""
    cpu_limit: Annotated[str, Field(pattern=QUANTITY)] | None = None
    """CPU limit; ``null``: no limit (the request only)."""
    memory_limit: Annotated[str, Field(pattern=QUANTITY)] | None = None
    """Memory limit; ``null``: the memory request (a pod above it is OOM-killed, not throttled)."""


class KServe(_Model):
    """How a ``runtime: kserve`` service runs on the cluster (replicas: ``autoscaling``)."""

    namespace: Annotated[str, Field(pattern=KUBERNETES_NAME)] | None = None
    """The InferenceService's namespace; ``null``: the platform's (``StackConfig.namespace_of``)."""
    resources: Resources = _default(Resources)
    """Requests and limits of each predictor pod (see below)."""
    scale_metric: Literal["concurrency", "rps", "cpu", "memory"] = "concurrency"
    """What KServe's autoscaler tracks (``scaleMetric``): in-flight requests, requests per second,
    CPU or memory utilisation."""
    scale_target: Annotated[int, Field(ge=1, le=100000)] = 10
    """The per-pod target of ``scaleMetric`` (``scaleTarget``; a percentage for cpu and memory)."""


class Service(_Model):
    """One model service: what runs, how it is rolled out, and what rolls it back."""

    runtime: Literal["sagemaker", "kserve"] = "sagemaker"
    """Where the service is served: a SageMaker endpoint, or a KServe InferenceService on the
    platform's Kubernetes cluster (``platform.kubernetes``)."""
    model_version: Annotated[str, Field(pattern=MODEL_VERSION_PATTERN)] | None = None
    """The pinned model version: the package id (sha256 of the package manifest, 64 hex digits).

    ``null`` until the first promotion: the service's registry and training exist, its endpoint
    does not yet. Only ``modelrail promote`` (or ``rollback``) changes it.
    """
    serving_image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] = "latest"
    """Tag of the serving image in the platform's ECR repository."""
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = "ml.m5.large"
    """SageMaker instance type of the production variant."""
    instance_count: Annotated[int, Field(ge=1, le=100)] = 2
    """Initial instance count; within the autoscaling bounds."""
    instance_count_floor: Annotated[int, Field(ge=1, le=100)] | None = None
    """Written by `modelrail promote` and `rollback` with `modelVersion`, never by hand: the instances
    the endpoint ran (DescribeEndpoint) when the rollout began, when more than `instanceCount`.

    The provider never sets `RetainAllVariantProperties`, so a blue/green update starts the new
    fleet at the configuration's initial count; the new configuration therefore starts at
    `instanceCount` raised to this floor, and never above `autoscaling.maxInstances`. `null`: no floor.
    """
    canary_traffic_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    """Written by `modelrail promote` and `rollback` with `modelVersion`, never by hand (KServe): the
    share of traffic the latest revision takes while its canary bakes (KServe's
    `canaryTrafficPercent`); `null` once it takes all traffic."""
    shadow_version: Annotated[str, Field(pattern=MODEL_VERSION_PATTERN)] | None = None
    """Written by `modelrail promote` with `modelVersion`, never by hand: the candidate a
    `shadow` phase mirrors traffic to (SageMaker's shadow variant); `null` outside that phase."""
    deployment: DeploymentPolicy = _default(DeploymentPolicy)
    """How a new version shifts traffic (see below)."""
    guardrails: Guardrails = _default(Guardrails)
    """Thresholds of the rollback alarms and the canary analysis (see below)."""
    autoscaling: Autoscaling = _default(Autoscaling)
    """Target tracking on invocations per instance (see below); min/max replicas on KServe."""
    kserve: KServe = _default(KServe)
    """How a ``runtime: kserve`` service runs on the cluster (see below)."""
    data_capture_percent: Annotated[int, Field(ge=0, le=100)] = 20
    """Share of requests and responses captured to the artifact bucket for monitoring."""
    serving_threads: Annotated[int, Field(ge=1, le=256)] = 1
    """OpenMP/BLAS threads each prediction may use (``MODELRAIL_SERVING_THREADS`` in the server).

    The server already runs one thread per request; more library threads per request
    oversubscribe the cores under concurrency (p99 went from 125 ms to 1.3 s on 2 cores). Raise it
    only for large batches on an instance with cores to spare, and re-run the latency gate.
    """

    @property
    def rollout_instance_count(self) -> int:
        """Instances a new endpoint configuration starts with: ``instanceCount`` raised to
        ``instanceCountFloor``, at most ``autoscaling.maxInstances``."""
        floor = self.instance_count_floor or self.instance_count
        return min(max(self.instance_count, floor), self.autoscaling.max_instances)

    def capacity_floor(self, running: int | None) -> int | None:
        """The ``instanceCountFloor`` for an endpoint that runs ``running`` instances (None: not
        known): that count, at most ``autoscaling.maxInstances``, or None when ``instanceCount``
        already starts that many."""
        if running is None:
            return None
        floor = min(running, self.autoscaling.max_instances)
        return floor if floor > self.instance_count else None


class StackConfig(_Model):
    """Everything one environment stack declares."""

    stack: str
    """The stack name (``local``, ``dev``, ``staging`` or ``prod``)."""
    platform: Platform
    services: dict[str, Service]
    alert_webhook_url: str | None = None
    """An HTTPS endpoint for alerts; a Pulumi secret, shown as ``[secret]`` offline."""

    def namespace_of(self, name: str) -> str:
        """The namespace of a KServe service: its own ``kserve.namespace``, else the platform's
        ``kubernetes.namespace``, else ``modelrail-<environment>``."""
        return (
            self.service(name).kserve.namespace
            or self.platform.kubernetes.namespace
            or f"{PROJECT}-{self.platform.environment}"
        )

    def service(self, name: str) -> Service:
        """The named service, or a ``KeyError`` that lists the services there are."""
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services)) or "none"
            raise KeyError(f"no service {name!r} in stack {self.stack!r} (services: {known})") from None


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a stack file: where it is, what was found, and what is allowed."""

    source: str
    path: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return f"{self.source}: {self.path} = {_show(self.value)}: {self.allowed}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "path": self.path,
            "value": _json_value(self.value),
            "allowed": self.allowed,
        }


class StackConfigError(Exception):
    """Every problem found in one stack file, reported together."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"{source}: {len(issues)} problem(s) in the stack config\n{lines}")


class StackFileUnreadableError(Exception):
    """The stack file is missing or is not YAML at all (as opposed to invalid config)."""


def stack_file(stacks_dir: Path, stack: str) -> Path:
    """Where a stack's config lives: ``<stacks_dir>/Pulumi.<stack>.yaml``."""
    return stacks_dir / f"Pulumi.{stack}.yaml"


def load_stack_file(path: Path) -> StackConfig:
    """Read and validate a stack file; raises ``StackFileUnreadableError`` or ``StackConfigError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StackFileUnreadableError(f"{path}: cannot read the stack file: {error}") from error
    return parse_stack_text(text, path)


def parse_stack_text(text: str, path: Path) -> StackConfig:
    """Validate the text of a stack file as if it were at ``path`` (which names the stack)."""
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import YAMLError

    from infra.yamlio import bounded_yaml, describe_yaml_error

    source = str(path)
    stack = _stack_name_from_path(path)
    yaml = bounded_yaml("rt")
    yaml.allow_duplicate_keys = False
    try:
        document = yaml.load(text)
    except DuplicateKeyError as error:
        raise StackConfigError(source, [_duplicate_key_issue(source, error)]) from error
    except YAMLError as error:
        raise StackFileUnreadableError(f"{source}: {describe_yaml_error(error)}") from error
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise StackConfigError(
            source,
            [ConfigIssue(source, "<document>", type(document).__name__, "a mapping with a `config:` key")],
        )
    issues = [
        ConfigIssue(
            source, str(key), "…", f"unknown top-level key; allowed: {', '.join(TOP_LEVEL_STACK_KEYS)}"
        )
        for key in document
        if key not in TOP_LEVEL_STACK_KEYS
    ]
    config = document.get("config", {})
    if not isinstance(config, Mapping):
        issues.append(ConfigIssue(source, "config", config, "a mapping of `namespace:key` entries"))
        raise StackConfigError(source, issues)
    return parse_config_map(_plain(config), stack=stack, source=source, prior_issues=issues)


def from_pulumi_config() -> StackConfig:
    """Validate the config the Pulumi engine handed to this program (``infra/__main__.py``)."""
    import pulumi
    from pulumi.runtime.config import get_config, get_config_secret_keys_env

    stack = pulumi.get_stack()
    secret_keys = set(get_config_secret_keys_env())
    config_map: dict[str, Any] = {}
    for key in (*KNOWN_PROJECT_KEYS, "aws:region"):
        raw = get_config(key)
        if raw is None:
            continue
        if key in secret_keys:
            config_map[key] = raw
            continue
        try:
            config_map[key] = json.loads(raw)
        except json.JSONDecodeError:
            config_map[key] = raw
    return parse_config_map(config_map, stack=stack, source=f"stacks/Pulumi.{stack}.yaml")


def parse_config_map(
    config: Mapping[str, Any],
    *,
    stack: str,
    source: str,
    prior_issues: list[ConfigIssue] | None = None,
) -> StackConfig:
    """Validate a stack's ``config:`` map (``namespace:key`` → value) into a ``StackConfig``.

    Platform and each service are validated separately so that every error, including the
    cross-field rules of services whose fields are individually valid, is reported at once.
    """
    issues = list(prior_issues or [])
    for key in config:
        namespace = str(key).split(":", 1)[0]
        if ":" not in str(key):
            issues.append(
                ConfigIssue(source, f"config.{key}", config[key], "keys take the form `namespace:key`")
            )
        elif namespace == PROJECT and key not in KNOWN_PROJECT_KEYS:
            allowed = ", ".join(KNOWN_PROJECT_KEYS)
            issues.append(
                ConfigIssue(source, f"config.{key}", config[key], f"unknown key; allowed: {allowed}")
            )
        elif namespace not in (PROJECT, *PASS_THROUGH_NAMESPACES):
            allowed = ", ".join((PROJECT, *PASS_THROUGH_NAMESPACES))
            issues.append(
                ConfigIssue(
                    source,
                    f"config.{key}",
                    config[key],
                    f"unknown config namespace; allowed: {allowed}",
                )
            )

    platform = validate_section(Platform, config.get(PLATFORM_KEY), f"config.{PLATFORM_KEY}", source, issues)
    raw_services = config.get(SERVICES_KEY)
    services: dict[str, Service] = {}
    if not isinstance(raw_services, Mapping) or not raw_services:
        issues.append(
            ConfigIssue(
                source,
                f"config.{SERVICES_KEY}",
                raw_services,
                "a non-empty mapping of service name → service",
            )
        )
    else:
        for name, raw in raw_services.items():
            path = f"config.{SERVICES_KEY}.{name}"
            if not isinstance(name, str) or not SERVICE_NAME_PATTERN.match(name):
                issues.append(
                    ConfigIssue(
                        source,
                        path,
                        name,
                        "service names are DNS-safe: lowercase letters, digits and '-', "
                        "starting with a letter, at most 32 characters",
                    )
                )
                continue
            service = validate_section(Service, raw, path, source, issues)
            if service is not None:
                services[name] = service

    if platform is not None:
        if platform.environment != stack and stack in STACK_NAMES:
            issues.append(
                ConfigIssue(
                    source,
                    f"config.{PLATFORM_KEY}.environment",
                    platform.environment,
                    f"must match the stack file's name ({stack!r})",
                )
            )
        region = config.get("aws:region")
        if region is not None and region != platform.region:
            issues.append(
                ConfigIssue(
                    source,
                    "config.aws:region",
                    region,
                    f"must equal platform.region ({platform.region!r})",
                )
            )
        if platform.environment == "prod" and not platform.approval_required:
            issues.append(
                ConfigIssue(
                    source,
                    f"config.{PLATFORM_KEY}.approvalRequired",
                    platform.approval_required,
                    "prod always requires a second person's approval: true",
                )
            )
        for name, service in services.items():
            issues.extend(
                service_rules(source, f"config.{SERVICES_KEY}.{name}", service, platform.environment)
            )
        issues.extend(_cluster_rules(source, platform, services))

    webhook = config.get(ALERT_WEBHOOK_KEY)
    if isinstance(webhook, Mapping) and set(webhook) == {"secure"}:
        webhook = SECRET_PLACEHOLDER
    elif webhook not in (None, SECRET_PLACEHOLDER) and not (
        isinstance(webhook, str) and webhook.startswith("https://")
    ):
        # SECRET_PLACEHOLDER: the offline plan hands a secret it cannot decrypt over as a placeholder.
        issues.append(
            ConfigIssue(
                source,
                f"config.{ALERT_WEBHOOK_KEY}",
                webhook,
                "an https:// URL, stored as a Pulumi secret",
            )
        )
        webhook = None

    if issues:
        raise StackConfigError(source, issues)
    assert platform is not None  # no issues means the platform validated
    return StackConfig(stack=stack, platform=platform, services=services, alert_webhook_url=webhook)


def _cluster_rules(source: str, platform: Platform, services: Mapping[str, Service]) -> Iterator[ConfigIssue]:
    """A stack with KServe services names its cluster, one way (the sandbox serves ``local``'s)."""
    kserve = sorted(name for name, service in services.items() if service.runtime == "kserve")
    if not kserve or platform.environment == "local":
        return
    cluster = platform.kubernetes
    path = f"config.{PLATFORM_KEY}.kubernetes"
    named = [
        key for key, value in (("context", cluster.context), ("eksCluster", cluster.eks_cluster)) if value
    ]
    if len(named) != 1:
        yield ConfigIssue(
            source,
            path,
            {
                key: value
                for key, value in (("context", cluster.context), ("eksCluster", cluster.eks_cluster))
            },
            f"the kserve service(s) {', '.join(kserve)} need the cluster named one way: "
            "a kubeconfig `context` or an `eksCluster` name, not both",
        )
    unjudged = sorted(name for name in kserve if services[name].deployment.strategy != "all_at_once")
    if unjudged and not cluster.prometheus_url:
        yield ConfigIssue(
            source,
            f"{path}.prometheusUrl",
            None,
            f"required for the canary of {', '.join(unjudged)}: the Prometheus HTTP API its analysis "
            "queries (a KServe canary has no runtime rollback behind it, so one nobody can judge "
            "never takes all traffic)",
        )
    if cluster.context and not cluster.oidc_issuer:
        yield ConfigIssue(
            source,
            f"{path}.oidcIssuer",
            None,
            "required with `context`: the cluster's OIDC issuer URL (https://…), which the "
            "ServiceAccount's IAM role trusts (IRSA)",
        )


def service_rules(source: str, path: str, service: Service, environment: str) -> Iterator[ConfigIssue]:
    """Rules that span several fields of one service (SageMaker's, KServe's and ours).

    The one statement of them: ``parse_config_map`` reports them per stack file, and the
    components check the same rules on the models they are given.
    """
    policy = service.deployment
    deployment = f"{path}.deployment"
    sagemaker = service.runtime == "sagemaker"
    if service.canary_traffic_percent is not None and service.runtime != "kserve":
        yield ConfigIssue(
            source,
            f"{path}.canaryTrafficPercent",
            service.canary_traffic_percent,
            f"only a kserve service has a canary share in its stack entry (this one runs on "
            f"{service.runtime}, which shifts traffic itself): remove the key",
        )
    yield from _progression_rules(source, path, service)
    if policy.strategy == "canary":
        if sagemaker and service.instance_count < 2:
            yield ConfigIssue(
                source,
                f"{path}.instanceCount",
                service.instance_count,
                "a canary needs at least 2 instances (use strategy all_at_once or raise instanceCount)",
            )
        if policy.canary_percent > 50:
            yield ConfigIssue(
                source,
                f"{deployment}.canaryPercent",
                policy.canary_percent,
                "the canary is at most 50% of capacity (1 to 50)",
            )
    if policy.strategy == "linear" and not 10 <= policy.linear_step_percent <= 50:
        yield ConfigIssue(
            source,
            f"{deployment}.linearStepPercent",
            policy.linear_step_percent,
            "linear steps shift 10 to 50% of capacity each",
        )
    if not 0 <= policy.bake_seconds <= 3600:
        yield ConfigIssue(source, f"{deployment}.bakeSeconds", policy.bake_seconds, "0 to 3600 seconds")
    waits = (
        f"{policy.bakes} bake(s) × {policy.bake_seconds} s + {policy.termination_wait_seconds} s "
        "termination wait"
    )
    # One provider wait holds a whole SageMaker rollout; on KServe every traffic step is its own update.
    # A shadow phase needs no room here: it is its own update (the same blue/green deployment, see
    # components/endpoint.py), and its bake is the controller's own wait once that update returned.
    if sagemaker and policy.wait_seconds + FLEET_START_SECONDS > PROVIDER_ENDPOINT_WAIT_SECONDS:
        yield ConfigIssue(
            source,
            deployment,
            policy.wait_seconds,
            f"the rollout waits {policy.wait_seconds} s ({waits}), and with {FLEET_START_SECONDS} s to "
            f"start the new fleet takes {policy.wait_seconds + FLEET_START_SECONDS} s: more than the "
            f"{PROVIDER_ENDPOINT_WAIT_SECONDS} s the provider waits for an endpoint update; at most "
            f"{PROVIDER_ENDPOINT_WAIT_SECONDS - FLEET_START_SECONDS} s of waits (shorter bakes or "
            "termination wait, or fewer steps)",
        )
    if policy.max_execution_seconds <= policy.wait_seconds:
        yield ConfigIssue(
            source,
            f"{deployment}.maxExecutionSeconds",
            policy.max_execution_seconds,
            f"more than the rollout's waits, {policy.wait_seconds} s ({waits}), or SageMaker stops "
            "the deployment before it ends",
        )
    if environment == "prod" and policy.strategy == "all_at_once":
        yield ConfigIssue(
            source,
            f"{deployment}.strategy",
            policy.strategy,
            "prod rolls out gradually: canary or linear",
        )
    scaling = service.autoscaling
    if scaling.min_instances > scaling.max_instances:
        yield ConfigIssue(
            source,
            f"{path}.autoscaling.minInstances",
            scaling.min_instances,
            f"at most autoscaling.maxInstances ({scaling.max_instances})",
        )
    if not scaling.min_instances <= service.instance_count <= scaling.max_instances:
        yield ConfigIssue(
            source,
            f"{path}.instanceCount",
            service.instance_count,
            f"between autoscaling.minInstances and maxInstances "
            f"({scaling.min_instances} to {scaling.max_instances})",
        )


KSERVE_NO_SHADOW = (
    "KServe has no shadow: an InferenceService (serving.kserve.io/v1beta1) splits traffic between "
    "revisions (canaryTrafficPercent) but cannot mirror it, and shadow deployments are an open "
    "feature request (kserve/kserve#2978; mirroring in InferenceGraph, #2240)"
)
"""Why a ``runtime: kserve`` service refuses a shadow phase, and where KServe stands on it."""


def _progression_rules(source: str, path: str, service: Service) -> Iterator[ConfigIssue]:
    """The declared progression's shape, and the controller-written ``shadowVersion`` it implies."""
    policy = service.deployment
    where = f"{path}.deployment.progression"
    phases = policy.progression
    example = "e.g. [shadow, canary, full]"
    if phases is not None:
        listed = list(phases)
        repeated = sorted({phase for phase in phases if phases.count(phase) > 1})
        traffic = sorted({phase for phase in phases if phase in ("canary", "linear")})
        if not phases:
            yield ConfigIssue(
                source,
                where,
                listed,
                f"at least one phase, ending with full ({example}); null for the strategy's own",
            )
        if repeated:
            yield ConfigIssue(
                source, where, listed, f"each phase at most once ({', '.join(repeated)} repeated; {example})"
            )
        if phases and phases[-1] != "full":
            yield ConfigIssue(source, where, listed, f"ends with full, the step to all traffic ({example})")
        if "shadow" in phases and phases[0] != "shadow":
            yield ConfigIssue(
                source,
                where,
                listed,
                f"shadow comes first, before any user traffic moves to the new version ({example})",
            )
        if len(traffic) > 1:
            yield ConfigIssue(
                source,
                where,
                listed,
                "at most one traffic phase: canary or linear, the deployment strategy's",
            )
        elif traffic and traffic[0] != policy.strategy:
            yield ConfigIssue(
                source,
                where,
                listed,
                f"the traffic phase is the deployment strategy's ({policy.strategy}): "
                f"write {policy.strategy} for {traffic[0]}, or set strategy: {traffic[0]}",
            )
        elif phases and not traffic and policy.strategy != "all_at_once":
            yield ConfigIssue(
                source,
                where,
                listed,
                f"a progression without a traffic phase shifts all traffic at once: add {policy.strategy} "
                f"before full, or set strategy: all_at_once",
            )
    if policy.shadowed and service.runtime == "kserve":
        unshadowed = ", ".join(phase for phase in policy.phases if phase != "shadow")
        yield ConfigIssue(
            source,
            where,
            list(policy.phases),
            f"{KSERVE_NO_SHADOW}. Drop the shadow phase ([{unshadowed}]), or serve the service on "
            "runtime: sagemaker (a shadow variant)",
        )
    shadow = service.shadow_version
    if shadow is None:
        return
    where = f"{path}.shadowVersion"
    if service.runtime == "kserve":
        yield ConfigIssue(
            source, where, shadow, f"never on a kserve service ({KSERVE_NO_SHADOW}): remove the key"
        )
    elif not policy.shadowed:
        yield ConfigIssue(
            source,
            where,
            shadow,
            "only during a shadow phase: the service's deployment.progression has none (written by "
            "`modelrail promote`, never by hand): remove the key",
        )
    if service.model_version is None:
        yield ConfigIssue(
            source,
            where,
            shadow,
            "needs modelVersion: a shadow mirrors production's traffic, and there is no production "
            "version yet (a first promotion has no shadow phase): remove the key",
        )
    elif shadow == service.model_version:
        yield ConfigIssue(
            source,
            where,
            shadow,
            "a version other than modelVersion: the shadow is the candidate, production the version "
            "it is compared with",
        )


def validate_section(
    model: type[_M], raw: Any, path: str, source: str, issues: list[ConfigIssue]
) -> _M | None:
    """Validate ``raw`` as ``model``; append one issue per pydantic error and return None on failure.

    Public so that a file with stack-config sections (a judge policy, ``canary judge --policy``)
    reports its problems in the same words as the stack config.
    """
    if raw is None:
        issues.append(ConfigIssue(source, path, None, f"required: a mapping ({model.__name__})"))
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        for item in error.errors():
            location = ".".join(str(part) for part in item["loc"])
            issues.append(
                ConfigIssue(
                    source,
                    f"{path}.{location}" if location else path,
                    None if item["type"] == "missing" else item.get("input"),
                    _allowed(model, item),
                )
            )
        return None


def _allowed(model: type[_Model], item: Any) -> str:
    """Turn one pydantic error into a sentence that says what is allowed."""
    if item["type"] == "extra_forbidden":
        parent = _model_at(model, item["loc"][:-1])
        if parent is not None:
            names = sorted(field.alias or name for name, field in parent.model_fields.items())
            return "unknown key; allowed keys: " + ", ".join(names)
    if item["type"] == "missing":
        return "required key is missing"
    message = str(item["msg"])
    message = message[0].lower() + message[1:]
    hint = _type_hint(item["type"], item.get("input"), str(item["loc"][-1]) if item["loc"] else "")
    return f"{message}: {hint}" if hint else message


_TYPE_HINTS = {
    "int_type": "a whole number, unquoted",
    "float_type": "a number, unquoted",
    "bool_type": "true or false, unquoted",
    "string_type": "text; quote a value that YAML would read as a number or boolean",
    "tuple_type": "a YAML list, e.g. [a, b]",
}
"""What a strict type accepts, said for someone writing YAML (see ``_Model``)."""


def _type_hint(kind: str, value: Any, key: str) -> str:
    """What a key of this type allows, and why this value is not it (strict types)."""
    allowed = _TYPE_HINTS.get(kind)
    if allowed is None:
        return ""
    if isinstance(value, bool) and kind in ("int_type", "float_type"):
        return f"{allowed} ({str(value).lower()} is a boolean, not a number)"
    if isinstance(value, str) and kind in ("int_type", "float_type"):
        return f"{allowed} (a quoted value is text, not a number)"
    if isinstance(value, str) and kind == "bool_type":
        return f"{allowed} (YAML 1.2 reads yes, no, on and off as text)"
    if isinstance(value, int | float) and kind == "bool_type":
        return f"{allowed} (1 and 0 are numbers, not booleans)"
    if isinstance(value, float) and kind == "int_type" and key.lower().endswith("percent"):
        return f"{allowed}: a percentage from 0 to 100, so 50 for half, not 0.5"
    return allowed


def _model_at(model: type[_Model], loc: tuple[Any, ...]) -> type[_Model] | None:
    """The nested model class that a pydantic error location points into."""
    current: type[_Model] = model
    for part in loc:
        field = next(
            (f for n, f in current.model_fields.items() if part in (n, f.alias)),
            None,
        )
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, _Model)):
            return None
        current = annotation
    return current


def _duplicate_key_issue(source: str, error: Exception) -> ConfigIssue:
    """Describe a repeated YAML key, e.g. a service declared twice."""
    problem_mark = getattr(error, "problem_mark", None)
    context_mark = getattr(error, "context_mark", None)
    match = re.search(r'found duplicate key "([^"]+)"', str(error))
    key = match.group(1) if match else "?"
    where = f"line {problem_mark.line + 1}" if problem_mark is not None else "?"
    first = f"line {context_mark.line + 1}" if context_mark is not None else "?"
    return ConfigIssue(
        source,
        f"{key} ({where})",
        key,
        f"duplicate key: already defined in the same mapping near {first}; each service name "
        "and key may appear once",
    )


def _stack_name_from_path(path: Path) -> str:
    match = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", path.name)
    return match.group(1) if match else path.stem


def _plain(value: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


SHOW_LIMIT = 120
"""Most characters of a bad value that a message quotes."""


def _json_value(value: Any) -> Any:
    """The value for ``--json`` reports: itself when small, else its text cut at ``SHOW_LIMIT``."""
    text, complete = _render(value, SHOW_LIMIT)
    if not complete:
        return text
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return text
    return value


def _show(value: Any) -> str:
    """The value as compact JSON for a message, cut at ``SHOW_LIMIT`` characters."""
    return _render(value, SHOW_LIMIT)[0]


class _BudgetSpentError(Exception):
    """The rendering reached its budget; nothing more is written."""


def _render(value: Any, limit: int) -> tuple[str, bool]:
    """``value`` as sorted JSON, writing at most ``limit`` characters; and whether it is complete.

    It stops writing at the budget instead of serialising everything and cutting afterwards, so a
    value of any size (a YAML alias bomb is billions of nodes when expanded) costs the budget.
    """
    parts: list[str] = []
    written = 0

    def emit(text: str) -> None:
        nonlocal written
        parts.append(text)
        written += len(text)
        if written > limit:
            raise _BudgetSpentError

    def walk(item: Any) -> None:
        if isinstance(item, Mapping):
            emit("{")
            # The first keys in order without sorting them all: at most ``limit`` of them can show.
            for index, key in enumerate(heapq.nsmallest(limit, item, key=str)):
                emit(", " if index else "")
                emit(json.dumps(str(key)[: limit + 1], ensure_ascii=False) + ": ")
                walk(item[key])
            emit("}")
        elif isinstance(item, list | tuple):
            emit("[")
            for index, element in enumerate(item):
                emit(", " if index else "")
                walk(element)
            emit("]")
        elif isinstance(item, str):
            emit(json.dumps(item[: limit + 1], ensure_ascii=False))
        elif item is None or isinstance(item, bool | int | float):
            emit(json.dumps(item))
        else:
            emit(reprlib.repr(item))

    try:
        walk(value)
    except _BudgetSpentError:
        text = "".join(parts)
        return text[: limit - 3] + "...", False
    return "".join(parts), True


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one stack file's ``config:`` map, as published by ``modelrail config schema``."""
    services = {
        "type": "object",
        "description": "Model services by DNS-safe name.",
        "propertyNames": {"pattern": SERVICE_NAME_PATTERN.pattern},
        "additionalProperties": {"$ref": "#/$defs/Service"},
        "minProperties": 1,
    }
    platform_schema = Platform.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    service_schema = Service.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = {}
    for schema in (platform_schema, service_schema):
        defs.update(schema.pop("$defs", {}))
    defs["Platform"] = platform_schema
    defs["Service"] = service_schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "modelrail stack config",
        "description": "The `config:` map of stacks/Pulumi.<stack>.yaml.",
        "type": "object",
        "properties": {
            PLATFORM_KEY: {"$ref": "#/$defs/Platform"},
            SERVICES_KEY: services,
            ALERT_WEBHOOK_KEY: {
                "description": "HTTPS endpoint for alerts; store it with `pulumi config set --secret`.",
                "oneOf": [
                    {"type": "string", "pattern": "^https://"},
                    {
                        "type": "object",
                        "properties": {"secure": {"type": "string"}},
                        "required": ["secure"],
                    },
                ],
            },
            "aws:region": {"type": "string", "description": "Must equal platform.region."},
        },
        "required": [PLATFORM_KEY, SERVICES_KEY],
        "$defs": dict(sorted(defs.items())),
    }
