"""The KServe runtime's adapters for a real cluster, bound from a stack's config.

The cluster is ``platform.kubernetes``: a kubeconfig ``context``, or an ``eksCluster``. For an
EKS cluster the kubeconfig context is expected to carry the cluster's name, which is what

    aws eks update-kubeconfig --region <platform.region> --name <eksCluster> --alias <eksCluster>

writes (without ``--alias`` the context is the cluster's ARN, which the stack config does not
know). No call to EKS is made here: kubectl's exec plugin (``aws eks get-token``) authenticates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from infra.naming import endpoint_name
from pipelines.errors import RefusedError
from pipelines.runtimes.kserve.cluster import Document, KServeCanaryRouter, KServeEndpoints
from pipelines.runtimes.kserve.kubectl import Kubectl
from pipelines.runtimes.kserve.status import RevisionStatus
from pipelines.runtimes.kserve.traffic import kserve_steps
from pipelines.runtimes.ports import RuntimeAdapters

if TYPE_CHECKING:
    from infra.config import StackConfig
    from pipelines.metrics.source import MetricsSource
    from pipelines.runners.base import EndpointInspector
    from pipelines.runtimes.table import Binding
    from pipelines.sandbox.client import SandboxClient

PROMETHEUS_URL_ENV = "MODELRAIL_PROMETHEUS_URL"
"""The Prometheus HTTP API the canary analysis queries; overrides ``platform.kubernetes.prometheusUrl``
(the local stack has no cluster, and a test's Prometheus listens on a port of its own)."""


def cluster_kubectl(config: StackConfig, kubeconfig: Path | None = None) -> Kubectl:
    """kubectl on the stack's cluster: ``platform.kubernetes.context``, else the context named
    after ``eksCluster`` (see the module docstring)."""
    kubernetes = config.platform.kubernetes
    context = kubernetes.context or kubernetes.eks_cluster
    if context is None:
        raise RefusedError(
            f"stack {config.stack!r} names no Kubernetes cluster for its KServe services",
            details=[
                "set platform.kubernetes.context (a kubeconfig context) or platform.kubernetes.eksCluster",
                "the local stack's KServe services are served by the sandbox instead",
            ],
        )
    return Kubectl(context, kubeconfig)


class KServeLocator:
    """A service's InferenceService: ``infra.naming.endpoint_name`` in the service's namespace
    (``StackConfig.namespace_of``)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config

    def __call__(self, service: str) -> tuple[str, str]:
        try:
            namespace = self.config.namespace_of(service)
        except KeyError as error:
            raise RefusedError(str(error.args[0])) from None
        return endpoint_name(self.config.platform.environment, service), namespace


def cluster_adapters(
    config: StackConfig, *, metrics: bool, kubeconfig: Path | None = None
) -> RuntimeAdapters:
    """The KServe adapters on a real cluster: InferenceService status through kubectl, PromQL
    metrics when ``metrics`` (``prometheus_source``; None without it or without a Prometheus: no
    canary can be analysed), the canary router, and a stack update per traffic step.

    The model servers Prometheus scrapes do not know their role, so the PromQL source is told
    the canary's version: the version annotation of the InferenceService, read through the same
    documents as its status (the latest spec's, the revision a canary step rolls out).
    """
    kubectl = cluster_kubectl(config, kubeconfig)
    locate = KServeLocator(config)

    def document_for(service: str) -> Document | None:
        return kubectl.get_inference_service(*locate(service))

    def canary_version(service: str) -> str | None:
        document = document_for(service)
        return (RevisionStatus.of(document).version or None) if document is not None else None

    endpoints = KServeEndpoints(document_for)
    return RuntimeAdapters(
        runtime="kserve",
        endpoints=endpoints,
        metrics=prometheus_source(config, canary_version=canary_version) if metrics else None,
        router=KServeCanaryRouter(kubectl, locate),
        traffic_steps=kserve_steps,
        step_check=lambda service, _version, percent: endpoints.step_failure(service, percent),
    )


def prometheus_source(
    config: StackConfig, *, canary_version: Callable[[str], str | None] | None = None
) -> MetricsSource | None:
    """PromQL over the stack's Prometheus (``MODELRAIL_PROMETHEUS_URL``, else
    ``platform.kubernetes.prometheusUrl``); None when neither names one. ``canary_version``: a
    service's canary version where no ``modelrail_variant_info`` says it (``PrometheusMetricsSource``)."""
    import os

    from pipelines.metrics.promql import PrometheusMetricsSource

    kubernetes = config.platform.kubernetes
    url = os.environ.get(PROMETHEUS_URL_ENV) or kubernetes.prometheus_url
    settle = 1.5 * kubernetes.prometheus_scrape_seconds
    return PrometheusMetricsSource(url, settle_seconds=settle, canary_version=canary_version) if url else None


class SandboxCanaryRouter:
    """The sandbox's ``canaryTrafficPercent`` to 0, as patching a real InferenceService does."""

    def __init__(self, sandbox: SandboxClient) -> None:
        self.sandbox = sandbox

    def abort(self, service: str, guardrail: str, value: float, reason: str) -> None:
        self.sandbox.abort_canary(service, f"{guardrail}: {reason} (observed {value:g})")


def _sandbox_documents(sandbox: SandboxClient) -> KServeEndpoints:
    from pipelines.sandbox import EndpointNotFoundError

    def document_for(service: str) -> Document | None:
        try:
            return sandbox.inference_service(service)
        except EndpointNotFoundError:
            return None  # no revision applied yet: nothing serves

    return KServeEndpoints(document_for)


def inspector(binding: Binding, *, embedded: bool) -> EndpointInspector:
    """InferenceService status from the sandbox, or from the cluster through kubectl."""
    if embedded:
        return _sandbox_documents(binding.sandbox)
    return cluster_adapters(binding.config, metrics=False).endpoints


def adapters(binding: Binding, *, embedded: bool) -> RuntimeAdapters:
    """The KServe adapters: on the embedded default the sandbox's InferenceServices, with PromQL
    metrics when a Prometheus is named (else the sandbox router's own exposition); on a cluster,
    kubectl and PromQL."""
    if not embedded:
        return cluster_adapters(binding.config, metrics=True)
    from pipelines.metrics.local import LocalMetricsSource

    sandbox = binding.sandbox
    endpoints = _sandbox_documents(sandbox)
    return RuntimeAdapters(
        runtime="kserve",
        endpoints=endpoints,
        metrics=prometheus_source(binding.config) or LocalMetricsSource(sandbox),
        router=SandboxCanaryRouter(sandbox),
        traffic_steps=kserve_steps,
        step_check=lambda service, _version, percent: endpoints.step_failure(service, percent),
    )
