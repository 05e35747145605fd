"""Bind the controller's ports to real adapters for a stack.

The ``local`` stack (or ``MODELRAIL_AWS=embedded``) gets the embedded default: the registry on
the moto server, the local stack runner and the sandbox's endpoints and metrics. Every other
stack gets the Pulumi Automation API, SageMaker's DescribeEndpoint and CloudWatch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config import load_stack_file
from pipelines.errors import ModelrailError
from pipelines.paths import project_root, stack_path, state_dir
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.controller import Controller, Progress
from pipelines.promotion.evidence import EvidenceStore
from pipelines.promotion.phases import SERVING_ACTIONS
from pipelines.promotion.ports import VersionInfo
from pipelines.promotion.records import status
from pipelines.runners.base import EndpointInspector, EndpointState

if TYPE_CHECKING:
    from pipelines.registry.port import Registration
    from pipelines.registry.sagemaker import SageMakerRegistry

LOCAL_MIN_REQUESTS = 30
LOCAL_MIN_LABELS = 30
"""The sandbox sees tens of requests a second, not thousands: intervals count from 30 requests."""

ORGANIZATION_ENV = "PULUMI_ORG"
"""The Pulumi organization of the real stacks (``org/stack``); unset for a self-managed backend."""


class RegistryVersions:
    """``VersionStore`` over the S3 + SageMaker registry."""

    def __init__(self, registry: SageMakerRegistry) -> None:
        self.registry = registry

    def get_version(self, service: str, version: str) -> VersionInfo:
        found = self.registry.version(service, version)
        return VersionInfo(service, found.package_sha, found.stage, found.registrant, dict(found.metadata))

    def set_stage(self, service: str, sha: str, stage: str, actor: str) -> None:
        self.registry.set_stage(service, sha, stage, actor)  # type: ignore[arg-type]

    def approve(self, service: str, sha: str, actor: str, description: str) -> None:
        self.registry.set_approval(service, sha, "Approved", actor, description)

    def download(self, service: str, sha: str, target: Path) -> Path:
        return self.registry.download(service, sha, target)


class CatalogLineage:
    """``LineageSink`` over the lineage catalog: promotions mark what serves, failures do not.

    Once per journal: an outcome whose event the catalog already has (a resume after the bucket
    copy of the catalog failed) only mirrors the catalog again.
    """

    def __init__(self, registry: SageMakerRegistry) -> None:
        self.registry = registry

    def record(
        self, kind: str, *, service: str, version: str, stack: str, actor: str, payload: dict[str, Any]
    ) -> None:
        from pipelines.lineage.record import mirror_catalog, open_catalog, record_event

        journal = payload.get("journal")
        if journal:
            catalog = open_catalog()
            if any(event.payload.get("journal") == journal for event in catalog.events(service=service)):
                mirror_catalog(self.registry, catalog)
                return
        action, _, result = kind.partition(":")
        body = {**payload, "outcome": result or action}
        if action == "gates":
            record_event("gate", service, version, stack, actor, body, registry=self.registry)
        elif action == "approve":
            record_event("approval", service, version, stack, actor, body, registry=self.registry)
        elif kind in SERVING_ACTIONS:
            serving = "promotion" if action == "promote" else "rollback"
            record_event(
                serving,
                service,
                version,
                stack,
                actor,
                {**body, "stage": "production"},
                registry=self.registry,
            )
        elif kind == "promote:rolled_back" and payload.get("previous"):
            # The canary rolled back: the previous version serves again.
            record_event(
                "rollback", service, str(payload["previous"]), stack, actor, body, registry=self.registry
            )
        else:
            record_event("promotion", service, version, stack, actor, body, registry=self.registry)


class BucketCopy:
    """The audit log's copy in the artifact bucket (versioned, KMS-encrypted), written through the
    registry so the embedded AWS can restore it like every other object."""

    def __init__(self, registry: SageMakerRegistry, key: str) -> None:
        self.registry, self.key = registry, key

    def upload(self, text: bytes) -> None:
        self.registry.put_bytes(self.key, text, "application/x-ndjson")

    def download(self) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = self.registry.s3.get_object(Bucket=self.registry.bucket, Key=self.key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body: bytes = response["Body"].read()
        return body


def audit_key(stack: str) -> str:
    return f"audit/{stack}.jsonl"


@dataclass(frozen=True)
class StackRecords:
    """What a stack has on record locally, without starting any service."""

    stack: str

    @property
    def audit(self) -> AuditLog:
        return AuditLog(state_dir() / "audit", self.stack)

    def audit_with_remote(self) -> AuditLog:
        from pipelines.registry.factory import registry_for_stack

        registry = registry_for_stack(self.stack)
        return AuditLog(
            state_dir() / "audit",
            self.stack,
            remote=BucketCopy(registry, audit_key(self.stack)),
        )

    def status(self) -> list[dict[str, Any]]:
        config = load_stack_file(stack_path(self.stack))
        pinned = {name: service.model_version for name, service in config.services.items()}
        return status(self.audit, state_dir(), self.stack, pinned)

    def live_status(self) -> list[dict[str, Any]]:
        """``status`` with what each endpoint really runs, read through the endpoint inspector.

        Per row: ``pinned`` (the stack file), ``serving`` (the version the endpoint runs
        InService, or None: nothing, another configuration, or not known), ``endpoint`` (what
        DescribeEndpoint says) and ``verified`` (a verified rollout of the pinned version, *and*
        the endpoint runs it). Starts nothing: a sandbox that is not running serves nothing.
        """
        rows = self.status()
        inspectors = live_inspectors(self.stack)
        runtimes = {
            name: service.runtime
            for name, service in load_stack_file(stack_path(self.stack)).services.items()
        }
        try:
            outputs = stack_outputs(self.stack)
        except ModelrailError:
            outputs = {}
        for row in rows:
            pinned, service = row["serving"], row["service"]
            inspector = inspectors[runtimes[service]]
            state = _describe_quietly(inspector, service)
            candidates = [v for v in (pinned, row["previous_stable"]) if v]
            running = next(
                (v for v in candidates if _expected(inspector, service, v, outputs) == state.config_name),
                None,
            )
            serving = running if state.status == "InService" else None
            row.update(
                pinned=pinned,
                serving=serving,
                endpoint=state.to_json(),
                verified=bool(row["verified"]) and serving is not None and serving == pinned,
            )
        return rows


def stack_records(stack: str) -> StackRecords:
    return StackRecords(stack)


def live_status(stack: str) -> list[dict[str, Any]]:
    """``modelrail status``'s rows with what the endpoints really run (see ``StackRecords.live_status``)."""
    return StackRecords(stack).live_status()


class _NothingRuns:
    """The endpoint inspector of a sandbox that is not running: no endpoint exists."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def describe(self, service: str) -> EndpointState:
        return EndpointState("NotRunning", "", self.reason)

    def expected_config(self, service: str, version: str, outputs: dict[str, Any]) -> str:
        from infra.naming import version_config_name

        return version_config_name(service, version)

    def serves(self, service: str, config_name: str, version: str) -> bool:
        return False

    def shadow(self, service: str, config_name: str) -> str | None:
        return None


def live_inspectors(stack: str) -> dict[str, EndpointInspector]:
    """Each runtime's endpoint inspector for the stack, without starting anything (a sandbox that
    is not running serves nothing)."""
    from pipelines.embedded.session import embedded_selected
    from pipelines.runtimes.table import Binding, inspectors

    config = load_stack_file(stack_path(stack))
    if embedded_selected(stack):
        from pipelines.sandbox import SandboxClient, SandboxNotRunningError

        try:
            sandbox = SandboxClient.connect(state_dir())
        except SandboxNotRunningError as error:
            nothing = _NothingRuns(error.message)
            return {service.runtime: nothing for service in config.services.values()}
        return inspectors(Binding(stack, config, lambda: sandbox, _no_aws), embedded=True)
    session = _aws_session(config.platform.region)
    return inspectors(
        Binding(stack, config, _no_sandbox, lambda name: _aws_client(session, name)), embedded=False
    )


def _no_aws(name: str) -> Any:
    raise ModelrailError(f"the embedded default reads no real AWS {name}")


def _no_sandbox() -> Any:
    raise ModelrailError("a cloud stack has no local sandbox")


def stack_outputs(stack: str) -> dict[str, Any]:
    """The stack's outputs, which name the configuration each endpoint must run: the Pulumi
    stack's (a typed error when they cannot be read); none on the embedded default, whose
    inspector needs none."""
    from pipelines.embedded.session import embedded_selected

    if embedded_selected(stack):
        return {}
    from pipelines.runners.pulumi_runner import PulumiStackRunner

    return PulumiStackRunner(stack, project_root(), organization=os.environ.get(ORGANIZATION_ENV)).outputs()


def _describe_quietly(inspector: EndpointInspector, service: str) -> EndpointState:
    try:
        return inspector.describe(service)
    except ModelrailError as error:
        return EndpointState("Unreachable", "", error.message)


def _expected(
    inspector: EndpointInspector, service: str, version: str, outputs: dict[str, Any]
) -> str | None:
    try:
        return inspector.expected_config(service, version, outputs)
    except ModelrailError:
        return None  # the outputs do not say which configuration that version is


def _aws_session(region: str) -> Any:
    import boto3

    return boto3.session.Session(region_name=region)


def _aws_client(session: Any, name: str) -> Any:
    """A client of a real AWS service with standard-mode retries and typed "not answering" errors."""
    from pipelines.dependencies import guard_client, retry_config

    region = session.region_name
    return guard_client(session.client(name, config=retry_config(embedded=False)), f"AWS {name} in {region}")


def register_version(stack: str, service: str, package: Path, actor: str) -> tuple[Registration, Any]:
    """Register a package, then record it in lineage and in the stack's audit log (once)."""
    from pipelines.lineage import record_registration
    from pipelines.registry.factory import registry_for_stack

    registry = registry_for_stack(stack, service)
    registration = registry.register(service, package, actor)
    event = None
    if registration.created:
        event = record_registration(registry, registration, registration.manifest, actor)
        audit = AuditLog(state_dir() / "audit", stack, remote=BucketCopy(registry, audit_key(stack)))
        audit.append(
            "register",
            actor=actor,
            service=service,
            stack=stack,
            version=registration.version.package_sha,
            dataset=registration.version.dataset_fingerprint,
            git_sha=registration.version.git_sha,
        )
    return registration, event


def build_controller(stack: str, *, progress: Progress | None = None) -> Controller:
    """A controller for ``stack`` with the adapters of every runtime its services use
    (``pipelines.runtimes.table``), on the embedded default or for real."""
    from pipelines.embedded.session import embedded_selected
    from pipelines.registry.factory import registry_for_stack
    from pipelines.runtimes.table import Binding, bind

    root, state, path = project_root(), state_dir(), stack_path(stack)
    config = load_stack_file(path)
    registry = registry_for_stack(stack)
    audit = AuditLog(state / "audit", stack, remote=BucketCopy(registry, audit_key(stack)))
    embedded = embedded_selected(stack)
    session: list[Any] = []

    def aws_client(name: str) -> Any:
        if not session:
            session.append(_aws_session(config.platform.region))
        return _aws_client(session[0], name)

    def start_sandbox() -> Any:
        from pipelines.sandbox.client import SandboxClient

        return SandboxClient.start(state)

    binding = Binding(stack, config, start_sandbox, aws_client)
    adapters = bind(binding, embedded=embedded)
    common: dict[str, Any] = {
        "stack": stack,
        "stack_path": path,
        "project_dir": root,
        "adapters": adapters,
        "registry": RegistryVersions(registry),
        "evidence": EvidenceStore(state / "evidence"),
        "audit": audit,
        "lineage": CatalogLineage(registry),
        "state_dir": state,
    }
    if progress is not None:
        common["progress"] = progress
    if embedded:
        from pipelines.runners.local_runner import LocalStackRunner

        runner = LocalStackRunner(
            stack, root, state, binding.sandbox, model_dir_for=_model_dirs(registry, state)
        )
        return Controller(
            runner=runner, min_requests=LOCAL_MIN_REQUESTS, min_labels=LOCAL_MIN_LABELS, **common
        )
    from pipelines.promotion.notifier import SnsNotifier
    from pipelines.runners.pulumi_runner import PulumiStackRunner

    notifier = SnsNotifier(
        lambda: aws_client("sns"),
        region=config.platform.region,
        account=lambda: str(aws_client("sts").get_caller_identity()["Account"]),
        environment=config.platform.environment,
        progress=progress or (lambda _event, _fields: None),
    )
    return Controller(
        runner=PulumiStackRunner(stack, root, organization=os.environ.get(ORGANIZATION_ENV)),
        notifier=notifier,
        **common,
    )


def _model_dirs(registry: SageMakerRegistry, state: Path) -> Any:
    """Resolve (service, version) to a verified, unpacked model directory under the state dir."""
    from pipelines.packaging.load import extract_package
    from pipelines.serving.verify import verify_model_dir

    def model_dir_for(service: str, version: str) -> Path:
        target = state / "models" / service / version
        if (target / "manifest.json").exists():
            verify_model_dir(target, expected_package_id=version)  # every load re-verifies every file
            return target
        tarball = registry.download(service, version, state / "models" / service / f"{version}.tar.gz")
        extract_package(tarball, target, expected_package_id=version)
        tarball.unlink(missing_ok=True)
        return target

    return model_dir_for


def registry_port(stack: str, service: str | None = None) -> RegistryVersions:
    """The ``VersionStore`` of ``stack``'s registry, for commands that read versions without a
    controller (``modelrail gate``): the gates reach the registry only through this port."""
    from pipelines.registry.factory import registry_for_stack

    return RegistryVersions(registry_for_stack(stack, service))
