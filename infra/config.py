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

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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
    """Frozen, camelCase in YAML, and strict about unknown keys."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


_M = TypeVar("_M", bound=_Model)


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

    emails: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...] = ()
    """E-mail addresses subscribed to the alerts topic."""


class Platform(_Model):
    """Settings shared by every service in one environment stack."""

    environment: Literal["local", "dev", "staging", "prod"]
    """The environment this stack deploys; must match the stack file's name."""
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    """AWS region, e.g. ``eu-west-1``."""
    retention_days: RetentionDays = RetentionDays()
    """Artifact retention per stage (see below)."""
    alerts: Alerts = Alerts()
    """Alert destinations (see below)."""
    approval_required: bool = False
    """Promotions need the production-stage gates and a second person's approval (always on in prod)."""
    tags: dict[
        Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]
    ] = {}
    """Extra tags on every taggable resource, next to ``service``, ``environment``, ``managed-by``."""


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
    """Upper bound on the whole blue/green deployment (SageMaker allows 600 to 14400)."""


class Guardrails(_Model):
    """Thresholds the rollback alarms and the canary analysis enforce."""

    max_5xx_rate: Annotated[float, Field(ge=0, le=1, alias="max5xxRate")] = 0.01
    """Largest share of invocations that may fail with a 5xx error."""
    p99_latency_ms: Annotated[float, Field(gt=0, le=60000, alias="p99LatencyMs")] = 500
    """Largest acceptable 99th-percentile model latency, in milliseconds."""
    min_live_accuracy: Annotated[float, Field(ge=0, le=1)] | None = 0.8
    """Smallest acceptable accuracy on delayed labels; ``null`` when labels never come back."""
    max_prediction_drift: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Largest Jensen-Shannon distance between canary and baseline prediction distributions."""


class Autoscaling(_Model):
    """Target tracking on invocations per instance."""

    min_instances: Annotated[int, Field(ge=1, le=100)] = 1
    """Fewest instances autoscaling may leave running."""
    max_instances: Annotated[int, Field(ge=1, le=100)] = 4
    """Most instances autoscaling may start."""
    target_invocations_per_instance: Annotated[int, Field(ge=1, le=100000)] = 1000
    """Invocations per instance per minute that target tracking aims for."""


class Service(_Model):
    """One model service: what runs, how it is rolled out, and what rolls it back."""

    runtime: Literal["sagemaker", "kserve"] = "sagemaker"
    """Where the service is served; ``kserve`` is reserved for the Kubernetes platform."""
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
    deployment: DeploymentPolicy = DeploymentPolicy()
    """How a new version shifts traffic (see below)."""
    guardrails: Guardrails = Guardrails()
    """Thresholds of the rollback alarms and the canary analysis (see below)."""
    autoscaling: Autoscaling = Autoscaling()
    """Target tracking on invocations per instance (see below)."""
    data_capture_percent: Annotated[int, Field(ge=0, le=100)] = 20
    """Share of requests and responses captured to the artifact bucket for monitoring."""


class StackConfig(_Model):
    """Everything one environment stack declares."""

    stack: str
    """The stack name (``local``, ``dev``, ``staging`` or ``prod``)."""
    platform: Platform
    services: dict[str, Service]
    alert_webhook_url: str | None = None
    """An HTTPS endpoint for alerts; a Pulumi secret, shown as ``[secret]`` offline."""

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
            "value": _jsonable(self.value),
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
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import YAMLError

    source = str(path)
    stack = _stack_name_from_path(path)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        document = yaml.load(text)
    except DuplicateKeyError as error:
        raise StackConfigError(source, [_duplicate_key_issue(source, error)]) from error
    except YAMLError as error:
        raise StackFileUnreadableError(f"{source}: not valid YAML: {error}") from error
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

    platform = _validate(Platform, config.get(PLATFORM_KEY), f"config.{PLATFORM_KEY}", source, issues)
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
            service = _validate(Service, raw, path, source, issues)
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
            issues.extend(_service_rules(source, f"config.{SERVICES_KEY}.{name}", service, platform))

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


def _service_rules(source: str, path: str, service: Service, platform: Platform) -> Iterator[ConfigIssue]:
    """Rules that span several fields of one service (SageMaker's and ours)."""
    policy = service.deployment
    deployment = f"{path}.deployment"
    if policy.strategy == "canary":
        if service.instance_count < 2:
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
    if platform.environment == "prod" and policy.strategy == "all_at_once":
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


def _validate(model: type[_M], raw: Any, path: str, source: str, issues: list[ConfigIssue]) -> _M | None:
    """Validate ``raw`` as ``model``; append one issue per pydantic error and return None on failure."""
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
    return message[0].lower() + message[1:]


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


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


def _show(value: Any) -> str:
    text = json.dumps(_jsonable(value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


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
