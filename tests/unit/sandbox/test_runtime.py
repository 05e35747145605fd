"""The sandbox's table of services without a model server that ever runs: what a refused or an
unstartable revision leaves behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.sandbox.endpoint import DeploymentInProgressError
from pipelines.sandbox.revisions import settled
from pipelines.sandbox.runtime import Sandbox, UnknownServiceError

V1, V2 = "1" * 64, "2" * 64
NO_SUCH_SERVER = ["/nonexistent/modelrail-model-server", "{model_dir}", "{port}"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    (tmp_path / "logs").mkdir()
    sandbox = Sandbox("http://sandbox", NO_SUCH_SERVER, tmp_path / "logs", on_processes=lambda: None)
    try:
        yield sandbox
    finally:
        sandbox.shutdown()


def test_a_refused_first_spec_leaves_no_inference_service_behind(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"canaryTrafficPercent = 101; allowed: 0..100 or none"):
        sandbox.apply_revision("svc", V1, tmp_path, 101, "modelrail")
    assert sandbox.inference_services() == {} and sandbox.status() == {}
    with pytest.raises(UnknownServiceError, match="no InferenceService for service 'svc'"):
        sandbox.inference_service("svc")


def test_a_server_command_that_cannot_run_fails_the_revision_instead_of_wedging_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    assert sandbox.apply_revision("svc", V1, tmp_path, None, "modelrail")
    deadline = time.monotonic() + 10
    while not settled(document := sandbox.inference_service("svc").document()):
        assert time.monotonic() < deadline, "the revision is still starting"
        time.sleep(0.01)
    ready = next(c for c in document["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RevisionFailed")
    assert "did not start" in ready["message"] and "/nonexistent/modelrail-model-server" in ready["message"]
    try:
        sandbox.apply_revision("svc", V2, tmp_path, None, "modelrail")
    except DeploymentInProgressError:
        pytest.fail("a failed revision must not block the next spec")
