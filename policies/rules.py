"""The policy rules: small named predicates over a stack's resources.

Each rule looks at resources of some types, by their engine (camelCase) property names, and
says what is wrong with one of them, or nothing. Rules that need other resources (a bucket's
encryption lives in a separate resource since pulumi-aws v7) look them up in the ``Stack``.
The same rules run in two places:

* offline, over ``modelrail plan`` output (``modelrail policy --stack S``);
* inside ``pulumi preview --policy-pack policies/`` through CrossGuard (``policies/__main__.py``).

This module imports nothing from Pulumi, so it loads fast in both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Enforcement = Literal["mandatory", "advisory"]

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"

POLICY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    BUCKET_POLICY: ("policy",),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:kms/key:Key": ("policy",),
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": ("resourcePolicy",),
}
"""Where each resource type keeps its IAM policy documents (as JSON strings)."""

TAGGABLE_TYPES = frozenset(
    {
        "aws:appautoscaling/target:Target",
        "aws:cloudwatch/eventRule:EventRule",
        METRIC_ALARM,
        ECR_REPOSITORY,
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        BUCKET,
        ENDPOINT,
        ENDPOINT_CONFIG,
        "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
        "aws:sagemaker/model:Model",
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "aws:sagemaker/monitoringSchedule:MonitoringSchedule",
        "aws:sagemaker/pipeline:Pipeline",
        TOPIC,
        QUEUE,
    }
)
"""Resource types modelrail declares that accept ``tags`` (a test checks this against pulumi-aws)."""

REQUIRED_TAGS = ("service", "environment", "managed-by")
GRADUAL_ROLLOUTS = ("CANARY", "LINEAR")


@dataclass(frozen=True)
class Resource:
    """One resource as a rule sees it: its URN, type, properties and what it depends on."""

    urn: str
    type: str
    props: Mapping[str, Any]
    dependencies: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    def get(self, path: str, default: Any = None) -> Any:
        """A nested property by dotted path (``a.b.c``); lists are entered at their first item."""
        value: Any = self.props
        for part in path.split("."):
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            if not isinstance(value, Mapping) or part not in value:
                return default
            value = value[part]
        return value


@dataclass(frozen=True)
class Stack:
    """Every resource of one stack, for rules that relate resources to each other."""

    resources: tuple[Resource, ...]
    _by_type: dict[str, list[Resource]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for resource in self.resources:
            self._by_type.setdefault(resource.type, []).append(resource)

    def of_type(self, type_: str) -> list[Resource]:
        return self._by_type.get(type_, [])

    def attached_to(self, bucket: Resource, type_: str) -> list[Resource]:
        """Side resources of ``type_`` configuring ``bucket``: they depend on it or name it."""
        name = bucket.props.get("bucket")
        return [
            resource
            for resource in self.of_type(type_)
            if bucket.urn in resource.dependencies
            or (name is not None and resource.props.get("bucket") == name)
        ]


@dataclass(frozen=True)
class Violation:
    """One resource breaking one rule."""

    rule: str
    enforcement: Enforcement
    urn: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "enforcement": self.enforcement,
            "urn": self.urn,
            "message": self.message,
            "fix": self.fix,
        }


Check = Callable[[Resource, Stack], str | None]


@dataclass(frozen=True)
class Rule:
    """A named check: which resource types it looks at, what it requires, and the fix."""

    name: str
    description: str
    types: frozenset[str]
    check: Check
    fix: str
    enforcement: Enforcement = "mandatory"

    def evaluate(self, stack: Stack) -> Iterator[Violation]:
        for resource in stack.resources:
            if resource.type in self.types:
                problem = self.check(resource, stack)
                if problem is not None:
                    yield Violation(self.name, self.enforcement, resource.urn, problem, self.fix)


RULES: list[Rule] = []


def rule(name: str, description: str, types: Iterable[str], fix: str) -> Callable[[Check], Check]:
    """Register a check as a mandatory rule."""

    def register(check: Check) -> Check:
        RULES.append(Rule(name, description, frozenset(types), check, fix))
        return check

    return register


@rule(
    "s3-bucket-kms-encrypted",
    "S3 buckets are encrypted by default with SSE-KMS under a customer-managed key.",
    [BUCKET],
    "add aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm 'aws:kms' and kms_master_key_id",
)
def bucket_kms_encrypted(bucket: Resource, stack: Stack) -> str | None:
    for config in stack.attached_to(bucket, BUCKET_SSE):
        for item in config.props.get("rules") or []:
            default = item.get("applyServerSideEncryptionByDefault") or {}
            if default.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("kmsMasterKeyId"):
                return None
    return "bucket has no default SSE-KMS encryption with a customer-managed key"


@rule(
    "s3-bucket-versioned",
    "S3 buckets keep object versions, so an overwritten artifact can be recovered.",
    [BUCKET],
    "add aws.s3.BucketVersioning with versioning_configuration.status 'Enabled'",
)
def bucket_versioned(bucket: Resource, stack: Stack) -> str | None:
    for versioning in stack.attached_to(bucket, BUCKET_VERSIONING):
        if (versioning.props.get("versioningConfiguration") or {}).get("status") == "Enabled":
            return None
    return "bucket versioning is not enabled"


@rule(
    "s3-bucket-public-access-blocked",
    "S3 buckets block every form of public access (all four flags).",
    [BUCKET],
    "add aws.s3.BucketPublicAccessBlock with block_public_acls, block_public_policy, ignore_public_acls "
    "and restrict_public_buckets all true",
)
def bucket_public_access_blocked(bucket: Resource, stack: Stack) -> str | None:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for block in stack.attached_to(bucket, BUCKET_PUBLIC_ACCESS):
        missing = [flag for flag in flags if block.props.get(flag) is not True]
        if not missing:
            return None
        return f"public access block leaves {', '.join(missing)} off"
    return "bucket has no public access block"


@rule(
    "s3-bucket-tls-only",
    "S3 bucket policies deny every request made over plain HTTP.",
    [BUCKET],
    "attach an aws.s3.BucketPolicy with a Deny statement on Condition Bool aws:SecureTransport 'false'",
)
def bucket_tls_only(bucket: Resource, stack: Stack) -> str | None:
    for policy in stack.attached_to(bucket, BUCKET_POLICY):
        for statement in _statements(policy.props.get("policy")):
            condition = statement.get("Condition") or {}
            if (
                statement.get("Effect") == "Deny"
                and str((condition.get("Bool") or {}).get("aws:SecureTransport")).lower() == "false"
            ):
                return None
    return "no bucket policy denies requests without TLS (aws:SecureTransport false)"


@rule(
    "ecr-tags-immutable",
    "ECR repositories have immutable tags, so an image tag always names the same image.",
    [ECR_REPOSITORY],
    "set image_tag_mutability='IMMUTABLE' on the repository",
)
def ecr_tags_immutable(repository: Resource, stack: Stack) -> str | None:
    mutability = repository.props.get("imageTagMutability", "MUTABLE")
    return None if mutability == "IMMUTABLE" else f"image tags are {mutability}"


@rule(
    "ecr-scan-on-push",
    "ECR repositories scan every pushed image for vulnerabilities.",
    [ECR_REPOSITORY],
    "set image_scanning_configuration={'scan_on_push': True} on the repository",
)
def ecr_scan_on_push(repository: Resource, stack: Stack) -> str | None:
    return (
        None
        if repository.get("imageScanningConfiguration.scanOnPush") is True
        else "images are not scanned on push"
    )


@rule(
    "sagemaker-endpoint-config-kms",
    "Endpoint configurations encrypt instance storage with a KMS key.",
    [ENDPOINT_CONFIG],
    "set kms_key_arn on the endpoint configuration (ModelEndpoint passes the artifact key)",
)
def endpoint_config_kms(config: Resource, stack: Stack) -> str | None:
    return None if config.props.get("kmsKeyArn") else "endpoint configuration has no kms_key_arn"


@rule(
    "sagemaker-endpoint-config-data-capture",
    "Endpoint configurations capture a sample of requests and responses for monitoring.",
    [ENDPOINT_CONFIG],
    "set data_capture_config with enable_capture=True and initial_sampling_percentage above 0 "
    "(dataCapturePercent in the stack file)",
)
def endpoint_config_data_capture(config: Resource, stack: Stack) -> str | None:
    capture = config.props.get("dataCaptureConfig") or {}
    if capture.get("enableCapture") is True and (capture.get("initialSamplingPercentage") or 0) > 0:
        return None
    return "data capture is off"


@rule(
    "sagemaker-prod-endpoint-gradual-rollout",
    "Production endpoints roll out by canary or linear steps, guarded by rollback alarms of the same stack.",
    [ENDPOINT],
    "use deployment strategy canary or linear and list the service's MetricAlarm names in "
    "auto_rollback_configuration (ModelEndpoint does both)",
)
def prod_endpoint_gradual_rollout(endpoint: Resource, stack: Stack) -> str | None:
    if (endpoint.props.get("tags") or {}).get("environment") != "prod":
        return None
    rollout = endpoint.get("deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.type")
    if rollout not in GRADUAL_ROLLOUTS:
        return f"traffic routing is {rollout or 'not configured'}, not CANARY or LINEAR"
    alarms = endpoint.get("deploymentConfig.autoRollbackConfiguration") or {}
    names = [alarm.get("alarmName") for alarm in alarms.get("alarms") or []]
    if not names:
        return "no auto-rollback alarms"
    declared = {alarm.props.get("name") for alarm in stack.of_type(METRIC_ALARM)}
    missing = [name for name in names if name not in declared]
    if missing:
        return f"rollback alarms not declared in this stack: {', '.join(map(str, missing))}"
    return None


@rule(
    "sqs-queue-kms",
    "SQS queues are encrypted with a customer-managed KMS key.",
    [QUEUE],
    "set kms_master_key_id on the queue",
)
def queue_kms(queue: Resource, stack: Stack) -> str | None:
    return None if queue.props.get("kmsMasterKeyId") else "queue is not encrypted with a KMS key"


@rule(
    "sns-topic-kms",
    "SNS topics are encrypted with a customer-managed KMS key.",
    [TOPIC],
    "set kms_master_key_id on the topic",
)
def topic_kms(topic: Resource, stack: Stack) -> str | None:
    return None if topic.props.get("kmsMasterKeyId") else "topic is not encrypted with a KMS key"


@rule(
    "iam-no-wildcard-action",
    "No policy grants a wildcard action: never Action '*', and no '*' inside an Allow's actions.",
    list(POLICY_PROPERTIES),
    "list the exact actions the principal needs (e.g. s3:GetObject) instead of '*' or 'service:*'",
)
def no_wildcard_action(resource: Resource, stack: Stack) -> str | None:
    documents = [resource.props.get(prop) for prop in POLICY_PROPERTIES[resource.type]]
    for inline in resource.props.get("inlinePolicies") or []:
        documents.append(inline.get("policy"))
    bad = sorted(
        {
            f"{statement.get('Effect')} {action}"
            for document in documents
            for statement in _statements(document)
            for action in _as_list(statement.get("Action")) + _as_list(statement.get("NotAction"))
            if action == "*" or (statement.get("Effect") == "Allow" and "*" in action)
        }
    )
    return f"wildcard actions: {', '.join(bad)}" if bad else None


@rule(
    "resources-tagged",
    "Every taggable resource carries the service, environment and managed-by tags.",
    TAGGABLE_TYPES,
    "pass tags=standard_tags(environment, service) (components do this from their `tags` argument)",
)
def resources_tagged(resource: Resource, stack: Stack) -> str | None:
    tags = resource.props.get("tags") or {}
    missing = [key for key in REQUIRED_TAGS if not tags.get(key)]
    return f"missing tags: {', '.join(missing)}" if missing else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list | tuple) else [str(value)]


def _statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of a policy given as JSON text or as an object; nothing if unreadable."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, Mapping):
        return []
    statements = document.get("Statement") or []
    return (
        [statements] if isinstance(statements, Mapping) else [s for s in statements if isinstance(s, Mapping)]
    )


def stack_from_plan(plan: Mapping[str, Any]) -> Stack:
    """The resources of a ``modelrail plan`` (``pulumi preview --json`` shaped) document."""
    return Stack(
        tuple(
            Resource(
                urn=state["urn"],
                type=state["type"],
                props=state.get("inputs") or {},
                dependencies=tuple(state.get("dependencies") or ()),
            )
            for step in plan.get("steps", [])
            for state in [step["newState"]]
        )
    )


def evaluate(stack: Stack, rules: Iterable[Rule] | None = None) -> list[Violation]:
    """Every violation of ``rules`` (default: all) in the stack, ordered by rule then URN."""
    found = [violation for item in (RULES if rules is None else rules) for violation in item.evaluate(stack)]
    return sorted(found, key=lambda v: (v.rule, v.urn))
