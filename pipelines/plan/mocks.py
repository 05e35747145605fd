"""Deterministic mocks and a recording monitor for Pulumi's mock runtime.

``PlanMocks`` answers every resource registration as the provider would: an explicit name input
wins, otherwise an auto-name derived from the resource's URN (and, for resources the provider
replaces on any change, from their inputs but the tags, the way a replacement gets a fresh
auto-name and a tag update does not); ARNs and ids in each service's real format. Kubernetes
objects echo their inputs, as the API server would, with pulumi-kubernetes' ``<namespace>/<name>``
ids; ``eks:DescribeCluster`` answers with an endpoint, a CA and an OIDC issuer in EKS's formats.
Values that flow between resources therefore resolve, and a plan's resources are the same on
every run.

``PlanMonitor`` subclasses the SDK's ``MockMonitor`` to see each ``RegisterResource`` request
whole (type, name, parent, dependencies, serialized inputs): everything a plan step needs. It
masks a provider's credentials (``PROVIDER_SECRET_INPUTS``) whether or not the program marked them
secret.
It relies on the request shape of the pinned pulumi SDK; ``tests/unit/plan`` fails loudly if an
upgrade changes it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from pipelines.plan.values import SECRET_TEXT, struct_to_plain

MOCK_ACCOUNT_ID = "123456789012"
"""The account the offline plan runs as; moto's default account, so local plans match the embedded AWS."""

REPLACED_ON_ANY_CHANGE = frozenset(
    {
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/model:Model",
    }
)
"""Types whose every input forces replacement; a replacement gets a new auto-name."""

UPDATED_IN_PLACE = ("tags", "tagsAll")
"""Inputs the provider updates in place even on those types: no new auto-name for them."""

NAME_PROPERTY: dict[str, str] = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "modelPackageGroupName",
    "aws:sagemaker/pipeline:Pipeline": "pipelineName",
    "aws:cloudwatch/dashboard:Dashboard": "dashboardName",
}
"""Where a type keeps its physical name, when not in ``name``."""

ARN_FORMATS: dict[str, str] = {
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{name}",
    "aws:sns/topic:Topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "aws:cloudwatch/dashboard:Dashboard": "arn:aws:cloudwatch::{account}:dashboard/{name}",
    "aws:sagemaker/endpoint:Endpoint": "arn:aws:sagemaker:{region}:{account}:endpoint/{name}",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "arn:aws:sagemaker:{region}:{account}:endpoint-config/{name}"
    ),
    "aws:sagemaker/model:Model": "arn:aws:sagemaker:{region}:{account}:model/{name}",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": (
        "arn:aws:sagemaker:{region}:{account}:model-package-group/{name}"
    ),
    "aws:sagemaker/pipeline:Pipeline": "arn:aws:sagemaker:{region}:{account}:pipeline/{name}",
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition": (
        "arn:aws:sagemaker:{region}:{account}:data-quality-job-definition/{name}"
    ),
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": (
        "arn:aws:sagemaker:{region}:{account}:monitoring-schedule/{name}"
    ),
    "aws:kms/key:Key": "arn:aws:kms:{region}:{account}:key/{key_id}",
    "aws:kms/alias:Alias": "arn:aws:kms:{region}:{account}:{name}",
    "aws:ecr/repository:Repository": "arn:aws:ecr:{region}:{account}:repository/{name}",
    "aws:iam/role:Role": "arn:aws:iam::{account}:role/{name}",
    "aws:iam/policy:Policy": "arn:aws:iam::{account}:policy/{name}",
}
"""Each type's ARN, as the AWS service writes it (SageMaker names are lower case anyway)."""


PROVIDER_SECRET_INPUTS: dict[str, tuple[str, ...]] = {"pulumi:providers:kubernetes": ("kubeconfig",)}
"""Provider inputs the plan always masks. A kubeconfig may come from the environment (the SDK
reads ``KUBECONFIG`` when the program passes none) and may carry credentials: it never belongs in
a plan that is printed, diffed and committed, secret or not."""

MOCK_CA_DATA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm1vZGVscmFpbC1wbGFuCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
"""A cluster CA for ``eks:DescribeCluster`` answers: base64 of a PEM frame around ``modelrail-plan``."""


def _digest(*parts: str, length: int = 7) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


def _service_of(type_token: str) -> str:
    """``aws:s3/bucket:Bucket`` → ``s3``: the ARN service segment."""
    module = type_token.split(":")[1] if type_token.count(":") >= 2 else "resource"
    return module.split("/")[0].lower()


@dataclass
class PlanMocks(pulumi.runtime.Mocks):
    """Outputs for mocked resources and invokes, derived only from what is being registered.

    ``new_stack=True`` answers as a first preview of a new stack does: inputs and auto-names are
    known, and everything AWS assigns on creation (ARNs, IDs, URLs) is left out, which the SDK
    resolves as unknown during a preview.
    """

    region: str
    account_id: str = MOCK_ACCOUNT_ID
    new_stack: bool = False
    _urns: threading.local = field(default_factory=threading.local)

    def expect_urn(self, urn: str) -> None:
        """Tell ``new_resource`` (called next, on this thread) which URN it is answering for."""
        self._urns.current = urn

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        urn: str = getattr(self._urns, "current", f"{args.typ}::{args.name}")
        if args.typ.startswith("kubernetes:"):
            return self._kubernetes_object(args, urn)
        seed = urn
        if args.typ in REPLACED_ON_ANY_CHANGE:
            replacing = {key: value for key, value in args.inputs.items() if key not in UPDATED_IN_PLACE}
            seed += json.dumps(replacing, sort_keys=True, default=str)
        name_property = NAME_PROPERTY.get(args.typ, "name")
        state: dict[str, Any] = dict(args.inputs)
        name = str(state.get(name_property) or f"{args.name}-{_digest(seed)}")  # an explicit name wins
        state[name_property] = name
        if self.new_stack:
            return None, state
        key_id = _digest(urn, length=32)
        arn_format = ARN_FORMATS.get(args.typ, "arn:aws:{service}:{region}:{account}:{kind}/{name}")
        state.setdefault(
            "arn",
            arn_format.format(
                service=_service_of(args.typ),
                region=self.region,
                account=self.account_id,
                kind=args.typ.split(":")[-1].lower(),
                name=name,
                key_id=key_id,
            ),
        )
        resource_id = name
        if args.typ == "aws:s3/bucket:Bucket":
            state.setdefault("bucketDomainName", f"{name}.s3.amazonaws.com")
            state.setdefault("bucketRegionalDomainName", f"{name}.s3.{self.region}.amazonaws.com")
        elif args.typ == "aws:sqs/queue:Queue":
            resource_id = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{name}"
            state.setdefault("url", resource_id)  # a queue's id is its URL
        elif args.typ == "aws:sns/topic:Topic":
            resource_id = state["arn"]  # a topic's id is its ARN
        elif args.typ == "aws:ecr/repository:Repository":
            state.setdefault("repositoryUrl", f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{name}")
            state.setdefault("registryId", self.account_id)
        elif args.typ == "aws:kms/key:Key":
            resource_id = key_id
            state.setdefault("keyId", key_id)
        elif args.typ == "aws:cloudwatch/dashboard:Dashboard":
            state.setdefault("dashboardArn", state.pop("arn"))
        state.setdefault("id", resource_id)
        return resource_id, state

    def _kubernetes_object(
        self, args: pulumi.runtime.MockResourceArgs, urn: str
    ) -> tuple[str | None, dict[Any, Any]]:
        """A Kubernetes object as the API server would echo it: its inputs, the name an explicit
        ``metadata.name`` or the auto-name, and the id ``<namespace>/<name>`` (``<name>`` for a
        cluster-scoped object) as pulumi-kubernetes writes it. Nothing here is assigned by AWS,
        so a new stack's plan knows it too."""
        state: dict[str, Any] = dict(args.inputs)
        metadata = dict(state.get("metadata") or {})
        metadata.setdefault("name", f"{args.name}-{_digest(urn, length=8)}")
        state["metadata"] = metadata
        namespace = metadata.get("namespace")
        resource_id = f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/modelrail-plan",
                "userId": "AIDAMODELRAILPLAN",
                "id": self.account_id,
            }, []
        if token in ("aws:index/getRegion:getRegion", "aws:index/getRegion:getRegionResult"):
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:eks/getCluster:getCluster":
            return self._eks_cluster(str(args.args["name"])), []
        return dict(args.args), []

    def _eks_cluster(self, name: str) -> dict[str, Any]:
        """``eks:DescribeCluster`` of a cluster: endpoint and OIDC issuer in EKS's formats, both
        derived from the name (EKS draws a 32-hex id per cluster)."""
        cluster_id = _digest(self.account_id, self.region, name, length=32).upper()
        return {
            "name": name,
            "id": name,
            "arn": f"arn:aws:eks:{self.region}:{self.account_id}:cluster/{name}",
            "endpoint": f"https://{cluster_id}.gr7.{self.region}.eks.amazonaws.com",
            "certificateAuthorities": [{"data": MOCK_CA_DATA}],
            "identities": [
                {"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{cluster_id}"}]}
            ],
            "status": "ACTIVE",
            "version": "1.31",
        }


def mask_provider_secrets(type_: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` with the provider inputs listed in ``PROVIDER_SECRET_INPUTS`` as ``"[secret]"``."""
    masked = PROVIDER_SECRET_INPUTS.get(type_, ())
    return {key: SECRET_TEXT if key in masked else value for key, value in inputs.items()}


@dataclass(frozen=True)
class Registration:
    """One ``RegisterResource`` request, as the engine would have seen it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]
    retain_on_delete: bool
    protect: bool
    replace_on_changes: tuple[str, ...]
    ignore_changes: tuple[str, ...]


class PlanMonitor(MockMonitor):
    """A mock monitor that records every registration, thread-safely (the SDK calls it from a pool)."""

    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self.plan_mocks = mocks
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine builds them: the root stack's type never prefixes a child's."""
        if parent and parent.split("::")[2] == "pulumi:pulumi:Stack":
            parent = ""
        urn: str = super().make_urn(parent, type_, name)
        return urn

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        self.plan_mocks.expect_urn(urn)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        registration = Registration(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent,
            dependencies=tuple(sorted(set(request.dependencies))),
            inputs=mask_provider_secrets(request.type, struct_to_plain(request.object)),
            retain_on_delete=bool(request.retainOnDelete),
            protect=bool(request.protect),
            replace_on_changes=tuple(sorted(request.replaceOnChanges)),
            ignore_changes=tuple(sorted(request.ignoreChanges)),
        )
        with self._lock:
            self.registrations.append(registration)
        return response
