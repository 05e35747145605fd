"""The Kubernetes half of a stack: the cluster's provider, the namespaces, one InferenceService per service.

``build_platform`` calls ``build_kserve_services`` once; it declares nothing for a stack without a
``runtime: kserve`` service that has a pinned version (the ``local`` stack's KServe services are
served by the sandbox, never by this program).

The cluster is ``platform.kubernetes``: a kubeconfig ``context`` (the ambient kubeconfig, the
OIDC issuer from the config), or an ``eksCluster`` by name, whose endpoint, CA and OIDC issuer
come from ``eks:DescribeCluster`` and whose token from ``aws eks get-token`` at every provider
call, so the kubeconfig holds no credential. It is still passed as a secret: it names the
cluster's endpoint, and the plan and the state keep it masked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.artifacts import ArtifactStore
from components.base import MANAGED_BY, render_json
from components.kserve import ENVIRONMENT_LABEL, InferenceService
from infra.config import Kubernetes, Service, StackConfig

PROVIDER_NAME = "kubernetes"


def kserve_services(config: StackConfig) -> dict[str, Service]:
    """The services this program serves on a cluster: ``runtime: kserve`` with a pinned version,
    on every stack but ``local``, whose KServe services the sandbox serves (it names no cluster)."""
    if config.platform.environment == "local":
        return {}
    return {
        name: service
        for name, service in sorted(config.services.items())
        if service.runtime == "kserve" and service.model_version is not None
    }


def build_kserve_services(
    config: StackConfig,
    *,
    artifacts: ArtifactStore,
    account: pulumi.Output[str],
    tags: Callable[[str], dict[str, str]],
) -> dict[str, dict[str, Any]]:
    """Declare the cluster's provider, the namespaces and every KServe service; per service, its outputs.

    ``tags(service)`` gives the AWS tags of a service's resources (the platform's, plus the three
    modelrail keys). Each namespace is declared once, however many services share it.
    """
    services = kserve_services(config)
    if not services:
        return {}
    platform = config.platform
    provider, issuer = cluster_provider(platform.kubernetes, platform.region)
    on_cluster = pulumi.ResourceOptions(provider=provider)
    namespaces = {
        namespace: k8s.core.v1.Namespace(
            f"namespace-{namespace}",
            metadata={
                "name": namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": MANAGED_BY,
                    ENVIRONMENT_LABEL: platform.environment,
                },
            },
            opts=on_cluster,
        )
        for namespace in sorted({config.namespace_of(name) for name in services})
    }
    outputs: dict[str, dict[str, Any]] = {}
    for name, service in services.items():
        isvc = InferenceService(
            name,
            {
                "environment": platform.environment,
                "name": name,
                "service": service,
                "namespace": namespaces[config.namespace_of(name)].metadata.name,
                "region": platform.region,
                "account_id": account,
                "oidc_issuer": issuer,
                "bucket_name": artifacts.bucket_name,
                "bucket_arn": artifacts.bucket_arn,
                "kms_key_alias": artifacts.kms_key_alias,
                "repository_url": artifacts.repository_url,
                "tags": tags(name),
            },
            opts=pulumi.ResourceOptions(providers=[provider]),
        )
        outputs[name] = {
            "inferenceServiceName": isvc.inference_service_name,
            "namespace": isvc.namespace,
            "serviceAccount": isvc.service_account,
            "roleArn": isvc.role_arn,
            "storageUri": isvc.storage_uri,
            "modelVersion": isvc.model_version,
        }
    return outputs


def cluster_provider(cluster: Kubernetes, region: str) -> tuple[k8s.Provider, pulumi.Output[str]]:
    """The provider for the stack's cluster, and the cluster's OIDC issuer URL (for IRSA).

    The config rules (``infra.config``) guarantee one of ``context`` and ``eksCluster``, and an
    ``oidcIssuer`` with ``context``.
    """
    if cluster.eks_cluster is not None:
        name = cluster.eks_cluster
        eks = aws.eks.get_cluster_output(name=name)
        # Whole-result applies: ``Output.all`` would turn the nested result types into plain dicts.
        kubeconfig: pulumi.Output[str] = eks.apply(
            lambda c: eks_kubeconfig(
                name, region, endpoint=c.endpoint, certificate_authority=c.certificate_authorities[0].data
            )
        )
        issuer = eks.apply(lambda c: c.identities[0].oidcs[0].issuer)
        secret: pulumi.Output[str] = pulumi.Output.secret(kubeconfig)
        return k8s.Provider(PROVIDER_NAME, kubeconfig=secret), issuer
    assert cluster.context is not None and cluster.oidc_issuer is not None  # the config rules
    return k8s.Provider(PROVIDER_NAME, context=cluster.context), pulumi.Output.from_input(cluster.oidc_issuer)


def eks_kubeconfig(cluster: str, region: str, *, endpoint: str, certificate_authority: str) -> str:
    """A kubeconfig for an EKS cluster that gets its token from ``aws eks get-token`` (as
    ``aws eks update-kubeconfig`` writes it), so it carries no credential of its own."""
    return render_json(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority},
                }
            ],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
            "current-context": cluster,
            "users": [
                {
                    "name": cluster,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster, "--region", region],
                        }
                    },
                }
            ],
        }
    )
