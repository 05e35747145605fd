"""The KServe inspector and router over InferenceService documents, the traffic steps, and the bindings."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from infra.config import Service, StackConfig
from infra.naming import version_config_name
from pipelines.errors import RefusedError
from pipelines.runtimes.kserve.bindings import KServeLocator, cluster_adapters, cluster_kubectl
from pipelines.runtimes.kserve.cluster import KServeCanaryRouter, KServeEndpoints
from pipelines.runtimes.kserve.kubectl import Kubectl
from pipelines.runtimes.kserve.status import CANARY, IN_SERVICE, NOT_FOUND
from pipelines.runtimes.kserve.traffic import kserve_steps
from tests.unit.metrics.test_promql import FakePrometheus, vector
from tests.unit.runtimes.kserve.conftest import FakeKubectl, status_document
from tests.unit.runtimes.kserve.test_status import SERVICE, V2

V1 = "ffb88c98f5c487b2b044522dc47d4110d8be9f38c302f71c977456fba5e1d5b9"


def endpoints(**documents: str) -> KServeEndpoints:
    """Services mapped to status fixtures; any other service has no InferenceService."""
    return KServeEndpoints(
        lambda service: status_document(documents[service]) if service in documents else None
    )


def test_the_inspector_describes_each_service_from_its_own_document() -> None:
    inspector = endpoints(**{SERVICE: "ready", "other": "canary"})
    assert inspector.describe(SERVICE).status == IN_SERVICE
    assert inspector.describe("other").status == CANARY
    assert inspector.describe("missing").status == NOT_FOUND


def test_the_expected_config_is_the_versions_revision_config_whatever_the_outputs_say() -> None:
    stale = {"services": {SERVICE: {"endpointConfigName": "something-else"}}}
    assert endpoints().expected_config(SERVICE, V2, stale) == version_config_name(SERVICE, V2)


def test_a_config_serves_the_version_it_is_named_after_and_no_other() -> None:
    inspector = endpoints()
    config = endpoints(**{SERVICE: "ready"}).describe(SERVICE).config_name
    assert inspector.serves(SERVICE, config, V2)
    assert not inspector.serves(SERVICE, config, V1)
    assert not inspector.serves(SERVICE, "", V2)


def test_a_canary_step_is_verified_against_its_share() -> None:
    inspector = endpoints(**{SERVICE: "canary"})
    assert inspector.step_failure(SERVICE, 10) == ""
    assert "carries 10%, not 100%" in inspector.step_failure(SERVICE, None)
    assert endpoints().step_failure(SERVICE, 10) == f"there is no InferenceService for {SERVICE}"


def test_abort_patches_the_services_inference_service_to_no_canary_traffic(fake_kubectl: FakeKubectl) -> None:
    router = KServeCanaryRouter(Kubectl("dev"), lambda service: (f"dev-{service}", "ml"))
    router.abort("diabetes", "max5xxRate", 0.2, "5xx rate 0.2 over 0.01")
    router.abort("diabetes", "max5xxRate", 0.2, "5xx rate 0.2 over 0.01")
    calls = fake_kubectl.calls()
    assert len(calls) == 2 and calls[0] == calls[1]
    assert calls[0][calls[0].index("patch") + 2 : calls[0].index("patch") + 5] == ["dev-diabetes", "-n", "ml"]
    assert json.loads(calls[0][-1]) == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


@pytest.mark.parametrize(
    ("deployment", "steps"),
    [
        ({"strategy": "canary", "canaryPercent": 10}, (10, None)),
        ({"strategy": "canary", "canaryPercent": 50}, (50, None)),
        ({"strategy": "linear", "linearStepPercent": 20}, (20, 40, 60, 80, None)),
        ({"strategy": "linear", "linearStepPercent": 30}, (30, 60, 90, None)),
        ({"strategy": "linear", "linearStepPercent": 50}, (50, None)),
        ({"strategy": "all_at_once"}, (None,)),
    ],
)
def test_kserve_steps_pin_each_share_below_100_then_all_of_it(
    deployment: dict[str, Any], steps: tuple[int | None, ...]
) -> None:
    assert kserve_steps(Service.model_validate({"runtime": "kserve", "deployment": deployment})) == steps


def stack(kubernetes: dict[str, Any], services: dict[str, Any] | None = None) -> StackConfig:
    return StackConfig.model_validate(
        {
            "stack": "dev",
            "platform": {"environment": "dev", "region": "eu-west-1", "kubernetes": kubernetes},
            "services": services if services is not None else {"diabetes": {"runtime": "kserve"}},
        }
    )


def test_a_service_is_found_in_its_own_namespace_or_the_platforms() -> None:
    config = stack(
        {"context": "dev", "namespace": "models"},
        {"diabetes": {"runtime": "kserve", "kserve": {"namespace": "ml"}}, "adult": {"runtime": "kserve"}},
    )
    locate = KServeLocator(config)
    assert locate("diabetes") == ("dev-diabetes", "ml")
    assert locate("adult") == ("dev-adult", "models")
    with pytest.raises(RefusedError, match="no service 'iris' in stack 'dev'"):
        locate("iris")


def test_the_cluster_is_the_context_or_the_eks_cluster_by_its_alias() -> None:
    assert cluster_kubectl(stack({"context": "dev-admin"})).context == "dev-admin"
    assert cluster_kubectl(stack({"eksCluster": "ml-dev"})).context == "ml-dev"
    with pytest.raises(RefusedError, match="names no Kubernetes cluster"):
        cluster_kubectl(stack({}))


def test_cluster_adapters_read_the_inference_service_through_kubectl(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("ok", document="canary")
    adapters = cluster_adapters(stack({"context": "dev"}), metrics=False)
    assert (adapters.runtime, adapters.metrics, adapters.traffic_steps) == ("kserve", None, kserve_steps)
    assert adapters.endpoints.describe("diabetes").status == CANARY
    assert fake_kubectl.calls()[0][-6:] == [
        "inferenceservice",
        "dev-diabetes",
        "-n",
        "modelrail-dev",
        "-o",
        "json",
    ]
    adapters.router.abort("diabetes", "max5xxRate", 0.2, "breach")
    assert fake_kubectl.calls()[1][-8:-4] == ["inferenceservice", "dev-diabetes", "-n", "modelrail-dev"]


def test_the_cluster_canary_is_the_version_its_inference_service_annotates(
    fake_kubectl: FakeKubectl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The predictor pods export no roles: the canary is the annotated version, the baseline the other."""
    fake_kubectl.answer("ok", document="canary")
    canary = status_document("canary")["metadata"]["annotations"]["modelrail.io/model-version"]

    def scraped(query: str, at: float) -> tuple[int, dict[str, Any]]:
        if "modelrail_invocations_total" in query:
            return vector(({"version": V1}, 900), ({"version": canary}, 100))
        return vector()

    prometheus = FakePrometheus(scraped)
    threading.Thread(target=prometheus.server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MODELRAIL_PROMETHEUS_URL", prometheus.url)
    try:
        metrics = cluster_adapters(stack({"context": "dev"}), metrics=True).metrics
        assert metrics is not None
        window = metrics.window("diabetes", 1000.0, 1060.0, rollout_start=900.0)
    finally:
        prometheus.server.shutdown()
        prometheus.server.server_close()
    assert window.canary is not None and (window.canary.version, window.canary.invocations) == (canary, 100)
    assert (window.baseline.version, window.baseline.invocations) == (V1, 900)
    assert fake_kubectl.calls()[-1][-6:-2] == ["inferenceservice", "dev-diabetes", "-n", "modelrail-dev"]
