"""InferenceService: one ``runtime: kserve`` model service on the platform's Kubernetes cluster.

For one service with a pinned model version it declares, as children:

* an IAM role that only the service's Kubernetes ServiceAccount may assume (IRSA: the cluster's
  OIDC provider, ``sub`` and ``aud`` pinned), allowed to read the service's packages and nothing
  else (``iam.kserve_model_policy``);
* that ServiceAccount, annotated with the role (``eks.amazonaws.com/role-arn``) and with the S3
  settings KServe hands its storage initializer (``serving.kserve.io/s3-*``);
* the ``serving.kserve.io/v1beta1`` InferenceService, a custom predictor (below);
* a ``monitoring.coreos.com/v1`` PodMonitor, so Prometheus scrapes the predictor pods.

The namespace is not a child: one namespace holds many services, so ``infra.kserve`` declares it
once per stack and passes its name (an output, so every child depends on it).

**The predictor.** KServe's way to run our own image on a model in S3 is a custom predictor:
``spec.predictor.containers[0]`` named ``kserve-container`` with a ``STORAGE_URI`` environment
variable. KServe's pod webhook then injects its storage initializer, which lists and downloads the
URI into ``/mnt/models`` before the server starts, unpacks a single ``.tar.gz`` there, and
rewrites ``STORAGE_URI`` to that path. ``SM_MODEL_DIR`` points the serving image's launcher at it
(its default is SageMaker's ``/opt/ml/model``), and the launcher verifies every file against the
manifest and the manifest's sha256 against ``MODELRAIL_MODEL_VERSION``, as on SageMaker. The image
is the SageMaker serving image unchanged: ``GET /ping``, ``POST /invocations`` and ``GET /metrics``
on port 8080 (the port Knative routes to by default; one port, unnamed: Knative accepts only
``http1``, ``h2c`` or no name, and names it ``user-port`` in the pods). Clients therefore call
``POST <isvc url>/invocations``, not KServe's ``/v1/models/…:predict``.

**Traffic.** ``canaryTrafficPercent`` is set only while ``service.canary_traffic_percent`` is not
None (the controller writes it during a canary; 0 pins all traffic to the last rolled-out
revision, a rollback). KServe splits traffic between revisions only in Serverless (Knative) mode,
so the InferenceService asks for it by annotation rather than trusting the cluster's default.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components import iam
from components.base import ComponentArgs, OutputStr, child, render_json, validate_args
from infra import naming
from infra.config import KUBERNETES_NAME, SERVICE_NAME_PATTERN, Service, service_rules

KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
PROMETHEUS_API_VERSION = "monitoring.coreos.com/v1"
CONTAINER_NAME = "kserve-container"
"""The one name KServe's webhook recognises as the model server (it injects the storage initializer)."""
MODEL_MOUNT = "/mnt/models"
"""Where KServe's storage initializer puts the package."""
SERVING_PORT = 8080
"""The serving image's port (the SageMaker contract), also Knative's default."""
POD_PORT_NAME = "user-port"
"""The name of ``SERVING_PORT`` in the predictor pods: Knative replaces the container's ``ports``
with one entry of this name and the declared ``containerPort`` (``buildContainerPorts`` in its
revision reconciler), whatever the InferenceService names it."""
METRICS_PATH = "/metrics"
"""The serving image's Prometheus exposition (``pipelines.serving.metrics``)."""
ISVC_LABEL = "serving.kserve.io/inferenceservice"
"""The label KServe puts on every pod of an InferenceService."""
REVISION_LABEL = "serving.knative.dev/revision"
"""The label Knative puts on every pod of a revision (``<isvc>-predictor-00002``)."""
SERVICE_LABEL = "modelrail.io/service"
ENVIRONMENT_LABEL = "modelrail.io/environment"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
"""What the EKS pod identity webhook reads to give the pods the role's web-identity credentials."""


class InferenceServiceArgs(ComponentArgs):
    """Arguments of ``InferenceService``."""

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    name: Annotated[str, Field(pattern=SERVICE_NAME_PATTERN.pattern)]
    """The service's name (its key under ``modelrail:services``)."""
    service: Service
    """The service's settings from the stack config: the one schema (``infra.config``)."""
    namespace: OutputStr
    """The namespace's name, an output of the stack's Namespace so every child waits for it."""
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    account_id: OutputStr
    oidc_issuer: OutputStr
    """The cluster's OIDC issuer URL (``https://…``), which the role trusts."""
    bucket_name: OutputStr
    """The artifact bucket holding the registered packages."""
    bucket_arn: OutputStr
    kms_key_alias: OutputStr
    """The alias of the artifact key, which encrypts the packages."""
    repository_url: OutputStr
    """The platform's ECR repository; the image is ``<url>:<service.serving_image_tag>``."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags of the AWS resources (the role)."""

    def problems(self) -> list[str]:
        found = []
        if self.service.runtime != "kserve":
            found.append(
                f"service.runtime = {self.service.runtime!r}: an InferenceService serves `runtime: kserve` "
                "services only (a sagemaker service is a ModelEndpoint)"
            )
        if self.service.model_version is None:
            found.append(
                "service.model_version = None: pin a package id (64 hex digits) first; a service with no "
                "promoted version has no InferenceService"
            )
        if isinstance(self.namespace, str) and re.fullmatch(KUBERNETES_NAME, self.namespace) is None:
            found.append(f"namespace = {self.namespace!r}: a Kubernetes name (lower case, digits, '-')")
        found.extend(
            str(issue)
            for issue in service_rules("InferenceService args", "service", self.service, self.environment)
        )
        return found

    @property
    def isvc_name(self) -> str:
        """The InferenceService's name, the same as the service's SageMaker endpoint would have."""
        return naming.endpoint_name(self.environment, self.name)

    @property
    def version(self) -> str:
        """The pinned model version (``problems`` refuses args without one)."""
        assert self.service.model_version is not None
        return self.service.model_version


def storage_uri(bucket: str, service: str, version: str) -> str:
    """Where a registered package lives: the same content-addressed key SageMaker reads."""
    return f"s3://{bucket}/{naming.artifact_key(service, version)}"


def predictor_spec(
    args: InferenceServiceArgs, *, image: OutputStr, uri: OutputStr, service_account: str
) -> dict[str, Any]:
    """``spec.predictor`` of the InferenceService, in the CRD's camelCase.

    A function of the arguments alone, so with plain strings it can be checked against KServe's
    CRD schema without Pulumi. ``image`` and ``uri`` stay outputs inside the document rather than
    making the whole spec one output: on a new stack only the image (the repository's URL, which
    AWS assigns) is unknown, not every field a policy or a reviewer reads.
    """
    service = args.service
    resources = service.kserve.resources
    limits = {"memory": resources.memory_limit or resources.memory}
    if resources.cpu_limit is not None:
        limits["cpu"] = resources.cpu_limit
    env: dict[str, OutputStr] = {
        "MODELRAIL_MODEL_VERSION": args.version,
        "MODELRAIL_SERVICE": args.name,
        "MODELRAIL_SERVING_THREADS": str(service.serving_threads),
        "SM_MODEL_DIR": MODEL_MOUNT,
        "STORAGE_URI": uri,
    }
    predictor: dict[str, Any] = {
        "serviceAccountName": service_account,
        "minReplicas": service.autoscaling.min_instances,
        "maxReplicas": service.autoscaling.max_instances,
        "scaleMetric": service.kserve.scale_metric,
        "scaleTarget": service.kserve.scale_target,
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": image,
                "ports": [{"containerPort": SERVING_PORT, "protocol": "TCP"}],
                "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
                "readinessProbe": {"httpGet": {"path": "/ping", "port": SERVING_PORT}},
                "resources": {
                    "requests": {"cpu": resources.cpu, "memory": resources.memory},
                    "limits": limits,
                },
            }
        ],
    }
    if service.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = service.canary_traffic_percent
    return predictor


class InferenceService(pulumi.ComponentResource):
    """A KServe InferenceService serving one pinned model version, with its IRSA identity and scraping.

    Pass the cluster's ``pulumi_kubernetes.Provider`` in ``opts.providers``; the AWS children use
    the default AWS provider.

    Outputs: ``inference_service_name``, ``namespace``, ``service_account``, ``role_arn``,
    ``storage_uri``, ``model_version``.
    """

    inference_service_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    service_account: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    storage_uri: pulumi.Output[str]
    model_version: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: InferenceServiceArgs | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        valid = validate_args(f"InferenceService {name!r}", InferenceServiceArgs, args)
        super().__init__("modelrail:kserve:InferenceService", name, None, opts)
        isvc, version = valid.isvc_name, valid.version
        account_name = isvc  # one ServiceAccount per service, named like it
        namespace = pulumi.Output.from_input(valid.namespace)
        labels = {SERVICE_LABEL: valid.name, ENVIRONMENT_LABEL: valid.environment}
        model_prefix = f"models/{valid.name}/"

        self.role = aws.iam.Role(
            f"{name}-role",
            description=f"modelrail {valid.environment}: KServe pods of {valid.name} read its packages",
            assume_role_policy=pulumi.Output.all(valid.account_id, valid.oidc_issuer, namespace).apply(
                lambda v: render_json(iam.irsa_trust_policy(v[0], v[1], v[2], account_name))
            ),
            tags=valid.tags,
            opts=child(self),
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.id,
            policy=pulumi.Output.all(valid.bucket_arn, valid.kms_key_alias, valid.account_id).apply(
                lambda v: render_json(
                    iam.kserve_model_policy(
                        bucket_arn=v[0],
                        model_prefix=model_prefix,
                        kms_key_alias=v[1],
                        region=valid.region,
                        account_id=v[2],
                    )
                )
            ),
            opts=child(self),
        )
        self.service_account_resource = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata={
                "name": account_name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {
                    ROLE_ARN_ANNOTATION: self.role.arn,
                    # Read by KServe for its storage initializer: the bucket's region, over TLS.
                    "serving.kserve.io/s3-endpoint": f"s3.{valid.region}.amazonaws.com",
                    "serving.kserve.io/s3-region": valid.region,
                    "serving.kserve.io/s3-usehttps": "1",
                },
            },
            opts=child(self),
        )
        uri = pulumi.Output.from_input(valid.bucket_name).apply(lambda b: storage_uri(b, valid.name, version))
        image = pulumi.Output.concat(valid.repository_url, ":", valid.service.serving_image_tag)
        self.inference_service = k8s.apiextensions.CustomResource(
            f"{name}-inference-service",
            api_version=KSERVE_API_VERSION,
            kind="InferenceService",
            metadata={
                "name": isvc,
                "namespace": namespace,
                "labels": labels,
                "annotations": {
                    naming.MODEL_VERSION_ANNOTATION: version,
                    "serving.kserve.io/deploymentMode": "Serverless",
                },
            },
            spec={"predictor": predictor_spec(valid, image=image, uri=uri, service_account=account_name)},
            # The pods need their identity and its permissions before the storage initializer runs.
            opts=child(self, depends_on=[self.service_account_resource, role_policy]),
        )
        self.pod_monitor = k8s.apiextensions.CustomResource(
            f"{name}-pod-monitor",
            api_version=PROMETHEUS_API_VERSION,
            kind="PodMonitor",
            metadata={"name": isvc, "namespace": namespace, "labels": labels},
            spec=pod_monitor_spec(isvc),
            opts=child(self),
        )

        self.inference_service_name = pulumi.Output.from_input(isvc)
        self.namespace = namespace
        self.service_account = pulumi.Output.from_input(account_name)
        self.role_arn = self.role.arn
        self.storage_uri = uri
        self.model_version = pulumi.Output.from_input(version)
        self.register_outputs(
            {
                "inference_service_name": self.inference_service_name,
                "namespace": self.namespace,
                "service_account": self.service_account,
                "role_arn": self.role_arn,
                "storage_uri": self.storage_uri,
                "model_version": self.model_version,
            }
        )


def pod_monitor_spec(isvc: str) -> dict[str, Any]:
    """Scrape ``/metrics`` of every predictor pod of ``isvc`` (all its revisions).

    The pods are selected by KServe's own label; the port is the predictor container's one port,
    by the name it has in the pods (``POD_PORT_NAME``). The model server answers there with what
    it counted of its own ``POST /invocations`` (``pipelines.serving.metrics``): requests, errors
    by status class, ``modelrail_model_latency_seconds`` (a histogram in seconds) and predictions
    by bin, each labelled ``service`` (``MODELRAIL_SERVICE``) and ``version``
    (``MODELRAIL_MODEL_VERSION``), the series the PromQL canary analysis
    (``pipelines.metrics.promql``) reads. No pod knows its role: the analysis takes the canary to be
    the version the InferenceService annotates. Each sample also carries the pod's revision label
    (``podTargetLabels``; Prometheus writes it ``serving_knative_dev_revision``).
    """
    return {
        "selector": {"matchLabels": {ISVC_LABEL: isvc}},
        "podTargetLabels": [ISVC_LABEL, REVISION_LABEL],
        "podMetricsEndpoints": [{"port": POD_PORT_NAME, "path": METRICS_PATH, "interval": "30s"}],
    }
