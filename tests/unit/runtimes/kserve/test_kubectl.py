"""The kubectl adapter against a stand-in ``kubectl`` on PATH (and the real one, for an unreachable cluster)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.dependencies import DependencyUnavailableError
from pipelines.runtimes.kserve.kubectl import Kubectl, KubectlError
from tests.unit.runtimes.kserve.conftest import FakeKubectl, status_document


def test_get_reads_the_document_from_the_named_context_and_kubeconfig(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("ok", document="canary")
    kubectl = Kubectl("dev", Path("/etc/kube/dev.yaml"), timeout_seconds=10)
    assert kubectl.get_inference_service("dev-diabetes", "ml") == status_document("canary")
    assert fake_kubectl.calls() == [
        [
            "--kubeconfig",
            "/etc/kube/dev.yaml",
            "--context",
            "dev",
            "--request-timeout=9s",
            "get",
            "inferenceservice",
            "dev-diabetes",
            "-n",
            "ml",
            "-o",
            "json",
        ]
    ]


def test_without_a_context_kubectl_uses_the_kubeconfigs_current_one(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("ok", document="ready")
    Kubectl(None).get_inference_service("dev-diabetes", "ml")
    assert "--context" not in fake_kubectl.calls()[0]
    assert "--kubeconfig" not in fake_kubectl.calls()[0]


def test_an_inference_service_that_does_not_exist_is_none(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("not-found")
    assert Kubectl("dev").get_inference_service("dev-diabetes", "ml") is None


def test_a_cluster_without_the_inference_service_api_is_an_error_not_a_missing_document(
    fake_kubectl: FakeKubectl,
) -> None:
    fake_kubectl.answer("no-resource")
    with pytest.raises(KubectlError, match="could not find the requested resource"):
        Kubectl("dev").get_inference_service("dev-diabetes", "ml")


def test_the_canary_share_is_a_merge_patch_of_the_predictor(fake_kubectl: FakeKubectl) -> None:
    Kubectl("dev").patch_canary_percent("dev-diabetes", "ml", 0)
    call = fake_kubectl.calls()[0]
    start = call.index("patch")
    assert call[start : start + 7] == [
        "patch",
        "inferenceservice",
        "dev-diabetes",
        "-n",
        "ml",
        "--type",
        "merge",
    ]
    assert json.loads(call[call.index("-p") + 1]) == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


def test_a_share_outside_0_to_100_is_refused_before_kubectl_runs(fake_kubectl: FakeKubectl) -> None:
    with pytest.raises(ValueError, match="0 to 100, not 101"):
        Kubectl("dev").patch_canary_percent("dev-diabetes", "ml", 101)
    assert fake_kubectl.calls() == []


def test_a_refused_connection_is_an_unavailable_cluster_named_by_its_context(
    fake_kubectl: FakeKubectl,
) -> None:
    fake_kubectl.answer("refused")
    with pytest.raises(DependencyUnavailableError, match="context 'dev' is not answering") as raised:
        Kubectl("dev").get_inference_service("dev-diabetes", "ml")
    assert "127.0.0.1:6443 was refused" in raised.value.details[-1]


def test_a_patch_the_api_server_forbids_is_a_kubectl_error_with_its_stderr(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("forbidden")
    refused = r"kubectl patch failed on .*'dev' \(exit 1\): Error from server \(Forbidden\)"
    with pytest.raises(KubectlError, match=refused):
        Kubectl("dev").patch_canary_percent("dev-diabetes", "ml", 0)


def test_not_found_on_a_patch_is_a_refusal_not_a_missing_document(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("not-found")
    with pytest.raises(KubectlError, match="NotFound"):
        Kubectl("dev").patch_canary_percent("dev-diabetes", "ml", 0)


def test_an_unknown_context_is_a_kubectl_error(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("no-context")
    with pytest.raises(KubectlError, match='context "dev" does not exist'):
        Kubectl("dev").get_inference_service("dev-diabetes", "ml")


def test_output_that_is_not_json_is_a_kubectl_error(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("garbage")
    with pytest.raises(KubectlError, match="printed no JSON for inferenceservice ml/dev-diabetes"):
        Kubectl("dev").get_inference_service("dev-diabetes", "ml")


def test_a_kubectl_that_hangs_is_stopped_at_the_timeout(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.answer("sleep")
    with pytest.raises(DependencyUnavailableError, match=r"did not answer within 0.5s"):
        Kubectl("dev", timeout_seconds=0.5).get_inference_service("dev-diabetes", "ml")


def test_no_kubectl_on_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(KubectlError, match="is not on PATH"):
        Kubectl("dev", executable=str(tmp_path / "kubectl")).get_inference_service("dev-diabetes", "ml")


REAL_KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(REAL_KUBECTL is None, reason="no kubectl on PATH")
def test_the_real_kubectl_on_a_closed_port_is_an_unavailable_cluster(tmp_path: Path) -> None:
    """Checks the stderr markers against kubectl itself: nothing listens on port 1."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: closed\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: closed, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: t}}]\n",
        encoding="utf-8",
    )
    assert REAL_KUBECTL is not None
    kubectl = Kubectl("closed", kubeconfig, executable=REAL_KUBECTL, timeout_seconds=20)
    with pytest.raises(DependencyUnavailableError, match="context 'closed'"):
        kubectl.get_inference_service("dev-diabetes", "ml")
