"""Deterministic mocks and a recording monitor for Pulumi's mock runtime.

``PlanMocks`` answers every resource registration with outputs derived from the resource's URN
(and, for resources the provider replaces on any change, from its inputs too, the way a
replacement gets a fresh auto-name). Values that flow between resources therefore resolve, and
a plan is byte-identical across runs.

``PlanMonitor`` subclasses the SDK's ``MockMonitor`` to see each ``RegisterResource`` request
whole (type, name, parent, dependencies, serialized inputs): everything a plan step needs.
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

from pipelines.plan.values import struct_to_plain

MOCK_ACCOUNT_ID = "123456789012"
"""The account the offline plan runs as; moto's default account, so local plans match the embedded AWS."""

REPLACED_ON_ANY_CHANGE = frozenset(
    {
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/model:Model",
    }
)
"""Types whose every input forces replacement; a replacement gets a new auto-name."""


def _digest(*parts: str, length: int = 7) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


def _service_of(type_token: str) -> str:
    """``aws:s3/bucket:Bucket`` → ``s3``: the ARN service segment."""
    module = type_token.split(":")[1] if type_token.count(":") >= 2 else "resource"
    return module.split("/")[0].lower()


@dataclass
class PlanMocks(pulumi.runtime.Mocks):
    """Outputs for mocked resources and invokes, derived only from what is being registered."""

    region: str
    account_id: str = MOCK_ACCOUNT_ID
    _urns: threading.local = field(default_factory=threading.local)

    def expect_urn(self, urn: str) -> None:
        """Tell ``new_resource`` (called next, on this thread) which URN it is answering for."""
        self._urns.current = urn

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        urn: str = getattr(self._urns, "current", f"{args.typ}::{args.name}")
        seed = urn
        if args.typ in REPLACED_ON_ANY_CHANGE:
            seed += json.dumps(args.inputs, sort_keys=True, default=str)
        physical = f"{args.name}-{_digest(seed)}"
        service = _service_of(args.typ)
        state: dict[str, Any] = dict(args.inputs)
        state.setdefault("name", physical)
        arn = (
            f"arn:aws:{service}:{self.region}:{self.account_id}:{args.typ.split(':')[-1].lower()}/{physical}"
        )
        if service == "s3":
            bucket = str(state.get("bucket", physical))
            state.setdefault("bucket", bucket)
            arn = f"arn:aws:s3:::{bucket}"
            state.setdefault("bucketDomainName", f"{bucket}.s3.amazonaws.com")
            state.setdefault("bucketRegionalDomainName", f"{bucket}.s3.{self.region}.amazonaws.com")
        elif service == "sqs":
            state.setdefault("url", f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{physical}")
        elif service == "ecr":
            state.setdefault(
                "repositoryUrl", f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{state['name']}"
            )
            state.setdefault("registryId", self.account_id)
        elif service == "kms":
            state.setdefault("keyId", _digest(urn, length=32))
        elif service == "iam":
            arn = f"arn:aws:iam::{self.account_id}:{args.typ.split(':')[-1].lower()}/{state['name']}"
        state.setdefault("arn", arn)
        resource_id = str(state.get("bucket")) if service == "s3" and "bucket" in state else physical
        state.setdefault("id", resource_id)
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
        return dict(args.args), []


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
            inputs=struct_to_plain(request.object),
            retain_on_delete=bool(request.retainOnDelete),
            protect=bool(request.protect),
            replace_on_changes=tuple(sorted(request.replaceOnChanges)),
            ignore_changes=tuple(sorted(request.ignoreChanges)),
        )
        with self._lock:
            self.registrations.append(registration)
        return response
