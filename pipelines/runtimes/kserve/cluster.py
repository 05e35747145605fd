"""The KServe runtime's endpoint inspector and traffic router, over InferenceService documents.

``KServeEndpoints`` reads whatever hands it a service's InferenceService document: ``kubectl``
for a real cluster, the sandbox's own documents locally; one interpreter
(``pipelines.runtimes.kserve.status``) serves both. ``KServeCanaryRouter`` aborts a canary the
KServe way, ``canaryTrafficPercent: 0``, which pins all traffic to the latest rolled-out revision
at once; putting the previous version back in the stack file stays the controller's one revert
path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.naming import version_config_name
from pipelines.runners.base import EndpointState
from pipelines.runtimes.kserve.kubectl import Kubectl
from pipelines.runtimes.kserve.status import RevisionStatus, endpoint_state

Document = dict[str, Any]
Locate = Callable[[str], tuple[str, str]]
"""A service's InferenceService: (name, namespace)."""


class KServeEndpoints:
    """The ``EndpointInspector`` of KServe services: what their InferenceServices' status says."""

    def __init__(self, document_for: Callable[[str], Document | None]) -> None:
        self.document_for = document_for
        """A service's InferenceService document, or None when it does not exist."""

    def describe(self, service: str) -> EndpointState:
        return endpoint_state(service, self.document_for(service))

    def expected_config(self, service: str, version: str, outputs: dict[str, Any]) -> str:
        """Derived from the version, not the stack outputs: a revision is named by its version
        annotation, so the outputs add nothing (and may be stale after a failed update)."""
        return version_config_name(service, version)

    def serves(self, service: str, config_name: str, version: str) -> bool:
        """``config_name`` is derived from the annotation of the spec the revision was made from."""
        return bool(config_name) and config_name == version_config_name(service, version)

    def shadow(self, service: str, config_name: str) -> str | None:
        """Always None: an InferenceService mirrors no traffic, and the stack config refuses a shadow
        phase on a kserve service (``infra.config.KSERVE_NO_SHADOW``)."""
        return None

    def step_failure(self, service: str, percent: int | None) -> str:
        """Why the InferenceService does not show a rollout step done ('' when it does): after a
        canary step (``percent``, its ``canaryTrafficPercent``) the latest revision is ready with
        exactly that share; after the full step (None) it is the latest rolled-out revision with
        all the traffic. A missing InferenceService shows no step."""
        document = self.document_for(service)
        if document is None:
            return f"there is no InferenceService for {service}"
        return RevisionStatus.of(document).step_failure(percent)


class KServeCanaryRouter:
    """The ``TrafficRouter`` of KServe services: ``canaryTrafficPercent`` to 0 through kubectl."""

    def __init__(self, kubectl: Kubectl, locate: Locate) -> None:
        self.kubectl = kubectl
        self.locate = locate

    def abort(self, service: str, guardrail: str, value: float, reason: str) -> None:
        """Pin all traffic to the latest rolled-out revision; patching 0 again changes nothing, so a
        resumed controller may call it twice. The breach itself is the controller's record."""
        name, namespace = self.locate(service)
        self.kubectl.patch_canary_percent(name, namespace, 0)
