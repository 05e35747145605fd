"""InferenceService and the stack's Kubernetes half under Pulumi mocks: traffic, scaling, IRSA, storage."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pulumi
import pytest

from components.base import ComponentArgsError
from components.kserve import InferenceService
from infra.config import Service, StackConfig
from infra.kserve import build_kserve_services
from pipelines.plan.mocks import PlanMonitor, Registration
from tests.unit.components.conftest import VERSION, Children

ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
NAMESPACE = "kubernetes:core/v1:Namespace"
PROVIDER = "pulumi:providers:kubernetes"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
ISSUER_HOST = ISSUER.removeprefix("https://")


def _service(**overrides: Any) -> Service:
    return Service.model_validate({"runtime": "kserve", "modelVersion": VERSION, **overrides})


def _values(service: Service | None = None, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "environment": "prod",
        "name": "fraud-score",
        "service": service or _service(),
        "namespace": "serving",
        "region": "eu-west-1",
        "account_id": "123456789012",
        "oidc_issuer": ISSUER,
        "bucket_name": "modelrail-prod-artifacts",
        "bucket_arn": "arn:aws:s3:::modelrail-prod-artifacts",
        "kms_key_alias": "alias/modelrail-prod-artifacts",
        "repository_url": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod",
        "tags": {"service": "fraud-score", "environment": "prod", "managed-by": "modelrail"},
    }
    values.update(overrides)
    return values


def _one(monitor: PlanMonitor, type_: str) -> Registration:
    (registration,) = [r for r in monitor.registrations if r.type == type_]
    return registration


def _build(values: dict[str, Any]) -> tuple[InferenceService, pulumi.Output[list[str]]]:
    children = Children()
    component = InferenceService("fraud-score", values, opts=children.opts)
    return component, children.settled(component)


def _predictor(monitor: PlanMonitor) -> dict[str, Any]:
    predictor: dict[str, Any] = _one(monitor, ISVC).inputs["spec"]["predictor"]
    return predictor


@pulumi.runtime.test  # pulumi ships it unannotated
def test_without_a_canary_percent_the_predictor_has_none(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    _, done = _build(_values())

    def check(_: Any) -> None:
        assert "canaryTrafficPercent" not in _predictor(pulumi_mocks)

    return done.apply(check)


@pytest.mark.parametrize("percent", [0, 10])
@pulumi.runtime.test  # pulumi ships it unannotated
def test_a_canary_percent_the_controller_wrote_reaches_the_predictor(
    pulumi_mocks: PlanMonitor, percent: int
) -> pulumi.Output[Any]:
    _, done = _build(_values(_service(canaryTrafficPercent=percent)))

    def check(_: Any) -> None:
        assert _predictor(pulumi_mocks)["canaryTrafficPercent"] == percent  # 0 is a rollback, not "unset"

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_replicas_scaling_and_resources_come_from_the_service_config(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    service = _service(
        instanceCount=2,
        autoscaling={"minInstances": 2, "maxInstances": 6},
        kserve={
            "scaleMetric": "rps",
            "scaleTarget": 50,
            "resources": {"cpu": "2", "memory": "4Gi", "cpuLimit": "4"},
        },
    )
    _, done = _build(_values(service))

    def check(_: Any) -> None:
        predictor = _predictor(pulumi_mocks)
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
        assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("rps", 50)
        (container,) = predictor["containers"]
        assert container["resources"] == {
            "requests": {"cpu": "2", "memory": "4Gi"},
            "limits": {"cpu": "4", "memory": "4Gi"},  # no memory limit given: the request
        }

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_the_predictor_serves_the_registered_package_with_our_container_contract(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    component, done = _build(_values(_service(servingImageTag="1.4", servingThreads=2)))
    uri = f"s3://modelrail-prod-artifacts/models/fraud-score/{VERSION}/model.tar.gz"

    def check(values: list[Any]) -> None:
        isvc = _one(pulumi_mocks, ISVC).inputs
        assert isvc["metadata"]["name"] == "prod-fraud-score"
        assert isvc["metadata"]["namespace"] == "serving"
        assert isvc["metadata"]["annotations"]["modelrail.io/model-version"] == VERSION
        predictor = isvc["spec"]["predictor"]
        assert predictor["serviceAccountName"] == "prod-fraud-score"
        (container,) = predictor["containers"]
        assert container["name"] == "kserve-container"  # the name KServe injects the storage initializer for
        assert container["image"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-prod:1.4"
        assert {e["name"]: e["value"] for e in container["env"]} == {
            "STORAGE_URI": uri,
            "SM_MODEL_DIR": "/mnt/models",
            "MODELRAIL_SERVICE": "fraud-score",
            "MODELRAIL_MODEL_VERSION": VERSION,
            "MODELRAIL_SERVING_THREADS": "2",
        }
        assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
        assert container["readinessProbe"] == {"httpGet": {"path": "/ping", "port": 8080}}
        assert values[-2:] == [uri, VERSION]

    return pulumi.Output.all(done, component.storage_uri, component.model_version).apply(
        lambda v: check([*v[0], v[1], v[2]])
    )


@pulumi.runtime.test  # pulumi ships it unannotated
def test_only_the_service_account_may_assume_the_role_through_the_clusters_oidc_provider(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    _, done = _build(_values())

    def check(_: Any) -> None:
        trust = json.loads(_one(pulumi_mocks, ROLE).inputs["assumeRolePolicy"])
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {
            "Federated": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER_HOST}"
        }
        assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
        assert statement["Condition"] == {
            "StringEquals": {
                f"{ISSUER_HOST}:sub": "system:serviceaccount:serving:prod-fraud-score",
                f"{ISSUER_HOST}:aud": "sts.amazonaws.com",
            }
        }
        account = _one(pulumi_mocks, SERVICE_ACCOUNT).inputs["metadata"]
        assert account["name"] == "prod-fraud-score" and account["namespace"] == "serving"
        role_arn = account["annotations"]["eks.amazonaws.com/role-arn"]
        assert role_arn.startswith("arn:aws:iam::123456789012:role/fraud-score-role-")

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_the_role_reads_only_the_services_packages(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    _, done = _build(_values())

    def check(_: Any) -> None:
        policy = json.loads(_one(pulumi_mocks, ROLE_POLICY).inputs["policy"])
        grants = {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]}
        assert grants == {
            "ReadModelPackages": (
                ["s3:GetObject"],
                ["arn:aws:s3:::modelrail-prod-artifacts/models/fraud-score/*"],
            ),
            "ListModelPackages": (["s3:ListBucket"], ["arn:aws:s3:::modelrail-prod-artifacts"]),
            "DecryptModelPackages": (["kms:Decrypt"], ["arn:aws:kms:eu-west-1:123456789012:key/*"]),
        }

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_a_pod_monitor_scrapes_the_predictor_pods(pulumi_mocks: PlanMonitor) -> pulumi.Output[Any]:
    _, done = _build(_values())

    def check(_: Any) -> None:
        spec = _one(pulumi_mocks, POD_MONITOR).inputs["spec"]
        assert spec["selector"] == {"matchLabels": {"serving.kserve.io/inferenceservice": "prod-fraud-score"}}
        assert [(e["port"], e["path"]) for e in spec["podMetricsEndpoints"]] == [("user-port", "/metrics")]
        # The name is Knative's for the container's one port, which Knative lets it name only
        # http1 or h2c (or not at all) and renames user-port in the pods.
        (container,) = _one(pulumi_mocks, ISVC).inputs["spec"]["predictor"]["containers"]
        (port,) = container["ports"]
        assert port["containerPort"] == 8080 and port.get("name", "") in ("", "http1", "h2c")

    return done.apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_bad_arguments_fail_together_before_any_child_exists(pulumi_mocks: PlanMonitor) -> None:
    sagemaker = Service.model_validate({"runtime": "sagemaker", "deployment": {"canaryPercent": 80}})
    with pytest.raises(ComponentArgsError) as raised:
        InferenceService("fraud-score", _values(sagemaker, namespace="Serving"))
    problems = raised.value.problems
    assert problems[0].startswith("service.runtime = 'sagemaker': an InferenceService serves")
    assert problems[1].startswith("service.model_version = None: pin a package id")
    assert problems[2] == "namespace = 'Serving': a Kubernetes name (lower case, digits, '-')"
    assert any("service.deployment.canaryPercent = 80" in problem for problem in problems[3:])
    assert pulumi_mocks.registrations == []


def _stack(kubernetes: dict[str, Any], services: dict[str, Service]) -> StackConfig:
    return StackConfig.model_validate(
        {
            "stack": "dev",
            "platform": {"environment": "dev", "region": "eu-west-1", "kubernetes": kubernetes},
            "services": services,
        }
    )


def _artifacts() -> Any:
    """The ArtifactStore outputs ``build_kserve_services`` reads (made inside the test's runtime)."""
    return SimpleNamespace(
        bucket_name=pulumi.Output.from_input("modelrail-dev-artifacts"),
        bucket_arn=pulumi.Output.from_input("arn:aws:s3:::modelrail-dev-artifacts"),
        kms_key_alias=pulumi.Output.from_input("alias/modelrail-dev-artifacts"),
        repository_url=pulumi.Output.from_input("123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-dev"),
    )


def _tags(service: str) -> dict[str, str]:
    return {"service": service, "environment": "dev", "managed-by": "modelrail"}


def _declare(config: StackConfig) -> pulumi.Output[Any]:
    """The stack's Kubernetes half, and an output resolving once every resource is registered."""
    outputs = build_kserve_services(
        config,
        artifacts=_artifacts(),
        account=pulumi.Output.from_input("123456789012"),
        tags=_tags,
    )
    return pulumi.Output.from_input(outputs)  # resolves every nested output


@pulumi.runtime.test  # pulumi ships it unannotated
def test_an_eks_cluster_gets_a_secret_kubeconfig_and_one_namespace_per_stack(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    config = _stack(
        {"eksCluster": "ml-platform-dev"},
        {
            "a": _service(),
            "b": _service(),
            "c": _service(kserve={"namespace": "team-c"}),
            "unpinned": Service.model_validate({"runtime": "kserve"}),
            "sm": Service.model_validate({"runtime": "sagemaker", "modelVersion": VERSION}),
        },
    )

    def check(outputs: dict[str, Any]) -> None:
        assert sorted(outputs) == ["a", "b", "c"]  # unpinned and sagemaker services are not on the cluster
        names = sorted(
            r.inputs["metadata"]["name"] for r in pulumi_mocks.registrations if r.type == NAMESPACE
        )
        assert names == ["modelrail-dev", "team-c"], "the default namespace is the environment's own"
        assert _one(pulumi_mocks, PROVIDER).inputs == {"kubeconfig": "[secret]"}
        (trust_issuer,) = {
            next(iter(json.loads(r.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]))
            for r in pulumi_mocks.registrations
            if r.type == ROLE
        }
        # the issuer eks:DescribeCluster answered (the mocks' region), shared by every role
        assert re.fullmatch(r"oidc\.eks\.[a-z0-9-]+\.amazonaws\.com/id/[0-9A-F]{32}:aud", trust_issuer)

    return _declare(config).apply(check)


@pulumi.runtime.test  # pulumi ships it unannotated
def test_a_kubeconfig_context_uses_the_configured_oidc_issuer(
    pulumi_mocks: PlanMonitor,
) -> pulumi.Output[Any]:
    config = _stack({"context": "staging-admin", "oidcIssuer": ISSUER}, {"a": _service()})

    def check(outputs: dict[str, Any]) -> None:
        assert outputs["a"]["namespace"] == "modelrail-dev"
        assert outputs["a"]["storageUri"] == f"s3://modelrail-dev-artifacts/models/a/{VERSION}/model.tar.gz"
        assert _one(pulumi_mocks, PROVIDER).inputs["context"] == "staging-admin"
        trust = json.loads(_one(pulumi_mocks, ROLE).inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"]["Federated"].endswith(f":oidc-provider/{ISSUER_HOST}")

    return _declare(config).apply(check)


@pytest.mark.parametrize(
    ("environment", "service"),
    [
        ("dev", Service.model_validate({"runtime": "sagemaker", "modelVersion": VERSION})),
        ("local", Service.model_validate({"runtime": "kserve", "modelVersion": VERSION})),  # the sandbox's
    ],
)
@pulumi.runtime.test  # pulumi ships it unannotated
def test_a_stack_without_pinned_kserve_services_on_a_cluster_declares_nothing_there(
    pulumi_mocks: PlanMonitor, environment: str, service: Service
) -> None:
    config = StackConfig.model_validate(
        {
            "stack": environment,
            "platform": {"environment": environment, "region": "eu-west-1"},
            "services": {"svc": service},
        }
    )
    declared = build_kserve_services(
        config, artifacts=_artifacts(), account=pulumi.Output.from_input("123456789012"), tags=_tags
    )
    assert declared == {}
    assert pulumi_mocks.registrations == []
