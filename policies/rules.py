"""The policy rules: small named predicates over a stack's resources.

Each rule looks at resources of some types, by their engine (camelCase) property names, and
says what is wrong with one of them, or nothing. Rules that need other resources (a bucket's
encryption lives in a separate resource since pulumi-aws v7) look them up in the ``Stack``.
The same rules run in two places:

* offline, over ``modelrail plan`` output (``modelrail policy --stack S``);
* inside ``pulumi preview --policy-pack policies/`` through CrossGuard (``policies/__main__.py``).

Every rule decides at preview too. On a stack's first preview the values AWS assigns (ARNs,
IDs, and anything built from them) are unknown; both adapters hand them over as ``UNKNOWN``.
A rule never skips on one: an unknown key ARN that a KMS key of the stack produces still means
"set", a property that is missing fails whatever else is unknown, and a document it must read
but cannot (unknown as a whole) fails, naming the fix: build it from values known before
deployment. Without that, CrossGuard turns a rule that reads an unknown into an advisory
"can't run policy during preview" that enforces nothing.

This module imports nothing from Pulumi, so it loads fast in both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Final, Literal

Enforcement = Literal["mandatory", "advisory"]

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
MODEL = "aws:sagemaker/model:Model"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
KMS_KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

KMS_KEY_TYPES = frozenset(
    {KMS_KEY, "aws:kms/replicaKey:ReplicaKey", "aws:kms/externalKey:ExternalKey", "aws:kms/alias:Alias"}
)
"""Resources whose outputs name a KMS key: an unknown key reference from one of them is "set"."""

POLICY_PROPERTIES: dict[str, tuple[str, ...]] = {
    ROLE: ("assumeRolePolicy",),
    ROLE_POLICY: ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    BUCKET_POLICY: ("policy",),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    KMS_KEY: ("policy",),
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": ("resourcePolicy",),
}
"""Where each resource type keeps its IAM policy documents (as JSON strings)."""

TAGGABLE_TYPES = frozenset(
    {
        "aws:appautoscaling/target:Target",
        "aws:cloudwatch/eventRule:EventRule",
        METRIC_ALARM,
        ECR_REPOSITORY,
        ROLE,
        KMS_KEY,
        BUCKET,
        ENDPOINT,
        ENDPOINT_CONFIG,
        "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
        MODEL,
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
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")
"""What an AWS service needs to attach a key to a resource it creates (ECR, SageMaker volumes)."""
ACCOUNT_ROOT = re.compile(r"^(arn:aws[a-z-]*:iam::\d{12}:root|\d{12})$")


class Unknown:
    """A value the engine does not know yet: at preview, what AWS assigns and what is built from it."""

    def __repr__(self) -> str:
        return "<unknown at preview>"


UNKNOWN: Final[Unknown] = Unknown()
"""The one unknown value; rules compare with ``is`` (both adapters hand over this instance)."""

PLAN_UNKNOWN_TEXT = "[unknown]"
"""How ``modelrail plan`` prints an unknown value (``pipelines.plan.values.UNKNOWN_TEXT``)."""


def at(value: Any, path: str) -> Any:
    """A nested value by dotted path (``a.b.c``); lists are entered at their first item.

    ``UNKNOWN`` if an unknown value lies on the way, ``None`` if the path does not exist.
    """
    for part in path.split("."):
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if value is UNKNOWN:
            return UNKNOWN
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


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

    def get(self, path: str) -> Any:
        """A nested property by dotted path, as ``at`` finds it."""
        return at(self.props, path)


@dataclass(frozen=True)
class Stack:
    """Every resource of one stack, for rules that relate resources to each other."""

    resources: tuple[Resource, ...]
    _by_type: dict[str, list[Resource]] = field(default_factory=dict, compare=False, repr=False)
    _by_urn: dict[str, Resource] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for resource in self.resources:
            self._by_type.setdefault(resource.type, []).append(resource)
            self._by_urn[resource.urn] = resource

    def of_type(self, type_: str) -> list[Resource]:
        return self._by_type.get(type_, [])

    def dependencies_of(self, resource: Resource) -> list[Resource]:
        """The resources of this stack that ``resource`` depends on."""
        return [self._by_urn[urn] for urn in resource.dependencies if urn in self._by_urn]

    def attached_to(self, bucket: Resource, type_: str) -> list[Resource]:
        """Side resources of ``type_`` configuring ``bucket``: they depend on it or name it."""
        name = bucket.props.get("bucket")
        return [
            resource
            for resource in self.of_type(type_)
            if bucket.urn in resource.dependencies
            or (isinstance(name, str) and resource.props.get("bucket") == name)
        ]

    def referenced(self, resource: Resource, type_: str, value: Any, key: str) -> list[Resource]:
        """Resources of ``type_`` that ``resource`` names by ``value`` (their ``key``), or depends on.

        At preview, and in the offline plan (inputs only, no auto-names), the value often matches
        nothing; the dependency the value brought along still does.
        """
        if isinstance(value, str):
            named = [other for other in self.of_type(type_) if other.props.get(key) == value]
            if named:
                return named
        return [other for other in self.dependencies_of(resource) if other.type == type_]


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


UNKNOWN_DOCUMENT = (
    "unknown at preview, so it cannot be checked: render it from values known before deployment "
    "(names, account, region; infra.naming builds ARNs from names)"
)


def _key_problem(resource: Resource, stack: Stack, value: Any, prop: str) -> str | None:
    """Why ``value`` (a key reference) does not name a KMS key, or None.

    An unknown value counts as set when a KMS key of this stack feeds the resource: that is what
    a key ARN looks like before the key exists.
    """
    if value is UNKNOWN:
        if any(other.type in KMS_KEY_TYPES for other in stack.dependencies_of(resource)):
            return None
        return f"{prop} is unknown at preview and comes from no KMS key of this stack"
    if not value:
        return f"{prop} is not set"
    return None


@rule(
    "s3-bucket-kms-encrypted",
    "S3 buckets are encrypted by default with SSE-KMS under a customer-managed key.",
    [BUCKET],
    "add aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm 'aws:kms' and kms_master_key_id",
)
def bucket_kms_encrypted(bucket: Resource, stack: Stack) -> str | None:
    problems: list[str] = []
    for config in stack.attached_to(bucket, BUCKET_SSE):
        rules = config.props.get("rules")
        if rules is UNKNOWN:
            problems.append(f"its encryption rules are {UNKNOWN_DOCUMENT}")
            continue
        for item in rules or []:
            default = at(item, "applyServerSideEncryptionByDefault")
            algorithm = at(default, "sseAlgorithm")
            if algorithm not in KMS_ALGORITHMS:
                problems.append(
                    f"sseAlgorithm is {'unknown at preview' if algorithm is UNKNOWN else algorithm}"
                )
                continue
            problem = _key_problem(config, stack, at(default, "kmsMasterKeyId"), "kmsMasterKeyId")
            if problem is None:
                return None
            problems.append(problem)
    detail = f" ({'; '.join(problems)})" if problems else ""
    return f"bucket has no default SSE-KMS encryption with a customer-managed key{detail}"


@rule(
    "s3-bucket-versioned",
    "S3 buckets keep object versions, so an overwritten artifact can be recovered.",
    [BUCKET],
    "add aws.s3.BucketVersioning with versioning_configuration.status 'Enabled'",
)
def bucket_versioned(bucket: Resource, stack: Stack) -> str | None:
    for versioning in stack.attached_to(bucket, BUCKET_VERSIONING):
        if versioning.get("versioningConfiguration.status") == "Enabled":
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
        return f"public access block leaves {', '.join(missing)} off (or unknown at preview)"
    return "bucket has no public access block"


@rule(
    "s3-bucket-tls-only",
    "S3 bucket policies deny every request made over plain HTTP.",
    [BUCKET],
    "attach an aws.s3.BucketPolicy with a Deny statement on Condition Bool aws:SecureTransport 'false'",
)
def bucket_tls_only(bucket: Resource, stack: Stack) -> str | None:
    unknown = False
    for policy in stack.attached_to(bucket, BUCKET_POLICY):
        statements = _statements(policy.props.get("policy"))
        if isinstance(statements, Unknown):
            unknown = True
            continue
        for statement in statements:
            if (
                statement.get("Effect") == "Deny"
                and str(at(statement, "Condition.Bool.aws:SecureTransport")).lower() == "false"
            ):
                return None
    if unknown:
        return f"the bucket policy is {UNKNOWN_DOCUMENT}"
    return "no bucket policy denies requests without TLS (aws:SecureTransport false)"


@rule(
    "ecr-tags-immutable",
    "ECR repositories have immutable tags, so an image tag always names the same image.",
    [ECR_REPOSITORY],
    "set image_tag_mutability='IMMUTABLE' on the repository",
)
def ecr_tags_immutable(repository: Resource, stack: Stack) -> str | None:
    mutability = repository.props.get("imageTagMutability", "MUTABLE")
    if mutability == "IMMUTABLE":
        return None
    return f"image tags are {'unknown at preview' if mutability is UNKNOWN else mutability}"


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
    problem = _key_problem(config, stack, config.props.get("kmsKeyArn"), "kmsKeyArn")
    return None if problem is None else f"endpoint configuration storage is not encrypted: {problem}"


@rule(
    "sagemaker-endpoint-config-data-capture",
    "Endpoint configurations capture a sample of requests and responses for monitoring.",
    [ENDPOINT_CONFIG],
    "set data_capture_config with enable_capture=True and initial_sampling_percentage above 0 "
    "(dataCapturePercent in the stack file)",
)
def endpoint_config_data_capture(config: Resource, stack: Stack) -> str | None:
    enabled = config.get("dataCaptureConfig.enableCapture")
    percent = config.get("dataCaptureConfig.initialSamplingPercentage")
    if enabled is True and isinstance(percent, int | float) and percent > 0:
        return None
    return "data capture is off (or unknown at preview)"


@rule(
    "sagemaker-prod-endpoint-gradual-rollout",
    "Production endpoints roll out by canary or linear steps, guarded by rollback alarms of the same stack.",
    [ENDPOINT],
    "use deployment strategy canary or linear and list the service's MetricAlarm names in "
    "auto_rollback_configuration (ModelEndpoint does both)",
)
def prod_endpoint_gradual_rollout(endpoint: Resource, stack: Stack) -> str | None:
    environment = endpoint.get("tags.environment")
    if environment is not UNKNOWN and environment != "prod":
        return None  # an unknown environment tag is held to prod's standard
    rollout = endpoint.get("deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.type")
    if rollout not in GRADUAL_ROLLOUTS:
        shown = "unknown at preview" if rollout is UNKNOWN else rollout or "not configured"
        return f"traffic routing is {shown}, not CANARY or LINEAR"
    names = _alarm_names(endpoint)
    if isinstance(names, Unknown):
        return "the rollback alarms are unknown at preview"
    if not names:
        return "no auto-rollback alarms"
    declared = {alarm.props.get("name") for alarm in stack.of_type(METRIC_ALARM)}
    missing = [name for name in names if name not in declared]
    if missing:
        return f"rollback alarms not declared in this stack: {', '.join(missing)}"
    return None


@rule(
    "sagemaker-endpoint-role-reads-rollback-alarms",
    "An endpoint's execution role may read its auto-rollback alarms (cloudwatch:DescribeAlarms), "
    "which SageMaker needs to roll a deployment back.",
    [ENDPOINT],
    "allow cloudwatch:DescribeAlarms on arn:aws:cloudwatch:<region>:<account>:alarm:<name> of each "
    "rollback alarm in the role of the endpoint's model (components.iam.serving_policy does)",
)
def endpoint_role_reads_rollback_alarms(endpoint: Resource, stack: Stack) -> str | None:
    names = _alarm_names(endpoint)
    if isinstance(names, Unknown):
        return "the rollback alarms are unknown at preview"
    if not names:
        return None
    configs = stack.referenced(endpoint, ENDPOINT_CONFIG, endpoint.props.get("endpointConfigName"), "name")
    models = [
        model
        for config in configs
        for prop in ("productionVariants", "shadowProductionVariants")
        for variant in _list(config.props.get(prop))
        for model in stack.referenced(config, MODEL, at(variant, "modelName"), "name")
    ]
    roles = {
        role.urn: role
        for model in models
        for role in stack.referenced(model, ROLE, model.props.get("executionRoleArn"), "arn")
    }
    if not roles:
        return "no execution role found: the endpoint's configuration, its models and their role are not in this stack"
    problems = []
    for role in roles.values():
        statements: list[Mapping[str, Any]] = []
        for document in _role_documents(role, stack):
            found = _statements(document)
            if isinstance(found, Unknown):
                return f"a policy of execution role {role.name} is {UNKNOWN_DOCUMENT}"
            statements.extend(found)
        unreadable = [name for name in names if not any(_allows_alarm(s, name) for s in statements)]
        if unreadable:
            problems.append(f"execution role {role.name} cannot read {', '.join(unreadable)}")
    return "; ".join(problems) or None


@rule(
    "sqs-queue-kms",
    "SQS queues are encrypted with a customer-managed KMS key.",
    [QUEUE],
    "set kms_master_key_id on the queue",
)
def queue_kms(queue: Resource, stack: Stack) -> str | None:
    problem = _key_problem(queue, stack, queue.props.get("kmsMasterKeyId"), "kmsMasterKeyId")
    return None if problem is None else f"queue is not encrypted with a KMS key: {problem}"


@rule(
    "sns-topic-kms",
    "SNS topics are encrypted with a customer-managed KMS key.",
    [TOPIC],
    "set kms_master_key_id on the topic",
)
def topic_kms(topic: Resource, stack: Stack) -> str | None:
    problem = _key_problem(topic, stack, topic.props.get("kmsMasterKeyId"), "kmsMasterKeyId")
    return None if problem is None else f"topic is not encrypted with a KMS key: {problem}"


@rule(
    "iam-no-wildcard-action",
    "No policy grants a wildcard action: never Action '*', and no '*' inside an Allow's actions, except "
    "the account root's 'kms:*' in a key policy (AWS's default key policy, which enables IAM policies).",
    list(POLICY_PROPERTIES),
    "list the exact actions the principal needs (e.g. s3:GetObject) instead of '*' or 'service:*'",
)
def no_wildcard_action(resource: Resource, stack: Stack) -> str | None:
    documents = [(prop, resource.props.get(prop)) for prop in POLICY_PROPERTIES[resource.type]]
    inline = resource.props.get("inlinePolicies")
    if inline is UNKNOWN:
        return f"inlinePolicies are {UNKNOWN_DOCUMENT}"
    documents += [(f"inlinePolicies[{i}]", at(item, "policy")) for i, item in enumerate(inline or [])]
    bad: set[str] = set()
    for where, document in documents:
        statements = _statements(document)
        if isinstance(statements, Unknown):
            return f"{where} is {UNKNOWN_DOCUMENT}"
        for statement in statements:
            effect = statement.get("Effect")
            actions = [*_strings(statement.get("Action")), *_strings(statement.get("NotAction"))]
            if UNKNOWN in actions:
                return f"the actions in {where} are {UNKNOWN_DOCUMENT}"
            if resource.type == KMS_KEY and _is_root_delegation(statement):
                continue
            bad |= {
                f"{effect} {action}"
                for action in actions
                if action == "*" or (effect == "Allow" and "*" in str(action))
            }
    return f"wildcard actions: {', '.join(sorted(bad))}" if bad else None


@rule(
    "kms-key-policy-delegates-to-iam",
    "Key policies let IAM policies grant the key, grants included: the account root may do 'kms:*' "
    "(AWS's default). Without kms:CreateGrant no role can attach the key to an AWS resource.",
    [KMS_KEY],
    "give the account root 'kms:*' on Resource '*' in the key policy (components.iam.kms_key_policy does)",
)
def key_policy_delegates_to_iam(key: Resource, stack: Stack) -> str | None:
    policy = key.props.get("policy")
    if policy is None:
        return None  # no policy: AWS applies its default key policy, root kms:*
    statements = _statements(policy)
    if isinstance(statements, Unknown):
        return f"the key policy is {UNKNOWN_DOCUMENT}"
    delegated = {
        grant
        for statement in statements
        if statement.get("Effect") == "Allow"
        and _account_roots(statement.get("Principal"))
        and not statement.get("Condition")
        and _strings(statement.get("Resource")) == ["*"]
        for action in _strings(statement.get("Action"))
        for grant in GRANT_ACTIONS
        if isinstance(action, str) and _action_matches(action, grant)
    }
    missing = [grant for grant in GRANT_ACTIONS if grant not in delegated]
    if missing:
        return (
            f"the account root cannot delegate {', '.join(missing)} to IAM policies, so no role can "
            "attach the key to an AWS resource (a KMS-encrypted ECR repository, endpoint or job volume)"
        )
    return None


@rule(
    "resources-tagged",
    "Every taggable resource carries the service, environment and managed-by tags.",
    TAGGABLE_TYPES,
    "pass tags=standard_tags(environment, service) (components do this from their `tags` argument)",
)
def resources_tagged(resource: Resource, stack: Stack) -> str | None:
    tags = resource.props.get("tags") or {}
    if tags is UNKNOWN:
        return "tags are unknown at preview: pass them as literals"
    missing = [key for key in REQUIRED_TAGS if tags.get(key) is not UNKNOWN and not tags.get(key)]
    return f"missing tags: {', '.join(missing)}" if missing else None


def _list(value: Any) -> list[Any]:
    """A list property as a list; nothing for a missing or unknown one."""
    return list(value) if isinstance(value, list | tuple) else []


def _strings(value: Any) -> list[Any]:
    """An IAM element that is a string or a list of strings, as a list (unknowns kept as ``UNKNOWN``)."""
    if value is None:
        return []
    if value is UNKNOWN or isinstance(value, str):
        return [value]
    return [item if item is UNKNOWN else str(item) for item in value]


def _statements(document: Any) -> list[Mapping[str, Any]] | Unknown:
    """The statements of a policy given as JSON text or as an object; nothing if unreadable.

    ``UNKNOWN`` when the document, or its statement list, is unknown at preview.
    """
    if isinstance(document, Unknown):
        return UNKNOWN
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, Mapping):
        return []
    statements = document.get("Statement") or []
    if statements is UNKNOWN or (isinstance(statements, list) and UNKNOWN in statements):
        return UNKNOWN
    if isinstance(statements, Mapping):
        return [statements]
    return [statement for statement in _list(statements) if isinstance(statement, Mapping)]


def _alarm_names(endpoint: Resource) -> list[Any] | Unknown:
    """The alarm names of an endpoint's auto-rollback configuration."""
    alarms = endpoint.get("deploymentConfig.autoRollbackConfiguration.alarms")
    if isinstance(alarms, Unknown):
        return UNKNOWN
    names: list[Any] = [at(alarm, "alarmName") for alarm in _list(alarms)]
    return UNKNOWN if UNKNOWN in names else [name for name in names if name]


def _role_documents(role: Resource, stack: Stack) -> list[Any]:
    """A role's inline policy documents: its ``inlinePolicies`` and the RolePolicies attached to it."""
    handles = {value for value in (role.props.get("name"), role.props.get("arn")) if isinstance(value, str)}
    inline = role.props.get("inlinePolicies")
    documents: list[Any] = [UNKNOWN] if inline is UNKNOWN else [at(item, "policy") for item in _list(inline)]
    documents += [
        policy.props.get("policy")
        for policy in stack.of_type(ROLE_POLICY)
        if role.urn in policy.dependencies or policy.props.get("role") in handles
    ]
    return documents


def _action_matches(pattern: str, action: str) -> bool:
    """Whether an IAM action pattern (``*`` and ``?`` wildcards, any case) covers ``action``."""
    return fnmatchcase(action.lower(), pattern.lower())


def _allows_alarm(statement: Mapping[str, Any], alarm: str) -> bool:
    """Whether an Allow statement grants ``cloudwatch:DescribeAlarms`` on the alarm named ``alarm``.

    The resource's region and account are not compared: the offline plan runs as a mock account.
    """
    if statement.get("Effect") != "Allow":
        return False
    actions = [action for action in _strings(statement.get("Action")) if isinstance(action, str)]
    if not any(_action_matches(action, "cloudwatch:DescribeAlarms") for action in actions):
        return False
    for resource in _strings(statement.get("Resource")):
        if resource == "*":
            return True
        parts = resource.split(":", 5) if isinstance(resource, str) else []
        if (
            len(parts) == 6
            and fnmatchcase("cloudwatch", parts[2])
            and fnmatchcase(f"alarm:{alarm}", parts[5])
        ):
            return True
    return False


def _account_roots(principal: Any) -> bool:
    """Whether a principal is one or more account roots (``{"AWS": "arn:aws:iam::…:root"}``)."""
    roots = (
        _strings(at(principal, "AWS")) if isinstance(principal, Mapping) and set(principal) == {"AWS"} else []
    )
    return bool(roots) and all(isinstance(root, str) and ACCOUNT_ROOT.match(root) for root in roots)


def _is_root_delegation(statement: Mapping[str, Any]) -> bool:
    """The key policy statement AWS writes by default: the account root may do ``kms:*``."""
    return (
        statement.get("Effect") == "Allow"
        and _account_roots(statement.get("Principal"))
        and _strings(statement.get("Action")) == ["kms:*"]
    )


def from_plan_value(value: Any) -> Any:
    """A plan input with the plan's ``"[unknown]"`` text turned back into ``UNKNOWN``."""
    if isinstance(value, Mapping):
        return {key: from_plan_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_plan_value(item) for item in value]
    return UNKNOWN if value == PLAN_UNKNOWN_TEXT else value


def stack_from_plan(plan: Mapping[str, Any]) -> Stack:
    """The resources of a ``modelrail plan`` (``pulumi preview --json`` shaped) document."""
    return Stack(
        tuple(
            Resource(
                urn=state["urn"],
                type=state["type"],
                props=from_plan_value(state.get("inputs") or {}),
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
