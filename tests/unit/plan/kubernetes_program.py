"""A Pulumi program for the plan's Kubernetes support: providers, objects, and the EKS invoke."""

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

cluster = aws.eks.get_cluster_output(name="ml-platform-prod")
# A kubeconfig given as plain text (not a secret), as a careless program or $KUBECONFIG would.
plain = k8s.Provider("plain", kubeconfig="apiVersion: v1\nusers: [{name: u, user: {token: hunter2}}]\n")
eks = k8s.Provider("eks", kubeconfig=cluster.endpoint.apply(lambda endpoint: f"server: {endpoint}"))
namespace = k8s.core.v1.Namespace(
    "ns", metadata={"name": "serving"}, opts=pulumi.ResourceOptions(provider=plain)
)
k8s.core.v1.ConfigMap(
    "settings",
    metadata={"namespace": namespace.metadata.name},
    data={"issuer": cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)},
    opts=pulumi.ResourceOptions(provider=eks),
)
pulumi.export("namespaceId", namespace.id)
