"""The offline plan with pulumi-kubernetes: no kubeconfig in the plan, objects echoed, EKS described."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pipelines.plan import build_plan
from pipelines.plan.mocks import PlanMocks

PROGRAM = Path(__file__).with_name("kubernetes_program.py")


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return build_plan("prod", program=PROGRAM)


def _inputs(plan: dict[str, Any], urn_suffix: str) -> dict[str, Any]:
    (step,) = [step for step in plan["steps"] if step["urn"].endswith(urn_suffix)]
    inputs: dict[str, Any] = step["newState"]["inputs"]
    return inputs


def test_a_kubernetes_providers_kubeconfig_is_masked_even_when_not_a_secret(plan: dict[str, Any]) -> None:
    assert _inputs(plan, "pulumi:providers:kubernetes::plain")["kubeconfig"] == "[secret]"
    assert _inputs(plan, "pulumi:providers:kubernetes::eks")["kubeconfig"] == "[secret]"
    assert "hunter2" not in str(plan)


def test_eks_describe_cluster_answers_with_an_issuer_in_eks_format(plan: dict[str, Any]) -> None:
    issuer = _inputs(plan, "kubernetes:core/v1:ConfigMap::settings")["data"]["issuer"]
    assert re.fullmatch(r"https://oidc\.eks\.eu-west-1\.amazonaws\.com/id/[0-9A-F]{32}", issuer)


def test_kubernetes_objects_keep_their_metadata_and_flow_into_others(plan: dict[str, Any]) -> None:
    assert _inputs(plan, "kubernetes:core/v1:Namespace::ns")["metadata"] == {"name": "serving"}
    assert _inputs(plan, "kubernetes:core/v1:ConfigMap::settings")["metadata"] == {"namespace": "serving"}


def test_a_kubernetes_objects_id_is_namespace_and_name() -> None:
    import pulumi

    mocks = PlanMocks(region="eu-west-1")
    args = pulumi.runtime.MockResourceArgs(
        "kubernetes:core/v1:ConfigMap",
        "settings",
        {"metadata": {"namespace": "serving", "name": "c"}},
        "",
        "",
    )
    assert mocks.new_resource(args)[0] == "serving/c"
    namespace = pulumi.runtime.MockResourceArgs("kubernetes:core/v1:Namespace", "ns", {}, "", "")
    resource_id, state = mocks.new_resource(namespace)
    assert resource_id is not None and resource_id.startswith("ns-")  # auto-named
    assert resource_id == state["metadata"]["name"]
    assert "arn" not in state  # no AWS resource
