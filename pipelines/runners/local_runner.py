"""The embedded default's StackRunner: the offline plan plus the local sandbox.

``up`` renders the stack file's plan (the same program ``pulumi up`` would run), remembers it
as applied, and hands each service's desired version to the sandbox: a ``runtime: sagemaker``
service is rolled out with SageMaker's blue/green semantics, with its ``shadowVersion`` (if any)
as the endpoint's shadow variant, a ``runtime: kserve`` one gets its predictor spec (version and
``canaryTrafficPercent``) applied to its InferenceService. Either way it blocks until the sandbox
has finished, as ``pulumi up`` does on a real endpoint. ``preview`` diffs the desired plan
against the last applied one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config import Service, StackConfig, load_stack_file
from infra.naming import MODEL_VERSION_ANNOTATION, endpoint_name, version_config_name
from pipelines.console import dumps
from pipelines.runners.base import EndpointState, Preview, ResourceChange

if TYPE_CHECKING:
    from pipelines.sandbox.client import SandboxClient
    from pipelines.sandbox.description import EndpointDescription
    from pipelines.sandbox.shadow import ShadowSpec

ModelDirFor = Callable[[str, str], Path]
"""Resolve (service, version) to an unpacked, verified model directory."""


class LocalStackRunner:
    """Applies a stack file to the local sandbox."""

    def __init__(
        self,
        stack: str,
        project_dir: Path,
        state_dir: Path,
        sandbox: SandboxClient,
        model_dir_for: ModelDirFor,
    ) -> None:
        self.stack = stack
        self.project_dir = project_dir
        self.sandbox = sandbox
        self.model_dir_for = model_dir_for
        self.applied_path = state_dir / "local-stack" / f"{stack}.applied.json"
        self.applied_path.parent.mkdir(parents=True, exist_ok=True)

    def _desired(self) -> dict[str, Any]:
        from pipelines.plan import build_plan

        return build_plan(self.stack, project_dir=self.project_dir)

    def _applied(self) -> dict[str, Any]:
        if not self.applied_path.exists():
            return {"steps": []}
        plan: dict[str, Any] = json.loads(self.applied_path.read_text(encoding="utf-8"))
        return plan

    def preview(self) -> Preview:
        from pipelines.plan import diff_plans

        diff = diff_plans(self._applied(), self._desired())
        changes = [ResourceChange(urn, type_, "create") for urn, type_ in diff.added]
        changes += [ResourceChange(urn, type_, "delete") for urn, type_ in diff.removed]
        changes += [
            ResourceChange(
                c.urn, c.type, "replace" if c.replaces else "update", tuple(p.path for p in c.properties)
            )
            for c in diff.changed
        ]
        return Preview(tuple(sorted(changes, key=lambda c: c.urn)), diff.to_json()["summary"])

    def up(self, message: str) -> dict[str, Any]:
        desired = self._desired()
        config = load_stack_file(self.project_dir / "stacks" / f"Pulumi.{self.stack}.yaml")
        for name, service in sorted(config.services.items()):
            if service.model_version is None:
                continue
            if service.runtime == "kserve":
                self._apply_revision(config, name, service, service.model_version)
                continue
            if _runs(self._described(name), service):
                continue
            model_dir = self.model_dir_for(name, service.model_version)
            self.sandbox.deploy(
                name, service.model_version, model_dir, service.deployment, self._shadow(name, service)
            )
            self.sandbox.wait(name, timeout=float(service.deployment.max_execution_seconds))
        self.applied_path.write_text(dumps({**desired, "message": message}), encoding="utf-8")
        return self.outputs()

    def _apply_revision(self, config: StackConfig, name: str, service: Service, version: str) -> None:
        """Apply the service's predictor spec when it differs from the one its InferenceService last
        applied, as ``kubectl apply`` of an unchanged spec is no change (and no new generation)."""
        wanted = (version, service.canary_traffic_percent)
        if self._applied_spec(name) == wanted:
            return
        self.sandbox.apply_revision(
            name,
            version,
            self.model_dir_for(name, version),
            service.canary_traffic_percent,
            namespace=config.namespace_of(name),
        )

    def _applied_spec(self, service: str) -> tuple[str, int | None] | None:
        """(version, canaryTrafficPercent) of the InferenceService's last applied spec; None before one."""
        from pipelines.sandbox import EndpointNotFoundError

        try:
            document = self.sandbox.inference_service(service)
        except EndpointNotFoundError:
            return None  # never applied: the first spec creates the InferenceService
        version = str(document["metadata"]["annotations"][MODEL_VERSION_ANNOTATION])
        return version, document["spec"]["predictor"].get("canaryTrafficPercent")

    def _described(self, service: str) -> EndpointDescription | None:
        from pipelines.sandbox import EndpointNotFoundError

        try:
            return self.sandbox.describe_endpoint(service)
        except EndpointNotFoundError:
            return None  # never deployed: the first rollout creates the endpoint

    def _shadow(self, name: str, service: Service) -> ShadowSpec | None:
        """The shadow variant the stack asks for, its package unpacked."""
        from pipelines.sandbox.shadow import ShadowSpec

        if service.shadow_version is None:
            return None
        return ShadowSpec(service.shadow_version, self.model_dir_for(name, service.shadow_version))

    def refresh(self) -> None:
        """The sandbox is the state: a dead daemon is started again (empty, as its endpoints died
        with it), then read (``outputs``). Only a stack update deploys anything onto it."""
        self.sandbox.ensure_running()
        self.outputs()

    def outputs(self) -> dict[str, Any]:
        config = load_stack_file(self.project_dir / "stacks" / f"Pulumi.{self.stack}.yaml")
        services: dict[str, Any] = {}
        from pipelines.sandbox import EndpointNotFoundError

        for name, service in sorted(config.services.items()):
            if service.runtime == "kserve":
                try:
                    document = self.sandbox.inference_service(name)
                except EndpointNotFoundError:
                    continue
                services[name] = _inference_service_outputs(document)
                continue
            try:
                described = self.sandbox.describe_endpoint(name)
            except EndpointNotFoundError:
                continue
            services[name] = {
                "endpointName": endpoint_name(config.platform.environment, name),
                "endpointConfigName": described.config_name,
                "endpointUrl": self.sandbox.endpoint_url(name),
            }
        return {"services": services}


def _runs(described: EndpointDescription | None, service: Service) -> bool:
    """Whether the endpoint runs what the stack asks for: its version, and its shadow at its share.

    A shadow that failed to start is absent, so the next update starts it again.
    """
    if described is None or described.serving_version != service.model_version:
        return False
    if service.shadow_version is None:
        return described.shadow_version is None
    return (described.shadow_version, described.shadow_percent) == (
        service.shadow_version,
        service.deployment.shadow.percent,
    )


def _inference_service_outputs(document: dict[str, Any]) -> dict[str, Any]:
    """A KServe service's stack outputs: where its InferenceService is and which revisions it runs."""
    predictor = document["status"]["components"]["predictor"]
    outputs = {
        "inferenceServiceName": document["metadata"]["name"],
        "namespace": document["metadata"]["namespace"],
        "url": document["status"]["url"],
    }
    for key in ("latestCreatedRevision", "latestReadyRevision", "latestRolledoutRevision"):
        if key in predictor:
            outputs[key] = predictor[key]
    return outputs


class SandboxEndpoints:
    """``DescribeEndpoint`` for the sandbox's SageMaker-style endpoints (a KServe service's inspector
    reads ``SandboxClient.inference_service`` instead)."""

    def __init__(self, sandbox: SandboxClient) -> None:
        self.sandbox = sandbox

    def describe(self, service: str) -> EndpointState:
        from pipelines.sandbox import EndpointNotFoundError

        try:
            described = self.sandbox.describe_endpoint(service)
        except EndpointNotFoundError as error:
            return EndpointState("NotFound", "", error.message)
        return EndpointState(described.status, described.config_name or "", described.failure_reason or "")

    def expected_config(self, service: str, version: str, outputs: dict[str, Any]) -> str:
        return version_config_name(service, version)

    def shadow(self, service: str, config_name: str) -> str | None:
        """The endpoint's shadow variant, if ``config_name`` is the configuration it runs: a sandbox
        configuration is named after its production version only, so one it no longer runs has no
        shadow to read."""
        from pipelines.sandbox import EndpointNotFoundError

        try:
            described = self.sandbox.describe_endpoint(service)
        except EndpointNotFoundError:
            return None
        return described.shadow_version if described.config_name == config_name else None

    def serves(self, service: str, config_name: str, version: str) -> bool:
        """A sandbox configuration is named after the version it serves."""
        return config_name == self.expected_config(service, version, {})
